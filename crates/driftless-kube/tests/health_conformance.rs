//! Runs the health conformance fixtures: live objects read back from API
//! servers, each with the health users of GitOps tools expect for it.
//!
//! The fixtures live outside the repository, in `shared/health-conformance/`
//! beside the checkout; `DRIFTLESS_HEALTH_CONFORMANCE` points elsewhere.

use std::path::{Path, PathBuf};

use driftless_kube::{HealthStatus, assess, is_terminal_failure};
use serde_json::Value;
use serde_saphyr::options::DuplicateKeyPolicy;

const EXPECTED_CASES: usize = 44;

fn fixture_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DRIFTLESS_HEALTH_CONFORMANCE") {
        return PathBuf::from(dir);
    }
    // crates/driftless-kube -> repository root -> its sibling shared/.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/health-conformance")
}

/// Reads one fixture. One of them repeats `spec.updateStrategy` (with equal
/// values); the later entry wins, as with the Go YAML decoder that produced them.
fn load(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let options = serde_saphyr::options! { duplicate_keys: DuplicateKeyPolicy::LastWins };
    serde_saphyr::from_str_with_options(&text, options)
        .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn parse_status(word: &str) -> Option<HealthStatus> {
    [
        HealthStatus::Healthy,
        HealthStatus::Progressing,
        HealthStatus::Degraded,
        HealthStatus::Suspended,
        HealthStatus::Missing,
        HealthStatus::Unknown,
    ]
    .into_iter()
    .find(|s| s.as_str() == word)
}

#[test]
fn all_conformance_cases_get_the_expected_health() {
    let dir = fixture_dir();
    let table = std::fs::read_to_string(dir.join("expected.tsv")).unwrap_or_else(|e| {
        panic!(
            "health conformance fixtures missing at {}: {e} (set DRIFTLESS_HEALTH_CONFORMANCE)",
            dir.display()
        )
    });
    let mut passed = 0;
    let mut failures = Vec::new();
    for line in table.lines().filter(|l| !l.trim().is_empty()) {
        let (file, word) = line
            .split_once('\t')
            .unwrap_or_else(|| panic!("expected.tsv: line without a tab: {line:?}"));
        let expected = parse_status(word.trim())
            .unwrap_or_else(|| panic!("expected.tsv: unknown status {word:?} for {file}"));
        let health = assess(&load(&dir.join("cases").join(file)));
        if health.status == expected {
            passed += 1;
        } else {
            failures.push(format!("{file}: expected {expected}, got {health}"));
        }
    }
    let total = passed + failures.len();
    println!("health conformance: {passed}/{total} cases passed");
    for failure in &failures {
        println!("  FAIL {failure}");
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
    assert_eq!(total, EXPECTED_CASES, "number of conformance cases");
}

#[test]
fn terminal_failures_among_the_fixtures() {
    // The two rollout failures a waiter must not sit out: a Deployment past its
    // progress deadline and a failed Job.
    let dir = fixture_dir().join("cases");
    for file in ["deployment-degraded.yaml", "job-failed.yaml"] {
        let health = assess(&load(&dir.join(file)));
        assert!(is_terminal_failure(&health), "{file}: {health}");
    }
    // A crash loop may still recover: Degraded, but worth waiting for.
    let crash_loop = assess(&load(&dir.join("pod-crashloop.yaml")));
    assert_eq!(crash_loop.status, HealthStatus::Degraded);
    assert!(!is_terminal_failure(&crash_loop));
}
