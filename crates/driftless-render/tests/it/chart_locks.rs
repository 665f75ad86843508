//! Charts in Git with a lock file (`Chart.lock`, or `requirements.lock` for
//! apiVersion v1), written by the real `helm dependency update`: rendered
//! with the locked versions, and refused when out of sync, each compared
//! with the real `helm dependency build` then `helm template`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use driftless_source::ChartRepositories;
use driftless_testenv::chart_repo::{ChartRepo, write_chart};
use driftless_testenv::helm_cli::Helm;
use serde_json::Value;

use crate::Repo;
use crate::helm::helm;

/// Publishes chart `web` at `version` to `served`.
fn publish(served: &ChartRepo, version: &str) {
    let work = tempfile::tempdir().expect("tempdir");
    served.publish(&write_chart(work.path(), "web", version, ""));
}

/// Adds `served` to helm's repositories (with a lock file,
/// `helm dependency build` wants each URL added), runs
/// `helm dependency update` on `chart` to write its lock file, then empties
/// its `charts/` as a checkout without vendored charts has it.
fn lock(helm: &Helm, served: &ChartRepo, chart: &Path) {
    helm.run(&["repo", "add", "served", &served.url]);
    helm.run(&["dependency", "update", chart.to_str().expect("utf-8")]);
    std::fs::remove_dir_all(chart.join("charts")).expect("remove charts/");
}

/// `helm dependency build` then `helm template shop` of a copy of `chart`:
/// the objects, or what helm printed when the build failed.
fn helm_build(helm: &Helm, chart: &Path) -> Result<Vec<Value>, String> {
    let scratch = tempfile::tempdir().expect("tempdir");
    let copy = scratch.path().join("copy");
    let cp = std::process::Command::new("cp")
        .arg("-r")
        .arg(chart)
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(cp.success());
    let out = helm
        .command()
        .args(["dependency", "build"])
        .arg(&copy)
        .output()
        .expect("helm dependency build");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let out = helm
        .command()
        .args(["template", "shop"])
        .arg(&copy)
        .output()
        .expect("helm template");
    Ok(crate::helm::helm_objects(out))
}

/// Renders `chart` with dependencies from their repositories.
fn render(checkout: &Repo, chart: &Path, cache: &Path) -> Result<Vec<Value>, String> {
    let mut opts = checkout.opts();
    opts.helm.command = Some(helm());
    opts.helm.release_name = Some("shop".into());
    opts.chart_repositories = Some(Arc::new(ChartRepositories::new(cache)));
    driftless_render::render(chart, &opts)
        .map(|set| set.iter().cloned().collect())
        .map_err(|e| e.to_string())
}

/// The chart versions of `web` among `objects`, sorted.
fn versions(objects: &[Value]) -> Vec<String> {
    let mut found: Vec<String> = objects
        .iter()
        .filter(|o| {
            let name = o["metadata"]["name"].as_str().unwrap_or_default();
            name == "shop-web" || name == "shop-api"
        })
        .map(|o| {
            o["data"]["version"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    found.sort();
    found
}

/// A v2 chart `app` in `checkout` with two dependencies on `web` of
/// `served`: a caret range and, under an alias, a range with `<` and `>`
/// (which Go escapes in the JSON Helm's digest is taken of), a condition,
/// tags and import-values.
fn app_chart(checkout: &Repo, served: &ChartRepo) -> PathBuf {
    let deps = format!(
        "- name: web\n  version: ^1.0.0\n  repository: {url}\n\
         - name: web\n  alias: api\n  version: \">=1.0.0 <2.0.0\"\n  repository: {url}\n\
         \x20 condition: api.enabled\n  tags: [back, \"a&b\"]\n  import-values:\n  - child: greeting\n    parent: imported\n",
        url = served.url
    );
    write_chart(checkout.root(), "app", "0.1.0", &deps)
}

#[test]
fn a_chart_lock_pins_the_locked_versions_as_helm_dependency_build_does() {
    let served = ChartRepo::start();
    publish(&served, "1.0.0");
    let checkout = Repo::new();
    let chart = app_chart(&checkout, &served);
    let helm_home = Helm::new();
    lock(&helm_home, &served, &chart);
    assert!(chart.join("Chart.lock").is_file());
    // A newer version the ranges allow is published after the lock.
    publish(&served, "1.1.0");

    let cache = tempfile::tempdir().expect("tempdir");
    let ours = render(&checkout, &chart, cache.path()).expect("render");
    let direct = helm_build(&helm_home, &chart).expect("helm dependency build");
    assert_eq!(ours, direct);
    assert_eq!(versions(&ours), ["1.0.0", "1.0.0"]);

    // Without the lock both ranges pick the newest, as helm does.
    std::fs::remove_file(chart.join("Chart.lock")).expect("remove lock");
    let unlocked = render(&checkout, &chart, cache.path()).expect("render");
    assert_eq!(versions(&unlocked), ["1.1.0", "1.1.0"]);
    assert_eq!(unlocked, helm_build(&helm_home, &chart).expect("helm"));
}

#[test]
fn an_out_of_sync_chart_lock_is_refused_as_helm_dependency_build_refuses_it() {
    let served = ChartRepo::start();
    publish(&served, "1.0.0");
    publish(&served, "1.1.0");
    let checkout = Repo::new();
    let chart = app_chart(&checkout, &served);
    let helm_home = Helm::new();
    lock(&helm_home, &served, &chart);
    // Chart.yaml changes after the lock was written.
    let file = chart.join("Chart.yaml");
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, text.replace("^1.0.0", "^1.1.0")).expect("write");

    let helm_says = helm_build(&helm_home, &chart).expect_err("helm refuses");
    assert!(
        helm_says.contains(
            "the lock file (Chart.lock) is out of sync with the dependencies file (Chart.yaml)"
        ),
        "{helm_says}"
    );
    let cache = tempfile::tempdir().expect("tempdir");
    let before = served.served().len();
    let ours = render(&checkout, &chart, cache.path()).expect_err("refused");
    let lock_file = chart.join("Chart.lock").display().to_string();
    assert!(
        ours.contains(&format!(
            "{lock_file}: chart app: the lock file (Chart.lock) is out of sync with the dependencies file (Chart.yaml)"
        )),
        "{ours}"
    );
    // Nothing was downloaded for a lock that is not used.
    let requests = served.served();
    assert!(
        requests[before..]
            .iter()
            .all(|s| !s.request.path.ends_with(".tgz"))
    );

    // A lock edited by hand (a version lowered, the digest kept) is refused too.
    std::fs::write(&file, text).expect("restore");
    let lock_text = std::fs::read_to_string(chart.join("Chart.lock")).expect("lock");
    let edited = lock_text.replacen("version: 1.1.0", "version: 1.0.0", 1);
    assert_ne!(edited, lock_text);
    std::fs::write(chart.join("Chart.lock"), edited).expect("edit lock");
    assert!(helm_build(&helm_home, &chart).is_err());
    let ours = render(&checkout, &chart, cache.path()).expect_err("refused");
    assert!(ours.contains("out of sync"), "{ours}");
}

#[test]
fn a_requirements_lock_of_an_api_v1_chart_is_read_as_helm_reads_it() {
    let served = ChartRepo::start();
    publish(&served, "1.0.0");
    let checkout = Repo::new();
    let chart = write_chart(checkout.root(), "legacy", "0.1.0", "");
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v1\nname: legacy\nversion: 0.1.0\n",
    )
    .expect("Chart.yaml");
    let requirements = format!(
        "dependencies:\n- name: web\n  version: ~1.0\n  repository: {}\n",
        served.url
    );
    std::fs::write(chart.join("requirements.yaml"), &requirements).expect("requirements");
    let helm_home = Helm::new();
    lock(&helm_home, &served, &chart);
    assert!(chart.join("requirements.lock").is_file());
    publish(&served, "1.0.5");

    let cache = tempfile::tempdir().expect("tempdir");
    let ours = render(&checkout, &chart, cache.path()).expect("render");
    assert_eq!(ours, helm_build(&helm_home, &chart).expect("helm"));
    assert_eq!(versions(&ours), ["1.0.0"]);

    std::fs::write(
        chart.join("requirements.yaml"),
        requirements.replace("~1.0", "~1.0.5"),
    )
    .expect("requirements");
    let helm_says = helm_build(&helm_home, &chart).expect_err("helm refuses");
    let meaning = "the lock file (requirements.lock) is out of sync with the dependencies file (requirements.yaml)";
    assert!(helm_says.contains(meaning), "{helm_says}");
    let ours = render(&checkout, &chart, cache.path()).expect_err("refused");
    assert!(ours.contains(&format!("chart legacy: {meaning}")), "{ours}");
}
