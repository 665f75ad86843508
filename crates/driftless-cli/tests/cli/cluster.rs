//! `driftless diff|apply|delete` against the local control plane.

use crate::support::{driftless, text};
use std::path::Path;

use driftless_testenv::shared;

fn write(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).expect("write manifest");
}

const SETTINGS: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  level: info\n";
const EXTRA: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  k: v\n";
const SECRET: &str =
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: hunter2\n";

/// Quantities written as the API server does not store them (`1`, `0.5Gi`, `0.25`).
const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 0
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
      - name: api
        image: ghcr.io/example/api:1.0.0
        resources:
          limits: {cpu: 1, memory: 0.5Gi}
          requests: {cpu: 0.25}
";

#[tokio::test]
async fn diff_apply_prune_and_delete_an_app() {
    let env = shared();
    let ns = env.namespace("cli-apply").await.expect("namespace");
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, body) in [
        ("settings.yaml", SETTINGS),
        ("extra.yaml", EXTRA),
        ("secret.yaml", SECRET),
        ("deployment.yaml", DEPLOYMENT),
    ] {
        write(dir.path(), name, body);
    }
    let kubeconfig = env.kubeconfig().to_str().expect("utf-8").to_string();
    let d = dir.path().to_str().expect("utf-8").to_string();
    let target = [
        "--app",
        "cli-web",
        "--kubeconfig",
        kubeconfig.as_str(),
        "-n",
        ns.name(),
    ];
    let run = |cmd: &str, extra: &[&str]| {
        let mut args = vec![cmd, d.as_str()];
        args.extend(target);
        args.extend(extra);
        driftless(&args)
    };

    let out = run("diff", &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "changes pending: {}",
        text(&out.stderr)
    );
    let shown = text(&out.stdout);
    assert!(shown.contains("4 to create"), "{shown}");
    assert!(
        !shown.contains("aHVudGVyMg==") && !shown.contains("hunter2"),
        "secret masked: {shown}"
    );

    let out = run("apply", &["--wait", "--timeout", "30s"]);
    assert!(out.status.success(), "apply: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("4 created"),
        "{}",
        text(&out.stdout)
    );

    let out = run("diff", &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "no changes after apply: {}",
        text(&out.stdout)
    );
    let out = run("apply", &[]);
    assert!(out.status.success(), "re-apply: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("0 created, 0 updated, 4 unchanged"),
        "an unchanged re-apply writes nothing: {}",
        text(&out.stdout)
    );

    // A foreign object with the name of one we will prune must survive.
    let foreign = env
        .kubectl()
        .args([
            "-n",
            ns.name(),
            "create",
            "configmap",
            "foreign",
            "--from-literal=x=y",
        ])
        .output()
        .expect("kubectl");
    assert!(foreign.status.success());

    std::fs::remove_file(dir.path().join("extra.yaml")).expect("remove");
    let out = run("diff", &["--prune"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("1 to delete"),
        "{}",
        text(&out.stdout)
    );
    let out = run("apply", &["--prune", "--output", "json"]);
    assert!(out.status.success(), "apply --prune: {}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    let deleted = report["deleted"].as_array().expect("deleted list");
    assert_eq!(deleted.len(), 1, "{report}");
    assert_eq!(deleted[0]["name"], "extra");

    let gone = env
        .kubectl()
        .args(["-n", ns.name(), "get", "configmap", "extra"])
        .output()
        .expect("kubectl");
    assert!(!gone.status.success(), "pruned object is gone");

    let out = driftless(&[
        "delete",
        "--app",
        "cli-web",
        "--kubeconfig",
        &kubeconfig,
        "-n",
        ns.name(),
    ]);
    assert!(out.status.success(), "delete: {}", text(&out.stderr));
    let left = env
        .kubectl()
        .args(["-n", ns.name(), "get", "configmaps", "-o", "name"])
        .output()
        .expect("kubectl");
    let left = text(&left.stdout);
    assert!(
        !left.contains("configmap/settings"),
        "app objects deleted: {left}"
    );
    assert!(
        left.contains("configmap/foreign"),
        "foreign object kept: {left}"
    );
}

#[test]
fn bad_kubeconfig_and_timeout_are_input_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "settings.yaml", SETTINGS);
    let d = dir.path().to_str().expect("utf-8");
    let out = driftless(&[
        "diff",
        d,
        "--app",
        "x",
        "--kubeconfig",
        "/no/such/kubeconfig",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("/no/such/kubeconfig"),
        "{}",
        text(&out.stderr)
    );
    let out = driftless(&["apply", d, "--app", "x", "--timeout", "5 minutes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--timeout"),
        "{}",
        text(&out.stderr)
    );
}
