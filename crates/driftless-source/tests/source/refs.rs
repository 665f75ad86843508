//! Every ref kind against a local bare repository and `file://`.

use driftless_source::{Fetcher, RefSpec, SourceSpec, fetch::FetchError, remote::RemoteError};

use crate::support::{Fixture, git, remote_error};

fn fetch(
    fetcher: &Fetcher,
    url: &str,
    spec: &str,
) -> Result<driftless_source::Revision, FetchError> {
    let spec = SourceSpec::new(url, RefSpec::parse(spec).expect("valid ref"));
    fetcher.fetch(&spec)
}

#[test]
fn branch_revision_carries_commit_metadata() {
    let fx = Fixture::new(&[("app/deploy.yaml", "kind: Deployment\n")]);
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::new(cache.path());
    let rev = fetch(&fetcher, &fx.bare_url(), "branch:main").expect("fetch main");
    assert_eq!(rev.sha, fx.head());
    assert_eq!(rev.to_string(), format!("main@sha1:{}", fx.head()));
    assert_eq!(rev.author.name, "Ada Author");
    assert_eq!(rev.author.email, "ada@example.com");
    assert_eq!(rev.committer.name, "Cy Committer");
    assert_eq!(rev.date(), "2024-05-01T12:30:00+02:00");
    assert_eq!(rev.subject, "Initial commit");
    assert_eq!(rev.body, "With a body line.");
    // The cache is shallow: one commit, not the history.
    let repo = fetcher.repo_dir(&fx.bare_url());
    assert_eq!(
        git(&repo, &["rev-parse", "--is-shallow-repository"]),
        "true"
    );
    // A wiped cache is noticed: the next fetch fills it again.
    std::fs::remove_dir_all(cache.path()).expect("wipe cache");
    let again = fetch(&fetcher, &fx.bare_url(), "branch:main").expect("refetch");
    let spec = SourceSpec::new(fx.bare_url(), RefSpec::Branch("main".into()));
    fetcher
        .snapshot(&spec, &again, "")
        .expect("export after refetch");
}

#[test]
fn file_url_tags_and_full_ref_names() {
    let fx = Fixture::new(&[("a.txt", "1\n")]);
    let first = fx.head();
    git(&fx.work, &["tag", "light"]);
    git(&fx.work, &["tag", "-a", "v1.0.0", "-m", "release 1.0.0"]);
    let second = fx.commit(&[("a.txt", "2\n")], "Second");
    git(&fx.work, &["push", "-q", "origin", "HEAD:refs/pull/7/head"]);
    fx.push();
    let url = format!("file://{}", fx.bare_url());
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::new(cache.path());

    let rev = fetch(&fetcher, &url, "tag:light").expect("lightweight tag");
    assert_eq!(
        (rev.sha.as_str(), rev.tag_object.is_none()),
        (first.as_str(), true)
    );
    let rev = fetch(&fetcher, &url, "tag:v1.0.0").expect("annotated tag");
    assert_eq!(rev.sha, first);
    assert!(rev.tag_object.is_some(), "annotated tag object is recorded");
    assert_eq!(rev.to_string(), format!("v1.0.0@sha1:{first}"));
    let rev = fetch(&fetcher, &url, "name:refs/pull/7/head").expect("full ref");
    assert_eq!(rev.to_string(), format!("refs/pull/7/head@sha1:{second}"));
}

#[test]
fn commit_by_full_and_abbreviated_id() {
    let fx = Fixture::new(&[("a.txt", "1\n")]);
    let first = fx.head();
    let second = fx.commit(&[("a.txt", "2\n")], "Second");
    fx.push();
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::new(cache.path());
    // An old commit is not advertised; it is fetched by id.
    let rev = fetch(&fetcher, &fx.bare_url(), &format!("commit:{first}")).expect("old commit");
    assert_eq!(rev.to_string(), format!("sha1:{first}"));
    assert_eq!(rev.subject, "Initial commit");
    let rev = fetch(
        &fetcher,
        &fx.bare_url(),
        &format!("commit:{}", &second[..10]),
    )
    .expect("tip");
    assert_eq!(rev.sha, second);
    let unknown = "0123456789012345678901234567890123456789";
    let err =
        fetch(&fetcher, &fx.bare_url(), &format!("commit:{unknown}")).expect_err("no such commit");
    assert!(err.to_string().contains(unknown), "{err}");
}

#[test]
fn commit_on_server_refusing_unadvertised_ids_falls_back_to_history() {
    let fx = Fixture::new(&[("a.txt", "1\n")]);
    let first = fx.head();
    fx.commit(&[("a.txt", "2\n")], "Second");
    fx.push();
    git(
        &fx.bare,
        &["config", "uploadpack.allowReachableSHA1InWant", "false"],
    );
    git(
        &fx.bare,
        &["config", "uploadpack.allowAnySHA1InWant", "false"],
    );
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::new(cache.path());
    // Warm the cache shallowly first so the fallback must unshallow.
    fetch(&fetcher, &fx.bare_url(), "branch:main").expect("fetch main");
    let rev = fetch(&fetcher, &fx.bare_url(), &format!("commit:{first}")).expect("old commit");
    assert_eq!(rev.sha, first);
}

#[test]
fn semver_picks_highest_and_prereleases_only_on_request() {
    let fx = Fixture::new(&[("a.txt", "0\n")]);
    let mut ids = std::collections::HashMap::new();
    for tag in ["v1.0.0", "v1.2.0", "1.4.1", "v1.5.0-rc.1", "v2.0.0", "junk"] {
        let id = fx.commit(&[("a.txt", tag)], tag);
        git(&fx.work, &["tag", tag]);
        ids.insert(tag, id);
    }
    fx.push();
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::new(cache.path());
    let rev = fetch(&fetcher, &fx.bare_url(), "semver:>=1.2.0 <2").expect("stable match");
    assert_eq!(rev.to_string(), format!("1.4.1@sha1:{}", ids["1.4.1"]));
    let rev = fetch(&fetcher, &fx.bare_url(), "semver:>=1.5.0-rc.0 <2").expect("prerelease");
    assert_eq!(rev.reference, "v1.5.0-rc.1");
    let err = fetch(&fetcher, &fx.bare_url(), "semver:>=3").expect_err("nothing matches");
    assert!(
        matches!(remote_error(&err), Some(RemoteError::NoSemverMatch { .. })),
        "{err}"
    );
    assert!(err.to_string().contains(">=3"), "{err}");
}

#[test]
fn moved_tag_and_force_pushed_branch_are_followed() {
    let fx = Fixture::new(&[("a.txt", "1\n")]);
    git(&fx.work, &["tag", "stable"]);
    fx.push();
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::new(cache.path());
    let url = fx.bare_url();
    let before = fetch(&fetcher, &url, "tag:stable").expect("tag");
    let main_before = fetch(&fetcher, &url, "branch:main").expect("main");

    // Rewrite history: amend the only commit and force-push; move the tag.
    git(&fx.work, &["commit", "-q", "--amend", "-m", "Rewritten"]);
    git(&fx.work, &["tag", "-f", "stable"]);
    fx.push();
    let after = fetch(&fetcher, &url, "tag:stable").expect("moved tag");
    assert_ne!(after.sha, before.sha);
    assert_eq!(after.sha, fx.head());
    let main_after = fetch(&fetcher, &url, "branch:main").expect("force-pushed main");
    assert_ne!(main_after.sha, main_before.sha);
    assert_eq!(main_after.subject, "Rewritten");
}

#[test]
fn unknown_repository_and_missing_ref_are_clear_errors() {
    let fx = Fixture::new(&[("a.txt", "1\n")]);
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::new(cache.path());
    let missing = fx.served.join("nope.git");
    let url = missing.to_str().expect("utf-8");
    let err = fetch(&fetcher, url, "branch:main").expect_err("no repo");
    assert!(
        matches!(remote_error(&err), Some(RemoteError::Unreachable { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("nope.git"), "{err}");
    let err = fetch(&fetcher, &fx.bare_url(), "branch:develop").expect_err("no branch");
    assert!(
        err.to_string().ends_with("ref branch:develop not found"),
        "{err}"
    );
}

#[test]
fn fetch_to_dir_exports_a_writable_copy() {
    let fx = Fixture::new(&[("apps/web/kustomization.yaml", "resources: []\n")]);
    let cache = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    let dest = out.path().join("export");
    let rev = driftless_source::fetch_to_dir(cache.path(), &fx.bare_url(), None, Some(&dest))
        .expect("fetch and export");
    assert_eq!(rev.to_string(), format!("main@sha1:{}", fx.head()));
    let content =
        std::fs::read_to_string(dest.join("apps/web/kustomization.yaml")).expect("exported");
    assert_eq!(content, "resources: []\n");
    let err = driftless_source::fetch_to_dir(cache.path(), &fx.bare_url(), Some("main"), None)
        .expect_err("bad ref syntax");
    assert!(err.to_string().contains("expected branch:NAME"), "{err}");
}

#[test]
fn gc_repos_drops_caches_of_removed_sources() {
    let kept = Fixture::new(&[("a.txt", "1\n")]);
    let dropped = Fixture::new(&[("b.txt", "1\n")]);
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::new(cache.path());
    fetch(&fetcher, &kept.bare_url(), "branch:main").expect("fetch kept");
    fetch(&fetcher, &dropped.bare_url(), "branch:main").expect("fetch dropped");
    // Leftovers of a dead process go; those of a live one (this) stay.
    let dead = cache.path().join("tmp/cred-999999999-0");
    let live = cache
        .path()
        .join(format!("tmp/cred-{}-999", std::process::id()));
    std::fs::create_dir_all(&dead).expect("mkdir");
    std::fs::create_dir_all(&live).expect("mkdir");
    let removed = fetcher.gc_repos(&[&kept.bare_url()]).expect("gc");
    assert!(!dead.exists() && live.exists());
    let gone = fetcher.repo_dir(&dropped.bare_url());
    assert!(removed.contains(&gone), "{removed:?}");
    assert!(!gone.exists());
    assert!(fetcher.repo_dir(&kept.bare_url()).join("HEAD").is_file());
    // The kept source still polls from its cache; the dropped one, if asked
    // for again, is fetched afresh and can be exported.
    fetch(&fetcher, &kept.bare_url(), "branch:main").expect("fetch after gc");
    let spec = SourceSpec::new(dropped.bare_url(), RefSpec::Branch("main".into()));
    let rev = fetcher.fetch(&spec).expect("refetch dropped");
    fetcher
        .snapshot(&spec, &rev, "")
        .expect("export after refetch");
}
