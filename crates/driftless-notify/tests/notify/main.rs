//! Notifications against real HTTP servers on loopback: each provider's
//! format as its service documents it, delivery (retries, giving up,
//! de-duplication, a full queue) and a real Alertmanager.

mod alertmanager;
mod delivery;
mod providers;
mod support;
