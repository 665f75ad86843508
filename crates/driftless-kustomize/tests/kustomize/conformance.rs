//! kustomize's own test cases (the shared conformance corpus), read in place.

use std::path::{Path, PathBuf};

use crate::support::run_all;

/// Byte-identical cases reached so far; a lower count is a regression.
const FLOOR: usize = 182;

fn corpus_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("DRIFTLESS_KUSTOMIZE_CONFORMANCE") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/kustomize-conformance")
}

#[test]
fn kustomize_conformance_corpus() {
    let tally = run_all(&corpus_dir().join("cases"), "conformance");
    assert!(
        tally.identical >= FLOOR || std::env::var("CASE").is_ok(),
        "byte-identical cases fell to {} (floor {FLOOR})",
        tally.identical
    );
}
