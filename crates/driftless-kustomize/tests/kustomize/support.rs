//! Running one case directory (`BUILD`, optional `FLAGS`, `EXPECT` and
//! `meta.json`, `expected.yaml`) and tallying results.

use std::path::{Path, PathBuf};

use driftless_kustomize::{LoadRestrictor, Options, Reorder, build, parse_stream};

use crate::reason::Expectation;

/// How one case went.
pub enum Outcome {
    /// Output identical to the reference.
    Identical,
    /// The build failed as expected, for kustomize's reason (`stated`: the
    /// case records one; otherwise any error is accepted).
    ExpectedError {
        /// Whether the case records a reason that was checked.
        stated: bool,
    },
    /// Same objects, different bytes.
    Semantic,
    /// Wrong output or wrong error behaviour, with a reason.
    Failed(String),
}

/// The helm binary for `--enable-helm` cases: `DRIFTLESS_HELM`, else the one
/// scripts/ci/install-driftless-kustomize.sh installs, else `helm` on PATH.
fn helm_command() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DRIFTLESS_HELM") {
        return Some(PathBuf::from(path));
    }
    let home = std::env::var_os("HOME")?;
    let pinned = PathBuf::from(home).join(".cache/driftless/helm-v3.16.3/helm");
    pinned.is_file().then_some(pinned)
}

/// Builds the case in `case` and compares it with its expectation.
pub fn run_case(case: &Path) -> Outcome {
    let read = |name: &str| std::fs::read_to_string(case.join(name)).ok();
    let build_dir = case.join(read("BUILD").unwrap_or_default().trim());
    let flags = read("FLAGS").unwrap_or_default();
    let opts = Options {
        reorder: if flags.contains("--reorder=none") {
            Reorder::None
        } else {
            Reorder::Legacy
        },
        load_restrictor: if flags.contains("LoadRestrictionsNone") {
            LoadRestrictor::None
        } else {
            LoadRestrictor::RootOnly
        },
        enable_helm: flags.contains("--enable-helm"),
        helm_command: helm_command(),
        repository_root: None,
        max_input_bytes: None,
        helm_runner: None,
        read_observer: None,
        remote: None,
        generator_decryptor: None,
    };
    let expect_error = is_error_case(case);
    let result = build(&build_dir, &opts).and_then(|list| Ok(list.to_yaml()?));
    match (result, expect_error) {
        (Err(e), true) => match Expectation::load(case) {
            Ok(exp) => match exp.check(case, &e) {
                Ok(()) => Outcome::ExpectedError {
                    stated: !exp.is_unstated(),
                },
                Err(why) => Outcome::Failed(format!("wrong reason: {why}")),
            },
            Err(why) => Outcome::Failed(why),
        },
        (Err(e), false) => Outcome::Failed(format!("error: {e}")),
        (Ok(_), true) => Outcome::Failed("expected an error, build succeeded".into()),
        (Ok(out), false) => {
            let expected = read("expected.yaml").unwrap_or_default();
            if out == expected {
                return Outcome::Identical;
            }
            let parse = |t: &str| parse_stream(t, Path::new("output")).ok();
            match (parse(&out), parse(&expected)) {
                (Some(a), Some(b)) if a == b => Outcome::Semantic,
                _ => Outcome::Failed("output differs".into()),
            }
        }
    }
}

/// Counts from running a set of cases.
#[derive(Default)]
pub struct Tally {
    /// Output cases run (those without `EXPECT: error`).
    pub outputs: usize,
    /// Byte-identical outputs.
    pub identical: usize,
    /// Semantically equal only.
    pub semantic: usize,
    /// Error cases run.
    pub errors: usize,
    /// Error cases that failed for kustomize's reason.
    pub right_errors: usize,
    /// Of those, cases that record no reason (any error accepted).
    pub unstated_errors: usize,
    /// Failures, with reasons.
    pub failed: Vec<String>,
    /// Cases run.
    pub total: usize,
}

/// Runs every case directory below `dir` (filtered by the `CASE` env var)
/// and prints the counts under `label`.
pub fn run_all(dir: &Path, label: &str) -> Tally {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{label} corpus missing at {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in {}", dir.display());
    let only = std::env::var("CASE").ok();
    let mut tally = Tally::default();
    for case in &cases {
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        tally.total += 1;
        if is_error_case(case) {
            tally.errors += 1;
        } else {
            tally.outputs += 1;
        }
        match run_case(case) {
            Outcome::Identical => tally.identical += 1,
            Outcome::ExpectedError { stated } => {
                tally.right_errors += 1;
                tally.unstated_errors += usize::from(!stated);
            }
            Outcome::Semantic => tally.semantic += 1,
            Outcome::Failed(why) => tally.failed.push(format!("{name}: {why}")),
        }
    }
    for f in &tally.failed {
        println!("{label} FAILED {f}");
    }
    println!(
        "{label}: output cases byte-identical {}/{}, error cases with kustomize's reason \
         {}/{}{}; semantically equal only {}, failed {} of {}",
        tally.identical,
        tally.outputs,
        tally.right_errors,
        tally.errors,
        match tally.unstated_errors {
            0 => String::new(),
            n => format!(" (no reason recorded for {n}: any error accepted)"),
        },
        tally.semantic,
        tally.failed.len(),
        tally.total
    );
    tally
}

/// Whether the case expects the build to fail.
fn is_error_case(case: &Path) -> bool {
    std::fs::read_to_string(case.join("EXPECT")).is_ok_and(|e| e.trim() == "error")
}

/// A fresh directory holding the given files, removed on drop.
pub struct TempTree(
    pub PathBuf,
    #[allow(dead_code, reason = "removes the directory on drop")] tempfile::TempDir,
);

impl TempTree {
    /// Writes `files` (relative path, content) below a new directory whose
    /// name starts with `name`.
    pub fn new(name: &str, files: &[(&str, &str)]) -> TempTree {
        let guard = tempfile::Builder::new()
            .prefix(&format!("driftless-kustomize-{name}-"))
            .tempdir()
            .expect("temp dir");
        // Canonical, so paths in errors match what a build prints.
        let dir = guard.path().canonicalize().expect("canonical temp dir");
        for (rel, body) in files {
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().expect("file has a parent"))
                .expect("create dirs");
            std::fs::write(&path, body).expect("write file");
        }
        TempTree(dir, guard)
    }
}
