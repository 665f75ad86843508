//! Integration tests of driftless-source against real git and real servers.

mod support;

mod refs;
mod snapshots;
mod transports;
