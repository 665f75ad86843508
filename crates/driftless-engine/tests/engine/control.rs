//! User actions through the real store and queue.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use driftless_engine::control::{AppControl, ControlError, EngineControl};
use driftless_engine::queue::{Outcome, QueueConfig, WorkQueue};
use driftless_engine::store::{
    ObjectCounts, Revision, Store, SyncOutcome, SyncResult, SyncStart, SyncTrigger,
};

fn rev(sha: &str) -> Revision {
    Revision {
        ref_label: "main".into(),
        sha: sha.into(),
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
        };
        let r = store.begin_sync("web", start).expect("begin");
        let outcome = SyncOutcome {
            result,
            counts: ObjectCounts::default(),
            error: None,
            adopted: Vec::new(),
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
    control.sync("web").expect("sync");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        *runs.lock().expect("lock"),
        vec![("web".to_owned(), SyncTrigger::Manual)]
    );

    assert!(control.suspend("web").expect("suspend").suspended);
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
        control.sync("web"),
        Err(ControlError::Suspended { .. })
    ));
    assert!(!control.resume("web").expect("resume").suspended);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(runs.lock().expect("lock").len(), 3, "resume reconciles");

    let err = control.sync("nope").expect_err("unknown");
    assert_eq!(err.to_string(), "app nope not found");
}

#[tokio::test]
async fn rollback_pins_a_previous_successful_revision() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = seeded(dir.path());
    let (control, runs) = control(&store).await;
    // Default target skips the live revision and the failed one.
    let pinned = control.rollback("web", None).expect("rollback").pinned;
    assert_eq!(pinned, Some(rev("c1aaaaa")));
    assert_eq!(
        control
            .rollback("web", Some("c3c"))
            .expect("rollback")
            .pinned,
        Some(rev("c3ccccc"))
    );
    let err = control
        .rollback("web", Some("c2b"))
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
        control.resume("web").expect("resume").pinned,
        None,
        "resume follows Git again"
    );
}
