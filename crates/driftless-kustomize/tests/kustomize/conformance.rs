//! kustomize's own test cases (the shared conformance corpus), read in place.
//!
//! The corpus lives beside the repository checkout, not in it; see
//! [`crate::corpus_gate`] for what happens when it is missing.

use std::path::{Path, PathBuf};

use crate::corpus_gate;
use crate::support::run_all;

/// Output cases byte-identical to kustomize so far; fewer is a regression.
const OUTPUT_FLOOR: usize = 160;
/// Error cases failing for kustomize's reason so far; fewer is a regression.
const ERROR_FLOOR: usize = 22;

/// The variable naming the corpus directory.
const CORPUS_VAR: &str = "DRIFTLESS_KUSTOMIZE_CONFORMANCE";

fn corpus_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(CORPUS_VAR) {
        return PathBuf::from(dir);
    }
    // crates/driftless-kustomize -> repository root -> its sibling shared/.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/kustomize-conformance")
}

#[test]
fn kustomize_conformance_corpus() {
    let cases = corpus_dir().join("cases");
    if !corpus_gate::present(&cases, "kustomize conformance corpus", CORPUS_VAR) {
        return;
    }
    let tally = run_all(&cases, "conformance");
    if std::env::var("CASE").is_ok() {
        return;
    }
    assert!(
        tally.identical >= OUTPUT_FLOOR,
        "byte-identical output cases fell to {} (floor {OUTPUT_FLOOR})",
        tally.identical
    );
    assert!(
        tally.right_errors >= ERROR_FLOOR,
        "error cases failing for kustomize's reason fell to {} (floor {ERROR_FLOOR})",
        tally.right_errors
    );
}

#[test]
fn without_the_corpus_the_test_skips_loudly_or_fails_under_ci() {
    let test = "conformance::kustomize_conformance_corpus";
    let local = corpus_gate::run_without_corpus(test, CORPUS_VAR, None);
    let stderr = String::from_utf8_lossy(&local.stderr);
    assert!(local.status.success(), "skip outside CI failed: {stderr}");
    assert!(
        stderr.contains("SKIPPED: kustomize conformance corpus not found"),
        "no banner: {stderr}"
    );
    let ci = corpus_gate::run_without_corpus(test, CORPUS_VAR, Some("true"));
    let stdout = String::from_utf8_lossy(&ci.stdout);
    assert!(!ci.status.success(), "a missing corpus passed under CI");
    assert!(stdout.contains("CI is set"), "{stdout}");
}
