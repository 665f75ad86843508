//! A chart in Git whose dependency is not vendored: the engine takes it
//! from its Helm repository (served on loopback, indexed by the real
//! `helm repo index`), picks the highest version the range allows, applies
//! the objects of both charts, and renders again without downloading.

use driftless_testenv::chart_repo::{ChartRepo, write_chart};
use driftless_testenv::shared;

use super::WAIT;
use super::support::{Repo, app, applied, config, kubectl_get, start, wait_status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charts_dependency_comes_from_its_repository_and_is_downloaded_once() {
    let ns = shared()
        .namespace("engine-chart-deps")
        .await
        .expect("namespace");
    let served = ChartRepo::start();
    let work = tempfile::tempdir().expect("temp dir");
    for version in ["1.0.0", "1.0.3", "2.0.0"] {
        served.publish(&write_chart(&work.path().join(version), "db", version, ""));
    }
    let repo = Repo::new();
    let deps = format!(
        "- name: db\n  version: \"~1.0\"\n  repository: {}\n",
        served.url
    );
    write_chart(repo.path(), "shop", "0.1.0", &deps);
    let c1 = repo.commit("shop needs db");
    let name = format!("charts-{}", std::process::id());
    let dir = tempfile::tempdir().expect("temp dir");
    let path = config(dir.path(), &repo, &app(&name, "shop", &ns, ""));
    let running = start(&path, &dir.path().join("data"));

    let status = wait_status(&running, &name, WAIT, "c1 applied", applied(&c1)).await;
    let mut resources: Vec<&str> = status.resources.iter().map(|r| r.name.as_str()).collect();
    resources.sort_unstable();
    assert_eq!(
        resources,
        [format!("{name}-db"), format!("{name}-shop")],
        "{status:#?}"
    );
    assert_eq!(
        kubectl_get(
            ns.name(),
            &format!("configmap/{name}-db"),
            "{.data.version}"
        ),
        "1.0.3",
        "the highest 1.0.x"
    );

    // A new commit of the chart renders again; the archive is in the cache.
    let archives = |served: &ChartRepo| {
        served
            .served()
            .iter()
            .filter(|s| s.request.path.ends_with(".tgz"))
            .count()
    };
    assert_eq!(archives(&served), 1);
    repo.write("shop/values.yaml", "greeting: changed\nreplicas: 1\n");
    let c2 = repo.commit("greeting");
    wait_status(&running, &name, WAIT, "c2 applied", applied(&c2)).await;
    assert_eq!(
        kubectl_get(
            ns.name(),
            &format!("configmap/{name}-shop"),
            "{.data.greeting}"
        ),
        "changed"
    );
    assert_eq!(archives(&served), 1, "downloaded once");
    running.engine.shutdown().await;
}
