//! Integration tests of driftless-kube, compiled into one test binary.

mod apply;
mod cluster;
mod drift;
mod faults;
mod health_conformance;
mod lifecycle;
mod support;
mod watch_failures;
mod yaml_roundtrip;
