//! Delivery: retries, giving up, de-duplication and a full queue.

use std::time::Duration;

use driftless_api::EventKind;
use driftless_api::status::{ConditionStatus, READY, find_condition};
use driftless_notify::{Delivery, Dispatcher, RetryPolicy};
use serde_json::json;

use super::support::{Recorder, WAIT, dispatcher, failed_sync, quick, target};

fn event(e: driftless_notify::Event) -> Delivery {
    Delivery::Event(Box::new(e))
}

async fn status_when(
    d: &Dispatcher,
    done: impl Fn(&driftless_api::status::NotifierStatus) -> bool,
) -> driftless_api::status::NotifierStatus {
    for _ in 0..200 {
        if let Some((_, s)) = d.statuses().into_iter().next()
            && done(&s)
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("status never got there: {:?}", d.statuses());
}

#[tokio::test]
async fn a_server_error_is_retried_until_it_is_accepted() {
    let server = Recorder::answering(vec![500, 503]);
    let d = dispatcher(target(
        "hook",
        json!({"type": "webhook", "address": server.url("/h")}),
        None,
    ));
    d.send(&event(failed_sync()));
    let status = status_when(&d, |s| s.delivered == 1).await;
    assert_eq!(server.requests().len(), 3);
    assert_eq!(server.answers_left(), 0);
    assert_eq!((status.failed, status.dropped), (0, 0));
    assert!(status.last_delivery_time.is_some());
}

#[tokio::test]
async fn a_receiver_that_is_down_is_given_up_on_and_named_without_its_secret_path() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let url = format!("http://127.0.0.1:{port}/services/T0/B0/supersecret");
    let d = dispatcher(target(
        "chat",
        json!({"type": "slack", "secretEnv": "U"}),
        Some(&url),
    ));
    d.send(&event(failed_sync()));
    let status = status_when(&d, |s| s.failed == 1).await;
    let error = status.last_error.clone().expect("an error");
    assert!(
        error.starts_with(&format!("POST to http://127.0.0.1:{port}: ")),
        "{error}"
    );
    assert!(!format!("{status:?}").contains("supersecret"), "{status:?}");
    let ready = find_condition(&status.conditions, READY).expect("Ready");
    assert_eq!(
        (ready.status, ready.reason.as_str()),
        (ConditionStatus::False, "DeliveryFailed")
    );
}

#[tokio::test]
async fn a_refused_request_is_not_retried() {
    let server = Recorder::answering(vec![404]);
    let d = dispatcher(target(
        "hook",
        json!({"type": "webhook", "address": server.url("/gone")}),
        None,
    ));
    d.send(&event(failed_sync()));
    let status = status_when(&d, |s| s.failed == 1).await;
    assert_eq!(server.requests().len(), 1);
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.ends_with("HTTP 404 Not Found")),
        "{status:?}"
    );
}

#[tokio::test]
async fn the_same_failure_is_told_once_until_the_app_changes_state() {
    let server = Recorder::start();
    let d = dispatcher(target(
        "hook",
        json!({"type": "webhook", "address": server.url("/h"), "events": ["SyncFailed"]}),
        None,
    ));
    d.send(&event(failed_sync()));
    d.send(&event(failed_sync()));
    let mut other = failed_sync();
    other.error = Some("a different error".into());
    d.send(&event(other));
    server.wait_for(2, WAIT).await;
    // A success, not sent to this Notifier, still makes the next failure news.
    let mut ok = failed_sync();
    ok.kind = EventKind::SyncSucceeded;
    ok.error = None;
    d.send(&event(ok));
    d.send(&event(failed_sync()));
    let seen = server.wait_for(3, WAIT).await;
    let status = status_when(&d, |s| s.delivered == 3).await;
    assert_eq!(status.deduplicated, 1);
    let errors: Vec<_> = seen
        .iter()
        .map(|s| s.json()["error"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        errors,
        [
            "Deployment/web/web: spec.replicas: Invalid value: -1",
            "a different error",
            "Deployment/web/web: spec.replicas: Invalid value: -1"
        ]
    );
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_without_waiting() {
    let server = Recorder::answering(vec![500; 100]);
    let policy = RetryPolicy {
        queue: 1,
        first_wait: Duration::from_secs(30),
        ..quick()
    };
    let d = Dispatcher::new(policy);
    d.configure(vec![Ok(target(
        "hook",
        json!({"type": "webhook", "address": server.url("/h"), "events": ["DriftReverted"]}),
        None,
    ))]);
    server.wait_for(0, WAIT).await;
    let started = std::time::Instant::now();
    for _ in 0..5 {
        d.send(&event(super::support::reverted_drift()));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    let status = status_when(&d, |s| s.dropped >= 3).await;
    assert!(status.dropped <= 4, "{status:?}");
}
