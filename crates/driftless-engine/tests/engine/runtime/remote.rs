//! Kustomize remote bases under the engine: the sync's record names the
//! remote commit each render read.

use driftless_api::history::RemoteRevision;
use driftless_testenv::shared;

use super::WAIT;
use super::support::{Repo, app, applied, config, config_map, kubectl_get, start, wait_status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_names_the_remote_commit_each_sync_used() {
    let ns = shared()
        .namespace("engine-remote")
        .await
        .expect("namespace");
    let name = format!("remote-{}", std::process::id());
    let shared_repo = Repo::new();
    shared_repo.write("base/cm.yaml", &config_map("shared", "1"));
    shared_repo.write("base/kustomization.yaml", "resources: [cm.yaml]\n");
    let b1 = shared_repo.commit("shared base v1");
    let url = format!("file://{}//base?ref=main", shared_repo.path().display());

    let repo = Repo::new();
    repo.write(
        "app/kustomization.yaml",
        &format!("resources:\n- {url}\n- own.yaml\n"),
    );
    repo.write("app/own.yaml", &config_map("own", "1"));
    let c1 = repo.commit("use the shared base");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = config(dir.path(), &repo, &app(&name, "app", &ns, ""));
    let running = start(&path, &dir.path().join("data"));

    wait_status(&running, &name, WAIT, "c1 applied", applied(&c1)).await;
    assert_eq!(kubectl_get(ns.name(), "configmap/shared", "{.data.v}"), "1");
    let history = running.engine.store().history(&name, 10).expect("history");
    assert_eq!(
        history[0].start.remotes,
        [RemoteRevision {
            url: url.clone(),
            revision: b1.clone()
        }],
        "{history:?}"
    );

    // The base moves; the App's next commit reads it at its new commit.
    shared_repo.write("base/cm.yaml", &config_map("shared", "2"));
    let b2 = shared_repo.commit("shared base v2");
    repo.write("app/own.yaml", &config_map("own", "2"));
    let c2 = repo.commit("own v2");
    wait_status(&running, &name, WAIT, "c2 applied", applied(&c2)).await;
    assert_eq!(kubectl_get(ns.name(), "configmap/shared", "{.data.v}"), "2");
    let newest = &running.engine.store().history(&name, 1).expect("history")[0];
    assert_eq!(newest.start.revision.sha, c2);
    assert_eq!(
        newest.start.remotes,
        [RemoteRevision { url, revision: b2 }],
        "{newest:?}"
    );
    running.engine.shutdown().await;
}
