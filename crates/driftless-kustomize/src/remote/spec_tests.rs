use std::time::Duration;

use super::{DEFAULT_TIMEOUT, RepoSpec, RepoSpecError, is_http_url};

/// (entry, clone URL, directory in the repository, ref)
fn parts(text: &str) -> (String, String, Option<String>) {
    let spec = RepoSpec::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    (spec.clone_url(), spec.kust_root, spec.reference)
}

#[test]
fn every_form_kustomize_reads_as_a_git_base() {
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        (
            "https://github.com/org/repo//path/to/dir?ref=v1",
            "https://github.com/org/repo",
            "path/to/dir",
            Some("v1"),
        ),
        (
            "github.com/org/repo/path?ref=main",
            "https://github.com/org/repo",
            "path",
            Some("main"),
        ),
        (
            "git@github.com:org/repo.git//dir?ref=x",
            "git@github.com:org/repo.git",
            "dir",
            Some("x"),
        ),
        (
            "ssh://git@example.com/org/repo.git/dir/",
            "ssh://git@example.com/org/repo.git",
            "dir",
            None,
        ),
        (
            "file:///srv/git/repo//base?ref=v2",
            "file:///srv/git/repo",
            "base",
            Some("v2"),
        ),
        ("file:///srv/git/repo", "file:///srv/git/repo", "", None),
        (
            "https://user@dev.azure.com/org/project/_git/repo/path/x",
            "https://user@dev.azure.com/org/project/_git/repo",
            "path/x",
            None,
        ),
        (
            "http://127.0.0.1:8080/repo.git//overlay?version=v1",
            "http://127.0.0.1:8080/repo.git",
            "overlay",
            Some("v1"),
        ),
        (
            "https://example.com/org/repo?ref=v1",
            "https://example.com/org/repo",
            "",
            Some("v1"),
        ),
        (
            "git@gitlab.com:group/sub/repo.git//x",
            "git@gitlab.com:group/sub/repo.git",
            "x",
            None,
        ),
        (
            "git::https://github.com/org/repo",
            "https://github.com/org/repo",
            "",
            None,
        ),
        // kustomize writes github.com over ssh in scp form.
        ("ssh://github.com/org/repo", "github.com:org/repo", "", None),
        (
            "HTTPS://example.com/org/repo/a/b",
            "https://example.com/org/repo",
            "a/b",
            None,
        ),
        (
            "git@example.com:org/repo/sub",
            "git@example.com:org/repo",
            "sub",
            None,
        ),
        (
            "https://example.com/org/repo//a/../b",
            "https://example.com/org/repo",
            "a/../b",
            None,
        ),
    ];
    for (text, url, dir, reference) in cases {
        let want = (
            url.to_string(),
            dir.to_string(),
            reference.map(String::from),
        );
        assert_eq!(parts(text), want, "{text}");
    }
}

#[test]
fn local_paths_and_malformed_urls_are_not_git_bases() {
    let cases: &[(&str, RepoSpecError)] = &[
        ("../base", RepoSpecError::Scheme),
        ("deployment.yaml", RepoSpecError::Scheme),
        ("overlays/prod", RepoSpecError::Scheme),
        ("/abs/base", RepoSpecError::AbsolutePath("/abs/base".into())),
        ("git@example.com:repo", RepoSpecError::RepoPath),
        ("https://example.com/repo", RepoSpecError::RepoPath),
        (
            "https://example.com/org/repo//../x",
            RepoSpecError::ExitsRepo("org/repo//../x".into()),
        ),
        (
            "https://example.com/org/repo//a/../../x",
            RepoSpecError::ExitsRepo("org/repo//a/../../x".into()),
        ),
        ("ftp://example.com/org/repo", RepoSpecError::Scheme),
        ("1user@example.com:org/repo", RepoSpecError::Scheme),
    ];
    for (text, want) in cases {
        assert_eq!(RepoSpec::parse(text).as_ref(), Err(want), "{text}");
    }
}

#[test]
fn query_parameters() {
    let spec = |q: &str| RepoSpec::parse(&format!("https://e.com/o/r?{q}")).expect("parses");
    assert_eq!(spec("version=v1&ref=v2").reference.as_deref(), Some("v2"));
    assert_eq!(spec("version=v1&ref=").reference.as_deref(), Some("v1"));
    assert_eq!(spec("ref=a%2Fb").reference.as_deref(), Some("a/b"));
    assert_eq!(spec("").timeout, DEFAULT_TIMEOUT);
    assert_eq!(spec("timeout=61").timeout, Duration::from_secs(61));
    assert_eq!(spec("timeout=1m30s").timeout, Duration::from_secs(90));
    assert_eq!(spec("timeout=1.5s").timeout, Duration::from_millis(1500));
    assert_eq!(spec("timeout=0").timeout, DEFAULT_TIMEOUT);
    assert_eq!(spec("timeout=-5s").timeout, DEFAULT_TIMEOUT);
    assert_eq!(spec("timeout=soon").timeout, DEFAULT_TIMEOUT);
    assert!(spec("").submodules);
    assert!(!spec("submodules=false").submodules);
    assert!(!spec("submodules=0").submodules);
    assert!(spec("submodules=no").submodules);
    // A query that does not decode gives every default.
    let broken = spec("ref=v1;x&submodules=false");
    assert_eq!(broken.reference, None);
    assert!(broken.submodules);
    assert_eq!(spec("ref=%zz").reference, None);
}

#[test]
fn http_urls_are_single_files() {
    assert!(is_http_url("https://example.com/a.yaml"));
    assert!(is_http_url("HTTP://example.com/a.yaml"));
    assert!(!is_http_url("git@example.com:o/r"));
    assert!(!is_http_url("file:///x"));
    assert!(!is_http_url("deploy.yaml"));
}
