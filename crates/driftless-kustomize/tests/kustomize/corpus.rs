//! This crate's own corpus of real-world layouts (`tests/corpus`), with
//! expectations made by `tests/corpus/regenerate.sh` from kustomize v5.5.0.

use std::path::Path;

use crate::support::run_all;

#[test]
fn own_corpus_matches_kustomize() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let tally = run_all(&dir, "corpus");
    assert!(
        tally.failed.is_empty(),
        "corpus failures: {:#?}",
        tally.failed
    );
    assert_eq!(tally.semantic, 0, "corpus cases must be byte-identical");
    // A floor, so cases lost by a bad move or regenerate run are noticed.
    assert!(
        tally.total >= 145,
        "only {} corpus cases found, expected at least 145",
        tally.total
    );
}
