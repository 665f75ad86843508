//! Drift by other field managers is reported with their names and healed.

use std::time::{Duration, Instant};

use driftless_kube::{DriftKind, DriftWatch};
use serde_json::json;

use crate::cluster::{app_in, config_map, deployment, get, kubectl, quiet, target};

#[tokio::test]
async fn drift_is_reported_with_its_manager_and_reverted_within_a_second() {
    let (ns, opts) = app_in("drift").await;
    let t = target().await;
    let watch = DriftWatch::start(t.clone());
    let mut events = watch.subscribe();
    let set = vec![
        config_map("settings", json!({"mode": "safe"})),
        deployment("web", 1),
    ];
    watch
        .apply(&set, &opts, true, &quiet)
        .await
        .expect("apply and track");
    assert_eq!(watch.watch_count(), 2, "one watch per resource type");
    // Let the initial list settle before editing.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let edited = Instant::now();
    kubectl(&[
        "patch",
        "configmap",
        "settings",
        "-n",
        ns.name(),
        "--field-manager=kubectl-edit",
        "--type=merge",
        "-p",
        r#"{"data":{"mode":"unsafe"}}"#,
    ]);
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("a drift event in time")
        .expect("channel open");
    assert_eq!(event.kind, DriftKind::Modified);
    assert_eq!(event.object.name, "settings");
    assert_eq!(event.fields, ["data.mode"]);
    assert_eq!(event.managers, ["kubectl-edit"]);
    assert!(event.healed, "{event:?}");
    let reverted = edited.elapsed();
    assert_eq!(
        get("configmap", ns.name(), "settings").expect("cm")["data"]["mode"],
        "safe"
    );
    assert!(
        reverted < Duration::from_secs(1),
        "reverted after {reverted:?}"
    );
    let json = serde_json::to_value(&event).expect("serializes");
    assert_eq!(json["managers"][0], "kubectl-edit");

    kubectl(&[
        "scale",
        "deployment",
        "web",
        "-n",
        ns.name(),
        "--replicas=3",
    ]);
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("a drift event in time")
        .expect("channel open");
    assert_eq!(event.fields, ["spec.replicas"]);
    assert_eq!(event.managers, ["kubectl"], "{event:?}");

    kubectl(&["delete", "configmap", "settings", "-n", ns.name()]);
    let event = loop {
        let e = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("a drift event in time")
            .expect("channel open");
        if e.kind == DriftKind::Deleted {
            break e;
        }
    };
    assert!(event.healed);
    assert!(
        get("configmap", ns.name(), "settings").is_some(),
        "re-created"
    );
}
