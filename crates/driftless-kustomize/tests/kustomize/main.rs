//! Integration tests: kustomize's own cases (shared conformance corpus) and
//! this crate's corpus of real-world layouts, both compared byte for byte
//! with the output of kustomize v5.5.0.

mod confinement;
mod conformance;
mod corpus;
mod corpus_gate;
mod errors;
mod reason;
mod remote;
mod remote_files;
mod support;
