//! Charts from a Helm repository served on loopback (packaged by the real
//! `helm package`, indexed by `helm repo index`), rendered with values in
//! Flux's order and compared with `helm template` of the same archive.

use std::path::PathBuf;
use std::process::Command;

use driftless_render::{HelmOptions, RepositoryChart, render_chart};
use driftless_source::{ChartRepository, HelmRepoSpec};
use driftless_testenv::chart_repo::{ChartRepo, write_chart};
use serde_json::json;

use crate::Repo;
use crate::helm::{helm, helm_objects};

/// A repository serving chart `web` at each of `versions`.
fn serving(versions: &[&str]) -> ChartRepo {
    let served = ChartRepo::start();
    let work = tempfile::tempdir().expect("tempdir");
    for version in versions {
        served.publish(&write_chart(&work.path().join(version), "web", version, ""));
    }
    served
}

/// The archive of the version of `web` in `served` that `constraint`
/// picks, cached under `cache`, and that version.
fn archive(served: &ChartRepo, cache: &std::path::Path, constraint: &str) -> (PathBuf, String) {
    let charts = ChartRepository::new(cache, HelmRepoSpec::new(&served.url).expect("spec"));
    charts.refresh().expect("index");
    let chosen = charts.resolve("web", constraint).expect("resolve");
    (charts.chart(&chosen).expect("archive"), chosen.version)
}

#[test]
fn a_repository_chart_renders_as_helm_template_does_with_values_in_flux_order() {
    let served = serving(&["1.0.0", "1.0.4", "1.1.0"]);
    let cache = tempfile::tempdir().expect("tempdir");
    let (archive, version) = archive(&served, cache.path(), ">=1.0.0 <1.1.0");
    assert_eq!(version, "1.0.4");

    // Values: a file in the checkout, then a Secret's, then inline; each
    // later layer wins for the keys it sets.
    let checkout = Repo::new();
    checkout.write("env/prod.yaml", "greeting: from-file\nreplicas: 2\n");
    let from_secret = [json!({"replicas": 5})];
    let mut opts = checkout.opts();
    opts.helm = HelmOptions {
        command: Some(helm()),
        release_name: Some("shop".into()),
        namespace: Some("prod".into()),
        values_files: vec!["env/prod.yaml".into()],
        values: Some(json!({"greeting": "inline"})),
        ..HelmOptions::default()
    };
    let chart = RepositoryChart {
        archive: &archive,
        name: "web",
        version: &version,
        values_from: &from_secret,
    };
    let set = render_chart(&chart, &opts).expect("render");

    let secret_values = checkout.write("secret.yaml", "replicas: 5\n");
    let inline = checkout.write("inline.yaml", "greeting: inline\n");
    let out = Command::new(helm())
        .args(["template", "shop"])
        .arg(served.path("web-1.0.4.tgz"))
        .args(["--namespace", "prod", "--values"])
        .arg(checkout.path("env/prod.yaml"))
        .arg("--values")
        .arg(secret_values)
        .arg("--values")
        .arg(inline)
        .output()
        .expect("run helm");
    let direct = helm_objects(out);
    let ours: Vec<_> = set.iter().cloned().collect();
    assert_eq!(ours, direct);
    assert_eq!(
        ours[0]["data"],
        json!({"greeting": "inline", "replicas": "5", "version": "1.0.4"})
    );
    assert_eq!(
        set.items()[0].origin,
        "helm template chart web 1.0.4 (web/templates/cm.yaml)#0"
    );
}

#[test]
fn values_files_of_a_repository_chart_stay_inside_the_checkout() {
    let served = serving(&["1.0.0"]);
    let cache = tempfile::tempdir().expect("tempdir");
    let (archive, _) = archive(&served, cache.path(), "1.0.0");
    let checkout = Repo::new();
    let mut opts = checkout.opts();
    opts.helm.command = Some(helm());
    opts.helm.values_files = vec!["../outside.yaml".into()];
    let chart = RepositoryChart {
        archive: &archive,
        name: "web",
        version: "1.0.0",
        values_from: &[],
    };
    let err = render_chart(&chart, &opts).expect_err("outside");
    assert!(err.to_string().contains("outside.yaml"), "{err}");
}

/// `helm dependency build` then `helm template` of a copy of `chart`, with
/// helm's homes in `homes`: the oracle for a chart whose dependencies come
/// from a repository.
fn helm_with_dependencies(
    chart: &std::path::Path,
    homes: &std::path::Path,
) -> Vec<serde_json::Value> {
    let copy = homes.join("copy");
    let out = Command::new("cp")
        .arg("-r")
        .arg(chart)
        .arg(&copy)
        .output()
        .expect("cp");
    assert!(out.status.success());
    let helm_in = |args: &[&str]| {
        Command::new(helm())
            .args(args)
            .arg(&copy)
            .env("HELM_CONFIG_HOME", homes.join("config"))
            .env("HELM_CACHE_HOME", homes.join("cache"))
            .env("HELM_DATA_HOME", homes.join("data"))
            .output()
            .expect("run helm")
    };
    let built = helm_in(&["dependency", "build"]);
    let why = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "helm dependency build: {why}");
    helm_objects(helm_in(&["template", "shop"]))
}

#[test]
fn dependencies_of_a_chart_in_git_come_from_their_repository_as_helm_dependency_build_takes_them() {
    let served = serving(&["1.0.0", "1.0.3", "2.0.0"]);
    let checkout = Repo::new();
    let deps = format!(
        "- name: web\n  version: \"~1.0\"\n  repository: {}\n",
        served.url
    );
    let chart = write_chart(checkout.root(), "app", "0.1.0", &deps);
    let cache = tempfile::tempdir().expect("tempdir");
    let repos = std::sync::Arc::new(driftless_source::ChartRepositories::new(cache.path()));
    let mut opts = checkout.opts();
    opts.helm.command = Some(helm());
    opts.helm.release_name = Some("shop".into());
    opts.chart_repositories = Some(repos.clone());
    let set = driftless_render::render(&chart, &opts).expect("render");
    let homes = tempfile::tempdir().expect("tempdir");
    let direct = helm_with_dependencies(&chart, homes.path());
    let ours: Vec<_> = set.iter().cloned().collect();
    assert_eq!(ours, direct);
    assert_eq!(ours.len(), 2);
    assert!(
        ours.iter().any(|o| o["data"]["version"] == "1.0.3"),
        "{ours:?}"
    );
    // The checkout is left as it was, and a second render downloads nothing.
    assert!(!chart.join("charts").exists());
    let before = served.served().len();
    driftless_render::render(&chart, &opts).expect("again");
    assert_eq!(served.served().len(), before);
    // Without repositories helm names the missing dependency.
    opts.chart_repositories = None;
    let err = driftless_render::render(&chart, &opts).expect_err("missing");
    assert!(err.to_string().contains("web"), "{err}");
}

#[test]
fn a_dependency_named_by_a_repository_alias_is_refused_naming_it() {
    let checkout = Repo::new();
    let deps = "- name: web\n  version: 1.0.0\n  repository: \"@stable\"\n";
    let chart = write_chart(checkout.root(), "app", "0.1.0", deps);
    let cache = tempfile::tempdir().expect("tempdir");
    let mut opts = checkout.opts();
    opts.helm.command = Some(helm());
    opts.chart_repositories = Some(std::sync::Arc::new(
        driftless_source::ChartRepositories::new(cache.path()),
    ));
    let err = driftless_render::render(&chart, &opts).expect_err("alias");
    let text = err.to_string();
    assert!(
        text.contains("Chart.yaml: dependency web: repository `@stable`"),
        "{text}"
    );
}
