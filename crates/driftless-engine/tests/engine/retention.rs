//! Store retention: per App, the newest syncs and drift events up to a count and an
//! age; the database file stays bounded under a long run of syncs.

use driftless_api::{Duration, Retention};
use driftless_engine::store::{
    AuditEvent, DB_FILE, DriftAction, MIN_SYNCS_KEPT_BY_AGE, ObjectCounts, Operation,
    OperationKind, Revision, Store, SyncOutcome, SyncResult, SyncStart, SyncTrigger,
};

fn sync(store: &Store, app: &str, n: usize) -> u64 {
    let start = SyncStart {
        revision: Revision {
            ref_label: "main".into(),
            sha: format!("{n:040x}"),
            chart: None,
        },
        author: "Ada Lovelace <ada@example.com>".into(),
        subject: format!("release number {n} with a subject of realistic length"),
        trigger: SyncTrigger::Interval,
        remotes: Vec::new(),
    };
    let rec = store.begin_sync(app, start).expect("begin");
    let outcome = SyncOutcome {
        result: SyncResult::Succeeded,
        counts: ObjectCounts::default(),
        error: None,
        adopted: Vec::new(),
        hosts: Vec::new(),
        hooks: Vec::new(),
    };
    store.finish_sync(app, rec.id, outcome).expect("finish");
    rec.id
}

fn drift(store: &Store, app: &str, time_ms: u64) {
    store
        .record_audit(AuditEvent {
            id: 0,
            time: driftless_api::Time::from_unix_ms(time_ms),
            app: app.into(),
            object: format!("apps/v1/Deployment/default/{app}"),
            fields: vec!["spec.replicas".into()],
            manager: Some("kubectl-edit".into()),
            action: DriftAction::Reverted,
        })
        .expect("audit");
}

fn operation(store: &Store, app: &str, time_ms: u64) {
    store
        .record_operation(Operation {
            id: 0,
            time: driftless_api::Time::from_unix_ms(time_ms),
            app: app.into(),
            operation: OperationKind::Sync,
            by: "ci".into(),
            target: None,
            revision: None,
            override_window: false,
            error: None,
        })
        .expect("operation");
}

fn now_ms() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    u64::try_from(since.as_millis()).expect("fits")
}

fn retention(syncs: u32, drift_events: u32) -> Retention {
    Retention {
        syncs,
        drift_events,
        max_age: Duration::from_secs(0),
    }
}

#[test]
fn the_store_file_stays_bounded_under_a_long_run_of_syncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store.set_retention(retention(20, 20));
    let file_size = || std::fs::metadata(store.path()).expect("stat").len();
    let mut after_warm_up = 0;
    for round in 0..1500 {
        for app in ["web", "api"] {
            sync(&store, app, round);
            drift(&store, app, now_ms());
        }
        if round == 499 {
            after_warm_up = file_size();
        }
    }
    let at_end = file_size();
    assert!(
        at_end <= after_warm_up + after_warm_up / 10,
        "the file grew from {after_warm_up} to {at_end} bytes while the retained records stayed the same"
    );
    for app in ["web", "api"] {
        let history = store.history(app, 10_000).expect("history");
        assert_eq!(history.len(), 20, "{app}");
        assert_eq!(history[0].start.revision.sha, format!("{:040x}", 1499));
        assert_eq!(store.audit(Some(app), 10_000).expect("audit").len(), 20);
    }
}

#[test]
fn the_count_limit_applies_per_app_and_the_newest_records_stay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store.set_retention(retention(3, 2));
    let ids: Vec<u64> = (0..5).map(|n| sync(&store, "web", n)).collect();
    sync(&store, "api", 0);
    for t in 0..4 {
        drift(&store, "web", now_ms() + t);
    }
    drift(&store, "api", now_ms());
    let kept: Vec<u64> = store
        .history("web", 100)
        .expect("history")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(kept, [ids[4], ids[3], ids[2]]);
    assert_eq!(store.history("api", 100).expect("history").len(), 1);
    let web_events = store.audit(Some("web"), 100).expect("audit");
    assert_eq!(web_events.len(), 2);
    assert!(web_events[0].time > web_events[1].time);
    assert_eq!(store.audit(Some("api"), 100).expect("audit").len(), 1);
    assert_eq!(store.audit(None, 100).expect("audit").len(), 3);
}

#[test]
fn the_age_limit_removes_old_drift_events_and_old_syncs_beyond_the_kept_minimum() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    for n in 0..MIN_SYNCS_KEPT_BY_AGE + 5 {
        sync(&store, "web", n);
    }
    let day = 86_400_000;
    drift(&store, "web", now_ms() - 3 * day);
    drift(&store, "web", now_ms() - 2 * day);
    drift(&store, "web", now_ms());
    store.set_retention(Retention {
        syncs: 1000,
        drift_events: 1000,
        max_age: "1d".parse().expect("duration"),
    });
    let pruned = store.prune().expect("prune");
    assert_eq!(pruned.drift_events, 2);
    assert_eq!(pruned.syncs, 0, "the syncs are recent");
    assert_eq!(store.audit(Some("web"), 100).expect("audit").len(), 1);

    // Once everything is older than the limit, the newest syncs still stay.
    std::thread::sleep(std::time::Duration::from_millis(20));
    store.set_retention(Retention {
        syncs: 1000,
        drift_events: 1000,
        max_age: "10ms".parse().expect("duration"),
    });
    let pruned = store.prune().expect("prune");
    assert_eq!(pruned.syncs, 5);
    assert_eq!(
        store.history("web", 100).expect("history").len(),
        MIN_SYNCS_KEPT_BY_AGE
    );
}

#[test]
fn a_store_written_before_the_audit_index_is_indexed_and_pruned_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("open");
        for t in 0..5 {
            drift(&store, "web", now_ms() + t);
        }
    }
    {
        // Take the store back to the layout of earlier versions: no per-App index.
        let db = redb::Database::create(dir.path().join(DB_FILE)).expect("open redb");
        let tx = db.begin_write().expect("write");
        let index: redb::TableDefinition<(&str, u64), ()> =
            redb::TableDefinition::new("audit_by_app");
        assert!(tx.delete_table(index).expect("delete index"));
        let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
        tx.open_table(meta)
            .expect("meta")
            .remove("audit_by_app_built")
            .expect("remove flag");
        tx.commit().expect("commit");
    }
    let store = Store::open(dir.path()).expect("reopen");
    store.set_retention(retention(10, 2));
    assert_eq!(store.prune().expect("prune").drift_events, 3);
    assert_eq!(store.audit(Some("web"), 100).expect("audit").len(), 2);
}

#[test]
fn operations_follow_the_sync_count_and_the_age_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store.set_retention(retention(5, 5));
    let day = 24 * 3600 * 1000;
    let now = now_ms();
    for n in 0..8 {
        operation(&store, "web", now - (8 - n) * day);
    }
    let kept = store.operations("web", 100).expect("operations");
    assert_eq!(kept.len(), 5, "the newest 5 stay");
    assert_eq!(
        kept.last().map(|o| o.time.unix_ms()),
        Some(now - 5 * day),
        "the oldest went first"
    );

    store.set_retention(Retention {
        max_age: Duration::from_secs(3 * 24 * 3600 + 12 * 3600),
        ..retention(5, 5)
    });
    let pruned = store.prune().expect("prune");
    assert_eq!(
        pruned.operations, 2,
        "those older than three and a half days"
    );
    assert_eq!(store.operations("web", 100).expect("operations").len(), 3);
}
