//! A drift watch that cannot list its kind says so, and retries with a
//! growing pause instead of silently once a second forever.

use std::time::Duration;

use driftless_kube::{DriftWatch, WatchFailure};
use serde_json::json;
use tokio::sync::broadcast;

use crate::cluster::{app_in, config_map, target};

#[tokio::test]
async fn a_forbidden_watch_reports_the_kind_and_cause_and_backs_off() {
    let (ns, opts) = app_in("watch-denied").await;
    // A ServiceAccount no Role grants anything: RBAC forbids every list.
    let denied = target()
        .await
        .impersonate("nobody", ns.name())
        .expect("valid account");
    let watch = DriftWatch::start(denied);
    let mut failures = watch.subscribe_failures();
    watch
        .track(&[config_map("settings", json!({"a": "1"}))], &opts, false)
        .await
        .expect("discovery is open to every identity");
    let first = next(&mut failures).await;
    assert_eq!(first.resource, "ConfigMap v1");
    assert_eq!(first.failures, 1);
    assert!(first.error.contains("forbidden"), "{first}");
    assert!(
        first.error.contains("system:serviceaccount:") && first.error.contains(":nobody"),
        "the cause names who was denied: {first}"
    );
    let second = next(&mut failures).await;
    assert_eq!(second.failures, 2);
    assert!(
        second.retry_in > first.retry_in && second.retry_in >= Duration::from_secs(2),
        "{first} then {second}"
    );
    assert!(
        second
            .to_string()
            .starts_with("watching ConfigMap v1: list: "),
        "{second}"
    );
}

/// The next failure reported, within ten seconds.
async fn next(failures: &mut broadcast::Receiver<WatchFailure>) -> WatchFailure {
    tokio::time::timeout(Duration::from_secs(10), failures.recv())
        .await
        .expect("a failure is reported")
        .expect("the channel is open")
}
