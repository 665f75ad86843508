//! Cluster options through `driftless serve`: two control planes, one
//! reached through a kubeconfig's current context and one through a named
//! context, an unreachable third, Apps on each, and every Cluster's status
//! (Ready, server version) in `driftless status`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use driftless_testenv::{DownOnDrop, k8s_env_up_new, shared};

use crate::kube::{ExtraNamespace, config_map, config_map_at, kubectl_at};
use crate::support::{GitServer, Repo, Serve, applied, config_map as cm};

const WAIT: Duration = Duration::from_secs(90);

/// Runs kubectl on `kubeconfig`; panics with its stderr on failure.
fn kubectl_ok(kubeconfig: &Path, args: &[&str]) -> String {
    let (ok, out, err) = kubectl_at(kubeconfig, args, None);
    assert!(ok, "kubectl {args:?}: {err}");
    out
}

/// A copy of `kubeconfig` at `to` with a context `second` for its cluster
/// and user, and a current context that does not exist: only a Cluster that
/// names the context can use it.
fn named_context_copy(kubeconfig: &Path, to: &Path) {
    std::fs::copy(kubeconfig, to).expect("copy kubeconfig");
    let cluster = kubectl_ok(
        to,
        &[
            "config",
            "view",
            "-o",
            "jsonpath={.contexts[0].context.cluster}",
        ],
    );
    let user = kubectl_ok(
        to,
        &[
            "config",
            "view",
            "-o",
            "jsonpath={.contexts[0].context.user}",
        ],
    );
    kubectl_ok(
        to,
        &[
            "config",
            "set-context",
            "second",
            "--cluster",
            &cluster,
            "--user",
            &user,
        ],
    );
    kubectl_ok(to, &["config", "set", "current-context", "does-not-exist"]);
}

/// A copy of `kubeconfig` at `to` whose server is a closed loopback port.
fn unreachable_copy(kubeconfig: &Path, to: &Path) {
    std::fs::copy(kubeconfig, to).expect("copy kubeconfig");
    let cluster = kubectl_ok(
        to,
        &["config", "view", "-o", "jsonpath={.clusters[0].name}"],
    );
    let port = driftless_testenv::servers::free_port();
    let server = format!("https://127.0.0.1:{port}");
    kubectl_ok(
        to,
        &["config", "set-cluster", &cluster, "--server", &server],
    );
}

fn server_version(kubeconfig: &Path) -> String {
    let out = kubectl_ok(kubeconfig, &["version", "-o", "json"]);
    let version: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    version["serverVersion"]["gitVersion"]
        .as_str()
        .expect("server version")
        .to_owned()
}

fn cluster_doc(name: &str, path: &Path, context: Option<&str>) -> String {
    let context = context.map_or(String::new(), |c| format!(", context: {c}"));
    format!(
        "apiVersion: driftless.dev/v1alpha1
kind: Cluster
metadata: {{name: {name}}}
spec: {{kubeconfig: {{path: {}{context}}}}}
---
",
        path.display()
    )
}

fn app_doc(name: &str, cluster: &str, ns: &str, extra: &str) -> String {
    format!(
        "apiVersion: driftless.dev/v1alpha1
kind: App
metadata: {{name: {name}}}
spec:
  sourceRef: {{name: platform}}
  path: app
  destination: {{cluster: {cluster}, namespace: {ns}{extra}}}
---
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_deploy_to_two_clusters_and_status_shows_each_cluster() {
    let test_ns = shared()
        .namespace("e2e-opt-clusters")
        .await
        .expect("namespace");
    let ns = test_ns.name().to_owned();
    let tmp = tempfile::tempdir().expect("temp dir");
    let plane: PathBuf = tmp.path().join("second-plane");
    let up = k8s_env_up_new(&plane);
    let _down = DownOnDrop(plane.clone());
    assert!(
        up.status.success(),
        "second control plane: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let second = tmp.path().join("second.kubeconfig");
    named_context_copy(&plane.join("kubeconfig"), &second);
    let gone = tmp.path().join("gone.kubeconfig");
    unreachable_copy(&plane.join("kubeconfig"), &gone);
    let second_ns = ExtraNamespace {
        name: format!("opt-second-{}", std::process::id()),
        kubeconfig: plane.join("kubeconfig"),
    };

    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    repo.write("app/cm.yaml", &cm("on-every-cluster", "1"));
    let c1 = repo.push("first");
    let pid = std::process::id();
    let (one, two) = (format!("one-{pid}"), format!("two-{pid}"));
    let text = format!(
        "{}{}{}apiVersion: driftless.dev/v1alpha1
kind: GitSource
metadata: {{name: platform}}
spec: {{url: \"{}\", ref: {{branch: main}}, interval: 1s}}
---
{}{}",
        cluster_doc("first", shared().kubeconfig(), None),
        cluster_doc("second", &second, Some("second")),
        cluster_doc("gone", &gone, None),
        repo.url,
        app_doc(&one, "first", &ns, ""),
        app_doc(&two, "second", &second_ns.name, ", createNamespace: true"),
    );
    let serve = Serve::start(&text, &[]);
    serve
        .wait_app(&one, WAIT, "first cluster", applied(&c1))
        .await;
    serve
        .wait_app(&two, WAIT, "second cluster", applied(&c1))
        .await;
    assert!(config_map(&ns, "on-every-cluster").is_some());
    assert!(
        config_map_at(
            &plane.join("kubeconfig"),
            &second_ns.name,
            "on-every-cluster"
        )
        .is_some(),
        "applied to the second control plane"
    );
    assert!(
        config_map(&second_ns.name, "on-every-cluster").is_none(),
        "not applied to the first"
    );

    let (code, clusters) = serve.get("/api/v1/clusters").await;
    assert_eq!(code, 200, "{clusters}");
    let by_name = |name: &str| {
        clusters
            .as_array()
            .and_then(|all| all.iter().find(|c| c["name"] == name))
            .cloned()
            .unwrap_or_default()
    };
    let first_version = server_version(shared().kubeconfig());
    let second_version = server_version(&plane.join("kubeconfig"));
    assert_eq!(by_name("first")["serverVersion"], first_version.as_str());
    assert_eq!(by_name("first")["conditions"][0]["status"], "True");
    assert_eq!(by_name("second")["serverVersion"], second_version.as_str());
    assert_eq!(by_name("second")["conditions"][0]["status"], "True");
    assert_eq!(
        by_name("gone")["conditions"][0]["status"],
        "False",
        "{clusters}"
    );
    assert!(by_name("gone")["serverVersion"].is_null(), "{clusters}");

    let out = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(["status", "--server", &serve.base])
        .output()
        .expect("driftless status runs");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(table.contains("CLUSTER"), "{table}");
    assert_eq!(
        row("first")[1..3],
        ["True".to_owned(), first_version],
        "{table}"
    );
    assert_eq!(
        row("second")[1..3],
        ["True".to_owned(), second_version],
        "{table}"
    );
    assert_eq!(row("gone")[1], "False", "{table}");
    assert!(table.contains(&one) && table.contains(&two), "{table}");
}
