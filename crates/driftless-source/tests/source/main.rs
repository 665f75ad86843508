//! Integration tests of driftless-source against real git and real servers.

mod support;

mod backends;
mod credentials;
mod cross_process;
mod helm_oci;
mod helm_repos;
mod oci;
mod polling;
mod refs;
mod signatures;
mod snapshots;
mod submodules;
mod timeouts;
mod transports;
