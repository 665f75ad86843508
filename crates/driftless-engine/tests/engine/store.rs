use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use driftless_engine::store::{
    AppStatus, AuditEvent, ConditionStatus, DriftAction, HealthStatus, ObjectCounts, Revision,
    Store, StoreError, SyncOutcome, SyncResult, SyncStart, SyncStatus, SyncTrigger,
};

/// What a sync of `sha` starts with; shared by the store's test modules.
pub(crate) fn start(sha: &str, trigger: SyncTrigger) -> SyncStart {
    SyncStart {
        revision: Revision {
            ref_label: "main".into(),
            sha: sha.into(),
            chart: None,
        },
        author: "Ada Lovelace <ada@example.com>".into(),
        subject: format!("deploy {sha}"),
        trigger,
        remotes: Vec::new(),
    }
}

/// Records one finished sync of `app` at `sha`.
fn record_sync(store: &Store, app: &str, sha: &str, trigger: SyncTrigger, created: u32) {
    let rec = store.begin_sync(app, start(sha, trigger)).expect("begin");
    store
        .finish_sync(app, rec.id, succeeded(created))
        .expect("finish");
}

fn succeeded(created: u32) -> SyncOutcome {
    SyncOutcome {
        result: SyncResult::Succeeded,
        counts: ObjectCounts {
            created,
            updated: 1,
            deleted: 0,
            unchanged: 3,
        },
        error: None,
        adopted: Vec::new(),
        hosts: Vec::new(),
        hooks: Vec::new(),
    }
}

#[test]
fn app_status_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("open");
        let stored = store
            .update_app("web", |s| {
                s.sync = SyncStatus::Synced;
                s.health = HealthStatus::Healthy;
                s.last_applied = Some(Revision {
                    ref_label: "main".into(),
                    sha: "abc".into(),
                    chart: None,
                });
            })
            .expect("update");
        assert!(stored.last_update_time.is_some());
        store
            .update_app("api", |s| s.suspended = true)
            .expect("update");
    }
    let store = Store::open(dir.path()).expect("reopen");
    let web = store.app("web").expect("read").expect("web stored");
    assert_eq!(web.sync, SyncStatus::Synced);
    assert_eq!(web.health, HealthStatus::Healthy);
    assert_eq!(web.last_applied.map(|r| r.sha).as_deref(), Some("abc"));
    let names: Vec<String> = store
        .apps()
        .expect("list")
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, vec!["api", "web"]);
    assert!(store.app("missing").expect("read").is_none());
    assert!(store.remove_app("api").expect("remove"));
    assert!(!store.remove_app("api").expect("remove twice"));
}

#[test]
fn history_is_newest_first_per_app_and_limited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    for i in 0..5 {
        record_sync(&store, "web", &format!("sha{i}"), SyncTrigger::Interval, i);
        record_sync(&store, "web-canary", "other", SyncTrigger::Webhook, 0);
    }
    let history = store.history("web", 3).expect("history");
    let shas: Vec<&str> = history
        .iter()
        .map(|r| r.start.revision.sha.as_str())
        .collect();
    assert_eq!(shas, vec!["sha4", "sha3", "sha2"]);
    assert!(
        history
            .iter()
            .all(|r| r.app == "web" && r.result == SyncResult::Succeeded)
    );
    assert_eq!(history[0].counts.created, 4);
    assert!(history[0].finish_time >= Some(history[0].start_time));
    assert_eq!(store.history("web-canary", 100).expect("history").len(), 5);
    assert!(store.history("nothing", 10).expect("history").is_empty());
}

#[test]
fn finishing_unknown_or_running_is_an_error_naming_the_app() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let err = store
        .finish_sync("web", 42, succeeded(0))
        .expect_err("unknown id");
    assert!(matches!(err, StoreError::UnknownSync { id: 42, .. }));
    assert_eq!(
        err.to_string(),
        "app web: no sync with id 42 in the history"
    );
    let rec = store
        .begin_sync("web", start("a", SyncTrigger::Manual))
        .expect("begin");
    let running = SyncOutcome {
        result: SyncResult::Running,
        counts: ObjectCounts::default(),
        error: None,
        adopted: Vec::new(),
        hosts: Vec::new(),
        hooks: Vec::new(),
    };
    assert!(matches!(
        store.finish_sync("web", rec.id, running),
        Err(StoreError::StillRunning { .. })
    ));
}

#[test]
fn crash_during_sync_is_reported_interrupted_on_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (done_id, crashed_id) = {
        let store = Store::open(dir.path()).expect("open");
        let done = store
            .begin_sync("web", start("old", SyncTrigger::Interval))
            .expect("begin");
        store
            .finish_sync("web", done.id, succeeded(1))
            .expect("finish");
        let crashed = store
            .begin_sync("web", start("new", SyncTrigger::Webhook))
            .expect("begin");
        assert_eq!(
            store.history("web", 1).expect("history")[0].result,
            SyncResult::Running
        );
        // Dropped without finish_sync: as if the process died mid-apply.
        (done.id, crashed.id)
    };
    let store = Store::open(dir.path()).expect("reopen");
    let interrupted = store.interrupted();
    assert_eq!(interrupted.len(), 1);
    assert_eq!(interrupted[0].id, crashed_id);
    assert_eq!(interrupted[0].start.revision.sha, "new");
    let history = store.history("web", 10).expect("history");
    assert_eq!(history[0].result, SyncResult::Interrupted);
    assert!(
        history[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("interrupted"))
    );
    assert_eq!(history[1].id, done_id);
    assert_eq!(history[1].result, SyncResult::Succeeded);
    drop(store);
    // Recovery happens once: a clean restart reports nothing.
    assert!(
        Store::open(dir.path())
            .expect("reopen again")
            .interrupted()
            .is_empty()
    );
}

#[test]
fn audit_log_filters_by_app_newest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    for (i, app) in ["web", "api", "web"].iter().enumerate() {
        let event = store
            .record_audit(AuditEvent {
                id: 0,
                time: driftless_api::Time::from_unix_ms(1000 + i as u64),
                app: (*app).into(),
                object: format!("apps/v1/Deployment/default/{app}"),
                fields: vec!["spec.replicas".into()],
                manager: Some("kubectl-edit".into()),
                action: if i == 2 {
                    DriftAction::Reverted
                } else {
                    DriftAction::Reported
                },
            })
            .expect("audit");
        assert_eq!(event.id, i as u64 + 1);
    }
    let web = store.audit(Some("web"), 10).expect("audit");
    assert_eq!(
        web.iter().map(|e| e.time.unix_ms()).collect::<Vec<_>>(),
        vec![1002, 1000]
    );
    assert_eq!(web[0].action, DriftAction::Reverted);
    assert_eq!(store.audit(None, 2).expect("audit").len(), 2);
}

#[test]
fn readers_proceed_while_a_writer_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store
        .update_app("web", |s| s.health = HealthStatus::Healthy)
        .expect("seed");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let store = store.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) && n < 2000 {
                record_sync(&store, "web", &format!("w{n}"), SyncTrigger::Drift, n);
                n += 1;
            }
            n
        })
    };
    let mut reads = 0;
    for _ in 0..200 {
        let status = store.app("web").expect("read").expect("present");
        assert_eq!(status.health, HealthStatus::Healthy);
        // A snapshot never shows a half-written sync: every record is complete.
        for rec in store.history("web", 5).expect("history") {
            assert!(rec.result == SyncResult::Succeeded || rec.result == SyncResult::Running);
        }
        reads += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().expect("writer thread");
    assert_eq!(reads, 200);
    assert_eq!(
        store.history("web", usize::MAX).expect("history").len(),
        writes as usize
    );
}

#[test]
fn second_process_cannot_open_a_locked_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = Store::open(dir.path()).expect("open");
    let err = Store::open(dir.path()).expect_err("already open");
    assert!(err.to_string().contains("driftless.redb"), "{err}");
}

/// A store file written by driftless before its records became driftless-api's
/// status and history types (times as integer milliseconds under `*Ms` names,
/// a `name` inside each App's status, `null` for absent values): one App
/// `web`, one failed sync with an adoption, one reverted drift event.
const OLD_STORE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/engine/fixtures/store-v0.1.redb"
);

#[test]
fn a_store_written_in_the_old_format_still_loads() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(OLD_STORE, dir.path().join("driftless.redb")).expect("copy fixture");
    let store = Store::open(dir.path()).expect("the old store opens");
    assert!(store.interrupted().is_empty(), "it was stopped cleanly");

    let apps = store.apps().expect("apps decode");
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].name, "web");
    let web = &apps[0].status;
    let sha = |r: &Option<Revision>| r.as_ref().map(|r| (r.ref_label.clone(), r.sha.clone()));
    let live = "9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b";
    assert_eq!(sha(&web.last_applied), Some(("main".into(), live.into())));
    assert_eq!(sha(&web.last_attempted), Some(("main".into(), live.into())));
    assert_eq!(
        web.pinned.as_ref().map(|r| r.sha.as_str()),
        Some("3f1c2a9d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39")
    );
    assert_eq!(web.sync, SyncStatus::OutOfSync);
    assert_eq!(web.health, HealthStatus::Progressing);
    assert!(web.suspended);
    assert_eq!(
        web.last_error.as_deref(),
        Some("applying ConfigMap web/settings: rejected")
    );
    assert_eq!(
        web.last_sync_time.map(|t| t.to_string()).as_deref(),
        Some("2024-05-01T11:59:50Z")
    );
    assert!(web.last_update_time.is_some());
    let ready = &web.conditions[0];
    assert_eq!(
        (ready.type_.as_str(), ready.status, ready.reason.as_str()),
        ("Ready", ConditionStatus::False, "Progressing")
    );
    assert_eq!(ready.message, "Deployment web/web: 1 of 3 updated");
    assert_eq!(
        ready.last_transition_time.to_string(),
        "2024-05-01T12:00:00Z"
    );
    let resources: Vec<(&str, &str, &str, &str, HealthStatus)> = web
        .resources
        .iter()
        .map(|r| {
            let id = (
                r.api_version.as_str(),
                r.kind.as_str(),
                r.namespace.as_str(),
            );
            (id.0, id.1, id.2, r.name.as_str(), r.health)
        })
        .collect();
    assert_eq!(
        resources,
        [
            (
                "apps/v1",
                "Deployment",
                "web",
                "web",
                HealthStatus::Progressing
            ),
            ("v1", "Namespace", "", "web", HealthStatus::Healthy),
        ]
    );

    let history = store.history("web", 10).expect("history decodes");
    assert_eq!(history.len(), 1);
    let sync = &history[0];
    assert_eq!((sync.id, sync.app.as_str()), (1, "web"));
    assert_eq!(sync.start.trigger, SyncTrigger::Webhook);
    assert_eq!(sync.start.subject, "Scale web");
    assert_eq!(sync.result, SyncResult::Failed);
    assert_eq!(sync.error.as_deref(), Some("boom"));
    assert_eq!(
        sync.counts,
        ObjectCounts {
            created: 1,
            updated: 2,
            deleted: 3,
            unchanged: 4
        }
    );
    assert!(sync.finish_time >= Some(sync.start_time));
    assert_eq!(sync.adopted[0].previous_managers, ["kubectl"]);

    let audit = store.audit(Some("web"), 10).expect("audit decodes");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].time.to_string(), "2024-05-01T11:59:55Z");
    assert_eq!(audit[0].manager.as_deref(), Some("kubectl-edit"));
    assert_eq!(audit[0].action, DriftAction::Reverted);

    // Written back, a record takes the new form and reads the same.
    let before = store.app("web").expect("read").expect("web");
    let after = store.update_app("web", |_| {}).expect("rewrite");
    assert_eq!(after.conditions, before.conditions);
    assert_eq!(after.last_sync_time, before.last_sync_time);
    assert_eq!(store.app("web").expect("read"), Some(after));
    // The id counters carried over: new records do not reuse old ids.
    let next = store
        .begin_sync("web", start("c0ffee", SyncTrigger::Manual))
        .expect("begin");
    assert_eq!(next.id, 2);
}

#[test]
fn status_changes_are_listed_since_a_point() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open");
    let (start, changed) = store.app_changes_since(0);
    assert!(changed.is_empty());
    store.put_app("web", &AppStatus::default()).expect("write");
    store.put_app("api", &AppStatus::default()).expect("write");
    let (after_two, mut changed) = store.app_changes_since(start);
    changed.sort();
    assert_eq!(changed, ["api", "web"]);
    store
        .update_app("web", |s| s.suspended = true)
        .expect("write");
    let (_, changed) = store.app_changes_since(after_two);
    assert_eq!(changed, ["web"]);
    let (now, _) = store.app_changes_since(after_two);
    store.remove_app("api").expect("remove");
    let (_, changed) = store.app_changes_since(now);
    assert_eq!(changed, ["api"], "a removal is a change too");
}

#[test]
fn new_apps_get_a_default_status_in_one_go_and_known_ones_keep_theirs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open");
    let (start, _) = store.app_changes_since(0);
    assert_eq!(store.ensure_apps(["web", "api"]).expect("ensure"), 2);
    store
        .update_app("web", |s| s.suspended = true)
        .expect("write");
    assert_eq!(store.ensure_apps(["web", "api", "db"]).expect("ensure"), 1);
    assert_eq!(store.ensure_apps(["db"]).expect("ensure"), 0, "nothing new");
    assert!(store.app("web").expect("read").expect("web").suspended);
    let db = store.app("db").expect("read").expect("db");
    assert_eq!(db.sync, AppStatus::default().sync);
    assert!(db.last_update_time.is_some());
    let (_, mut changed) = store.app_changes_since(start);
    changed.sort();
    assert_eq!(changed, ["api", "db", "web"]);
    let listed = store.app_list(|_, _, _| true, None, 10).expect("list");
    assert_eq!(listed.summary.total, 3, "the index lists the new Apps");
}
