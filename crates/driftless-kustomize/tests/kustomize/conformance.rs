//! kustomize's own test cases (the shared conformance corpus), read in place.
//!
//! The corpus lives beside the repository checkout, not in it. Without it the
//! test is skipped with a banner on stderr, except under CI (`CI` set), where
//! a missing corpus fails the test so the floors below are always enforced.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

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

/// What to do about the corpus's `cases` directory.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// It is there: run it.
    Run,
    /// It is missing outside CI: skip, saying why.
    Skip(String),
    /// It is missing under CI: fail, saying why.
    Fail(String),
}

/// Decides from whether `cases` exists and the value of `CI` (set at all
/// counts: CI services set it to `true`, and a skip there must not pass).
fn plan(cases: &Path, ci: Option<OsString>) -> Plan {
    if cases.is_dir() {
        return Plan::Run;
    }
    let why = format!(
        "kustomize conformance corpus not found at {}; set {CORPUS_VAR}",
        cases.display()
    );
    match ci {
        Some(_) => Plan::Fail(format!("{why} (CI is set, so the corpus is required)")),
        None => Plan::Skip(why),
    }
}

#[test]
fn kustomize_conformance_corpus() {
    let cases = corpus_dir().join("cases");
    match plan(&cases, std::env::var_os("CI")) {
        Plan::Run => {}
        Plan::Fail(why) => panic!("{why}"),
        Plan::Skip(why) => {
            // Straight to stderr in one write: the test harness hides printed
            // output of passing tests, and this skip must be seen.
            let banner = format!("\n==========\nSKIPPED: {why}\n==========\n");
            let _ = std::io::stderr().write_all(banner.as_bytes());
            return;
        }
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
fn a_missing_corpus_is_skipped_only_outside_ci() {
    let missing = Path::new(env!("CARGO_MANIFEST_DIR")).join("no-such-corpus/cases");
    assert!(matches!(plan(&missing, None), Plan::Skip(why) if why.contains(CORPUS_VAR)));
    assert!(matches!(plan(&missing, Some("true".into())), Plan::Fail(_)));
    assert!(matches!(plan(&missing, Some("".into())), Plan::Fail(_)));
    let present = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    assert_eq!(plan(&present, Some("true".into())), Plan::Run);
    assert_eq!(plan(&present, None), Plan::Run);
}

/// Runs only the conformance test in a child copy of this test binary, with
/// the corpus variable pointing nowhere.
fn run_without_corpus(ci: Option<&str>) -> std::process::Output {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["conformance::kustomize_conformance_corpus", "--exact"])
        .env(
            CORPUS_VAR,
            Path::new(env!("CARGO_MANIFEST_DIR")).join("no-such-corpus"),
        )
        .env_remove("CASE");
    match ci {
        Some(value) => cmd.env("CI", value),
        None => cmd.env_remove("CI"),
    };
    cmd.output().expect("running the test binary")
}

#[test]
fn the_test_binary_skips_loudly_or_fails_under_ci() {
    let local = run_without_corpus(None);
    let stderr = String::from_utf8_lossy(&local.stderr);
    assert!(local.status.success(), "skip outside CI failed: {stderr}");
    assert!(
        stderr.contains("SKIPPED: kustomize conformance corpus not found"),
        "no banner: {stderr}"
    );
    let ci = run_without_corpus(Some("true"));
    let stdout = String::from_utf8_lossy(&ci.stdout);
    assert!(!ci.status.success(), "a missing corpus passed under CI");
    assert!(stdout.contains("CI is set"), "{stdout}");
}
