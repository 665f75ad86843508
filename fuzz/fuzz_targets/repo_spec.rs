//! Random remote resource entries: `RepoSpec::parse` never panics, and what
//! it accepts names a directory that stays inside the repository (its `..`
//! never climbs above the root) with no leading or trailing `/`, and a clone
//! URL made of the host and repository path it reports.
#![no_main]

use driftless_kustomize::RepoSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = RepoSpec::parse(text) else {
        return;
    };
    let root = &spec.kust_root;
    assert!(
        !root.starts_with('/') && !root.ends_with('/'),
        "{text:?} gave the directory {root:?}"
    );
    let mut depth: i64 = 0;
    for part in root.split('/') {
        match part {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        assert!(
            depth >= 0,
            "{text:?} gave {root:?}, which leaves the repository"
        );
    }
    assert_eq!(spec.clone_url(), format!("{}{}", spec.host, spec.repo_path));
    assert!(spec.timeout.as_nanos() > 0, "{text:?} gave no time limit");
});
