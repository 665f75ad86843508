//! Work queue behaviour under tokio's paused clock: every timing is exact and instant.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use driftless_engine::queue::{Job, Outcome, QueueConfig, QueueError, WorkQueue};
use driftless_engine::store::SyncTrigger;
use driftless_engine::timing::Backoff;
use tokio::time::{Instant, sleep};

/// One run as the worker saw it: key, trigger, seconds since the test started.
type Run = (String, SyncTrigger, u64);

/// Records every run; `script` decides how long a run takes and how it ends.
#[derive(Clone)]
struct Recorder {
    start: Instant,
    runs: Arc<Mutex<Vec<Run>>>,
    active: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Recorder {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            runs: Arc::default(),
            active: Arc::default(),
            peak: Arc::default(),
        }
    }

    fn runs(&self) -> Vec<Run> {
        self.runs.lock().expect("runs lock").clone()
    }

    fn times(&self) -> Vec<u64> {
        self.runs().into_iter().map(|r| r.2).collect()
    }

    /// Starts a queue whose worker takes `work` and then returns `script(run number)`.
    fn queue(
        &self,
        config: QueueConfig,
        work: Duration,
        script: impl Fn(usize) -> Outcome + Send + Sync + 'static,
    ) -> WorkQueue {
        let rec = self.clone();
        let script = Arc::new(script);
        WorkQueue::start(config, move |job: Job| {
            let rec = rec.clone();
            let script = script.clone();
            async move {
                let n = {
                    let mut runs = rec.runs.lock().expect("runs lock");
                    runs.push((job.key.clone(), job.trigger, rec.start.elapsed().as_secs()));
                    runs.len()
                };
                let now = rec.active.fetch_add(1, Ordering::SeqCst) + 1;
                rec.peak.fetch_max(now, Ordering::SeqCst);
                let outcome = tokio::select! {
                    () = sleep(work) => script(n),
                    () = job.cancel.cancelled() => Outcome::Cancelled,
                };
                rec.active.fetch_sub(1, Ordering::SeqCst);
                outcome
            }
        })
        .0
    }
}

fn exact(concurrency: usize) -> QueueConfig {
    QueueConfig {
        concurrency,
        backoff: Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(8),
            factor: 2,
        },
        jitter: 0.0,
        seed: Some(1),
    }
}

#[tokio::test(start_paused = true)]
async fn duplicate_triggers_run_once() {
    let rec = Recorder::new();
    let q = rec.queue(exact(1), Duration::from_secs(1), |_| Outcome::Succeeded);
    q.trigger("busy", SyncTrigger::Config).expect("trigger");
    sleep(Duration::from_millis(1)).await;
    // "web" waits behind "busy"; triggering it again only merges into the queued run.
    for _ in 0..3 {
        q.trigger("web", SyncTrigger::Webhook).expect("trigger");
        sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(q.depth(), 1);
    sleep(Duration::from_secs(60)).await;
    let keys: Vec<String> = rec.runs().into_iter().map(|r| r.0).collect();
    assert_eq!(keys, vec!["busy", "web"]);
}

#[tokio::test(start_paused = true)]
async fn trigger_while_running_runs_once_more_after() {
    let rec = Recorder::new();
    let q = rec.queue(exact(4), Duration::from_secs(10), |_| Outcome::Succeeded);
    q.trigger("web", SyncTrigger::Webhook).expect("trigger");
    for t in [1, 2, 3] {
        sleep(Duration::from_secs(1)).await;
        let reason = if t == 3 {
            SyncTrigger::Drift
        } else {
            SyncTrigger::Webhook
        };
        q.trigger("web", reason).expect("trigger");
    }
    sleep(Duration::from_secs(60)).await;
    let runs = rec.runs();
    assert_eq!(runs.len(), 2, "{runs:?}");
    // The second run starts when the first ends and carries the latest reason.
    assert_eq!(runs[1], ("web".into(), SyncTrigger::Drift, 10));
}

#[tokio::test(start_paused = true)]
async fn a_waiting_users_sync_is_not_turned_into_a_routine_one() {
    let rec = Recorder::new();
    let q = rec.queue(exact(4), Duration::from_secs(10), |_| Outcome::Succeeded);
    q.trigger("web", SyncTrigger::Webhook).expect("trigger");
    sleep(Duration::from_secs(1)).await;
    // While it runs, a user asks for a sync, then the config and drift trigger it.
    q.trigger("web", SyncTrigger::Manual).expect("trigger");
    q.trigger("web", SyncTrigger::Config).expect("trigger");
    q.trigger("web", SyncTrigger::Drift).expect("trigger");
    sleep(Duration::from_secs(30)).await;
    // A rollback asked for after a sync is the user's newer wish.
    q.trigger("web", SyncTrigger::Webhook).expect("trigger");
    sleep(Duration::from_secs(1)).await;
    q.trigger("web", SyncTrigger::Manual).expect("trigger");
    q.trigger("web", SyncTrigger::Rollback).expect("trigger");
    q.trigger("web", SyncTrigger::Interval).expect("trigger");
    sleep(Duration::from_secs(60)).await;
    let triggers: Vec<SyncTrigger> = rec.runs().into_iter().map(|r| r.1).collect();
    assert_eq!(
        triggers,
        [
            SyncTrigger::Webhook,
            SyncTrigger::Manual,
            SyncTrigger::Webhook,
            SyncTrigger::Rollback
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn concurrency_is_bounded() {
    let rec = Recorder::new();
    let q = rec.queue(exact(2), Duration::from_secs(10), |_| Outcome::Succeeded);
    for i in 0..5 {
        q.trigger(&format!("app{i}"), SyncTrigger::Config)
            .expect("trigger");
    }
    sleep(Duration::from_millis(1)).await;
    assert_eq!((q.running(), q.depth()), (2, 3));
    sleep(Duration::from_secs(60)).await;
    assert_eq!(rec.peak.load(Ordering::SeqCst), 2);
    assert_eq!(rec.times(), vec![0, 0, 10, 10, 20]);
    assert_eq!((q.running(), q.depth()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_key_can_have_its_own_backoff() {
    let rec = Recorder::new();
    let q = rec.queue(exact(1), Duration::ZERO, |n| {
        if n <= 3 {
            Outcome::Failed
        } else {
            Outcome::Succeeded
        }
    });
    let own = Backoff {
        base: Duration::from_secs(2),
        max: Duration::from_secs(60),
        factor: 3,
    };
    q.set_backoff("web", Some(own)).expect("backoff");
    q.trigger("web", SyncTrigger::Manual).expect("trigger");
    sleep(Duration::from_secs(100)).await;
    // Delays 2, 6, 18 instead of the queue's 1, 2, 4.
    assert_eq!(rec.times(), vec![0, 2, 8, 26]);
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_exponentially_and_success_resets() {
    let rec = Recorder::new();
    // Runs 1-5 fail, run 6 succeeds; then the 30s interval takes over.
    let q = rec.queue(exact(1), Duration::ZERO, |n| {
        if n <= 5 {
            Outcome::Failed
        } else {
            Outcome::Succeeded
        }
    });
    q.set_interval("web", Some(Duration::from_secs(30)))
        .expect("interval");
    q.trigger("web", SyncTrigger::Manual).expect("trigger");
    sleep(Duration::from_secs(100)).await;
    // Delays 1, 2, 4, 8, 8 (capped) after failures; then interval 30 after success.
    assert_eq!(rec.times(), vec![0, 1, 3, 7, 15, 23, 53, 83]);
    let runs = rec.runs();
    assert!(
        runs[1..6].iter().all(|r| r.1 == SyncTrigger::Manual),
        "retries keep their reason"
    );
    assert_eq!(runs[6].1, SyncTrigger::Interval);
}

#[tokio::test(start_paused = true)]
async fn interval_runs_are_spread_by_jitter() {
    let rec = Recorder::new();
    let config = QueueConfig {
        jitter: 0.1,
        seed: Some(42),
        ..exact(4)
    };
    let q = rec.queue(config, Duration::ZERO, |_| Outcome::Succeeded);
    q.set_interval("web", Some(Duration::from_secs(100)))
        .expect("interval");
    sleep(Duration::from_secs(1000)).await;
    let times = rec.times();
    assert!(times.len() >= 8, "{times:?}");
    let gaps: Vec<u64> = std::iter::once(times[0])
        .chain(times.windows(2).map(|w| w[1] - w[0]))
        .collect();
    assert!(gaps.iter().all(|g| (90..=110).contains(g)), "{gaps:?}");
    assert!(
        gaps.iter().any(|g| *g != 100),
        "jitter moved nothing: {gaps:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn immediate_trigger_preempts_a_scheduled_timer() {
    let rec = Recorder::new();
    let q = rec.queue(exact(4), Duration::ZERO, |_| Outcome::Succeeded);
    q.set_interval("web", Some(Duration::from_secs(60)))
        .expect("interval");
    sleep(Duration::from_secs(5)).await;
    q.trigger("web", SyncTrigger::Webhook).expect("trigger");
    sleep(Duration::from_secs(70)).await;
    // The webhook run replaces the pending timer; the next poll is 60s after it.
    assert_eq!(rec.times(), vec![5, 65]);
}

#[tokio::test(start_paused = true)]
async fn preempt_cancels_the_running_health_wait() {
    let rec = Recorder::new();
    let q = rec.queue(exact(4), Duration::from_secs(600), |_| Outcome::Succeeded);
    q.trigger("web", SyncTrigger::Webhook).expect("trigger");
    sleep(Duration::from_secs(5)).await;
    q.preempt("web", SyncTrigger::Webhook).expect("preempt");
    sleep(Duration::from_secs(1)).await;
    let runs = rec.runs();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[1].2, 5, "the newer revision starts right away");
}

#[tokio::test(start_paused = true)]
async fn removed_keys_stop_polling() {
    let rec = Recorder::new();
    let q = rec.queue(exact(4), Duration::ZERO, |_| Outcome::Succeeded);
    q.set_interval("web", Some(Duration::from_secs(10)))
        .expect("interval");
    sleep(Duration::from_secs(25)).await;
    q.remove("web").expect("remove");
    sleep(Duration::from_secs(100)).await;
    assert_eq!(rec.times(), vec![10, 20]);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_worker_counts_as_failure() {
    let rec = Recorder::new();
    let q = rec.queue(exact(1), Duration::ZERO, |n| {
        assert!(n > 1, "first run panics");
        Outcome::Succeeded
    });
    q.trigger("web", SyncTrigger::Manual).expect("trigger");
    sleep(Duration::from_secs(10)).await;
    assert_eq!(rec.times(), vec![0, 1], "retried after the 1s backoff");
}

#[tokio::test(start_paused = true)]
async fn shutdown_cancels_running_work_and_waits_for_it() {
    let rec = Recorder::new();
    let q = rec.queue(exact(1), Duration::from_secs(3600), |_| Outcome::Succeeded);
    q.trigger("web", SyncTrigger::Manual).expect("trigger");
    q.trigger("api", SyncTrigger::Manual).expect("trigger");
    sleep(Duration::from_secs(1)).await;
    let before = Instant::now();
    q.shutdown().await;
    assert_eq!(
        before.elapsed(),
        Duration::ZERO,
        "cancelled, not waited out"
    );
    assert_eq!(rec.active.load(Ordering::SeqCst), 0);
    assert_eq!(
        rec.runs().len(),
        1,
        "queued work does not start during shutdown"
    );
    let err = q.trigger("web", SyncTrigger::Manual).expect_err("closed");
    assert!(matches!(err, QueueError::Closed { .. }));
    assert_eq!(err.to_string(), "work queue is shut down: cannot queue web");
}

#[tokio::test(start_paused = true)]
async fn clearing_the_interval_stops_polling_but_not_retries() {
    let rec = Recorder::new();
    // Run 1 (interval) succeeds, run 2 (manual) fails and must still be retried.
    let q = rec.queue(exact(4), Duration::ZERO, |n| {
        if n == 2 {
            Outcome::Failed
        } else {
            Outcome::Succeeded
        }
    });
    q.set_interval("web", Some(Duration::from_secs(10)))
        .expect("interval");
    sleep(Duration::from_secs(15)).await;
    q.set_interval("web", None).expect("stop polling");
    q.trigger("web", SyncTrigger::Manual).expect("trigger");
    sleep(Duration::from_secs(100)).await;
    assert_eq!(
        rec.times(),
        vec![10, 15, 16],
        "one 1s retry, then no more polls"
    );
}
