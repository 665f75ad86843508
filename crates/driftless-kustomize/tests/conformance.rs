//! Runs kustomize's own test cases (the shared conformance corpus) and compares
//! the output byte for byte with what kustomize v5.5.0 printed.

use std::path::{Path, PathBuf};

use driftless_kustomize::{LoadRestrictor, Options, Reorder, build};

/// Byte-identical cases reached so far; lowering this means a regression.
const FLOOR: usize = 177;

fn corpus_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("DRIFTLESS_KUSTOMIZE_CONFORMANCE") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/kustomize-conformance")
}

enum Outcome {
    Identical,
    Semantic,
    Failed(String),
}

fn run_case(case: &Path) -> Outcome {
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
        ..Options::default()
    };
    let expect_error = read("EXPECT").is_some_and(|e| e.trim() == "error");
    let result = build(&build_dir, &opts).and_then(|list| Ok(list.to_yaml()?));
    match (result, expect_error) {
        (Err(e), true) if !e.to_string().is_empty() => Outcome::Identical,
        (Err(e), _) => Outcome::Failed(format!("error: {e}")),
        (Ok(_), true) => Outcome::Failed("expected an error, build succeeded".into()),
        (Ok(out), false) => {
            let expected = read("expected.yaml").unwrap_or_default();
            if out == expected {
                return Outcome::Identical;
            }
            let parse = |t: &str| driftless_kustomize::parse_stream(t, Path::new("x")).ok();
            match (parse(&out), parse(&expected)) {
                (Some(a), Some(b)) if a == b => Outcome::Semantic,
                _ => Outcome::Failed("output differs".into()),
            }
        }
    }
}

#[test]
fn kustomize_conformance_corpus() {
    let dir = corpus_dir().join("cases");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("conformance corpus missing at {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in {}", dir.display());
    let only = std::env::var("CASE").ok();
    let (mut identical, mut semantic, mut failed) = (0, 0, Vec::new());
    for case in &cases {
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        match run_case(case) {
            Outcome::Identical => identical += 1,
            Outcome::Semantic => semantic += 1,
            Outcome::Failed(why) => failed.push(format!("{name}: {why}")),
        }
    }
    for f in &failed {
        println!("FAILED {f}");
    }
    println!(
        "conformance: passed {} / byte-identical {identical} / semantically equal only {semantic} / failed {} (of {})",
        identical + semantic,
        failed.len(),
        cases.len()
    );
    assert!(
        identical >= FLOOR,
        "byte-identical cases fell below {FLOOR}"
    );
}
