//! An API server killed in the middle of an apply: the apply fails without
//! pruning, and the next apply converges. Runs a private control plane so
//! the shared one is never disturbed.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use driftless_kube::{ApplyEvent, ApplyOptions, Target, apply};
use driftless_testenv::{DownOnDrop, k8s_env, kill_component};
use serde_json::json;

use crate::cluster::{config_map, quiet};

#[tokio::test]
async fn apiserver_killed_mid_apply_then_next_apply_converges() {
    let dir = std::env::temp_dir().join(format!("driftless-kube-fault-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _down = DownOnDrop(dir.clone());
    let up = driftless_testenv::k8s_env_up_new(&dir);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let kubeconfig = dir.join("kubeconfig");
    let mut opts = ApplyOptions::new("fault");
    opts.namespace = Some("default".into());
    opts.prune = true;

    let t = Target::connect(Some(&kubeconfig), None)
        .await
        .expect("connect");
    apply(&t, &[config_map("old", json!({}))], &opts, &quiet)
        .await
        .expect("first apply");

    let set: Vec<_> = (0..300)
        .map(|i| config_map(&format!("cm-{i}"), json!({"i": i.to_string()})))
        .collect();
    let applied = AtomicUsize::new(0);
    let kill_after_fifty = |e: ApplyEvent| {
        if matches!(e, ApplyEvent::Applied { .. }) && applied.fetch_add(1, Ordering::SeqCst) == 50 {
            kill_component(&dir, "kube-apiserver");
        }
    };
    // Only results after the kill count: writes in flight may or may not land.
    let _ = apply(&t, &set, &opts, &kill_after_fifty)
        .await
        .expect_err("the apply cannot finish without an API server");
    assert!(
        applied.load(Ordering::SeqCst) > 50,
        "the kill happened mid-apply"
    );

    let again = k8s_env(&dir, &["up"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let t = Target::connect(Some(&kubeconfig), None)
        .await
        .expect("reconnect");
    let old = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "configmap", "old", "-n", "default", "-o", "name"])
        .output()
        .expect("kubectl");
    assert!(old.status.success(), "no prune after a failed apply");

    let report = apply(&t, &set, &opts, &quiet)
        .await
        .expect("converging apply");
    assert_eq!(
        report.created.len() + report.unchanged.len() + report.updated.len(),
        300
    );
    assert!(
        report.unchanged.len() >= 50,
        "objects written before the kill stay: {report:?}"
    );
    assert_eq!(report.deleted.len(), 1, "old is pruned now");
    let noop = apply(&t, &set, &opts, &quiet).await.expect("no-op apply");
    assert!(!noop.changed());
}
