//! Helpers for running the binary.

use std::process::{Command, Output};

/// Runs the `driftless` binary built for these tests.
pub fn driftless(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(args)
        .output()
        .expect("run driftless")
}

/// Lossy text of a process's output.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
