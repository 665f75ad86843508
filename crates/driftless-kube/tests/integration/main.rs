//! Integration tests of driftless-kube, compiled into one test binary.

mod adopt;
mod apply;
mod cluster;
// The corpus gate driftless-kustomize's conformance test uses, so both skip and
// fail alike.
#[path = "../../../driftless-kustomize/tests/kustomize/corpus_gate.rs"]
mod corpus_gate;
mod drift;
mod faults;
mod health_conformance;
mod hooks;
mod ignore;
mod inventory;
mod lease;
mod lifecycle;
mod support;
mod sync_options;
mod tree;
mod watch_failures;
