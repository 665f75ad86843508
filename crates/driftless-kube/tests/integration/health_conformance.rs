//! Runs the health conformance fixtures: live objects read back from API
//! servers, each with the health users of GitOps tools expect for it.
//!
//! The fixtures live outside the repository (see [`conformance_dir`]).

use driftless_kube::{HealthStatus, assess, is_terminal_failure};

use crate::corpus_gate;
use crate::support::{CONFORMANCE_VAR, conformance_dir, load_yaml};

const EXPECTED_CASES: usize = 44;

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
    let Some(dir) = conformance_dir() else {
        return;
    };
    let table = std::fs::read_to_string(dir.join("expected.tsv"))
        .unwrap_or_else(|e| panic!("reading {}/expected.tsv: {e}", dir.display()));
    let mut passed = 0;
    let mut failures = Vec::new();
    for line in table.lines().filter(|l| !l.trim().is_empty()) {
        let (file, word) = line
            .split_once('\t')
            .unwrap_or_else(|| panic!("expected.tsv: line without a tab: {line:?}"));
        let expected = parse_status(word.trim())
            .unwrap_or_else(|| panic!("expected.tsv: unknown status {word:?} for {file}"));
        let health = assess(&load_yaml(&dir.join("cases").join(file)));
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
    let Some(dir) = conformance_dir() else {
        return;
    };
    let dir = dir.join("cases");
    for file in ["deployment-degraded.yaml", "job-failed.yaml"] {
        let health = assess(&load_yaml(&dir.join(file)));
        assert!(is_terminal_failure(&health), "{file}: {health}");
    }
    // A crash loop may still recover: Degraded, but worth waiting for.
    let crash_loop = assess(&load_yaml(&dir.join("pod-crashloop.yaml")));
    assert_eq!(crash_loop.status, HealthStatus::Degraded);
    assert!(!is_terminal_failure(&crash_loop));
}

#[test]
fn without_the_fixtures_the_tests_skip_loudly_or_fail_under_ci() {
    let test = "health_conformance::all_conformance_cases_get_the_expected_health";
    let local = corpus_gate::run_without_corpus(test, CONFORMANCE_VAR, None);
    let stderr = String::from_utf8_lossy(&local.stderr);
    assert!(local.status.success(), "skip outside CI failed: {stderr}");
    assert!(
        stderr.contains("SKIPPED: health conformance fixtures not found"),
        "no banner: {stderr}"
    );
    let ci = corpus_gate::run_without_corpus(test, CONFORMANCE_VAR, Some("true"));
    let stdout = String::from_utf8_lossy(&ci.stdout);
    assert!(!ci.status.success(), "missing fixtures passed under CI");
    assert!(stdout.contains("CI is set"), "{stdout}");
}
