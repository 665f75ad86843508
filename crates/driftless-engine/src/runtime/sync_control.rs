//! Who starts an App's syncs, and when: the sync windows that hold automatic
//! syncs and self-heal (and users' syncs, unless a window allows them or
//! the user overrides it), and Apps whose syncs are manual, whose new
//! commits are compared with the cluster and shown instead of applied.

use std::sync::Arc;
use std::time::Duration;

use driftless_api::status::{READY, set_condition};
use driftless_api::{
    App, Config, SyncPolicy, SyncWindow, Time, WindowHold, next_window_change, window_hold,
    window_selects,
};
use driftless_source::Revision;

use super::clusters::Cluster;
use super::error::{Reason, ReconcileError};
use super::inspect::app_diff;
use super::outcome::short;
use super::reconcile::Run;
use super::render::RenderedApp;
use super::{Inner, lock};
use crate::queue::Outcome;
use crate::store::{Condition, ConditionStatus, SyncStatus, SyncTrigger};

/// A look at the windows waits this much past their change, so the clock
/// has surely passed it.
const LOOK_MARGIN: Duration = Duration::from_millis(250);

/// Whether changes made in the cluster to `app`'s objects are reverted.
pub(crate) fn heals(app: &App) -> bool {
    app.spec.self_heal && app.spec.sync_policy == SyncPolicy::Automatic
}

/// Whether the reconcile was asked for by a user (sync or rollback).
pub(crate) fn by_user(trigger: SyncTrigger) -> bool {
    matches!(trigger, SyncTrigger::Manual | SyncTrigger::Rollback)
}

/// Whether a reconcile of an App whose syncs are manual only compares.
pub(crate) fn previews(app: &App, trigger: SyncTrigger) -> bool {
    app.spec.sync_policy == SyncPolicy::Manual && !by_user(trigger)
}

/// The Apps of `new` that a SyncWindow added, changed or removed between
/// `old` and `new` selects (before or after the change): their holds must
/// be looked at again.
pub(crate) fn window_changes<'a>(old: &'a Config, new: &'a Config) -> Vec<&'a App> {
    let same = |a: &SyncWindow, b: &SyncWindow| {
        a.spec == b.spec
            && a.metadata.namespace == b.metadata.namespace
            && a.metadata.labels == b.metadata.labels
    };
    let mut changed: Vec<&SyncWindow> = Vec::new();
    for w in new.sync_windows() {
        match old.sync_windows().find(|o| o.name() == w.name()) {
            Some(o) if same(o, w) => {}
            Some(o) => changed.extend([o, w]),
            None => changed.push(w),
        }
    }
    changed.extend(
        old.sync_windows()
            .filter(|o| new.sync_windows().all(|w| w.name() != o.name())),
    );
    if changed.is_empty() {
        return Vec::new();
    }
    new.apps()
        .filter(|app| changed.iter().any(|w| window_selects(w, app)))
        .collect()
}

impl Inner {
    /// The hold the windows put on the App's automatic syncs now: shown in
    /// its status, with self-heal off while it lasts (and back on after);
    /// the next opening or closing of a window schedules another look.
    pub(crate) async fn watch_windows(self: &Arc<Self>, run: &Run<'_>) -> Option<WindowHold> {
        let name = run.name();
        let now = Time::now();
        let windows: Vec<&SyncWindow> = run.config.sync_windows().collect();
        let held = window_hold(windows.iter().copied(), run.app, now, false);
        if held.is_some() {
            self.clusters.set_self_heal(name, false).await;
        } else if run.status.held.is_some() {
            self.clusters.set_self_heal(name, heals(run.app)).await;
        }
        if held != run.status.held {
            self.update(name, |s| s.held.clone_from(&held));
        }
        if let Some(at) = next_window_change(windows.iter().copied(), run.app, now) {
            self.look_at_windows(name, at);
        }
        held
    }

    /// The hold on this reconcile's apply: the automatic one, or for a
    /// user's sync the windows' hold on manual syncs, unless overridden.
    pub(crate) fn apply_hold(
        &self,
        run: &Run<'_>,
        automatic: Option<WindowHold>,
    ) -> Option<WindowHold> {
        if !by_user(run.job.trigger) {
            return automatic;
        }
        if run.status.window_override {
            return None;
        }
        let windows = run.config.sync_windows();
        window_hold(windows, run.app, Time::now(), true)
    }

    /// Shows that `revision` waits for a window, and looks again when it opens.
    pub(crate) fn note_held(
        self: &Arc<Self>,
        run: &Run<'_>,
        hold: &WindowHold,
        revision: &Revision,
    ) {
        let name = run.name();
        let message = format!("revision {} waits: {hold}", short(&revision.sha));
        tracing::info!(app = %name, revision = %revision.sha, "{message}");
        self.update(name, |s| {
            s.held = Some(hold.clone());
            if s.last_applied
                .as_ref()
                .is_none_or(|r| r.sha != revision.sha)
            {
                s.sync = SyncStatus::OutOfSync;
            }
            let reason = Reason::SyncWindowClosed.as_str();
            set_condition(
                &mut s.conditions,
                Condition::new(READY, ConditionStatus::False, reason, &message),
            );
        });
        if let Some(opens) = hold.opens {
            self.look_at_windows(name, opens);
        }
    }

    /// Clears a user's override of the windows once the sync it asked for starts.
    pub(crate) fn use_override(&self, run: &Run<'_>) {
        if by_user(run.job.trigger) && run.status.window_override {
            tracing::info!(app = %run.name(), "a user's sync goes through the sync windows");
            self.update(run.name(), |s| s.window_override = false);
        }
    }

    /// Reconciles the App just after `at`, unless a look is already set for then.
    fn look_at_windows(self: &Arc<Self>, name: &str, at: Time) {
        {
            let mut looks = lock(&self.window_looks);
            if looks.get(name) == Some(&at) {
                return;
            }
            looks.insert(name.to_owned(), at);
        }
        let wait = Duration::from_millis(at.unix_ms().saturating_sub(Time::now().unix_ms()));
        let inner = Arc::downgrade(self);
        let name = name.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(wait + LOOK_MARGIN).await;
            let Some(inner) = inner.upgrade() else {
                return;
            };
            let due = {
                let mut looks = lock(&inner.window_looks);
                let due = looks.get(&name) == Some(&at);
                if due {
                    looks.remove(&name);
                }
                due
            };
            if due {
                let _ = inner.queue.trigger(&name, SyncTrigger::Interval);
            }
        });
    }

    /// Compares the rendered objects of an App whose syncs are manual with
    /// the cluster, and shows what a sync would change; applies nothing.
    pub(crate) async fn preview(
        self: &Arc<Self>,
        run: &Run<'_>,
        cluster: &Cluster,
        revision: &Revision,
        rendered: &RenderedApp,
    ) -> Result<Outcome, ReconcileError> {
        let name = run.name();
        if !run.status.resources.is_empty() {
            self.refresh_health(run, cluster).await?;
        }
        let objects: Vec<serde_json::Value> = rendered.set.iter().cloned().collect();
        let mut opts = self.apply_options(run.app);
        opts.masked_fields = rendered.encrypted.clone();
        let summary = driftless_kube::diff(&cluster.target, &objects, &opts)
            .await
            .map_err(|e| cluster.apply_failed(e))?;
        let pending = app_diff(revision.sha.clone(), summary).pending();
        if !pending.is_empty() && run.status.pending.as_ref() != Some(&pending) {
            tracing::info!(app = %name, revision = %revision.sha, "waiting for a sync: {pending}");
        }
        self.update(name, |s| {
            s.last_error = None;
            if pending.is_empty() {
                s.sync = SyncStatus::Synced;
                s.pending = None;
                return;
            }
            s.sync = SyncStatus::OutOfSync;
            let message = format!(
                "syncs are manual; a sync of {} would apply {pending}",
                short(&revision.sha)
            );
            let reason = Reason::ManualSyncPending.as_str();
            set_condition(
                &mut s.conditions,
                Condition::new(READY, ConditionStatus::False, reason, &message),
            );
            s.pending = Some(pending);
        });
        Ok(Outcome::Succeeded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(windows: &str) -> Config {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.yaml");
        let apps = "apiVersion: driftless.dev/v1alpha1
kind: GitSource
metadata: {name: repo}
spec: {url: 'https://example.invalid/repo.git', ref: {branch: main}}
---
apiVersion: driftless.dev/v1alpha1
kind: App
metadata: {name: web}
spec: {sourceRef: {name: repo}, path: web, destination: {namespace: web}}
---
apiVersion: driftless.dev/v1alpha1
kind: App
metadata: {name: db}
spec: {sourceRef: {name: repo}, path: db, destination: {namespace: db}}
";
        std::fs::write(&path, format!("{apps}{windows}")).expect("write");
        driftless_api::load_config(&path).expect("valid config")
    }

    fn window(name: &str, apps: &str, kind: &str) -> String {
        format!(
            "---
apiVersion: driftless.dev/v1alpha1
kind: SyncWindow
metadata: {{name: {name}}}
spec: {{kind: {kind}, schedule: '0 1 * * *', duration: 1h, apps: [{apps}]}}
"
        )
    }

    fn names(apps: Vec<&App>) -> Vec<&str> {
        apps.into_iter().map(App::name).collect()
    }

    #[test]
    fn a_window_that_appears_changes_or_goes_names_the_apps_it_selects() {
        let none = config("");
        let freeze = config(&window("freeze", "web", "deny"));
        assert_eq!(names(window_changes(&none, &none)), Vec::<&str>::new());
        assert_eq!(names(window_changes(&none, &freeze)), ["web"]);
        assert_eq!(names(window_changes(&freeze, &freeze)), Vec::<&str>::new());
        assert_eq!(names(window_changes(&freeze, &none)), ["web"]);
        // Moved to other Apps: those it held and those it holds now.
        let moved = config(&window("freeze", "db", "deny"));
        let mut both = names(window_changes(&freeze, &moved));
        both.sort_unstable();
        assert_eq!(both, ["db", "web"]);
        let allow = config(&window("freeze", "w*", "allow"));
        assert_eq!(names(window_changes(&freeze, &allow)), ["web"]);
    }
}
