//! One reconcile of one App: revision → snapshot → render (cached) → apply by
//! waves with prune and health → record.
//!
//! Nothing is applied or pruned after a failed fetch or render. An interval
//! or dependency run whose rendered set and revision equal the last applied
//! ones only refreshes health: the drift watch reports changes in between.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use driftless_api::{App, Config};
use driftless_kube::{ApplyReport, HealthStatus, ObjectHealth, ObjectRef};
use driftless_render::ObjectSet;
use driftless_source::Revision;

use super::clusters::{config_map, secret};
use super::drift::Adoptions;
use super::outcome::{PRUNE_WITHHELD, Tally, check_app_path, prune_withheld_message};
use super::sources::secret_namespace;
use super::{Applied, Inner, lock, spec};
use crate::deps::{AppNode, DependencyState, Gate, gate};
use crate::queue::{Job, Outcome};
use crate::store::{
    AppStatus, Condition, ConditionStatus, ObjectCounts, ResourceStatus, SyncOutcome, SyncResult,
    SyncStart, SyncStatus, SyncTrigger,
};
use driftless_api::Time;
use driftless_api::status::{PINNED, READY, STALLED, set_condition};

/// How soon health is read again while objects are still progressing; the
/// delay doubles on each look up to [`HEALTH_RECHECK_MAX`].
const HEALTH_RECHECK: Duration = Duration::from_secs(2);
/// The longest delay between health looks at a progressing App.
const HEALTH_RECHECK_MAX: Duration = Duration::from_secs(30);

/// Why a reconcile stopped early, with the condition reason it shows.
struct Stop {
    reason: &'static str,
    message: String,
}

fn stop(reason: &'static str) -> impl FnOnce(String) -> Stop {
    move |message| Stop { reason, message }
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
                self.log(&format!("App/{name}: {e}"));
                return Outcome::Failed;
            }
        };
        if app.spec.suspend || status.suspended {
            // Drift is still reported, but nothing is reverted.
            self.clusters.set_self_heal(name, false).await;
            self.update(name, |s| {
                s.health = HealthStatus::Suspended;
                set_condition(
                    &mut s.conditions,
                    Condition::new(
                        READY,
                        ConditionStatus::False,
                        "Suspended",
                        "reconciliation is suspended",
                    ),
                );
            });
            return Outcome::Succeeded;
        }
        match self.reconcile_app(&config, &app, &status, job).await {
            Ok(outcome) => outcome,
            Err(Stop { reason, message }) => {
                self.log(&format!("App/{name}: {reason}: {message}"));
                let limit = app.spec.retry.limit;
                let stalled = limit.is_some_and(|l| job.failures + 1 >= l);
                self.update(name, |s| {
                    s.last_error = Some(message.clone());
                    s.sync = SyncStatus::OutOfSync;
                    let ready = Condition::new(READY, ConditionStatus::False, reason, &message);
                    set_condition(&mut s.conditions, ready);
                    if stalled {
                        let why = format!("gave up after {} attempts", job.failures + 1);
                        let stalled = Condition::new(
                            STALLED,
                            ConditionStatus::True,
                            "RetryLimitReached",
                            why,
                        );
                        set_condition(&mut s.conditions, stalled);
                    }
                });
                if stalled {
                    // The interval and new revisions still run it.
                    Outcome::Succeeded
                } else {
                    Outcome::Failed
                }
            }
        }
    }

    async fn reconcile_app(
        self: &Arc<Self>,
        config: &Config,
        app: &App,
        status: &AppStatus,
        job: &Job,
    ) -> Result<Outcome, Stop> {
        let name = app.name();
        let source_name = &app.spec.source_ref.name;
        let source = config
            .git_source(source_name)
            .ok_or_else(|| format!("GitSource {source_name} is not declared"))
            .map_err(stop("SourceNotFound"))?;
        let pinned = status.pinned.as_ref().map(|p| p.sha.as_str());
        let known = self.revision(source_name);
        let (source_spec, revision) = match (pinned, known) {
            (None, Some(rev)) if job.trigger != SyncTrigger::Manual => {
                let spec = self
                    .source_spec(source)
                    .await
                    .map_err(stop("FetchFailed"))?;
                (spec, rev)
            }
            (None, None) if job.trigger != SyncTrigger::Manual => {
                // The source's first fetch triggers the App.
                return Ok(Outcome::Succeeded);
            }
            (pin, _) => {
                let (spec, mut rev) = self.fetch(source, pin).await.map_err(stop("FetchFailed"))?;
                if let Some(pinned) = &status.pinned {
                    // A fetch by commit knows no ref; keep the one the pin was made from.
                    rev.reference.clone_from(&pinned.ref_label);
                }
                (spec, rev)
            }
        };
        if let Gate::Blocked { reason, .. } = self.gate(config, app, &revision.sha) {
            self.update(name, |s| {
                let blocked =
                    Condition::new(READY, ConditionStatus::False, "DependencyNotReady", &reason);
                set_condition(&mut s.conditions, blocked);
            });
            return Ok(Outcome::Succeeded);
        }
        let cluster = self
            .cluster(config, app.spec.destination.cluster.as_deref())
            .await
            .map_err(stop("ClusterUnreachable"))?;
        let start = sync_start(&revision, job.trigger);
        let set = match self
            .render(app, &cluster.target, source_spec, &revision)
            .await
        {
            Ok(set) => set,
            Err(failure) => {
                // Retries of the same revision's failure are not recorded
                // again; a new revision that fails after a failure is.
                let retry = job.failures > 0
                    && status
                        .last_attempted
                        .as_ref()
                        .is_some_and(|r| r.sha == revision.sha);
                if !retry {
                    self.record_failure(name, &start, &failure.message);
                }
                self.update(name, |s| s.last_attempted = Some(start.revision.clone()));
                return Err(failure);
            }
        };
        let applied = Applied {
            sha: revision.sha.clone(),
            digest: set.digest().to_owned(),
        };
        let quiet = matches!(job.trigger, SyncTrigger::Interval | SyncTrigger::Dependency);
        let unchanged = lock(&self.applied).get(name) == Some(&applied);
        if quiet && unchanged && status.last_error.is_none() {
            let objects: Vec<ObjectRef> = status.resources.iter().filter_map(object_ref).collect();
            // The watches see every change of a managed object; the cluster
            // is asked only for objects they have not seen.
            let health = match cluster.watch.cached_health(name, &objects) {
                Some(health) => health,
                None => driftless_kube::assess_objects(&cluster.target, &objects)
                    .await
                    .map_err(|e| {
                        let (reason, message) = cluster.explain(&e, "HealthCheckFailed");
                        Stop { reason, message }
                    })?,
            };
            self.record_health(config, name, &health, None);
            return Ok(Outcome::Succeeded);
        }
        let same_objects = lock(&self.applied)
            .get(name)
            .is_some_and(|a| a.digest == applied.digest);
        let in_sync = status.sync == SyncStatus::Synced && status.last_error.is_none();
        let routine = matches!(
            job.trigger,
            SyncTrigger::Interval | SyncTrigger::Webhook | SyncTrigger::Dependency
        );
        if routine && same_objects && in_sync {
            // A new commit that renders exactly the live objects (it changed
            // other Apps): the App moves to it without touching the cluster.
            lock(&self.applied).insert(name.to_owned(), applied);
            self.update(name, |s| {
                s.last_applied = Some(start.revision.clone());
                s.last_attempted = Some(start.revision.clone());
            });
            if status.health == HealthStatus::Healthy {
                self.trigger_dependents(config, name);
            }
            return Ok(Outcome::Succeeded);
        }
        let objects: Vec<serde_json::Value> = set.iter().cloned().collect();
        // Re-applying the live revision (a restart, an interval, a push to
        // another branch) is recorded only if it changed something or failed.
        let live = status.last_applied.as_ref().map(|r| r.sha.as_str());
        let resync = live == Some(revision.sha.as_str())
            && !matches!(job.trigger, SyncTrigger::Manual | SyncTrigger::Rollback);
        let record = if resync {
            None
        } else {
            let record = self
                .store
                .begin_sync(name, start.clone())
                .map_err(|e| e.to_string())
                .map_err(stop("StoreFailed"))?;
            self.log(&format!(
                "App/{name}: syncing {}@sha1:{} ({}, {:?})",
                revision.reference, revision.sha, revision.subject, job.trigger
            ));
            Some(record.id)
        };
        let apply_opts = spec::apply_options(app);
        let tally = Tally::default();
        let adoptions = Adoptions::default();
        let progress = |event: driftless_kube::ApplyEvent| {
            tally.note(&event);
            adoptions.note(event);
        };
        let result = tokio::select! {
            r = cluster.watch.apply(&objects, &apply_opts, app.spec.self_heal, &progress) => Some(r),
            () = job.cancel.cancelled() => None,
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
                };
                self.close(name, record, &start, outcome);
                return Ok(Outcome::Cancelled);
            }
            Some(Err(e)) => {
                let (reason, message) = cluster.explain(&e, "ApplyFailed");
                let outcome = SyncOutcome {
                    result: SyncResult::Failed,
                    counts: tally.counts(),
                    error: Some(message.clone()),
                    adopted,
                };
                self.close(name, record, &start, outcome);
                self.update(name, |s| s.last_attempted = Some(start.revision.clone()));
                return Err(Stop { reason, message });
            }
            Some(Ok(report)) => report,
        };
        // Without a wait, the health the apply saw in its writes' responses.
        let health = if report.health.is_empty() {
            report.observed.clone()
        } else {
            report.health.clone()
        };
        let counts = counts(&report);
        let outcome = SyncOutcome {
            result: SyncResult::Succeeded,
            counts,
            error: None,
            adopted,
        };
        let recorded = self.close(name, record, &start, outcome);
        lock(&self.applied).insert(name.to_owned(), applied);
        if recorded {
            self.log(&format!(
                "App/{name}: synced {}: {} created, {} updated, {} unchanged, {} deleted",
                short(&revision.sha),
                counts.created,
                counts.updated,
                counts.unchanged,
                counts.deleted
            ));
        }
        self.record_health(config, name, &health, Some(&revision));
        if report.empty_set_not_pruned && !status.resources.is_empty() {
            self.note_prune_withheld(name, &app.spec.path, &revision.sha, status);
        }
        Ok(Outcome::Succeeded)
    }

    /// Marks an App whose empty render pruned nothing: the objects of
    /// earlier syncs are live and still its own, so it is not in sync.
    fn note_prune_withheld(&self, name: &str, path: &str, sha: &str, before: &AppStatus) {
        let message = prune_withheld_message(path, sha, before.resources.len());
        self.log(&format!("App/{name}: {message}"));
        self.update(name, |s| {
            s.sync = SyncStatus::OutOfSync;
            s.resources.clone_from(&before.resources);
            let ready = Condition::new(READY, ConditionStatus::False, PRUNE_WITHHELD, &message);
            set_condition(&mut s.conditions, ready);
        });
    }

    /// Snapshot and render of `revision` for `app`, cached by tree and options.
    async fn render(
        self: &Arc<Self>,
        app: &App,
        target: &driftless_kube::Target,
        source_spec: driftless_source::SourceSpec,
        revision: &Revision,
    ) -> Result<Arc<ObjectSet>, Stop> {
        let snapshot = self
            .snapshot(source_spec, revision.clone())
            .await
            .map_err(stop("FetchFailed"))?;
        lock(&self.snapshots).insert(app.name().to_owned(), snapshot.clone());
        check_app_path(
            &snapshot.dir,
            &app.spec.path,
            &revision.sha,
            &app.spec.source_ref.name,
        )
        .map_err(stop("PathNotFound"))?;
        let vars = self
            .substitutions(app, target)
            .await
            .map_err(stop("RenderFailed"))?;
        let mut opts = spec::render_options(app, &snapshot.dir, vars);
        opts.limits = spec::render_limits(app, &self.render_bounds);
        opts.worker = self.render_worker.clone();
        let dir = snapshot.dir.join(app.spec.path.trim_start_matches('/'));
        let inner = self.clone();
        let tree = snapshot.tree.clone();
        let path = app.spec.path.clone();
        tokio::task::spawn_blocking(move || inner.renders.render_keyed(&tree, &dir, &opts))
            .await
            .map_err(|e| format!("render task failed: {e}"))
            .map_err(stop("RenderFailed"))?
            .map_err(|e| format!("rendering path {path:?}: {e}"))
            .map_err(stop("RenderFailed"))
    }

    /// A history entry for a sync that failed before anything was applied.
    fn record_failure(&self, name: &str, start: &SyncStart, message: &str) {
        match self.store.begin_sync(name, start.clone()) {
            Ok(record) => self.finish(
                name,
                record.id,
                SyncOutcome {
                    result: SyncResult::Failed,
                    counts: ObjectCounts::default(),
                    error: Some(message.to_owned()),
                    adopted: Vec::new(),
                },
            ),
            Err(e) => self.log(&format!("App/{name}: recording a failed sync: {e}")),
        }
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

    /// Variables for `${var}` substitution: those of the ConfigMaps, then of
    /// the Secrets it names (later ones winning), then the App's own `vars`,
    /// which win over both, as documented on `Substitutions::vars`.
    async fn substitutions(
        &self,
        app: &App,
        target: &driftless_kube::Target,
    ) -> Result<Option<BTreeMap<String, String>>, String> {
        let Some(subst) = &app.spec.substitutions else {
            return Ok(None);
        };
        let namespace = secret_namespace(&app.metadata);
        let mut vars = BTreeMap::new();
        for r in &subst.from_config_map {
            vars.extend(config_map(target, namespace, &r.name).await?);
        }
        for r in &subst.from_secret {
            vars.extend(secret(target, namespace, &r.name).await?);
        }
        vars.extend(subst.vars.clone());
        Ok(Some(vars))
    }

    /// Ends sync `record`; without one (a resync of the live revision)
    /// records the sync only if it changed objects, took one over or did not
    /// succeed. Returns whether the sync is in the history.
    fn close(
        &self,
        app: &str,
        record: Option<u64>,
        start: &SyncStart,
        outcome: SyncOutcome,
    ) -> bool {
        let counts = outcome.counts;
        let changed =
            counts.created + counts.updated + counts.deleted > 0 || !outcome.adopted.is_empty();
        let result = outcome.result;
        let id = match record {
            Some(id) => id,
            None if changed || result != SyncResult::Succeeded => {
                match self.store.begin_sync(app, start.clone()) {
                    Ok(record) => record.id,
                    Err(e) => {
                        self.log(&format!("App/{app}: recording a sync: {e}"));
                        return false;
                    }
                }
            }
            None => return false,
        };
        self.finish(app, id, outcome);
        true
    }

    fn finish(&self, app: &str, id: u64, outcome: SyncOutcome) {
        self.metrics.count_sync(outcome.result);
        if let Err(e) = self.store.finish_sync(app, id, outcome) {
            self.log(&format!("App/{app}: recording sync {id}: {e}"));
        }
    }

    /// Writes health (and, after a sync, the applied revision) into the
    /// App's status; schedules another look while objects progress, and lets
    /// dependents go once the App is Healthy.
    fn record_health(
        self: &Arc<Self>,
        config: &Config,
        name: &str,
        objects: &[ObjectHealth],
        synced: Option<&Revision>,
    ) {
        let health = driftless_kube::aggregate(objects.iter().map(|o| &o.health));
        let before = self.store.app(name).ok().flatten().map(|s| s.health);
        let latest = config
            .app(name)
            .and_then(|a| self.revision(&a.spec.source_ref.name))
            .map(|r| r.sha);
        self.update(name, |s| {
            let withheld = s
                .conditions
                .iter()
                .any(|c| c.type_ == READY && c.reason == PRUNE_WITHHELD);
            if withheld && synced.is_none() {
                // A health refresh of the same empty render: the objects
                // prune left are still live, and still not what Git says.
                s.health = health;
                s.resources = objects.iter().map(resource_status).collect();
                return;
            }
            if let Some(rev) = synced {
                let rev = crate::store::Revision {
                    ref_label: rev.reference.clone(),
                    sha: rev.sha.clone(),
                };
                s.last_applied = Some(rev.clone());
                s.last_attempted = Some(rev);
                s.last_sync_time = Some(Time::now());
            }
            s.sync = SyncStatus::Synced;
            s.conditions.retain(|c| c.type_ != PINNED);
            if let Some(pin) = s.pinned.clone() {
                // Loud on purpose: a pinned App does not follow Git.
                let git = latest.as_deref().unwrap_or("unknown");
                if latest.as_deref().is_some_and(|l| l != pin.sha) {
                    s.sync = SyncStatus::OutOfSync;
                }
                let message = format!(
                    "pinned to {} by a rollback while Git is at {}; resume to follow Git",
                    short(&pin.sha),
                    short(git)
                );
                let pinned = Condition::new(PINNED, ConditionStatus::True, "RolledBack", message);
                set_condition(&mut s.conditions, pinned);
            }
            s.last_error = None;
            s.health = health;
            s.resources = objects.iter().map(resource_status).collect();
            s.conditions.retain(|c| c.type_ != STALLED);
            let (status, reason, message) = match health {
                HealthStatus::Healthy => (
                    ConditionStatus::True,
                    "ReconciliationSucceeded",
                    "applied and healthy".to_owned(),
                ),
                HealthStatus::Progressing => {
                    (ConditionStatus::False, "Progressing", unhealthy(objects))
                }
                _ => (
                    ConditionStatus::False,
                    "HealthCheckFailed",
                    unhealthy(objects),
                ),
            };
            set_condition(
                &mut s.conditions,
                Condition::new(READY, status, reason, message),
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
    fn trigger_dependents(&self, config: &Config, name: &str) {
        let dependents = config
            .apps()
            .filter(|a| a.spec.depends_on.iter().any(|d| d == name));
        for dependent in dependents {
            let _ = self
                .queue
                .trigger(dependent.name(), SyncTrigger::Dependency);
        }
    }

    /// Changes the App's stored status; errors are logged, not fatal.
    pub(crate) fn update(&self, name: &str, change: impl FnOnce(&mut AppStatus)) {
        let result = self.store.update_app(name, change);
        if let Err(e) = result {
            self.log(&format!("App/{name}: updating status: {e}"));
        }
    }

    /// Shows why an App cannot run yet (its source failed to fetch).
    pub(crate) fn note_waiting(&self, name: &str, message: &str) {
        self.update(name, |s| {
            s.last_error = Some(message.to_owned());
            let ready = Condition::new(READY, ConditionStatus::False, "FetchFailed", message);
            set_condition(&mut s.conditions, ready);
        });
    }
}

/// The first 12 characters of a commit id.
fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

fn sync_start(revision: &Revision, trigger: SyncTrigger) -> SyncStart {
    SyncStart {
        revision: crate::store::Revision {
            ref_label: revision.reference.clone(),
            sha: revision.sha.clone(),
        },
        author: format!("{} <{}>", revision.author.name, revision.author.email),
        subject: revision.subject.clone(),
        trigger,
    }
}

fn counts(report: &ApplyReport) -> ObjectCounts {
    let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    ObjectCounts {
        created: n(report.created.len()),
        updated: n(report.updated.len()),
        deleted: n(report.deleted.len()),
        unchanged: n(report.unchanged.len()),
    }
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

fn object_ref(r: &ResourceStatus) -> Option<ObjectRef> {
    ObjectRef::from_object(&serde_json::json!({
        "apiVersion": r.api_version,
        "kind": r.kind,
        "metadata": {"name": r.name, "namespace": (!r.namespace.is_empty()).then_some(&r.namespace)},
    }))
    .ok()
}
