//! REST API, probes and metrics.

use std::sync::atomic::Ordering;

use driftless_engine::store::{
    AuditEvent, DriftAction, ObjectCounts, Revision, SyncOutcome, SyncResult, SyncStart,
    SyncTrigger,
};
use reqwest::StatusCode;
use serde_json::Value;

use crate::{TOKEN, TestServer};

pub(crate) fn seed(s: &TestServer) {
    for (sha, result) in [
        ("aaa111", SyncResult::Succeeded),
        ("bbb222", SyncResult::Succeeded),
    ] {
        let start = SyncStart {
            revision: Revision {
                ref_label: "main".into(),
                sha: sha.into(),
                chart: None,
            },
            author: "Ada <ada@example.com>".into(),
            subject: format!("release {sha}"),
            trigger: SyncTrigger::Interval,
            remotes: Vec::new(),
        };
        let rec = s.store.begin_sync("web", start).expect("begin");
        let outcome = SyncOutcome {
            result,
            counts: ObjectCounts {
                created: 2,
                ..Default::default()
            },
            error: None,
            adopted: Vec::new(),
            hosts: Vec::new(),
            hooks: Vec::new(),
        };
        s.store.finish_sync("web", rec.id, outcome).expect("finish");
    }
    let live = Revision {
        ref_label: "main".into(),
        sha: "bbb222".into(),
        chart: None,
    };
    s.store
        .update_app("web", |a| a.last_applied = Some(live))
        .expect("status");
}

pub(crate) async fn get(s: &TestServer, path: &str) -> (StatusCode, String) {
    let resp = s.client.get(s.url(path)).send().await.expect("request");
    (resp.status(), resp.text().await.expect("body"))
}

pub(crate) async fn post(s: &TestServer, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut req = s.client.post(s.url(path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("request");
    (resp.status(), resp.json().await.expect("json"))
}

#[tokio::test]
async fn read_side_lists_apps_and_history() {
    let s = TestServer::start().await;
    seed(&s);
    let (status, body) = get(&s, "/api/v1/apps").await;
    assert_eq!(status, StatusCode::OK);
    let apps: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(apps["items"][0]["name"], "web");
    assert_eq!(apps["items"][0]["lastApplied"]["sha"], "bbb222");
    assert_eq!(apps["summary"]["total"], 1);

    let (status, body) = get(&s, "/api/v1/apps/web/history?limit=1").await;
    assert_eq!(status, StatusCode::OK);
    let history: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(history.as_array().map(Vec::len), Some(1));
    assert_eq!(history[0]["revision"]["sha"], "bbb222");
    assert_eq!(history[0]["author"], "Ada <ada@example.com>");
    assert_eq!(history[0]["result"], "Succeeded");
    assert_eq!(history[0]["counts"]["created"], 2);

    let (status, body) = get(&s, "/api/v1/apps/ghost").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("app ghost not found"), "{body}");
    assert_eq!(
        get(&s, "/api/v1/apps/ghost/history").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn drift_events_of_an_app() {
    let s = TestServer::start().await;
    seed(&s);
    s.store
        .record_audit(AuditEvent {
            id: 0,
            time: driftless_api::Time::from_unix_ms(1),
            app: "web".into(),
            object: "apps/v1/Deployment/prod/web".into(),
            fields: vec!["spec.replicas".into()],
            manager: Some("kubectl-edit".into()),
            action: DriftAction::Reverted,
        })
        .expect("audit");
    let (status, body) = get(&s, "/api/v1/apps/web/events").await;
    assert_eq!(status, StatusCode::OK);
    let events: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(events[0]["manager"], "kubectl-edit");
    assert_eq!(events[0]["fields"][0], "spec.replicas");
    assert_eq!(events[0]["action"], "reverted");
    assert_eq!(
        get(&s, "/api/v1/apps/ghost/events").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn mutations_need_the_bearer_token() {
    let s = TestServer::start().await;
    seed(&s);
    for token in [None, Some("wrong"), Some("test-token-012345678")] {
        let (status, body) = post(&s, "/api/v1/apps/web/suspend", token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}: {body}");
    }
    assert!(
        !s.store.app("web").expect("read").expect("web").suspended,
        "nothing changed"
    );
}

#[tokio::test]
async fn suspend_resume_sync_and_rollback_act_through_store_and_queue() {
    let s = TestServer::start().await;
    seed(&s);
    let (status, body) = post(&s, "/api/v1/apps/web/suspend", Some(TOKEN)).await;
    assert_eq!(
        (status, &body["suspended"]),
        (StatusCode::OK, &Value::Bool(true))
    );
    let (status, body) = post(&s, "/api/v1/apps/web/sync", Some(TOKEN)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = post(&s, "/api/v1/apps/web/resume", Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post(&s, "/api/v1/apps/web/sync", Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = post(&s, "/api/v1/apps/web/rollback", Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["pinned"]["sha"], "aaa111");
    let (status, body) = post(&s, "/api/v1/apps/web/rollback?to=ccc", Some(TOKEN)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        post(&s, "/api/v1/apps/ghost/sync", Some(TOKEN)).await.0,
        StatusCode::NOT_FOUND
    );
    s.settle().await;
    let triggers: Vec<SyncTrigger> = s.runs.lock().expect("lock").iter().map(|r| r.1).collect();
    assert!(
        triggers.contains(&SyncTrigger::Manual) && triggers.contains(&SyncTrigger::Rollback),
        "{triggers:?}"
    );
    assert_eq!(
        s.store
            .app("web")
            .expect("read")
            .expect("web")
            .pinned
            .map(|r| r.sha)
            .as_deref(),
        Some("aaa111")
    );
}

#[tokio::test]
async fn probes_and_metrics() {
    let s = TestServer::start().await;
    assert_eq!(get(&s, "/healthz").await.0, StatusCode::OK);
    assert_eq!(get(&s, "/readyz").await.0, StatusCode::OK);
    s.state.readiness().store(false, Ordering::Release);
    assert_eq!(get(&s, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
    // Not ready (starting, or a standby): reads answer, changes are refused.
    assert_eq!(get(&s, "/api/v1/apps").await.0, StatusCode::OK);
    let sync = s
        .client
        .post(s.url("/api/v1/apps/web/sync"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answers");
    assert_eq!(sync.status(), StatusCode::SERVICE_UNAVAILABLE);
    let hook = s
        .client
        .post(s.url("/hooks/gh"))
        .body("{}")
        .send()
        .await
        .expect("answers");
    assert_eq!(hook.status(), StatusCode::SERVICE_UNAVAILABLE);
    s.state.readiness().store(true, Ordering::Release);
    assert_eq!(get(&s, "/readyz").await.0, StatusCode::OK);
    s.metrics.count_sync(SyncResult::Failed);
    let resp = s
        .client
        .get(s.url("/metrics"))
        .send()
        .await
        .expect("request");
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert_eq!(content_type.as_deref(), Some("text/plain; version=0.0.4"));
    let text = resp.text().await.expect("body");
    assert!(
        text.lines()
            .any(|l| l == "driftless_syncs_total{result=\"Failed\"} 1"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l == "driftless_queue_depth 0"),
        "{text}"
    );
    assert!(text.contains("# TYPE driftless_reconcile_duration_seconds histogram"));
}

#[tokio::test]
async fn the_bearer_scheme_name_is_case_insensitive() {
    let s = TestServer::start().await;
    seed(&s);
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let resp = s
            .client
            .post(s.url("/api/v1/apps/web/sync"))
            .header("Authorization", format!("{scheme} {TOKEN}"))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), StatusCode::OK, "scheme {scheme}");
    }
    let resp = s
        .client
        .post(s.url("/api/v1/apps/web/sync"))
        .header("Authorization", format!("Basic {TOKEN}"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}
