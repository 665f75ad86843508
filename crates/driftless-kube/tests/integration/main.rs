//! Integration tests of driftless-kube, compiled into one test binary.

mod health_conformance;
mod support;
mod yaml_roundtrip;
