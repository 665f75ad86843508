//! Throughput of the state store and overhead of the work queue.
//!
//! Run: `cargo bench -p driftless-engine --bench store_queue`. Prints one line per figure.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use driftless_engine::queue::{Outcome, QueueConfig, WorkQueue};
use driftless_engine::store::{
    AppStatus, Condition, ConditionStatus, HealthStatus, ObjectCounts, ResourceStatus, Revision,
    Store, SyncOutcome, SyncResult, SyncStart, SyncStatus, SyncTrigger,
};

const SYNCS: usize = 2000;
const READS: usize = 20_000;
const JOBS: usize = 20_000;
/// Apps in the store for the App list figures.
const LISTED: usize = 10_000;
/// Reads of the App list per figure.
const LIST_READS: usize = 20;

fn rate(label: &str, n: usize, took: Duration) {
    let per_sec = n as f64 / took.as_secs_f64();
    let micros = took.as_secs_f64() * 1e6 / n as f64;
    println!(
        "{label:<44} {n:>6} in {:>8.1} ms  {per_sec:>10.0}/s  {micros:>8.1} µs each",
        took.as_secs_f64() * 1e3
    );
}

fn bench_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open store");
    let t = Instant::now();
    for i in 0..SYNCS {
        let start = SyncStart {
            revision: Revision {
                ref_label: "main".into(),
                sha: format!("{i:040x}"),
                chart: None,
            },
            author: "Ada <ada@example.com>".into(),
            subject: "bench".into(),
            trigger: SyncTrigger::Interval,
            remotes: Vec::new(),
        };
        let app = format!("app-{}", i % 100);
        let rec = store.begin_sync(&app, start).expect("begin");
        let outcome = SyncOutcome {
            result: SyncResult::Succeeded,
            counts: ObjectCounts::default(),
            error: None,
            adopted: Vec::new(),
            hosts: Vec::new(),
            hooks: Vec::new(),
        };
        store.finish_sync(&app, rec.id, outcome).expect("finish");
    }
    rate(
        "store: sync recorded (begin + finish, 2 commits)",
        SYNCS,
        t.elapsed(),
    );

    let t = Instant::now();
    for i in 0..SYNCS {
        store
            .update_app(&format!("app-{}", i % 100), |s| s.last_error = None)
            .expect("update");
    }
    rate("store: app status update (1 commit)", SYNCS, t.elapsed());

    let t = Instant::now();
    for i in 0..READS {
        store.app(&format!("app-{}", i % 100)).expect("read");
    }
    rate("store: app status read", READS, t.elapsed());

    let t = Instant::now();
    for i in 0..READS / 10 {
        store
            .history(&format!("app-{}", i % 100), 20)
            .expect("history");
    }
    rate("store: history(app, 20) read", READS / 10, t.elapsed());
}

fn bench_queue() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let done = Arc::new(AtomicUsize::new(0));
        let counter = done.clone();
        let config = QueueConfig {
            concurrency: 8,
            ..QueueConfig::default()
        };
        let (queue, _) = WorkQueue::start(config, move |_job| {
            counter.fetch_add(1, Ordering::Relaxed);
            async { Outcome::Succeeded }
        });
        let keys: Vec<String> = (0..JOBS).map(|i| format!("app-{i}")).collect();
        let t = Instant::now();
        for key in &keys {
            queue.trigger(key, SyncTrigger::Webhook).expect("trigger");
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while done.load(Ordering::Relaxed) < JOBS && Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            done.load(Ordering::Relaxed),
            JOBS,
            "queue did not finish in 60s"
        );
        rate(
            "queue: trigger → worker run → completion",
            JOBS,
            t.elapsed(),
        );
        queue.shutdown().await;
    });
}

/// A reconciled App's status: a condition, revisions, eight objects.
fn listed_status(i: usize) -> AppStatus {
    let (sync, health) = if i.is_multiple_of(100) {
        (SyncStatus::OutOfSync, HealthStatus::Degraded)
    } else {
        (SyncStatus::Synced, HealthStatus::Healthy)
    };
    let revision = Revision {
        ref_label: "main".into(),
        sha: format!("{i:040x}"),
        chart: None,
    };
    AppStatus {
        conditions: vec![Condition::new(
            "Ready",
            ConditionStatus::from(health == HealthStatus::Healthy),
            "Reconciled",
            "applied",
        )],
        last_applied: Some(revision.clone()),
        last_attempted: Some(revision),
        sync,
        health,
        resources: (0..8)
            .map(|r| ResourceStatus {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: format!("team-{}", i % 50),
                name: format!("app-{i}-{r}"),
                sync,
                health,
                message: None,
            })
            .collect(),
        ..AppStatus::default()
    }
}

/// The App list through the index (one page, and a filter over every App)
/// against decoding every status, which is what listing cost without the index.
fn bench_app_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open store");
    let names: Vec<String> = (0..LISTED).map(|i| format!("app-{i:05}")).collect();
    let statuses: Vec<AppStatus> = (0..LISTED).map(listed_status).collect();
    store
        .put_apps(names.iter().map(String::as_str).zip(&statuses))
        .expect("seed");
    let time = |read: &dyn Fn()| {
        let t = Instant::now();
        for _ in 0..LIST_READS {
            read();
        }
        t.elapsed()
    };
    let decoded = time(&|| {
        assert_eq!(store.apps().expect("apps").len(), LISTED);
    });
    rate("store: every App decoded (10k Apps)", LIST_READS, decoded);
    let page = time(&|| {
        let list = store.app_list(|_, _, _| true, None, 500).expect("list");
        assert_eq!(list.items.len(), 500);
    });
    rate("store: list, a page of 500 (10k Apps)", LIST_READS, page);
    let filtered = time(&|| {
        let degraded = |_: &str, _, health| health == HealthStatus::Degraded;
        let list = store.app_list(degraded, None, 500).expect("list");
        assert_eq!(list.summary.total as usize, LISTED / 100);
    });
    rate(
        "store: list, health=Degraded (10k Apps)",
        LIST_READS,
        filtered,
    );
    println!(
        "store: a page of the list takes {:.1}x less time than decoding every App",
        decoded.as_secs_f64() / page.as_secs_f64()
    );
}

fn main() {
    bench_store();
    bench_app_list();
    bench_queue();
}
