//! Helm charts in an OCI registry: the real distribution `registry`, charts
//! packaged and pushed by the real `helm` (`helm package`, `helm push`,
//! `helm registry login`), and `helm pull` as the reference for the choice
//! of a version.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use driftless_source::oci::{self, Reference, artifact};
use driftless_source::{
    Auth, ChartRepositories, ChartRepository, HelmRepoError, HelmRepoSpec, IndexChange,
};
use driftless_testenv::chart_repo::write_chart;
use driftless_testenv::helm_cli::Helm;
use driftless_testenv::registry::Registry;

/// A TCP relay to a registry that notes the request line of every request
/// passing through, so a test can count what a client asked.
struct Relay {
    host: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Relay {
    fn to(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let host = listener.local_addr().expect("local addr").to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let mut answers = server.try_clone().expect("clone");
                let mut back = client.try_clone().expect("clone");
                std::thread::spawn(move || std::io::copy(&mut answers, &mut back));
                let log = log.clone();
                std::thread::spawn(move || relay_requests(client, server, &log));
            }
        });
        Relay { host, requests }
    }

    /// The request lines seen since the last call.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.requests.lock().expect("lock"))
    }
}

/// Copies `client`'s bytes to `server` line by line, noting request lines.
fn relay_requests(client: TcpStream, mut server: TcpStream, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(client);
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
        let text = String::from_utf8_lossy(&line);
        if ["GET ", "HEAD ", "POST ", "PUT "]
            .iter()
            .any(|m| text.starts_with(m))
        {
            let request = text.trim_end().trim_end_matches(" HTTP/1.1").to_string();
            log.lock().expect("lock").push(request);
        }
        if server.write_all(&line).is_err() {
            return;
        }
        line.clear();
    }
    let _ = server.shutdown(std::net::Shutdown::Write);
}

fn repository(cache: &Path, host: &str, auth: Auth) -> ChartRepository {
    let mut spec = HelmRepoSpec::new(&format!("oci://{host}/charts")).expect("spec");
    assert!(spec.plain_http, "a loopback registry is reached over HTTP");
    spec.auth = auth;
    ChartRepository::new(cache, spec)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn an_oci_range_picks_the_highest_tag_as_helm_pull_does_and_the_archive_is_the_pushed_one() {
    let registry = Registry::start();
    let host = registry.host();
    let helm = Helm::new();
    let work = tempfile::tempdir().expect("tempdir");
    let mut pushed = BTreeMap::new();
    for version in ["1.0.0", "1.2.0", "1.10.0", "2.0.0", "1.3.0+build.7"] {
        pushed.insert(version, helm.push(&host, "web", version, work.path()));
    }
    let cache = tempfile::tempdir().expect("tempdir");
    let charts = repository(cache.path(), &host, Auth::None);

    let chosen = charts.resolve("web", ">=1.0.0 <2.0.0").expect("resolve");
    assert_eq!(chosen.version, "1.10.0");
    // helm pull, given the same range, takes the same version.
    let pulled = work.path().join("pulled");
    std::fs::create_dir(&pulled).expect("pull destination");
    helm.run(&[
        "pull",
        &format!("oci://{host}/charts/web"),
        "--version",
        ">=1.0.0 <2.0.0",
        "--plain-http",
        "--destination",
        pulled.to_str().expect("utf-8 path"),
    ]);
    assert!(pulled.join("web-1.10.0.tgz").is_file());

    let published = std::fs::read(&pushed["1.10.0"]).expect("pushed archive");
    assert_eq!(chosen.digest, Some(sha256_hex(&published)));
    let manifest = chosen.manifest.clone().expect("a manifest digest");
    assert!(manifest.starts_with("sha256:"), "{manifest}");
    assert_eq!(
        chosen.urls,
        [format!("oci://{host}/charts/web:1.10.0@{manifest}")]
    );
    let archive = charts.chart(&chosen).expect("chart");
    assert_eq!(std::fs::read(&archive).expect("cached"), published);
    assert_eq!(
        archive,
        cache
            .path()
            .join(format!("helm/charts/{}.tgz", sha256_hex(&published)))
    );

    // A bare version is exact; a tag's `_` is the version's `+`.
    let exact = charts.resolve("web", "1.2.0").expect("exact");
    assert_eq!(exact.version, "1.2.0");
    let build = charts
        .resolve("web", "1.3.0+build.7")
        .expect("build metadata");
    assert_eq!(
        build.urls[0].split('@').next(),
        Some(&*format!("oci://{host}/charts/web:1.3.0_build.7"))
    );
    let archive = charts.chart(&build).expect("chart");
    assert_eq!(
        std::fs::read(archive).expect("cached"),
        std::fs::read(&pushed["1.3.0+build.7"]).expect("pushed")
    );

    let err = charts.resolve("web", ">=3").expect_err("no 3.x");
    assert!(
        err.to_string().contains(&format!(
            "Helm repository oci://{host}/charts: no version of chart web matches `>=3` (5 versions listed)"
        )),
        "{err}"
    );
}

#[test]
fn a_poll_is_one_tags_request_reporting_a_change_only_when_the_tags_change() {
    let registry = Registry::start();
    let relay = Relay::to(registry.host());
    let helm = Helm::new();
    let work = tempfile::tempdir().expect("tempdir");
    helm.push(&registry.host(), "web", "0.1.0", work.path());
    let cache = tempfile::tempdir().expect("tempdir");
    let charts = repository(cache.path(), &relay.host, Auth::None);
    let tags = "GET /v2/charts/web/tags/list?n=1000";
    // Nothing asked for yet: nothing to list.
    assert_eq!(
        charts.refresh().expect("first poll"),
        IndexChange::Unchanged
    );
    assert!(charts.index().is_none());
    assert_eq!(relay.take(), Vec::<String>::new());

    let chosen = charts.resolve("web", "").expect("resolve");
    assert_eq!(chosen.version, "0.1.0");
    let manifest = "GET /v2/charts/web/manifests/0.1.0";
    assert_eq!(relay.take(), [tags, manifest]);
    let layer = format!(
        "GET /v2/charts/web/blobs/sha256:{}",
        chosen.digest.clone().expect("digest")
    );
    charts.chart(&chosen).expect("chart");
    assert_eq!(relay.take(), [layer]);
    // Resolved again and taken from the cache: no request.
    assert_eq!(charts.resolve("web", "").expect("resolve"), chosen);
    charts.chart(&chosen).expect("cached chart");
    assert_eq!(relay.take(), Vec::<String>::new());

    assert_eq!(charts.refresh().expect("poll"), IndexChange::Unchanged);
    assert_eq!(relay.take(), [tags]);
    helm.push(&registry.host(), "web", "0.2.0", work.path());
    assert!(matches!(charts.refresh(), Ok(IndexChange::Changed(_))));
    assert_eq!(relay.take(), [tags]);
    assert_eq!(charts.resolve("web", "").expect("resolve").version, "0.2.0");
    let index = charts.index().expect("tags as an index");
    let versions: Vec<_> = index.entries["web"].iter().map(|v| &*v.version).collect();
    assert_eq!(versions, ["0.1.0", "0.2.0"]);
    assert_eq!(charts.refresh().expect("poll"), IndexChange::Unchanged);
    // A recent poll is not repeated.
    relay.take();
    let minute = std::time::Duration::from_secs(60);
    assert_eq!(charts.refresh_if_older(minute).expect("recent"), None);
    assert_eq!(relay.take(), Vec::<String>::new());
}

#[test]
fn a_layer_that_does_not_match_its_digest_is_refused_and_nothing_kept() {
    let registry = Registry::start();
    let host = registry.host();
    let work = tempfile::tempdir().expect("tempdir");
    Helm::new().push(&host, "web", "1.0.0", work.path());
    let cache = tempfile::tempdir().expect("tempdir");
    let charts = repository(cache.path(), &host, Auth::None);
    let chosen = charts.resolve("web", "1.0.0").expect("resolve");
    let digest = chosen.digest.clone().expect("digest");
    let blob = registry.blob_path(&format!("sha256:{digest}"));
    let mut body = std::fs::read(&blob).expect("stored layer");
    let last = body.len() - 1;
    body[last] ^= 0xff;
    std::fs::write(&blob, body).expect("tamper");
    let err = charts.chart(&chosen).expect_err("tampered");
    let text = err.to_string();
    assert!(matches!(err, HelmRepoError::Digest { .. }), "{text}");
    assert!(
        text.starts_with(&format!(
            "chart web 1.0.0 from http://{host}/v2/charts/web/blobs/sha256:{digest}: its digest"
        )),
        "{text}"
    );
    let nothing = std::fs::read_dir(cache.path().join("helm/charts")).map_or(0, |d| d.count());
    assert_eq!(nothing, 0, "nothing of a refused chart is kept");
}

#[test]
fn a_registry_that_is_down_leaves_the_last_tags_and_cached_charts_in_use() {
    let mut registry = Registry::start();
    let host = registry.host();
    let helm = Helm::new();
    let work = tempfile::tempdir().expect("tempdir");
    helm.push(&host, "web", "1.0.0", work.path());
    helm.push(&host, "web", "1.1.0", work.path());
    let cache = tempfile::tempdir().expect("tempdir");
    let charts = repository(cache.path(), &host, Auth::None);
    let chosen = charts.resolve("web", "^1").expect("resolve");
    let archive = charts.chart(&chosen).expect("chart");

    registry.stop();
    // Served from the cache: with the registry stopped, any request would fail.
    assert_eq!(charts.chart(&chosen).expect("cached"), archive);
    let err = charts.refresh().expect_err("down");
    let text = err.to_string();
    assert!(matches!(err, HelmRepoError::Registry { .. }), "{text}");
    assert!(
        text.starts_with(&format!("Helm repository oci://{host}/charts: chart web: ")),
        "{text}"
    );
    assert!(
        text.contains(&format!("http://{host}/v2/charts/web/tags/list")),
        "{text}"
    );
    assert_eq!(charts.resolve("web", "^1").expect("last tags"), chosen);
    // After a restart the tags and manifests stored on disk are the last good.
    let restarted = repository(cache.path(), &host, Auth::None);
    assert!(restarted.refresh().is_err());
    let again = restarted.resolve("web", "^1").expect("from disk");
    assert_eq!(again, chosen);
    assert_eq!(restarted.chart(&again).expect("cached"), archive);
    // A chart never listed cannot be resolved while the registry is down.
    let err = restarted.resolve("api", "").expect_err("never listed");
    assert!(err.to_string().contains("chart api: "), "{err}");
}

#[test]
fn basic_auth_reaches_the_registry_and_wrong_credentials_are_named_without_the_password() {
    let registry = Registry::with_basic_auth("reader", "s3cret-pw");
    let host = registry.host();
    let helm = Helm::new();
    helm.login(&host, "reader", "s3cret-pw");
    let work = tempfile::tempdir().expect("tempdir");
    let pushed = helm.push(&host, "web", "0.3.0", work.path());
    let cache = tempfile::tempdir().expect("tempdir");

    let anonymous = repository(cache.path(), &host, Auth::None);
    let err = anonymous.resolve("web", "").expect_err("401");
    assert!(
        err.to_string()
            .contains("access denied: the registry asks for credentials and none are configured"),
        "{err}"
    );
    let wrong = Auth::Basic {
        username: "reader".into(),
        password: "not-the-pw".into(),
    };
    let err = repository(cache.path(), &host, wrong)
        .resolve("web", "")
        .expect_err("wrong password");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("Helm repository oci://{host}/charts: chart web: ")),
        "{text}"
    );
    assert!(
        text.contains("access denied: the registry refused the credentials"),
        "{text}"
    );
    assert!(!text.contains("not-the-pw"), "{text}");

    let right = Auth::Basic {
        username: "reader".into(),
        password: "s3cret-pw".into(),
    };
    let charts = repository(cache.path(), &host, right);
    let chosen = charts.resolve("web", "0.3.0").expect("with credentials");
    let archive = charts.chart(&chosen).expect("chart with credentials");
    assert_eq!(
        std::fs::read(archive).expect("cached"),
        std::fs::read(pushed).expect("pushed")
    );
}

#[test]
fn a_manifest_that_is_not_a_helm_chart_is_refused_naming_its_media_type() {
    let registry = Registry::start();
    let host = registry.host();
    let files = tempfile::tempdir().expect("tempdir");
    std::fs::write(files.path().join("cm.yaml"), "kind: ConfigMap\n").expect("write");
    let reference =
        Reference::parse(&format!("oci://{host}/charts/manifests:1.0.0")).expect("reference");
    let options = oci::Options {
        insecure: true,
        ..oci::Options::default()
    };
    let client = oci::Registry::new(&reference, &options).expect("client");
    let pushed =
        artifact::push(&client, &reference, files.path(), BTreeMap::new()).expect("push artifact");

    let cache = tempfile::tempdir().expect("tempdir");
    let charts = repository(cache.path(), &host, Auth::None);
    let err = charts
        .resolve("manifests", "1.0.0")
        .expect_err("not a chart");
    let text = err.to_string();
    assert!(matches!(err, HelmRepoError::NotAChart { .. }), "{text}");
    assert_eq!(
        text,
        format!(
            "oci://{host}/charts/manifests:1.0.0@{}: not a Helm chart: config media type \
             `{}`, a chart's is `application/vnd.cncf.helm.config.v1+json`",
            pushed.digest,
            artifact::CONFIG_MEDIA_TYPE
        )
    );
    let nothing = std::fs::read_dir(cache.path().join("helm/charts")).map_or(0, |d| d.count());
    assert_eq!(nothing, 0);
}

#[test]
fn a_dependency_from_an_oci_registry_resolves_through_chart_repositories() {
    let registry = Registry::start();
    let host = registry.host();
    let helm = Helm::new();
    let work = tempfile::tempdir().expect("tempdir");
    let mut pushed = BTreeMap::new();
    for version in ["1.0.0", "1.0.3", "2.0.0"] {
        pushed.insert(version, helm.push(&host, "web", version, work.path()));
    }
    let app = write_chart(
        &work.path().join("git"),
        "app",
        "0.1.0",
        &format!("- name: web\n  version: \"~1.0\"\n  repository: oci://{host}/charts/\n"),
    );
    let cache = tempfile::tempdir().expect("tempdir");
    let repos = ChartRepositories::new(cache.path());
    let scratch = tempfile::tempdir().expect("tempdir");
    let copy = repos
        .with_dependencies(&app, scratch.path())
        .expect("dependencies")
        .expect("a copy with the dependency");
    assert_eq!(
        std::fs::read(copy.join("charts/web-1.0.3.tgz")).expect("dependency archive"),
        std::fs::read(&pushed["1.0.3"]).expect("pushed")
    );
    assert!(
        !app.join("charts").exists(),
        "the chart itself is unchanged"
    );
    // helm renders the chart with its dependency.
    let out = helm.run(&["template", "rel", copy.to_str().expect("utf-8 path")]);
    assert!(out.contains("name: rel-web"), "{out}");
    assert!(out.contains("version: \"1.0.3\""), "{out}");
    // The repository is the one for the URL, however it is written.
    let repo = repos
        .for_url(&format!("oci://{host}/charts"))
        .expect("oci repository");
    assert_eq!(repo.url(), format!("oci://{host}/charts"));
    assert!(repo.index().is_some_and(|i| i.entries.contains_key("web")));
}
