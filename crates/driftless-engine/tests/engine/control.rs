//! User actions through the real store and queue.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use driftless_engine::control::{AppControl, ControlError, EngineControl};
use driftless_engine::queue::{Outcome, QueueConfig, WorkQueue};
use driftless_engine::store::{
    ObjectCounts, OperationKind, Revision, Store, SyncOutcome, SyncResult, SyncStart, SyncTrigger,
};

fn rev(sha: &str) -> Revision {
    Revision {
        ref_label: "main".into(),
        sha: sha.into(),
        chart: None,
    }
}

/// A store with app `web` synced at c1 (ok), c2 (failed), c3 (ok, live).
fn seeded(dir: &std::path::Path) -> Store {
    let store = Store::open(dir).expect("open");
    for (sha, result) in [
        ("c1aaaaa", SyncResult::Succeeded),
        ("c2bbbbb", SyncResult::Failed),
        ("c3ccccc", SyncResult::Succeeded),
    ] {
        let start = SyncStart {
            revision: rev(sha),
            author: "a".into(),
            subject: "s".into(),
            trigger: SyncTrigger::Interval,
            remotes: Vec::new(),
        };
        let r = store.begin_sync("web", start).expect("begin");
        let outcome = SyncOutcome {
            result,
            counts: ObjectCounts::default(),
            error: None,
            adopted: Vec::new(),
            hosts: Vec::new(),
            hooks: Vec::new(),
        };
        store.finish_sync("web", r.id, outcome).expect("finish");
    }
    store
        .update_app("web", |s| s.last_applied = Some(rev("c3ccccc")))
        .expect("status");
    store
}

async fn control(store: &Store) -> (EngineControl, Arc<Mutex<Vec<(String, SyncTrigger)>>>) {
    let runs: Arc<Mutex<Vec<(String, SyncTrigger)>>> = Arc::default();
    let seen = runs.clone();
    let (queue, _) = WorkQueue::start(QueueConfig::default(), move |job| {
        seen.lock().expect("lock").push((job.key, job.trigger));
        async { Outcome::Succeeded }
    });
    (EngineControl::new(store.clone(), queue), runs)
}

#[tokio::test]
async fn sync_queues_a_manual_run_unless_suspended() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = seeded(dir.path());
    let (control, runs) = control(&store).await;
    control.sync("web", "ops").expect("sync");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        *runs.lock().expect("lock"),
        vec![("web".to_owned(), SyncTrigger::Manual)]
    );

    assert!(control.suspend("web", "ops").expect("suspend").suspended);
    assert!(
        store.app("web").expect("read").expect("web").suspended,
        "flag persisted"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        runs.lock().expect("lock").len(),
        2,
        "suspend runs the worker, which sees the flag and stops self-heal"
    );
    assert!(matches!(
        control.sync("web", "ops"),
        Err(ControlError::Suspended { .. })
    ));
    assert!(!control.resume("web", "ops").expect("resume").suspended);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(runs.lock().expect("lock").len(), 3, "resume reconciles");

    let err = control.sync("nope", "ops").expect_err("unknown");
    assert_eq!(err.to_string(), "app nope not found");
}

#[tokio::test]
async fn rollback_pins_a_previous_successful_revision() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = seeded(dir.path());
    let (control, runs) = control(&store).await;
    // Default target skips the live revision and the failed one.
    let pinned = control
        .rollback("web", None, "ops")
        .expect("rollback")
        .pinned;
    assert_eq!(pinned, Some(rev("c1aaaaa")));
    assert_eq!(
        control
            .rollback("web", Some("c3c"), "ops")
            .expect("rollback")
            .pinned,
        Some(rev("c3ccccc"))
    );
    let err = control
        .rollback("web", Some("c2b"), "ops")
        .expect_err("failed revision");
    assert_eq!(
        err.to_string(),
        "app web: no successful sync of revision c2b to roll back to"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        runs.lock()
            .expect("lock")
            .iter()
            .all(|r| r.1 == SyncTrigger::Rollback)
    );
    assert_eq!(
        control.resume("web", "ops").expect("resume").pinned,
        None,
        "resume follows Git again"
    );
}

#[tokio::test]
async fn every_operation_on_a_known_app_is_audited_with_who_asked_and_the_outcome() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = seeded(dir.path());
    let (control, _) = control(&store).await;
    control.suspend("web", "admin-alice").expect("suspend");
    control.sync("web", "ci").expect_err("suspended");
    control.resume("web", "ci").expect("resume");
    control
        .rollback("web", Some("c1a"), "admin-alice")
        .expect("rollback");
    control.sync("nope", "ci").expect_err("unknown");

    let ops = store.operations("web", 10).expect("operations");
    let seen: Vec<_> = ops
        .iter()
        .rev()
        .map(|o| (o.operation, o.by.as_str(), o.error.is_some()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (OperationKind::Suspend, "admin-alice", false),
            (OperationKind::Sync, "ci", true),
            (OperationKind::Resume, "ci", false),
            (OperationKind::Rollback, "admin-alice", false),
        ]
    );
    let refused = &ops[2];
    assert_eq!(
        refused.error.as_deref(),
        Some("app web is suspended: resume it before syncing")
    );
    let rollback = &ops[0];
    assert_eq!(rollback.target.as_deref(), Some("c1a"));
    assert_eq!(rollback.revision, Some(rev("c1aaaaa")));
    assert!(
        ops.windows(2)
            .all(|w| w[0].id > w[1].id && w[0].time >= w[1].time)
    );
    assert!(
        store.operations("nope", 10).expect("operations").is_empty(),
        "unknown Apps leave no entry"
    );
}
