//! Drift by other field managers is reported with their names and healed.

use std::time::{Duration, Instant};

use driftless_kube::{DriftKind, DriftWatch, HealthStatus, ObjectRef};
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

#[tokio::test]
async fn the_watch_keeps_health_and_names_apps_whose_health_changed() {
    let (ns, opts) = app_in("health-watch").await;
    let t = target().await;
    let watch = DriftWatch::start(t.clone());
    let mut changes = watch.subscribe_health();
    let set = vec![
        config_map("settings", json!({"mode": "safe"})),
        deployment("web", 2),
    ];
    let report = watch
        .apply(&set, &opts, false, &quiet)
        .await
        .expect("apply and track");
    // The apply reports health from its own writes, without reading again.
    assert_eq!(report.observed.len(), 2, "{:?}", report.observed);
    let objects: Vec<ObjectRef> = report.observed.iter().map(|o| o.object.clone()).collect();

    // The Deployment becomes Available: the watch sees it and names the App.
    let deadline = Instant::now() + Duration::from_secs(60);
    let healthy = loop {
        let cached = watch.cached_health(&opts.app, &objects);
        if let Some(health) = &cached
            && health
                .iter()
                .all(|h| h.health.status == HealthStatus::Healthy)
        {
            break cached;
        }
        assert!(
            Instant::now() < deadline,
            "not healthy in the cache: {cached:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(healthy.map(|h| h.len()), Some(2));
    let named = tokio::time::timeout(Duration::from_secs(5), changes.recv())
        .await
        .expect("a health change in time")
        .expect("channel open");
    assert_eq!(named, opts.app);

    // An object the watch has not seen (or that is gone) is not answered from the cache.
    kubectl(&["delete", "configmap", "settings", "-n", ns.name(), "--wait"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while watch.cached_health(&opts.app, &objects).is_some() {
        assert!(
            Instant::now() < deadline,
            "a deleted object is still cached"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let other = vec![objects[1].clone()];
    assert!(watch.cached_health(&opts.app, &other).is_some());
    assert!(watch.cached_health("another-app", &other).is_none());
}

#[tokio::test]
async fn applying_through_the_watch_still_refuses_another_apps_object() {
    let (ns, opts) = app_in("watch-owner").await;
    let t = target().await;
    let watch = DriftWatch::start(t.clone());
    let mut one = opts.clone();
    one.app = "watch-owner-one".into();
    watch
        .apply(
            &[config_map("shared", json!({"a": "1"}))],
            &one,
            false,
            &quiet,
        )
        .await
        .expect("app one applies");
    kubectl(&[
        "create",
        "configmap",
        "loose",
        "-n",
        ns.name(),
        "--from-literal=x=1",
    ]);
    // Let the ConfigMap watch list and see both objects.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The watch knows `shared` is labelled, so it is read and refused.
    let mut two = opts.clone();
    two.app = "watch-owner-two".into();
    let err = watch
        .apply(
            &[config_map("shared", json!({"a": "2"}))],
            &two,
            false,
            &quiet,
        )
        .await
        .expect_err("owned by app one");
    assert!(err.to_string().contains("watch-owner-one"), "{err}");
    assert_eq!(
        get("configmap", ns.name(), "shared").expect("cm")["data"]["a"],
        "1"
    );
    // An unlabelled object is applied without a read, and adopted as updated.
    let report = watch
        .apply(
            &[config_map("loose", json!({"x": "1"}))],
            &two,
            false,
            &quiet,
        )
        .await
        .expect("adopted");
    assert_eq!(report.updated.len(), 1, "{report:?}");
    assert!(report.created.is_empty(), "{report:?}");
    // A new object is reported as created.
    let report = watch
        .apply(
            &[
                config_map("loose", json!({"x": "1"})),
                config_map("fresh", json!({"y": "1"})),
            ],
            &two,
            false,
            &quiet,
        )
        .await
        .expect("created");
    assert_eq!(report.created.len(), 1, "{report:?}");
    assert_eq!(report.unchanged.len(), 1, "{report:?}");
}
