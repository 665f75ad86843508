//! Engine metrics in the Prometheus text exposition format.
//!
//! A handful of fixed series do not justify a metrics framework: atomics and a small
//! renderer keep the dependency tree and the hot path lean.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::store::{DriftAction, SyncResult};

/// Bucket upper bounds in seconds; reconciles range from milliseconds to minutes-long waits.
const BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// A cumulative histogram of durations.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}"
        );
    }
}

/// The engine's metrics; share one instance behind an `Arc`.
#[derive(Debug, Default)]
pub struct Metrics {
    reconcile: Histogram,
    fetch: Histogram,
    /// Indexed like [`SYNC_RESULTS`].
    syncs: [AtomicU64; 3],
    /// Indexed like [`DRIFT_ACTIONS`].
    drift: [AtomicU64; 3],
    queue_depth: AtomicU64,
}

const SYNC_RESULTS: [SyncResult; 3] = [
    SyncResult::Succeeded,
    SyncResult::Failed,
    SyncResult::Interrupted,
];
const DRIFT_ACTIONS: [DriftAction; 3] = [
    DriftAction::Reverted,
    DriftAction::Reported,
    DriftAction::Ignored,
];

impl Metrics {
    /// Records how long one reconcile took.
    pub fn observe_reconcile(&self, took: Duration) {
        self.reconcile.observe(took);
    }

    /// Records how long one Git fetch took.
    pub fn observe_fetch(&self, took: Duration) {
        self.fetch.observe(took);
    }

    /// Counts a finished sync; `Running` is not a result and is ignored.
    pub fn count_sync(&self, result: SyncResult) {
        if let Some(i) = SYNC_RESULTS.iter().position(|r| *r == result) {
            self.syncs[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a drift event by what was done about it.
    pub fn count_drift(&self, action: DriftAction) {
        if let Some(i) = DRIFT_ACTIONS.iter().position(|a| *a == action) {
            self.drift[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sets the number of Apps waiting for a worker.
    pub fn set_queue_depth(&self, depth: usize) {
        self.queue_depth.store(depth as u64, Ordering::Relaxed);
    }

    /// Renders every series in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.reconcile.render(
            &mut out,
            "driftless_reconcile_duration_seconds",
            "Time to reconcile one App.",
        );
        self.fetch.render(
            &mut out,
            "driftless_fetch_duration_seconds",
            "Time to fetch one GitSource.",
        );
        let _ = writeln!(
            out,
            "# HELP driftless_syncs_total Finished syncs by result.\n# TYPE driftless_syncs_total counter"
        );
        for (result, n) in SYNC_RESULTS.iter().zip(&self.syncs) {
            let _ = writeln!(
                out,
                "driftless_syncs_total{{result=\"{result:?}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP driftless_drift_events_total Drift seen on live objects, by action taken.\n# TYPE driftless_drift_events_total counter"
        );
        for (action, n) in DRIFT_ACTIONS.iter().zip(&self.drift) {
            let _ = writeln!(
                out,
                "driftless_drift_events_total{{action=\"{action:?}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP driftless_queue_depth Apps waiting for a worker.\n# TYPE driftless_queue_depth gauge\ndriftless_queue_depth {}",
            self.queue_depth.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_buckets_and_counters() {
        let m = Metrics::default();
        m.observe_reconcile(Duration::from_millis(30));
        m.observe_reconcile(Duration::from_secs(2));
        m.count_sync(SyncResult::Succeeded);
        m.count_sync(SyncResult::Succeeded);
        m.count_sync(SyncResult::Running);
        m.count_drift(DriftAction::Reverted);
        m.set_queue_depth(7);
        let text = m.render();
        for line in [
            "driftless_reconcile_duration_seconds_bucket{le=\"0.01\"} 0",
            "driftless_reconcile_duration_seconds_bucket{le=\"0.05\"} 1",
            "driftless_reconcile_duration_seconds_bucket{le=\"2.5\"} 2",
            "driftless_reconcile_duration_seconds_bucket{le=\"+Inf\"} 2",
            "driftless_reconcile_duration_seconds_sum 2.03",
            "driftless_reconcile_duration_seconds_count 2",
            "driftless_fetch_duration_seconds_count 0",
            "driftless_syncs_total{result=\"Succeeded\"} 2",
            "driftless_syncs_total{result=\"Failed\"} 0",
            "driftless_drift_events_total{action=\"Reverted\"} 1",
            "driftless_queue_depth 7",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
