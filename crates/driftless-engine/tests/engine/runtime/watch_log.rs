//! A drift watch that RBAC forbids to list its kind is logged by the engine
//! with the Cluster, the kind and the cause, while the App still applies:
//! a watch failing in the background must not go unseen.

use std::time::Duration;

use driftless_testenv::shared;

use super::support::{Repo, app, applied, config, config_map, kubectl, logged, start, wait_status};

const WAIT: Duration = Duration::from_secs(60);

/// Cluster-wide RBAC objects of one test, deleted when dropped.
struct ClusterRbac(String);

impl Drop for ClusterRbac {
    fn drop(&mut self) {
        let _ = shared()
            .kubectl()
            .args(["delete", "clusterrolebinding,clusterrole", &self.0])
            .args(["--ignore-not-found", "--wait=false"])
            .output();
    }
}

/// A kubeconfig for the test cluster acting as `user`.
fn kubeconfig_as(user: &str, to: &std::path::Path) {
    let out = shared()
        .kubectl()
        .args(["config", "view", "--raw", "--minify", "-o", "json"])
        .output()
        .expect("kubectl runs");
    assert!(out.status.success(), "kubectl config view");
    let mut config: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    config["users"][0]["user"]["as"] = serde_json::Value::from(user);
    // JSON is YAML: a kubeconfig may be written as JSON.
    std::fs::write(to, config.to_string()).expect("write kubeconfig");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_rbac_forbids_is_logged_with_cluster_kind_and_cause() {
    let ns = shared()
        .namespace("engine-watchlog")
        .await
        .expect("namespace");
    let pid = std::process::id();
    let name = format!("watchlog-{pid}");
    let account = format!("system:serviceaccount:{}:writer", ns.name());
    // Allowed to write ConfigMaps (its objects and its inventory), never to
    // list or watch them.
    let rbac = ClusterRbac(format!("driftless-test-write-only-{pid}"));
    kubectl(&[
        "create",
        "clusterrole",
        &rbac.0,
        "--verb=get,create,patch,update,delete",
        "--resource=configmaps,namespaces",
    ]);
    kubectl(&[
        "create",
        "clusterrolebinding",
        &rbac.0,
        "--clusterrole",
        &rbac.0,
        "--user",
        &account,
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    let limited = dir.path().join("write-only.kubeconfig");
    kubeconfig_as(&account, &limited);

    let repo = Repo::new();
    repo.write("app/a.yaml", &config_map("a", "1"));
    let c1 = repo.commit("first");
    let cluster = format!(
        "apiVersion: driftless.dev/v1alpha1\nkind: Cluster\nmetadata: {{name: write-only}}\n\
         spec:\n  kubeconfig: {{path: {}}}\n---\n",
        limited.display()
    );
    let app_doc = app(&name, "app", &ns, "").replace("cluster: test", "cluster: write-only");
    let path = config(dir.path(), &repo, &format!("{cluster}{app_doc}"));
    let running = start(&path, &dir.path().join("data"));
    wait_status(&running, &name, WAIT, "applied", applied(&c1)).await;

    let prefix = "Cluster write-only: drift watching ConfigMap v1: list: ";
    let deadline = std::time::Instant::now() + WAIT;
    let line = loop {
        let found = logged().into_iter().find(|l| l.contains(prefix));
        if let Some(line) = found {
            break line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no watch failure logged:\n{}",
            logged().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(line.contains("forbidden"), "{line}");
    assert!(line.contains(&account), "names who was denied: {line}");
    running.engine.shutdown().await;
}
