//! Whether a test may run on a corpus kept outside the repository (beside
//! the checkout, or where an environment variable says).
//!
//! A fresh clone has no corpus: its tests are skipped with a banner on
//! stderr. Under CI (the `CI` variable set, as CI services set it) a missing
//! corpus fails instead, so a skip cannot hide a regression there.
//!
//! Shared by the test binaries of driftless-kustomize and driftless-kube
//! (included by path), so both gate their corpora the same way.

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;

/// What to do about a corpus directory.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// It is there: run.
    Run,
    /// It is missing outside CI: skip, saying why.
    Skip(String),
    /// It is missing under CI: fail, saying why.
    Fail(String),
}

/// Decides from whether `dir` exists and the value of `CI` (set at all
/// counts, even empty: a skip under CI must not pass). `what` names the
/// corpus and `var` the variable that points at it.
pub fn plan(dir: &Path, what: &str, var: &str, ci: Option<OsString>) -> Plan {
    if dir.is_dir() {
        return Plan::Run;
    }
    let why = format!("{what} not found at {}; set {var}", dir.display());
    match ci {
        Some(_) => Plan::Fail(format!("{why} (CI is set, so the corpus is required)")),
        None => Plan::Skip(why),
    }
}

/// True when the test should run on `dir`; prints the skip banner and
/// returns false when it should not; panics when a missing corpus is an error.
pub fn present(dir: &Path, what: &str, var: &str) -> bool {
    match plan(dir, what, var, std::env::var_os("CI")) {
        Plan::Run => true,
        Plan::Fail(why) => panic!("{why}"),
        Plan::Skip(why) => {
            // Straight to stderr in one write: the test harness hides printed
            // output of passing tests, and this skip must be seen.
            let banner = format!("\n==========\nSKIPPED: {why}\n==========\n");
            let _ = std::io::stderr().write_all(banner.as_bytes());
            false
        }
    }
}

/// Runs the one test `test` of this test binary in a child process, with
/// `var` pointing at a directory that does not exist and `CI` as given.
pub fn run_without_corpus(test: &str, var: &str, ci: Option<&str>) -> std::process::Output {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = std::process::Command::new(exe);
    cmd.args([test, "--exact"]).env(
        var,
        Path::new(env!("CARGO_MANIFEST_DIR")).join("no-such-corpus"),
    );
    match ci {
        Some(value) => cmd.env("CI", value),
        None => cmd.env_remove("CI"),
    };
    cmd.output().expect("running the test binary")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{Plan, plan};

    #[test]
    fn a_missing_corpus_is_skipped_only_outside_ci() {
        let missing = Path::new(env!("CARGO_MANIFEST_DIR")).join("no-such-corpus");
        let skip = plan(&missing, "the corpus", "CORPUS_DIR", None);
        assert!(
            matches!(&skip, Plan::Skip(why) if why.contains("CORPUS_DIR") && why.contains("no-such-corpus")),
            "{skip:?}"
        );
        for ci in ["true", "1", ""] {
            let fail = plan(&missing, "the corpus", "CORPUS_DIR", Some(ci.into()));
            assert!(matches!(fail, Plan::Fail(_)), "CI={ci:?}: {fail:?}");
        }
        let present = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
        assert_eq!(plan(&present, "x", "V", Some("true".into())), Plan::Run);
        assert_eq!(plan(&present, "x", "V", None), Plan::Run);
    }
}
