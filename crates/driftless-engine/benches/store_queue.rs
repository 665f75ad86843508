//! Throughput of the state store and overhead of the work queue.
//!
//! Run: `cargo bench -p driftless-engine --bench store_queue`. Prints one line per figure.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use driftless_engine::queue::{Outcome, QueueConfig, WorkQueue};
use driftless_engine::store::{
    ObjectCounts, Revision, Store, SyncOutcome, SyncResult, SyncStart, SyncTrigger,
};

const SYNCS: usize = 2000;
const READS: usize = 20_000;
const JOBS: usize = 20_000;

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
            },
            author: "Ada <ada@example.com>".into(),
            subject: "bench".into(),
            trigger: SyncTrigger::Interval,
        };
        let app = format!("app-{}", i % 100);
        let rec = store.begin_sync(&app, start).expect("begin");
        let outcome = SyncOutcome {
            result: SyncResult::Succeeded,
            counts: ObjectCounts::default(),
            error: None,
            adopted: Vec::new(),
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

fn main() {
    bench_store();
    bench_queue();
}
