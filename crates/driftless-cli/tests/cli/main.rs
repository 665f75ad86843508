//! End-to-end tests of the `driftless` binary, in one test binary.

mod artifact;
mod bounds;
mod cluster;
mod decrypt;
mod local;
mod remote;
mod serve;
mod status;
mod support;
