//! Helm chart repositories served on loopback from a directory whose charts
//! the real `helm package` made and whose `index.yaml` the real
//! `helm repo index` wrote.

use driftless_source::{Auth, ChartRepository, HelmRepoError, HelmRepoSpec, IndexChange};
use driftless_testenv::chart_repo::{ChartRepo, write_chart};

/// A repository serving chart `web` at each of `versions`.
fn serving(repo: ChartRepo, versions: &[&str]) -> ChartRepo {
    let work = tempfile::tempdir().expect("tempdir");
    for version in versions {
        let chart = write_chart(&work.path().join(version), "web", version, "");
        repo.publish(&chart);
    }
    repo
}

fn client(cache: &std::path::Path, repo: &ChartRepo, auth: Auth) -> ChartRepository {
    let mut spec = HelmRepoSpec::new(&repo.url).expect("spec");
    spec.auth = auth;
    ChartRepository::new(cache, spec)
}

#[test]
fn a_range_picks_the_highest_match_whose_archive_is_verified_and_downloaded_once() {
    let repo = serving(ChartRepo::start(), &["1.14.2", "1.14.10", "1.15.0"]);
    let cache = tempfile::tempdir().expect("tempdir");
    let charts = client(cache.path(), &repo, Auth::None);
    assert!(matches!(charts.refresh(), Ok(IndexChange::Changed(_))));
    let chosen = charts.resolve("web", ">=1.14.0 <1.15.0").expect("resolve");
    assert_eq!(chosen.version, "1.14.10");
    assert_eq!(
        charts.resolve("web", "1.14.2").expect("exact").version,
        "1.14.2"
    );
    let archive = charts.chart(&chosen).expect("chart");
    let published = std::fs::read(repo.path("web-1.14.10.tgz")).expect("published");
    assert_eq!(std::fs::read(&archive).expect("cached"), published);
    let before = repo.served().len();
    assert_eq!(charts.chart(&chosen).expect("again"), archive);
    assert_eq!(
        repo.served().len(),
        before,
        "a cached chart is not downloaded again"
    );
    let err = charts.resolve("web", ">=2").expect_err("no 2.x");
    assert!(
        err.to_string()
            .contains("no version of chart web matches `>=2` (3 versions listed)"),
        "{err}"
    );
}

#[test]
fn an_unchanged_index_costs_one_conditional_request() {
    let repo = serving(ChartRepo::start(), &["1.0.0"]);
    let cache = tempfile::tempdir().expect("tempdir");
    let charts = client(cache.path(), &repo, Auth::None);
    charts.refresh().expect("first poll");
    assert_eq!(
        charts.refresh().expect("second poll"),
        IndexChange::Unchanged
    );
    let served = repo.served();
    assert_eq!(served.len(), 2, "{served:?}");
    assert_eq!(served[1].status, 304);
    assert_eq!(served[1].request.path, "/index.yaml");
    assert!(served[1].request.header("if-none-match").is_some());
    // A recent poll is not repeated; an older one is, conditionally.
    let minute = std::time::Duration::from_secs(60);
    assert_eq!(charts.refresh_if_older(minute).expect("recent"), None);
    assert_eq!(repo.served().len(), 2);
    let now = std::time::Duration::ZERO;
    assert_eq!(
        charts.refresh_if_older(now).expect("old"),
        Some(IndexChange::Unchanged)
    );
    assert_eq!(repo.served().len(), 3);
    // A newer version published: the next poll sees it.
    let work = tempfile::tempdir().expect("tempdir");
    repo.publish(&write_chart(work.path(), "web", "1.1.0", ""));
    assert!(matches!(charts.refresh(), Ok(IndexChange::Changed(_))));
    assert_eq!(
        charts.resolve("web", ">=1").expect("resolve").version,
        "1.1.0"
    );
    assert_eq!(repo.served().len(), 4);
}

#[test]
fn basic_auth_from_the_spec_reaches_index_and_charts() {
    let repo = serving(
        ChartRepo::with_basic_auth("reader", "s3cret-pw"),
        &["0.3.0"],
    );
    let cache = tempfile::tempdir().expect("tempdir");
    let anonymous = client(cache.path(), &repo, Auth::None);
    let err = anonymous.refresh().expect_err("401");
    assert!(
        matches!(err, HelmRepoError::Status { status: 401, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("/index.yaml"), "{err}");
    let auth = Auth::Basic {
        username: "reader".into(),
        password: "s3cret-pw".into(),
    };
    let charts = client(cache.path(), &repo, auth);
    charts.refresh().expect("with credentials");
    let chosen = charts.resolve("web", "").expect("resolve");
    let archive = charts.chart(&chosen).expect("chart with credentials");
    assert!(archive.is_file());
    assert!(
        repo.served()
            .iter()
            .any(|s| s.request.path == "/web-0.3.0.tgz" && s.status == 200)
    );
}

#[test]
fn a_chart_whose_digest_does_not_match_the_index_is_refused() {
    let repo = serving(ChartRepo::start(), &["2.0.0"]);
    let cache = tempfile::tempdir().expect("tempdir");
    let charts = client(cache.path(), &repo, Auth::None);
    charts.refresh().expect("poll");
    // The archive is replaced behind the index's back.
    let other = tempfile::tempdir().expect("tempdir");
    let chart = write_chart(other.path(), "web", "2.0.0", "");
    std::fs::write(chart.join("templates/extra.yaml"), "# tampered\n").expect("write");
    let helm = driftless_testenv::tools::helm();
    let out = std::process::Command::new(helm)
        .args(["package", "--destination"])
        .arg(other.path())
        .arg(&chart)
        .output()
        .expect("helm package");
    assert!(out.status.success());
    std::fs::copy(
        other.path().join("web-2.0.0.tgz"),
        repo.path("web-2.0.0.tgz"),
    )
    .expect("swap");
    let chosen = charts.resolve("web", "2.0.0").expect("resolve");
    let err = charts.chart(&chosen).expect_err("tampered");
    let text = err.to_string();
    assert!(matches!(err, HelmRepoError::Digest { .. }), "{text}");
    assert!(
        text.starts_with(&format!(
            "chart web 2.0.0 from {}/web-2.0.0.tgz: its digest",
            repo.url
        )),
        "{text}"
    );
    assert!(text.ends_with("refused"), "{text}");
    let cached = std::fs::read_dir(cache.path().join("helm/charts")).map_or(0, |d| d.count());
    assert_eq!(cached, 0, "nothing of a refused chart is kept");
}

#[test]
fn a_repository_that_is_down_leaves_the_last_good_index_and_charts_in_use() {
    let repo = serving(ChartRepo::start(), &["1.0.0", "1.2.0"]);
    let url = repo.url.clone();
    let cache = tempfile::tempdir().expect("tempdir");
    let charts = client(cache.path(), &repo, Auth::None);
    charts.refresh().expect("poll");
    let chosen = charts.resolve("web", "^1").expect("resolve");
    let archive = charts.chart(&chosen).expect("chart");
    drop(repo);
    let err = charts.refresh().expect_err("down");
    assert!(
        err.to_string().contains(&format!("GET {url}/index.yaml")),
        "{err}"
    );
    assert_eq!(
        charts.resolve("web", "^1").expect("last good").version,
        "1.2.0"
    );
    assert_eq!(charts.chart(&chosen).expect("cached"), archive);
    // After a restart the index stored on disk is the last good one.
    let restarted = ChartRepository::new(cache.path(), HelmRepoSpec::new(&url).expect("spec"));
    assert!(restarted.refresh().is_err());
    assert_eq!(
        restarted.resolve("web", "^1").expect("from disk").version,
        "1.2.0"
    );
}

#[test]
fn oci_urls_are_taken_and_other_schemes_refused() {
    let spec = HelmRepoSpec::new("oci://ghcr.io/org/charts/").expect("oci");
    assert_eq!(spec.url, "oci://ghcr.io/org/charts");
    assert!(spec.is_oci() && !spec.plain_http, "{spec:?}");
    let local = HelmRepoSpec::new("oci://127.0.0.1:5000/charts").expect("loopback");
    assert!(local.plain_http, "a loopback registry is reached over HTTP");
    let err = HelmRepoSpec::new("oci://ghcr.io/Org/charts").expect_err("uppercase");
    assert!(
        err.to_string()
            .starts_with("url `oci://ghcr.io/Org/charts`: the repository must be lowercase"),
        "{err}"
    );
    let err = HelmRepoSpec::new("OCI:///").expect_err("no registry");
    assert!(
        err.to_string().contains("the registry is not a host name"),
        "{err}"
    );
    let err = HelmRepoSpec::new("ftp://charts.example").expect_err("ftp");
    assert!(
        err.to_string().contains("http://, https:// or oci://"),
        "{err}"
    );
}
