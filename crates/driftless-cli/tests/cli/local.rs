//! End-to-end tests of the `driftless` binary against real tools: `kubectl
//! kustomize` as the rendering oracle and real `git` repositories.

use std::path::{Path, PathBuf};
use std::process::Command;

use driftless_testenv::git::{AUTHOR_NAME, git};

use crate::support::{driftless, text};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crate lives two levels below the root")
        .to_path_buf()
}

#[test]
fn render_matches_kustomize_on_the_example_overlays() {
    for overlay in [
        "apps/web/overlays/dev",
        "apps/web/overlays/prod",
        "apps/worker/overlays/prod",
    ] {
        let dir = repo_root().join("examples/repo").join(overlay);
        let dir = dir.to_str().expect("utf-8 path");
        let ours = driftless(&["render", dir]);
        assert!(
            ours.status.success(),
            "render {overlay}: {}",
            text(&ours.stderr)
        );
        let reference = Command::new("kubectl")
            .args(["kustomize", dir])
            .output()
            .expect("kubectl");
        assert!(reference.status.success());
        assert_eq!(
            text(&ours.stdout),
            text(&reference.stdout),
            "{overlay} differs from kustomize"
        );
    }
}

#[test]
fn render_json_is_a_list_of_the_same_objects() {
    let dir = repo_root().join("examples/repo/apps/web/overlays/prod");
    let out = driftless(&["render", dir.to_str().expect("utf-8"), "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(list["kind"], "List");
    let kinds: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["ConfigMap", "Service", "Deployment"]);
    let deployment = &list["items"][2];
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(deployment["metadata"]["namespace"], "web-prod");
}

#[test]
fn render_errors_name_the_file_and_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        "resources:\n- missing.yaml\n",
    )
    .expect("write");
    let out = driftless(&["render", dir.path().to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("kustomization.yaml") && err.contains("missing.yaml"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing is printed on error");

    let out = driftless(&["render", "/no/such/dir"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/no/such/dir"));
}

#[test]
fn render_reads_only_inside_the_repository_of_dir() {
    let top = tempfile::tempdir().expect("tempdir");
    let write = |rel: &str, body: &str| {
        let path = top.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        std::fs::write(path, body).expect("write");
    };
    write(
        "repo/base/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n",
    );
    write("repo/base/kustomization.yaml", "resources:\n- cm.yaml\n");
    write("repo/overlay/kustomization.yaml", "resources:\n- ../base\n");
    write(
        "repo/leak/kustomization.yaml",
        "configMapGenerator:\n- name: leak\n  files:\n  - ../../secret.txt\n",
    );
    write("secret.txt", "s3cret\n");
    let repo = top.path().join("repo");
    let render = |dir: &str, extra: &[&str]| {
        let dir = repo.join(dir);
        let mut args = vec!["render", dir.to_str().expect("utf-8")];
        args.extend_from_slice(extra);
        driftless(&args)
    };
    // Not a Git working tree: the directory itself is the root, so the
    // overlay needs --root to reach its base.
    let out = render("overlay", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("outside the repository root"));
    let root = repo.to_str().expect("utf-8");
    assert_eq!(render("overlay", &["--root", root]).status.code(), Some(0));
    // In a Git working tree the root defaults to its top.
    git(&repo, &["init", "-q"]);
    let out = render("overlay", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("name: cm"));
    let out = render("leak", &["--load-restrictor", "LoadRestrictionsNone"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("secret.txt") && err.contains("outside the repository root"),
        "{err}"
    );
    assert!(!text(&out.stdout).contains("s3cret"));
}

#[test]
fn source_fetch_prints_the_revision_and_exports_the_tree() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = work.path().join("repo");
    std::fs::create_dir(&repo).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("app.yaml"), "kind: ConfigMap\n").expect("write");
    git(&repo, &["add", "."]);
    git(
        &repo,
        &["commit", "-q", "-m", "Add the app", "-m", "Why: testing."],
    );
    git(&repo, &["tag", "v1.2.0"]);
    let sha = git(&repo, &["rev-parse", "HEAD"]);
    let cache = work.path().join("cache");
    let out_dir = work.path().join("out");
    let url = format!("file://{}", repo.display());
    let cache_arg = cache.to_str().expect("utf-8");

    let out = driftless(&[
        "source",
        "fetch",
        &url,
        "--ref",
        "branch:main",
        "--cache-dir",
        cache_arg,
        "--out",
        out_dir.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("revision: main@sha1:{sha}\n"));
    assert_eq!(
        std::fs::read_to_string(out_dir.join("app.yaml")).expect("exported"),
        "kind: ConfigMap\n"
    );

    let out = driftless(&[
        "source",
        "fetch",
        &url,
        "--ref",
        "semver:>=1.0.0 <2",
        "--cache-dir",
        cache_arg,
        "--output",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rev: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(rev["revision"], format!("v1.2.0@sha1:{sha}"));
    assert_eq!(rev["author"]["name"], AUTHOR_NAME);
    assert_eq!(rev["subject"], "Add the app");
    assert_eq!(rev["message"], "Add the app\n\nWhy: testing.");
}

#[test]
fn source_fetch_bad_ref_is_an_input_error_and_missing_ref_names_it() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = work.path().join("repo");
    std::fs::create_dir(&repo).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["commit", "-q", "--allow-empty", "-m", "init"]);
    let url = repo.to_str().expect("utf-8");
    let cache = work.path().join("cache");
    let cache = cache.to_str().expect("utf-8");

    let out = driftless(&[
        "source",
        "fetch",
        url,
        "--ref",
        "bogus:x",
        "--cache-dir",
        cache,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("bogus:x"),
        "{}",
        text(&out.stderr)
    );

    let out = driftless(&[
        "source",
        "fetch",
        url,
        "--ref",
        "branch:nope",
        "--cache-dir",
        cache,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("branch:nope"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn render_plain_manifests_with_substitution() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  env: ${ENV}\n  region: ${REGION:=eu-west-1}\n",
    )
    .expect("write");
    let path = dir.path().to_str().expect("utf-8");
    let out = driftless(&["render", path, "--var", "ENV=prod"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    assert!(
        yaml.contains("env: prod") && yaml.contains("region: eu-west-1"),
        "{yaml}"
    );

    let out = driftless(&["render", path, "--strict-vars"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("ENV") && err.contains("settings"),
        "names the variable and object: {err}"
    );

    let out = driftless(&["render", path, "--var", "novalue"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("NAME=VALUE"));
}

#[test]
fn render_reads_remote_bases_unless_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let shared = work.path().join("shared");
    std::fs::create_dir_all(shared.join("base")).expect("mkdir");
    git(&shared, &["init", "-q", "-b", "main"]);
    std::fs::write(
        shared.join("base/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\ndata:\n  v: \"1\"\n",
    )
    .expect("write");
    std::fs::write(
        shared.join("base/kustomization.yaml"),
        "resources: [cm.yaml]\n",
    )
    .expect("write");
    git(&shared, &["add", "."]);
    git(&shared, &["commit", "-q", "-m", "shared base"]);
    let app = work.path().join("app");
    std::fs::create_dir(&app).expect("mkdir");
    let url = format!("file://{}//base?ref=main", shared.display());
    std::fs::write(
        app.join("kustomization.yaml"),
        format!("namePrefix: team-\nresources:\n- {url}\n"),
    )
    .expect("write");
    let cache = work.path().join("cache");
    let (dir, cache) = (app.to_str().expect("utf-8"), cache.to_str().expect("utf-8"));

    let out = driftless(&["render", dir, "--cache-dir", cache]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "apiVersion: v1\ndata:\n  v: \"1\"\nkind: ConfigMap\nmetadata:\n  name: team-shared\n"
    );

    let out = driftless(&["render", dir, "--cache-dir", cache, "--no-remote-resources"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains(&url) && err.contains("remote resources are turned off"),
        "{err}"
    );
}

#[test]
fn render_takes_a_charts_missing_dependency_from_its_repository() {
    use driftless_testenv::chart_repo::{ChartRepo, write_chart};
    let served = ChartRepo::start();
    let work = tempfile::tempdir().expect("tempdir");
    for version in ["1.0.0", "1.0.3", "2.0.0"] {
        served.publish(&write_chart(&work.path().join(version), "db", version, ""));
    }
    let checkout = work.path().join("checkout");
    std::fs::create_dir(&checkout).expect("mkdir");
    git(&checkout, &["init", "-q", "-b", "main"]);
    let deps = format!(
        "- name: db\n  version: \"~1.0\"\n  repository: {}\n",
        served.url
    );
    let chart = write_chart(&checkout, "shop", "0.1.0", &deps);
    let helm = driftless_testenv::tools::helm();
    let cache = work.path().join("cache");
    let args = [
        "render",
        chart.to_str().expect("utf-8"),
        "--helm-command",
        helm.to_str().expect("utf-8"),
        "--cache-dir",
        cache.to_str().expect("utf-8"),
    ];
    let out = driftless(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rendered = text(&out.stdout);
    assert!(
        rendered.contains("name: shop-db") && rendered.contains("version: 1.0.3"),
        "{rendered}"
    );
    assert!(rendered.contains("name: shop-shop"), "{rendered}");
    assert!(
        !chart.join("charts").exists(),
        "the checkout is left as it was"
    );
}

/// `driftless render` of chart `shop` in a Git checkout under `work`, whose
/// dependency `web` is in `oci://HOST/charts`, with helm's registry
/// credentials file `registry_config` and a home directory of its own.
fn render_with_registry_config(
    work: &std::path::Path,
    host: &str,
    registry_config: &std::path::Path,
) -> std::process::Output {
    use driftless_testenv::chart_repo::write_chart;
    let checkout = work.join("checkout");
    if !checkout.exists() {
        std::fs::create_dir(&checkout).expect("mkdir");
        git(&checkout, &["init", "-q", "-b", "main"]);
        let deps =
            format!("- name: web\n  version: \"^1.0.0\"\n  repository: oci://{host}/charts\n");
        write_chart(&checkout, "shop", "0.1.0", &deps);
    }
    let cache = tempfile::tempdir().expect("tempdir");
    let home = tempfile::tempdir().expect("tempdir");
    std::process::Command::new(env!("CARGO_BIN_EXE_driftless"))
        .arg("render")
        .arg(checkout.join("shop"))
        .arg("--helm-command")
        .arg(driftless_testenv::tools::helm())
        .arg("--cache-dir")
        .arg(cache.path())
        .env("HOME", home.path())
        .env("HELM_REGISTRY_CONFIG", registry_config)
        .output()
        .expect("run driftless")
}

#[test]
fn render_takes_an_oci_dependency_with_the_credentials_of_helm_registry_login() {
    use driftless_testenv::helm_cli::Helm;
    use driftless_testenv::registry::Registry;
    let registry = Registry::with_basic_auth("ci", "pa55-w0rd");
    let host = registry.host();
    let helm = Helm::new();
    helm.login(&host, "ci", "pa55-w0rd");
    let work = tempfile::tempdir().expect("tempdir");
    helm.push(&host, "web", "1.0.0", work.path());

    // With the file `helm registry login` wrote, as helm reads it.
    let out = render_with_registry_config(work.path(), &host, &helm.registry_config());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rendered = text(&out.stdout);
    assert!(
        rendered.contains("name: shop-web") && rendered.contains("version: 1.0.0"),
        "{rendered}"
    );
    // The same chart through the real helm: the dependency pulled with the
    // login into `charts/` (what `helm dependency build` does; helm 3.16's
    // has no plain-HTTP switch), then `helm template`.
    let chart = work.path().join("checkout/shop");
    let copy = work.path().join("copy");
    let cp = std::process::Command::new("cp")
        .arg("-r")
        .arg(&chart)
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(cp.success());
    let charts = copy.join("charts");
    std::fs::create_dir_all(&charts).expect("mkdir");
    helm.run(&[
        "pull",
        &format!("oci://{host}/charts/web"),
        "--version",
        "1.0.0",
        "--plain-http",
        "--destination",
        charts.to_str().expect("utf-8"),
    ]);
    let direct = helm.run(&["template", "shop", copy.to_str().expect("utf-8")]);
    let parse = |t: &str| driftless_kustomize::parse_stream(t, std::path::Path::new("out"));
    assert_eq!(
        parse(&rendered).expect("ours"),
        parse(&direct).expect("helm's")
    );

    // Without a login the registry refuses, and no file is read elsewhere.
    let none = work.path().join("no-such-config.json");
    let out = render_with_registry_config(work.path(), &host, &none);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("access denied"), "{err}");

    // A wrong password is refused and never printed.
    let wrong = work.path().join("wrong.json");
    let auth = base64_of("ci:not-the-pa55");
    std::fs::write(
        &wrong,
        format!("{{\"auths\":{{\"{host}\":{{\"auth\":\"{auth}\"}}}}}}"),
    )
    .expect("write");
    let out = render_with_registry_config(work.path(), &host, &wrong);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("access denied"), "{err}");
    assert!(
        !err.contains("not-the-pa55") && !err.contains(&auth),
        "{err}"
    );
}

/// Standard base64 of `text`.
fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
