//! Engine metrics in the Prometheus text exposition format.
//!
//! A handful of families do not justify a metrics framework: atomics, a few
//! maps and a small renderer keep the dependency tree and the hot path lean.
//! Per-App state (conditions, sync, health, last apply) is read from the
//! store at scrape time, so it always matches the API and disappears with the
//! App. Label values are bounded: App and source names come from the config,
//! drift managers are capped per App, and no revision is ever a label.

mod text;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use driftless_api::status::{READY, find_condition};

use crate::store::{
    AppStatus, ConditionStatus, DriftAction, HealthStatus, Named, Store, SyncResult, SyncStatus,
};
use text::{Histogram, header, labels, sample};

/// Distinct field managers kept per App in the drift counter; later ones
/// count as [`OTHER_MANAGER`] so a noisy cluster cannot grow the series set.
pub const MAX_MANAGERS_PER_APP: usize = 8;
/// The manager label of drift beyond [`MAX_MANAGERS_PER_APP`].
pub const OTHER_MANAGER: &str = "other";
/// The manager label of drift whose manager is not known.
const UNKNOWN_MANAGER: &str = "unknown";

/// How a reconcile got its App's objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderResult {
    /// Rendered: nothing cached matched what the render reads.
    Rendered,
    /// Reused: nothing the App's last render read changed.
    Reused,
    /// The render failed.
    Failed,
}

const RENDER_RESULTS: [RenderResult; 3] = [
    RenderResult::Rendered,
    RenderResult::Reused,
    RenderResult::Failed,
];

/// Series kept per App.
#[derive(Debug, Default)]
struct AppSeries {
    reconcile: Histogram,
    /// Drift events by (manager, index into [`DRIFT_ACTIONS`]).
    drift: BTreeMap<(String, usize), u64>,
}

/// Series kept per GitSource.
#[derive(Debug, Default)]
struct SourceSeries {
    fetch: Histogram,
    failures: u64,
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
    /// Indexed like [`RENDER_RESULTS`].
    renders: [AtomicU64; 3],
    queue_depth: AtomicU64,
    status_writes: AtomicU64,
    apps: Mutex<BTreeMap<String, AppSeries>>,
    sources: Mutex<BTreeMap<String, SourceSeries>>,
    /// Where per-App state is read from when scraped.
    store: OnceLock<Store>,
    /// Where notification counts are read from when scraped.
    notifiers: OnceLock<driftless_notify::Dispatcher>,
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    /// Metrics whose per-App state families are read from `store`.
    pub fn for_store(store: Store) -> Self {
        let metrics = Self::default();
        let _ = metrics.store.set(store);
        metrics
    }

    /// Reads notification counts from `dispatcher` when scraped.
    pub fn set_notifiers(&self, dispatcher: driftless_notify::Dispatcher) {
        let _ = self.notifiers.set(dispatcher);
    }

    /// Counts one status written to a custom resource (in-cluster mode).
    pub fn count_status_write(&self) {
        self.status_writes.fetch_add(1, Ordering::Relaxed);
    }

    /// Records how long one reconcile of `app` took.
    pub fn observe_reconcile(&self, app: &str, took: Duration) {
        self.reconcile.observe(took);
        lock(&self.apps)
            .entry(app.to_owned())
            .or_default()
            .reconcile
            .observe(took);
    }

    /// Records how long one fetch of `source` took and whether it failed.
    pub fn observe_fetch(&self, source: &str, took: Duration, failed: bool) {
        self.fetch.observe(took);
        let mut sources = lock(&self.sources);
        let series = sources.entry(source.to_owned()).or_default();
        series.fetch.observe(took);
        series.failures += u64::from(failed);
    }

    /// Counts a finished sync; `Running` is not a result and is ignored.
    pub fn count_sync(&self, result: SyncResult) {
        if let Some(i) = SYNC_RESULTS.iter().position(|r| *r == result) {
            self.syncs[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one render of an App's revision by whether it ran.
    pub fn count_render(&self, result: RenderResult) {
        if let Some(i) = RENDER_RESULTS.iter().position(|r| *r == result) {
            self.renders[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a drift event on `app` by what was done about it; `managers`
    /// are the field managers that made the change, the first one names it.
    pub fn count_drift(&self, app: &str, managers: &[String], action: DriftAction) {
        let Some(i) = DRIFT_ACTIONS.iter().position(|a| *a == action) else {
            return;
        };
        self.drift[i].fetch_add(1, Ordering::Relaxed);
        let manager = managers.first().map_or(UNKNOWN_MANAGER, String::as_str);
        let mut apps = lock(&self.apps);
        let series = apps.entry(app.to_owned()).or_default();
        let known = series.drift.keys().any(|(m, _)| m == manager);
        let distinct = {
            let mut names: Vec<&str> = series.drift.keys().map(|(m, _)| m.as_str()).collect();
            names.dedup();
            names.len()
        };
        let manager = if known || distinct < MAX_MANAGERS_PER_APP {
            manager
        } else {
            OTHER_MANAGER
        };
        *series.drift.entry((manager.to_owned(), i)).or_default() += 1;
    }

    /// Drops every series of an App removed from the config.
    pub fn forget_app(&self, app: &str) {
        lock(&self.apps).remove(app);
    }

    /// Drops every series of a GitSource removed from the config.
    pub fn forget_source(&self, source: &str) {
        lock(&self.sources).remove(source);
    }

    /// Sets the number of Apps waiting for a worker.
    pub fn set_queue_depth(&self, depth: usize) {
        self.queue_depth.store(depth as u64, Ordering::Relaxed);
    }

    /// Renders every series in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        // An unreadable store leaves the per-App state out of this scrape only.
        let apps = self.store.get().and_then(|s| s.apps().ok());
        self.render_with(apps.as_deref())
    }

    /// Renders with `apps` as the per-App state; when given, per-App
    /// histograms and counters of Apps not among them are left out.
    fn render_with(&self, apps: Option<&[Named<AppStatus>]>) -> String {
        let mut out = String::new();
        self.render_engine(&mut out);
        if let Some(apps) = apps {
            render_app_states(&mut out, apps);
        }
        self.render_app_series(&mut out, apps);
        self.render_sources(&mut out);
        self.render_notifiers(&mut out);
        out
    }

    /// Notifications per Notifier, by what became of them.
    fn render_notifiers(&self, out: &mut String) {
        let name = "driftless_notifications_total";
        let help = "Notifications by Notifier and result: delivered, failed (given up on), \
                    dropped (queue full), deduplicated (a failure told already).";
        header(out, name, "counter", help);
        let statuses = self
            .notifiers
            .get()
            .map(|d| d.statuses())
            .unwrap_or_default();
        for (notifier, s) in statuses {
            for (result, n) in [
                ("delivered", s.delivered),
                ("failed", s.failed),
                ("dropped", s.dropped),
                ("deduplicated", s.deduplicated),
            ] {
                let l = labels(&[("notifier", &notifier), ("result", result)]);
                sample(out, name, &l, n);
            }
        }
    }

    /// The engine-wide families, unlabelled by App.
    fn render_engine(&self, out: &mut String) {
        let name = "driftless_reconcile_duration_seconds";
        header(out, name, "histogram", "Time to reconcile one App.");
        self.reconcile.render(out, name, "");
        let name = "driftless_fetch_duration_seconds";
        header(out, name, "histogram", "Time to fetch one GitSource.");
        self.fetch.render(out, name, "");
        let name = "driftless_syncs_total";
        header(out, name, "counter", "Finished syncs by result.");
        for (result, n) in SYNC_RESULTS.iter().zip(&self.syncs) {
            let l = labels(&[("result", &format!("{result:?}"))]);
            sample(out, name, &l, n.load(Ordering::Relaxed));
        }
        let name = "driftless_renders_total";
        let help = "Renders of an App's revision: run, reused from the render cache, failed.";
        header(out, name, "counter", help);
        for (result, n) in RENDER_RESULTS.iter().zip(&self.renders) {
            let l = labels(&[("result", &format!("{result:?}"))]);
            sample(out, name, &l, n.load(Ordering::Relaxed));
        }
        let name = "driftless_status_writes_total";
        let help = "Statuses written to custom resources (in-cluster mode).";
        header(out, name, "counter", help);
        sample(out, name, "", self.status_writes.load(Ordering::Relaxed));
        let name = "driftless_drift_events_total";
        let help = "Drift seen on live objects, by action taken.";
        header(out, name, "counter", help);
        for (action, n) in DRIFT_ACTIONS.iter().zip(&self.drift) {
            let l = labels(&[("action", &format!("{action:?}"))]);
            sample(out, name, &l, n.load(Ordering::Relaxed));
        }
        let name = "driftless_kube_requests_total";
        let help =
            "Requests sent to Kubernetes API servers, by HTTP method (watches and lists are GET).";
        header(out, name, "counter", help);
        let counts = driftless_kube::requests::counts();
        for (method, n) in driftless_kube::requests::METHODS.iter().zip(counts) {
            sample(out, name, &labels(&[("method", method)]), n);
        }
        let name = "driftless_queue_depth";
        header(out, name, "gauge", "Apps waiting for a worker.");
        sample(out, name, "", self.queue_depth.load(Ordering::Relaxed));
    }

    /// Per-App reconcile histograms and drift counters.
    fn render_app_series(&self, out: &mut String, known: Option<&[Named<AppStatus>]>) {
        let apps = lock(&self.apps);
        let shown = || {
            apps.iter()
                .filter(|(app, _)| known.is_none_or(|k| k.iter().any(|s| &s.name == *app)))
        };
        let name = "driftless_app_reconcile_duration_seconds";
        header(out, name, "histogram", "Time to reconcile the App.");
        for (app, series) in shown() {
            series.reconcile.render(out, name, &labels(&[("app", app)]));
        }
        let name = "driftless_app_drift_events_total";
        let help = "Drift seen on the App's objects, by field manager and action taken.";
        header(out, name, "counter", help);
        for (app, series) in shown() {
            for ((manager, action), n) in &series.drift {
                let action = format!("{:?}", DRIFT_ACTIONS[*action]);
                let l = labels(&[("app", app), ("manager", manager), ("action", &action)]);
                sample(out, name, &l, n);
            }
        }
    }

    /// Per-GitSource fetch histograms and failure counters.
    fn render_sources(&self, out: &mut String) {
        let sources = lock(&self.sources);
        let name = "driftless_source_fetch_duration_seconds";
        header(out, name, "histogram", "Time to fetch the GitSource.");
        for (source, series) in sources.iter() {
            series
                .fetch
                .render(out, name, &labels(&[("source", source)]));
        }
        let name = "driftless_source_fetch_failures_total";
        header(out, name, "counter", "Failed fetches of the GitSource.");
        for (source, series) in sources.iter() {
            sample(out, name, &labels(&[("source", source)]), series.failures);
        }
    }
}

/// Conditions, sync, health and last apply of each App, one series per
/// possible value with 1 on the current one.
fn render_app_states(out: &mut String, apps: &[Named<AppStatus>]) {
    let name = "driftless_app_condition";
    let help = "The App's conditions: 1 on the series of the current status.";
    header(out, name, "gauge", help);
    for Named { name: app, status } in apps {
        let ready = find_condition(&status.conditions, READY);
        let unknown_ready = ready.is_none().then_some((READY, ConditionStatus::Unknown));
        let conditions = status
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status))
            .chain(unknown_ready);
        for (kind, current) in conditions {
            for value in ConditionStatus::ALL {
                let l = labels(&[("app", app), ("type", kind), ("status", value.as_str())]);
                sample(out, name, &l, u8::from(value == current));
            }
        }
    }
    let name = "driftless_app_sync";
    header(
        out,
        name,
        "gauge",
        "Whether the App matches Git: 1 on the current status.",
    );
    for Named { name: app, status } in apps {
        for state in SyncStatus::ALL {
            let l = labels(&[("app", app), ("status", state.as_str())]);
            sample(out, name, &l, u8::from(state == status.sync));
        }
    }
    let name = "driftless_app_health";
    header(
        out,
        name,
        "gauge",
        "The App's aggregated health: 1 on the current status.",
    );
    for Named { name: app, status } in apps {
        for health in HealthStatus::ALL {
            let l = labels(&[("app", app), ("status", health.as_str())]);
            sample(out, name, &l, u8::from(health == status.health));
        }
    }
    let name = "driftless_app_last_applied_timestamp_seconds";
    let help = "When the App last applied a revision, in seconds since the Unix epoch.";
    header(out, name, "gauge", help);
    for Named { name: app, status } in apps {
        if let Some(time) = status.last_sync_time {
            sample(
                out,
                name,
                &labels(&[("app", app)]),
                time.unix_ms() as f64 / 1000.0,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Condition;
    use driftless_api::Time;

    fn has(text: &str, line: &str) {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }

    #[test]
    fn renders_cumulative_buckets_and_counters() {
        let m = Metrics::default();
        m.observe_reconcile("web", Duration::from_millis(30));
        m.observe_reconcile("web", Duration::from_secs(2));
        m.count_sync(SyncResult::Succeeded);
        m.count_sync(SyncResult::Succeeded);
        m.count_sync(SyncResult::Running);
        m.count_drift("web", &[], DriftAction::Reverted);
        m.count_render(RenderResult::Rendered);
        m.count_render(RenderResult::Reused);
        m.count_render(RenderResult::Reused);
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
            "driftless_renders_total{result=\"Rendered\"} 1",
            "driftless_renders_total{result=\"Reused\"} 2",
            "driftless_renders_total{result=\"Failed\"} 0",
            "driftless_queue_depth 7",
            "driftless_app_reconcile_duration_seconds_bucket{app=\"web\",le=\"0.05\"} 1",
            "driftless_app_reconcile_duration_seconds_count{app=\"web\"} 2",
            "driftless_app_drift_events_total{app=\"web\",manager=\"unknown\",action=\"Reverted\"} 1",
        ] {
            has(&text, line);
        }
    }

    #[test]
    fn app_state_has_one_series_per_value_and_escaped_names() {
        let mut app = Named::new("we\"b", AppStatus::default());
        app.status.sync = SyncStatus::Synced;
        app.status.health = HealthStatus::Degraded;
        app.status.last_sync_time = Some(Time::from_unix_ms(1_700_000_000_500));
        let ready = Condition::new(READY, ConditionStatus::False, "Degraded", "");
        app.status.conditions.push(ready);
        let fresh = Named::new("fresh", AppStatus::default());
        let text = Metrics::default().render_with(Some(&[app, fresh]));
        for line in [
            r#"driftless_app_condition{app="we\"b",type="Ready",status="True"} 0"#,
            r#"driftless_app_condition{app="we\"b",type="Ready",status="False"} 1"#,
            r#"driftless_app_condition{app="we\"b",type="Ready",status="Unknown"} 0"#,
            r#"driftless_app_condition{app="fresh",type="Ready",status="Unknown"} 1"#,
            r#"driftless_app_sync{app="we\"b",status="Synced"} 1"#,
            r#"driftless_app_sync{app="we\"b",status="OutOfSync"} 0"#,
            r#"driftless_app_sync{app="fresh",status="Unknown"} 1"#,
            r#"driftless_app_health{app="we\"b",status="Degraded"} 1"#,
            r#"driftless_app_health{app="we\"b",status="Healthy"} 0"#,
            r#"driftless_app_last_applied_timestamp_seconds{app="we\"b"} 1700000000.5"#,
        ] {
            has(&text, line);
        }
        assert!(
            !text.contains(r#"driftless_app_last_applied_timestamp_seconds{app="fresh"}"#),
            "an App that never applied has no timestamp:\n{text}"
        );
    }

    #[test]
    fn drift_managers_are_capped_per_app() {
        let m = Metrics::default();
        for i in 0..MAX_MANAGERS_PER_APP + 3 {
            m.count_drift("web", &[format!("m{i}")], DriftAction::Reported);
        }
        // A manager seen before the cap keeps its own series.
        m.count_drift("web", &["m0".to_owned()], DriftAction::Reverted);
        m.count_drift("api", &["m99".to_owned()], DriftAction::Reported);
        let text = m.render();
        let managers: std::collections::BTreeSet<&str> = text
            .lines()
            .filter(|l| l.starts_with("driftless_app_drift_events_total{app=\"web\""))
            .filter_map(|l| l.split("manager=\"").nth(1)?.split('"').next())
            .collect();
        assert_eq!(managers.len(), MAX_MANAGERS_PER_APP + 1, "{managers:?}");
        has(
            &text,
            "driftless_app_drift_events_total{app=\"web\",manager=\"other\",action=\"Reported\"} 3",
        );
        has(
            &text,
            "driftless_app_drift_events_total{app=\"web\",manager=\"m0\",action=\"Reverted\"} 1",
        );
        has(
            &text,
            "driftless_app_drift_events_total{app=\"api\",manager=\"m99\",action=\"Reported\"} 1",
        );
    }

    #[test]
    fn forgotten_and_unknown_apps_and_sources_lose_their_series() {
        let m = Metrics::default();
        m.observe_reconcile("gone", Duration::from_millis(1));
        m.observe_reconcile("stale", Duration::from_millis(1));
        m.observe_reconcile("kept", Duration::from_millis(1));
        m.observe_fetch("old", Duration::from_millis(1), true);
        m.observe_fetch("repo", Duration::from_millis(1), true);
        m.observe_fetch("repo", Duration::from_millis(1), false);
        m.forget_app("gone");
        m.forget_source("old");
        let text = m.render_with(Some(&[Named::new("kept", AppStatus::default())]));
        has(
            &text,
            "driftless_app_reconcile_duration_seconds_count{app=\"kept\"} 1",
        );
        has(
            &text,
            "driftless_source_fetch_duration_seconds_count{source=\"repo\"} 2",
        );
        has(
            &text,
            "driftless_source_fetch_failures_total{source=\"repo\"} 1",
        );
        for gone in ["app=\"gone\"", "app=\"stale\"", "source=\"old\""] {
            assert!(!text.contains(gone), "{gone} is still rendered:\n{text}");
        }
    }
}
