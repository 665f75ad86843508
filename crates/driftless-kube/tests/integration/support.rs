//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

use serde_json::Value;
use serde_saphyr::options::DuplicateKeyPolicy;

use crate::corpus_gate;

/// The variable naming the health conformance fixtures.
pub const CONFORMANCE_VAR: &str = "DRIFTLESS_HEALTH_CONFORMANCE";

/// The health conformance fixtures: `DRIFTLESS_HEALTH_CONFORMANCE`, or
/// `shared/health-conformance/` beside the repository checkout; `None` (after
/// a skip banner) when they are missing outside CI, a panic under CI.
pub fn conformance_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os(CONFORMANCE_VAR) {
        Some(dir) => PathBuf::from(dir),
        // crates/driftless-kube -> repository root -> its sibling shared/.
        None => {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/health-conformance")
        }
    };
    corpus_gate::present(&dir, "health conformance fixtures", CONFORMANCE_VAR).then_some(dir)
}

/// Parses YAML with an independent parser. One fixture repeats
/// `spec.updateStrategy` (with equal values); the later entry wins, as with
/// the Go YAML decoder that produced the fixtures.
pub fn parse_yaml(text: &str, origin: &str) -> Value {
    let options = serde_saphyr::options! { duplicate_keys: DuplicateKeyPolicy::LastWins };
    serde_saphyr::from_str_with_options(text, options)
        .unwrap_or_else(|e| panic!("parsing {origin}: {e}\n{text}"))
}

/// Reads and parses one YAML file.
pub fn load_yaml(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    parse_yaml(&text, &path.display().to_string())
}
