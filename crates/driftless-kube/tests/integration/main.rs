//! Integration tests of driftless-kube, compiled into one test binary.

mod adopt;
mod apply;
mod cluster;
mod drift;
mod faults;
mod health_conformance;
mod inventory;
mod lifecycle;
mod support;
mod yaml_roundtrip;
