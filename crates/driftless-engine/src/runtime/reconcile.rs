//! One reconcile of one App: revision → snapshot → render (cached) → apply by
//! waves with prune and health → record.
//!
//! What to do is decided by the pure functions of [`super::plan`]; this
//! module carries the decisions out. Nothing is applied or pruned after a
//! failed fetch or render. An interval or dependency run whose rendered set
//! and revision equal the last applied ones only refreshes health: the drift
//! watch reports changes in between.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use driftless_api::history::{ChartRevision, RemoteRevision};
use driftless_api::{App, Config};
use driftless_kube::{HealthStatus, ObjectHealth, ObjectRef};
use driftless_render::ObjectSet;
use driftless_source::Revision;

use super::clusters::Cluster;
use super::drift::Adoptions;
use super::error::{Reason, ReconcileError};
use super::outcome::{Entry, Tally, counts, prune_withheld_message, short};
use super::plan::{self, AfterRender, AppSource, Start};
use super::render::RenderedApp;
use super::sources::Origin;
use super::{Applied, Inner, lock, sync_control};
use crate::deps::{AppNode, DependencyState, Gate, gate};
use crate::queue::{Job, Outcome};
use crate::store::{
    AppStatus, Condition, ConditionStatus, ResourceStatus, SyncOutcome, SyncResult, SyncStatus,
    SyncTrigger,
};
use driftless_api::Time;
use driftless_api::status::{PINNED, READY, RECONCILING, STALLED, set_condition};

/// How soon health is read again while objects are still progressing; the
/// delay doubles on each look up to [`HEALTH_RECHECK_MAX`].
const HEALTH_RECHECK: Duration = Duration::from_secs(2);
/// The longest delay between health looks at a progressing App.
const HEALTH_RECHECK_MAX: Duration = Duration::from_secs(30);

/// What one reconcile works from.
pub(crate) struct Run<'a> {
    pub(crate) config: &'a Config,
    pub(crate) app: &'a App,
    /// The App's status when the reconcile began.
    pub(crate) status: &'a AppStatus,
    pub(crate) job: &'a Job,
}

impl Run<'_> {
    pub(crate) fn name(&self) -> &str {
        self.app.name()
    }
}

impl Inner {
    pub(crate) async fn reconcile(self: &Arc<Self>, job: &Job) -> Outcome {
        let config = self.config();
        let name = job.key.as_str();
        let Some(app) = config.app(name).cloned() else {
            return Outcome::Succeeded;
        };
        let status = match self.store.app(name) {
            Ok(status) => status.unwrap_or_default(),
            Err(e) => {
                tracing::error!(app = %name, "{e}");
                return Outcome::Failed;
            }
        };
        let run = Run {
            config: &config,
            app: &app,
            status: &status,
            job,
        };
        match self.reconcile_app(&run).await {
            Ok(outcome) => outcome,
            Err(e) => self.fail(&run, &e),
        }
    }

    async fn reconcile_app(self: &Arc<Self>, run: &Run<'_>) -> Result<Outcome, ReconcileError> {
        let name = run.name();
        // Never fall back to a cluster for an App meant for hosts.
        if run.app.spec.destination.hosts.is_some() {
            return self.reconcile_hosts(run).await;
        }
        let Some((origin, revision)) = self.revision_to_sync(run).await? else {
            return Ok(Outcome::Succeeded);
        };
        let held = self.watch_windows(run).await;
        let cluster = self
            .cluster(run.config, run.app.spec.destination.cluster.as_deref())
            .await?;
        let rendered_app = self
            .render_recorded(run, &cluster.target, &origin, &revision)
            .await?;
        if sync_control::previews(run.app, run.job.trigger) {
            return self.preview(run, &cluster, &revision, &rendered_app).await;
        }
        let RenderedApp {
            set,
            remotes,
            chart,
            ..
        } = rendered_app;
        let rendered = Applied::new(&revision.sha, chart.as_ref(), set.digest());
        let last = lock(&self.applied).get(name).cloned();
        match plan::after_render(run.job.trigger, run.status, last.as_ref(), &rendered) {
            AfterRender::RefreshHealth => {
                self.refresh_health(run, &cluster).await?;
                Ok(Outcome::Succeeded)
            }
            AfterRender::Advance { release_dependents } => {
                let entry = Entry::new(&revision, run.job.trigger).with_chart(chart.as_ref());
                self.advance(run, entry, rendered, release_dependents);
                Ok(Outcome::Succeeded)
            }
            AfterRender::Apply { record } => {
                if let Some(hold) = self.apply_hold(run, held) {
                    self.note_held(run, &hold, &revision);
                    return Ok(Outcome::Succeeded);
                }
                self.use_override(run);
                let sync = (&revision, &remotes[..], chart.as_ref());
                self.apply(run, &cluster, sync, &set, record).await
            }
        }
    }

    /// The fetch spec and revision a reconcile syncs; `None` when it stops
    /// here: suspended, waiting for its source, or held back by a dependency.
    pub(crate) async fn revision_to_sync(
        self: &Arc<Self>,
        run: &Run<'_>,
    ) -> Result<Option<(Origin, Revision)>, ReconcileError> {
        let latest = self.source_revision(&run.app.spec.source_ref);
        let start = plan::start(
            run.config,
            run.app,
            run.status,
            latest.as_ref(),
            run.job.trigger,
        )?;
        let Some((origin, revision)) = self.begin(run.name(), start).await? else {
            return Ok(None);
        };
        if self.blocked(run, &revision.sha) {
            return Ok(None);
        }
        Ok(Some((origin, revision)))
    }

    /// Whether an App it depends on holds it back from `sha`; shows why.
    fn blocked(&self, run: &Run<'_>, sha: &str) -> bool {
        let Gate::Blocked { reason, .. } = self.gate(run.config, run.app, sha) else {
            return false;
        };
        self.update(run.name(), |s| {
            set_condition(
                &mut s.conditions,
                Condition::new(
                    READY,
                    ConditionStatus::False,
                    Reason::DependencyNotReady.as_str(),
                    &reason,
                ),
            );
        });
        true
    }

    /// Carries out the start decision: the suspension, or the fetch spec
    /// and the revision to sync.
    pub(crate) async fn begin(
        self: &Arc<Self>,
        name: &str,
        start: Start<'_>,
    ) -> Result<Option<(Origin, Revision)>, ReconcileError> {
        match start {
            Start::Suspend => {
                // Drift is still reported, but nothing is reverted.
                self.clusters.set_self_heal(name, false).await;
                self.update(name, |s| {
                    s.health = HealthStatus::Suspended;
                    let why = "reconciliation is suspended";
                    set_condition(
                        &mut s.conditions,
                        Condition::new(
                            READY,
                            ConditionStatus::False,
                            Reason::Suspended.as_str(),
                            why,
                        ),
                    );
                });
                Ok(None)
            }
            Start::AwaitSource => Ok(None),
            Start::Follow { source, revision } => {
                let origin = match source {
                    AppSource::Git(git) => Origin::Git(self.source_spec(git).await?),
                    AppSource::Oci(oci) => Origin::Oci {
                        origin: self.oci_origin(oci).await?,
                        source: Box::new(oci.clone()),
                    },
                };
                Ok(Some((origin, revision.clone())))
            }
            Start::Fetch { source, pin } => {
                let commit = pin.map(|p| p.sha.as_str());
                let (origin, mut revision) = match source {
                    AppSource::Git(git) => {
                        let (spec, revision) = self.fetch(git, commit).await?;
                        (Origin::Git(spec), revision)
                    }
                    AppSource::Oci(oci) => {
                        let (origin, revision) = self.resolve_oci(oci, commit).await?;
                        let source = Box::new(oci.clone());
                        (Origin::Oci { source, origin }, revision)
                    }
                };
                if let Some(pin) = pin {
                    // A fetch by commit knows no ref; keep the one the pin was made from.
                    revision.reference.clone_from(&pin.ref_label);
                }
                Ok(Some((origin, revision)))
            }
        }
    }

    /// Shows why a reconcile stopped. Once the retry limit is reached the
    /// App is stalled: the interval and new revisions still run it.
    fn fail(&self, run: &Run<'_>, err: &ReconcileError) -> Outcome {
        let name = run.name();
        let (reason, message) = (err.reason(), err.to_string());
        tracing::warn!(app = %name, reason = %reason, "{reason}: {message}");
        let failures = run.job.failures;
        let stalled = plan::stalls(run.app.spec.retry.limit, failures);
        let generation = run.app.metadata.generation;
        self.update(name, |s| {
            s.last_error = Some(message.clone());
            s.sync = SyncStatus::OutOfSync;
            s.observed_generation = generation;
            s.conditions.retain(|c| c.type_ != RECONCILING);
            set_condition(
                &mut s.conditions,
                Condition::new(READY, ConditionStatus::False, reason.as_str(), &message),
            );
            if stalled {
                let why = format!("gave up after {} attempts", failures + 1);
                let limit = Reason::RetryLimitReached.as_str();
                set_condition(
                    &mut s.conditions,
                    Condition::new(STALLED, ConditionStatus::True, limit, &why),
                );
            }
        });
        if stalled {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        }
    }

    /// Renders `revision`; a failure is recorded in the history (once per
    /// revision) and as the last attempt.
    async fn render_recorded(
        self: &Arc<Self>,
        run: &Run<'_>,
        target: &driftless_kube::Target,
        origin: &Origin,
        revision: &Revision,
    ) -> Result<RenderedApp, ReconcileError> {
        let name = run.name();
        let failure = match self.render(run.app, target, origin, revision).await {
            Ok(rendered) => return Ok(rendered),
            Err(failure) => failure,
        };
        let entry = Entry::new(revision, run.job.trigger);
        if plan::records_render_failure(run.job.failures, run.status, &revision.sha) {
            self.record_failure(name, &entry.start, &failure.to_string());
        }
        self.update(name, |s| s.last_attempted = Some(entry.start.revision));
        Err(failure)
    }

    /// Reads the health of the objects last applied: from the watches, which
    /// see every change of a managed object, or from the cluster for objects
    /// they have not seen.
    pub(crate) async fn refresh_health(
        self: &Arc<Self>,
        run: &Run<'_>,
        cluster: &Cluster,
    ) -> Result<(), ReconcileError> {
        let name = run.name();
        let objects: Vec<ObjectRef> = run.status.resources.iter().filter_map(object_ref).collect();
        let health = match cluster.watch.cached_health(name, &objects) {
            Some(health) => health,
            None => driftless_kube::assess_objects(&cluster.target, &objects)
                .await
                .map_err(|e| cluster.health_failed(e))?,
        };
        self.record_health(run.config, name, &health, None);
        Ok(())
    }

    /// Moves the App to `revision` without touching the cluster: it renders
    /// exactly the live objects.
    fn advance(&self, run: &Run<'_>, entry: Entry, rendered: Applied, dependents: bool) {
        let name = run.name();
        lock(&self.applied).insert(name.to_owned(), rendered);
        self.update(name, |s| {
            s.last_applied = Some(entry.start.revision.clone());
            s.last_attempted = Some(entry.start.revision);
        });
        if dependents {
            self.trigger_dependents(run.config, name);
        }
    }

    /// Applies `set` by waves with prune and health, and records the sync:
    /// from the start when `record`, else only if it changes something or fails.
    async fn apply(
        self: &Arc<Self>,
        run: &Run<'_>,
        cluster: &Cluster,
        (revision, remotes, chart): (&Revision, &[RemoteRevision], Option<&ChartRevision>),
        set: &ObjectSet,
        record: bool,
    ) -> Result<Outcome, ReconcileError> {
        let name = run.name();
        let mut entry = Entry::new(revision, run.job.trigger).with_chart(chart);
        entry.start.remotes = remotes.to_vec();
        let applying = format!("applying {}", short(&revision.sha));
        self.update(name, |s| {
            let reason = Reason::Progressing.as_str();
            set_condition(
                &mut s.conditions,
                Condition::new(RECONCILING, ConditionStatus::True, reason, &applying),
            );
        });
        if record {
            entry.id = Some(self.store.begin_sync(name, entry.start.clone())?.id);
            tracing::info!(
                app = %name,
                revision = %revision.sha,
                trigger = ?run.job.trigger,
                "syncing {}@sha1:{} ({}, {:?})",
                revision.reference,
                revision.sha,
                revision.subject,
                run.job.trigger
            );
        }
        let objects: Vec<serde_json::Value> = set.iter().cloned().collect();
        let mut apply_opts = self.apply_options(run.app);
        apply_opts.hooks = plan::hook_runs(run.job.trigger);
        let tally = Tally::default();
        let adoptions = Adoptions::default();
        let progress = |event: driftless_kube::ApplyEvent| {
            tally.note(&event);
            adoptions.note(event);
        };
        // A user's sync through a window leaves self-heal off while it holds.
        let held = self
            .store
            .app(name)
            .ok()
            .flatten()
            .is_some_and(|s| s.held.is_some());
        let self_heal = sync_control::heals(run.app) && !held;
        let result = tokio::select! {
            r = cluster.watch.apply(&objects, &apply_opts, self_heal, &progress) => Some(r),
            () = run.job.cancel.cancelled() => None,
        };
        // Whatever the result: objects taken over before a failure stay taken.
        let adopted = adoptions.record(self, name);
        let report = match result {
            None => {
                let why = "stopped: a newer revision or a shutdown preempted it".to_owned();
                let outcome = SyncOutcome {
                    result: SyncResult::Interrupted,
                    counts: tally.counts(),
                    error: Some(why),
                    adopted,
                    hosts: Vec::new(),
                    hooks: tally.hooks(),
                };
                self.close(name, &entry, outcome);
                return Ok(Outcome::Cancelled);
            }
            Some(Err(e)) => {
                let err = cluster.apply_failed(e);
                let outcome = SyncOutcome {
                    result: SyncResult::Failed,
                    counts: tally.counts(),
                    error: Some(err.to_string()),
                    adopted,
                    hosts: Vec::new(),
                    hooks: tally.hooks(),
                };
                self.close(name, &entry, outcome);
                self.update(name, |s| s.last_attempted = Some(entry.start.revision));
                return Err(err);
            }
            Some(Ok(report)) => report,
        };
        let outcome = SyncOutcome {
            result: SyncResult::Succeeded,
            counts: counts(&report),
            error: None,
            adopted,
            hosts: Vec::new(),
            hooks: report.hooks.clone(),
        };
        let recorded = self.close(name, &entry, outcome);
        let rendered = Applied::new(&revision.sha, chart, set.digest());
        lock(&self.applied).insert(name.to_owned(), rendered);
        if recorded {
            let c = counts(&report);
            tracing::info!(
                app = %name,
                revision = %revision.sha,
                created = c.created,
                updated = c.updated,
                unchanged = c.unchanged,
                deleted = c.deleted,
                "synced {}: {} created, {} updated, {} unchanged, {} deleted",
                short(&revision.sha),
                c.created,
                c.updated,
                c.unchanged,
                c.deleted
            );
        }
        // Without a wait, the health the apply saw in its writes' responses.
        let health = if report.health.is_empty() {
            &report.observed
        } else {
            &report.health
        };
        self.record_health(run.config, name, health, Some(&entry.start.revision));
        if plan::prune_withheld(report.empty_set_not_pruned, run.status) {
            self.note_prune_withheld(name, &run.app.spec.path, &revision.sha, run.status);
        }
        Ok(Outcome::Succeeded)
    }

    /// Marks an App whose empty render pruned nothing: the objects of
    /// earlier syncs are live and still its own, so it is not in sync.
    fn note_prune_withheld(&self, name: &str, path: &str, sha: &str, before: &AppStatus) {
        let message = prune_withheld_message(path, sha, before.resources.len());
        tracing::warn!(app = %name, revision = %sha, "{message}");
        self.update(name, |s| {
            s.sync = SyncStatus::OutOfSync;
            s.resources.clone_from(&before.resources);
            let reason = Reason::PruneWithheld.as_str();
            set_condition(
                &mut s.conditions,
                Condition::new(READY, ConditionStatus::False, reason, &message),
            );
        });
    }

    fn gate(&self, config: &Config, app: &App, sha: &str) -> Gate {
        let node = AppNode {
            name: app.name().to_owned(),
            source: app.spec.source_ref.name.clone(),
            depends_on: app.spec.depends_on.clone(),
        };
        gate(&node, sha, |dep| {
            let status = self.store.app(dep).ok().flatten()?;
            Some(DependencyState {
                source: config.app(dep)?.spec.source_ref.name.clone(),
                health: status.health,
                applied_sha: status.last_applied.map(|r| r.sha),
            })
        })
    }

    /// Writes health (and, after a sync, the applied revision) into the
    /// App's status; schedules another look while objects progress, and lets
    /// dependents go once the App is Healthy.
    fn record_health(
        self: &Arc<Self>,
        config: &Config,
        name: &str,
        objects: &[ObjectHealth],
        synced: Option<&crate::store::Revision>,
    ) {
        let health = driftless_kube::aggregate(objects.iter().map(|o| &o.health));
        let before = self.store.app(name).ok().flatten().map(|s| s.health);
        let latest = config
            .app(name)
            .and_then(|a| self.source_revision(&a.spec.source_ref))
            .map(|r| r.sha);
        let generation = config.app(name).and_then(|a| a.metadata.generation);
        self.update(name, |s| {
            s.observed_generation = generation;
            if health == HealthStatus::Progressing {
                let reason = Reason::Progressing.as_str();
                let message = "waiting for the objects to become healthy";
                set_condition(
                    &mut s.conditions,
                    Condition::new(RECONCILING, ConditionStatus::True, reason, message),
                );
            } else {
                s.conditions.retain(|c| c.type_ != RECONCILING);
            }
            let withheld = s
                .conditions
                .iter()
                .any(|c| c.type_ == READY && c.reason == Reason::PruneWithheld.as_str());
            if withheld && synced.is_none() {
                // A health refresh of the same empty render: the objects
                // prune left are still live, and still not what Git says.
                s.health = health;
                s.resources = objects.iter().map(resource_status).collect();
                return;
            }
            // A health refresh compares nothing with Git: drift the watches
            // found since the last apply (self-heal off) stays shown until a
            // sync.
            let drifted: HashSet<(String, String, String)> = match synced {
                Some(_) => HashSet::new(),
                None => s
                    .resources
                    .iter()
                    .filter(|r| r.sync == SyncStatus::OutOfSync)
                    .map(|r| (r.kind.clone(), r.namespace.clone(), r.name.clone()))
                    .collect(),
            };
            if let Some(rev) = synced {
                s.pending = None;
                let rev = rev.clone();
                s.last_applied = Some(rev.clone());
                s.last_attempted = Some(rev);
                s.last_sync_time = Some(Time::now());
            }
            s.sync = SyncStatus::Synced;
            show_pin(s, latest.as_deref());
            s.last_error = None;
            s.health = health;
            s.resources = objects.iter().map(resource_status).collect();
            if !drifted.is_empty() {
                for resource in &mut s.resources {
                    let key = (
                        resource.kind.clone(),
                        resource.namespace.clone(),
                        resource.name.clone(),
                    );
                    if drifted.contains(&key) {
                        resource.sync = SyncStatus::OutOfSync;
                        s.sync = SyncStatus::OutOfSync;
                    }
                }
            }
            s.conditions.retain(|c| c.type_ != STALLED);
            let (status, reason, message) = match health {
                HealthStatus::Healthy => (
                    ConditionStatus::True,
                    Reason::ReconciliationSucceeded,
                    "applied and healthy".to_owned(),
                ),
                HealthStatus::Progressing => (
                    ConditionStatus::False,
                    Reason::Progressing,
                    unhealthy(objects),
                ),
                _ => (
                    ConditionStatus::False,
                    Reason::HealthCheckFailed,
                    unhealthy(objects),
                ),
            };
            set_condition(
                &mut s.conditions,
                Condition::new(READY, status, reason.as_str(), &message),
            );
        });
        if health == HealthStatus::Progressing {
            let looks = {
                let mut rechecks = lock(&self.rechecks);
                let looks = rechecks.entry(name.to_owned()).or_default();
                // A new apply starts the sequence again.
                *looks = if synced.is_some() { 0 } else { *looks + 1 };
                *looks
            };
            let delay = HEALTH_RECHECK
                .saturating_mul(1 << looks.min(8))
                .min(HEALTH_RECHECK_MAX);
            let inner = Arc::downgrade(self);
            let name = name.to_owned();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Some(inner) = inner.upgrade() {
                    let _ = inner.queue.trigger(&name, SyncTrigger::Interval);
                }
            });
        }
        if health == HealthStatus::Healthy
            && (before != Some(HealthStatus::Healthy) || synced.is_some())
        {
            self.trigger_dependents(config, name);
        }
    }

    /// Lets the Apps that depend on `name` check their gate again.
    pub(crate) fn trigger_dependents(&self, config: &Config, name: &str) {
        for dependent in config.dependents_of(name) {
            let _ = self.queue.trigger(dependent, SyncTrigger::Dependency);
        }
    }

    /// Changes the App's stored status; errors are logged, not fatal.
    pub(crate) fn update(&self, name: &str, change: impl FnOnce(&mut AppStatus)) {
        let result = self.store.update_app(name, change);
        if let Err(e) = result {
            tracing::error!(app = %name, "updating status: {e}");
        }
    }

    /// Shows why an App cannot run yet (its source failed to fetch).
    pub(crate) fn note_waiting(&self, name: &str, message: &str) {
        self.update(name, |s| {
            s.last_error = Some(message.to_owned());
            set_condition(
                &mut s.conditions,
                Condition::new(
                    READY,
                    ConditionStatus::False,
                    Reason::FetchFailed.as_str(),
                    message,
                ),
            );
        });
    }
}

/// Shows the `Pinned` condition of an App a rollback pinned (out of sync
/// while Git is at another commit), or removes it.
pub(crate) fn show_pin(s: &mut AppStatus, latest: Option<&str>) {
    s.conditions.retain(|c| c.type_ != PINNED);
    let Some(pin) = s.pinned.clone() else {
        return;
    };
    // Loud on purpose: a pinned App does not follow Git.
    let git = latest.unwrap_or("unknown");
    if latest.is_some_and(|l| l != pin.sha) {
        s.sync = SyncStatus::OutOfSync;
    }
    // An artifact's revision is a digest; its source is an OCISource.
    let source = if pin.sha.starts_with("sha256:") {
        "the OCISource"
    } else {
        "Git"
    };
    let message = format!(
        "pinned to {} by a rollback while {source} is at {}; resume to follow {source}",
        short(&pin.sha),
        short(git)
    );
    set_condition(
        &mut s.conditions,
        Condition::new(
            PINNED,
            ConditionStatus::True,
            Reason::RolledBack.as_str(),
            &message,
        ),
    );
}

fn unhealthy(objects: &[ObjectHealth]) -> String {
    let bad: Vec<String> = objects
        .iter()
        .filter(|o| o.health.status != HealthStatus::Healthy)
        .map(|o| format!("{}: {}", o.object, o.health))
        .collect();
    bad.join("; ")
}

/// An object of an App whose health was just read after its apply (or with
/// no drift reported since): as Git says, until a drift event says otherwise.
fn resource_status(o: &ObjectHealth) -> ResourceStatus {
    let healthy = o.health.status == HealthStatus::Healthy;
    ResourceStatus {
        api_version: o.object.api_version(),
        kind: o.object.kind.clone(),
        namespace: o.object.namespace.clone().unwrap_or_default(),
        name: o.object.name.clone(),
        sync: SyncStatus::Synced,
        health: o.health.status,
        message: (!healthy && !o.health.message.is_empty()).then(|| o.health.message.clone()),
    }
}

pub(crate) fn object_ref(r: &ResourceStatus) -> Option<ObjectRef> {
    ObjectRef::from_object(&serde_json::json!({
        "apiVersion": r.api_version,
        "kind": r.kind,
        "metadata": {"name": r.name, "namespace": (!r.namespace.is_empty()).then_some(&r.namespace)},
    }))
    .ok()
}
