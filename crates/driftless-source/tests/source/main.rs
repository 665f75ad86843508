//! Integration tests of driftless-source against real git and real servers.

mod support;

mod polling;
mod refs;
mod signatures;
mod snapshots;
mod transports;
