//! Status and history that tell what happened: a withheld prune, objects
//! written before a failure, every failing revision, a removed path and a
//! cluster that cannot be reached.

use std::time::Duration;

use driftless_engine::store::{AppStatus, SyncResult, SyncStatus};
use driftless_testenv::shared;

use super::support::{
    Repo, Running, app, applied, config, config_map, kubectl_get, ready, start, wait_status,
    wait_sync,
};

const WAIT: Duration = Duration::from_secs(60);

fn has_reason(reason: &'static str) -> impl Fn(&AppStatus) -> bool {
    move |s| ready(s).0 == reason
}

/// Waits until `app`'s history holds a sync of `sha` with `result`.
async fn wait_recorded(running: &Running, app: &str, sha: &str, result: SyncResult) {
    wait_sync(running, app, sha, WAIT, |r| r.result == result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_render_says_prune_was_withheld() {
    let ns = shared().namespace("engine-empty").await.expect("namespace");
    let name = format!("empty-{}", std::process::id());
    let repo = Repo::new();
    repo.write("app/a.yaml", &config_map("a", "1"));
    let c1 = repo.commit("first");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = config(dir.path(), &repo, &app(&name, "app", &ns, "  prune: true"));
    let running = start(&path, &dir.path().join("data"));
    wait_status(&running, &name, WAIT, "c1 applied", applied(&c1)).await;

    // Every manifest removed; the directory stays with a file that is none.
    repo.remove("app/a.yaml");
    repo.write("app/NOTES.txt", "nothing to deploy\n");
    let c2 = repo.commit("empty the app");
    let status = wait_status(&running, &name, WAIT, "prune withheld", |s| {
        applied(&c2)(s) && ready(s).0 == "PruneWithheld"
    })
    .await;
    assert_eq!(status.sync, SyncStatus::OutOfSync);
    let (_, message) = ready(&status);
    assert!(message.contains("renders no objects"), "{message}");
    assert!(message.contains("allowEmptyPrune"), "{message}");
    assert_eq!(status.resources.len(), 1, "the kept object is still listed");
    assert_eq!(kubectl_get(ns.name(), "configmap/a", "{.data.v}"), "1");
    running.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_record_what_was_written_and_every_failing_revision() {
    let ns = shared().namespace("engine-fail").await.expect("namespace");
    let name = format!("fail-{}", std::process::id());
    let repo = Repo::new();
    repo.write("app/a.yaml", &config_map("a", "1"));
    // Wave 1 runs after `a` is written; the API server rejects a number as
    // ConfigMap data.
    repo.write(
        "app/bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n  annotations:\n    \
         driftless.dev/sync-wave: \"1\"\ndata:\n  v: 1\n",
    );
    let c1 = repo.commit("a and a bad one");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = config(dir.path(), &repo, &app(&name, "app", &ns, "  prune: true"));
    let running = start(&path, &dir.path().join("data"));
    wait_recorded(&running, &name, &c1, SyncResult::Failed).await;
    let history = running.engine.store().history(&name, 10).expect("history");
    let failed = history
        .iter()
        .find(|r| r.start.revision.sha == c1)
        .expect("c1 recorded");
    assert_eq!(failed.counts.created, 1, "{failed:?}");
    assert_eq!(kubectl_get(ns.name(), "configmap/a", "{.data.v}"), "1");

    // A broken revision after the failure gets an entry of its own, and so
    // does the next one.
    repo.write("app/a.yaml", "kind: [unclosed\n");
    let c2 = repo.commit("broken yaml");
    wait_recorded(&running, &name, &c2, SyncResult::Failed).await;
    repo.write("app/b.yaml", "kind: [also unclosed\n");
    let c3 = repo.commit("more broken yaml");
    wait_recorded(&running, &name, &c3, SyncResult::Failed).await;
    running.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_app_path_is_named_with_its_commit() {
    let ns = shared().namespace("engine-path").await.expect("namespace");
    let name = format!("path-{}", std::process::id());
    let repo = Repo::new();
    repo.write("app/a.yaml", &config_map("a", "1"));
    repo.write("other/b.yaml", &config_map("b", "1"));
    let c1 = repo.commit("first");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = config(dir.path(), &repo, &app(&name, "app", &ns, ""));
    let running = start(&path, &dir.path().join("data"));
    wait_status(&running, &name, WAIT, "c1 applied", applied(&c1)).await;

    repo.remove("app/a.yaml");
    let c2 = repo.commit("remove the app");
    let status = wait_status(
        &running,
        &name,
        WAIT,
        "path missing",
        has_reason("PathNotFound"),
    )
    .await;
    let (_, message) = ready(&status);
    let expected = format!("path \"app\" does not exist at commit {}", &c2[..12]);
    assert!(message.contains(&expected), "{message}");
    assert!(!message.contains("not a directory"), "{message}");
    assert!(
        !message.contains("snapshots"),
        "an internal path: {message}"
    );
    wait_recorded(&running, &name, &c2, SyncResult::Failed).await;
    running.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_is_named_with_its_address_and_cause() {
    let ns = shared().namespace("engine-down").await.expect("namespace");
    let name = format!("down-{}", std::process::id());
    let repo = Repo::new();
    repo.write("app/a.yaml", &config_map("a", "1"));
    repo.commit("first");
    let dir = tempfile::tempdir().expect("temp dir");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let kubeconfig = dir.path().join("down.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: down\nclusters:\n- name: down\n  \
             cluster: {{server: \"https://127.0.0.1:{port}\", insecure-skip-tls-verify: true}}\n\
             users:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: down\n  \
             context: {{cluster: down, user: u}}\n"
        ),
    )
    .expect("write kubeconfig");
    let extra = format!(
        "apiVersion: driftless.dev/v1alpha1\nkind: Cluster\nmetadata: {{name: down}}\n\
         spec:\n  kubeconfig: {{path: {}}}\n---\n",
        kubeconfig.display()
    );
    let app_doc = app(&name, "app", &ns, "").replace("cluster: test", "cluster: down");
    let path = config(dir.path(), &repo, &format!("{extra}{app_doc}"));
    let running = start(&path, &dir.path().join("data"));
    let status = wait_status(
        &running,
        &name,
        WAIT,
        "unreachable",
        has_reason("ClusterUnreachable"),
    )
    .await;
    let (_, message) = ready(&status);
    assert!(
        message.starts_with(&format!(
            "Cluster down at https://127.0.0.1:{port}/ is unreachable: "
        )),
        "{message}"
    );
    assert!(
        message.contains("onnection refused"),
        "the cause: {message}"
    );
    running.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_cluster_cluster_outside_a_pod_says_what_is_missing() {
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        // Inside a pod in-cluster configuration is available.
        return;
    }
    let ns = shared().namespace("engine-pod").await.expect("namespace");
    let name = format!("pod-{}", std::process::id());
    let repo = Repo::new();
    repo.write("app/a.yaml", &config_map("a", "1"));
    repo.commit("first");
    let dir = tempfile::tempdir().expect("temp dir");
    let extra = "apiVersion: driftless.dev/v1alpha1\nkind: Cluster\nmetadata: {name: pod}\n\
                 spec:\n  inCluster: true\n---\n";
    let app_doc = app(&name, "app", &ns, "").replace("cluster: test", "cluster: pod");
    let path = config(dir.path(), &repo, &format!("{extra}{app_doc}"));
    let running = start(&path, &dir.path().join("data"));
    let status = wait_status(
        &running,
        &name,
        WAIT,
        "not in a pod",
        has_reason("ClusterUnreachable"),
    )
    .await;
    let (_, message) = ready(&status);
    assert!(
        message.starts_with("connecting to Cluster pod: "),
        "{message}"
    );
    assert!(
        message.contains("KUBERNETES_SERVICE_HOST is not set"),
        "{message}"
    );
    assert!(message.contains("running in a pod"), "{message}");
    assert_eq!(kubectl_get(ns.name(), "configmap/a", "{.data.v}"), "");
    running.engine.shutdown().await;
}
