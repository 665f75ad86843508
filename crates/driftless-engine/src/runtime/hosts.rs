//! One reconcile of an App for hosts: revision → snapshot → the App's tree
//! as a release → over one SSH connection per host: deploy, or check the
//! files against the release's manifest and restore them → record.
//!
//! What each host gets and what the App's status says are decided by the
//! pure functions of [`super::host_plan`]; this module carries them out.
//! Nothing of such an App reaches a cluster.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use driftless_api::status::{READY, RECONCILING, STALLED, set_condition};
use driftless_api::{App, HostResult, HostRollout, Time};
use driftless_host::{
    AppRelease, Connection, ConnectionPool, DriftReport, Endpoint, HostError, Timeouts,
    check_drift, deploy, in_order, is_failure, record, restore,
};
use driftless_source::Revision;

use super::error::{Reason, ReconcileError};
use super::host_access::Contact;
use super::host_plan::{self, Failure, HostAction, HostView, LastRun, Verdict};
use super::outcome::{Entry, check_app_path, short};
use super::reconcile::Run;
use super::{Inner, lock};
use crate::queue::Outcome;
use crate::store::{
    AuditEvent, Condition, ConditionStatus, DriftAction, HealthStatus, SyncOutcome, SyncResult,
};

/// How many hosts are checked for drift at the same time.
const CHECK_PARALLEL: u32 = 32;

/// What one host's part of a reconcile did.
struct HostRun {
    view: HostView,
    /// Whether the release was deployed (the host is part of the rollout's record).
    deployed: bool,
    /// Drift found, with whether it was restored.
    drift: Option<(Vec<String>, bool)>,
    /// What reaching the host found; `None` when nothing was tried.
    contact: Option<Contact>,
}

impl Inner {
    /// Reconciles an App whose destination is `hosts`.
    pub(crate) async fn reconcile_hosts(
        self: &Arc<Self>,
        run: &Run<'_>,
    ) -> Result<Outcome, ReconcileError> {
        let name = run.name();
        let app = run.app;
        let Some((origin, revision)) = self.revision_to_sync(run).await? else {
            return Ok(Outcome::Succeeded);
        };
        let held = self.watch_windows(run).await;
        let release = match self.host_release(app, &origin, &revision).await {
            Ok(release) => Arc::new(release),
            Err(e) => {
                let entry = Entry::new(&revision, run.job.trigger);
                if super::plan::records_render_failure(run.job.failures, run.status, &revision.sha)
                {
                    self.record_failure(name, &entry.start, &e.to_string());
                }
                self.update(name, |s| s.last_attempted = Some(entry.start.revision));
                return Err(e);
            }
        };
        let hosts = run.config.hosts_of(app);
        if hosts.is_empty() {
            let selector = app.spec.destination.hosts.clone().unwrap_or_default();
            return Err(ReconcileError::NoHosts(selector.to_string()));
        }
        // A Host whose credentials cannot be made fails alone, before any connection.
        let mut endpoints = Vec::with_capacity(hosts.len());
        for host in &hosts {
            endpoints.push((host.name().to_owned(), self.host_endpoint(host).await));
        }
        let names: Vec<String> = endpoints.iter().map(|(n, _)| n.clone()).collect();
        let last = lock(&self.host_runs).get(name).cloned();
        let actions = host_plan::actions(
            last.as_ref(),
            &revision.sha,
            run.job.trigger,
            run.job.failures,
            &names,
            app.spec.self_heal,
        );
        let mut entry = Entry::new(&revision, run.job.trigger);
        let deploys = actions.iter().filter(|a| **a == HostAction::Deploy).count();
        if deploys > 0 {
            // A window holds a new release and the repair of a host's drift alike.
            if let Some(hold) = self.apply_hold(run, held) {
                self.note_held(run, &hold, &revision);
                return Ok(Outcome::Succeeded);
            }
            self.use_override(run);
            let what = format!("deploying {} to {deploys} hosts", short(&revision.sha));
            self.update(name, |s| {
                let reason = Reason::Progressing.as_str();
                set_condition(
                    &mut s.conditions,
                    Condition::new(RECONCILING, ConditionStatus::True, reason, &what),
                );
            });
            if host_plan::records_from_start(run.job.trigger, run.status, &revision.sha) {
                entry.id = Some(self.store.begin_sync(name, entry.start.clone())?.id);
                tracing::info!(
                    app = %name,
                    revision = %revision.sha,
                    "deploying {}@sha1:{} ({}) to {deploys} hosts",
                    revision.reference,
                    revision.sha,
                    revision.subject
                );
            }
        }
        let pool = &self.host_connections;
        let work = converge(pool, &release, &endpoints, &actions, last.as_ref());
        let runs = tokio::select! {
            runs = work => runs,
            () = run.job.cancel.cancelled() => {
                let outcome = SyncOutcome {
                    result: SyncResult::Interrupted,
                    counts: Default::default(),
                    error: Some("stopped: a newer revision or a shutdown preempted it".to_owned()),
                    adopted: Vec::new(),
                    hosts: Vec::new(),
                    hooks: Vec::new(),
                };
                if entry.id.is_some() {
                    self.close(name, &entry, outcome);
                }
                return Ok(Outcome::Cancelled);
            }
        };
        self.note_contacts(runs.iter().filter_map(|r| {
            let contact = r.contact.clone()?;
            Some((r.view.record.host.clone(), contact))
        }));
        let previous_drift = last.map(|l| l.drift).unwrap_or_default();
        self.record_host_drift(name, &runs, &previous_drift);
        let views: Vec<HostView> = runs.iter().map(|r| r.view.clone()).collect();
        let verdict = host_plan::verdict(&revision.sha, &views);
        let rolled: Vec<HostRollout> = runs
            .iter()
            .filter(|r| r.deployed)
            .map(|r| r.view.record.clone())
            .collect();
        if !rolled.is_empty() {
            let (result, counts) = host_plan::outcome(&rolled);
            let error = (result == SyncResult::Failed).then(|| verdict.message.clone());
            let outcome = SyncOutcome {
                result,
                counts,
                error,
                adopted: Vec::new(),
                hosts: rolled.clone(),
                hooks: Vec::new(),
            };
            if self.close(name, &entry, outcome) {
                log_rollout(name, &revision, &rolled);
            }
        }
        lock(&self.host_runs).insert(name.to_owned(), last_run(&revision.sha, &runs));
        let retry = runs
            .iter()
            .any(|r| r.view.failure.is_some() && r.view.record.result == HostResult::Failed);
        self.record_hosts(run, &revision, &verdict, !rolled.is_empty());
        Ok(if retry {
            Outcome::Failed
        } else {
            Outcome::Succeeded
        })
    }

    /// The App's tree at `revision` as a release: the snapshot's path,
    /// confined to the repository, read and checked once for all hosts.
    async fn host_release(
        self: &Arc<Self>,
        app: &App,
        origin: &super::sources::Origin,
        revision: &Revision,
    ) -> Result<AppRelease, ReconcileError> {
        let snapshot = self.snapshot(origin, revision).await?;
        lock(&self.snapshots).insert(app.name().to_owned(), snapshot.clone());
        let source_name = &app.spec.source_ref.name;
        check_app_path(&snapshot.dir, &app.spec.path, &revision.sha, source_name)?;
        let dir = confined(&snapshot.dir, &app.spec.path).ok_or_else(|| {
            ReconcileError::OutsideRepository {
                path: app.spec.path.clone(),
                source_name: source_name.clone(),
            }
        })?;
        let delivery = app.spec.host.clone().unwrap_or_default();
        let (name, sha) = (app.name().to_owned(), revision.sha.clone());
        let substitutions = app.spec.substitutions.clone();
        let path = app.spec.path.clone();
        tokio::task::spawn_blocking(move || {
            AppRelease::new(&name, &sha, &dir, &delivery, substitutions.as_ref())
        })
        .await
        .map_err(ReconcileError::ReleaseTask)?
        .map_err(|source| ReconcileError::Release { path, source })
    }

    /// Writes each host's drift into the audit log (once per distinct drift
    /// of a host), the metrics and the log, as the clusters' drift is.
    fn record_host_drift(
        &self,
        app: &str,
        runs: &[HostRun],
        reported: &std::collections::BTreeMap<String, Vec<String>>,
    ) {
        for run in runs {
            let Some((files, healed)) = &run.drift else {
                continue;
            };
            let host = &run.view.record.host;
            if !healed && reported.get(host) == Some(files) {
                continue;
            }
            let action = if *healed {
                DriftAction::Reverted
            } else {
                DriftAction::Reported
            };
            self.metrics.count_drift(app, &[], action);
            let what = if *healed { "restored" } else { "left as found" };
            tracing::info!(
                app = %app,
                host = %host,
                healed,
                "drift: Host/{host}: {}; {what}",
                files.join(", ")
            );
            let audit = AuditEvent {
                id: 0,
                time: Time::now(),
                app: app.to_owned(),
                object: format!("Host/{host}"),
                fields: files.clone(),
                manager: None,
                action,
            };
            if let Err(e) = self.store.record_audit(audit) {
                tracing::error!(app = %app, "recording drift: {e}");
            }
        }
    }

    /// Writes the verdict into the App's status; lets dependents go once
    /// the App is healthy.
    fn record_hosts(
        self: &Arc<Self>,
        run: &Run<'_>,
        revision: &Revision,
        verdict: &Verdict,
        deployed: bool,
    ) {
        let name = run.name();
        let before = run.status.health;
        let latest = self
            .source_revision(&run.app.spec.source_ref)
            .map(|r| r.sha);
        let generation = run.app.metadata.generation;
        let rev = crate::store::Revision {
            ref_label: revision.reference.clone(),
            sha: revision.sha.clone(),
            chart: None,
        };
        if deployed && verdict.reason != Reason::ReconciliationSucceeded {
            tracing::warn!(app = %name, reason = %verdict.reason, "{}: {}", verdict.reason, verdict.message);
        }
        self.update(name, |s| {
            s.observed_generation = generation;
            s.conditions
                .retain(|c| c.type_ != RECONCILING && c.type_ != STALLED);
            s.health = verdict.health;
            s.resources.clone_from(&verdict.resources);
            s.sync = verdict.sync;
            s.last_attempted = Some(rev.clone());
            if verdict.applied {
                if deployed || s.last_applied.as_ref() != Some(&rev) {
                    s.last_sync_time = Some(Time::now());
                }
                s.last_applied = Some(rev);
                s.last_error = None;
            } else {
                s.last_error = Some(verdict.message.clone());
            }
            super::reconcile::show_pin(s, latest.as_deref());
            let status = if verdict.health == HealthStatus::Healthy {
                ConditionStatus::True
            } else {
                ConditionStatus::False
            };
            set_condition(
                &mut s.conditions,
                Condition::new(READY, status, verdict.reason.as_str(), &verdict.message),
            );
        });
        if verdict.health == HealthStatus::Healthy && (before != HealthStatus::Healthy || deployed)
        {
            self.trigger_dependents(run.config, name);
        }
    }
}

/// Carries out each host's action over one connection per host: deploys in
/// rollout order (`parallel` at a time, stopping on failure), checks all
/// at once.
async fn converge(
    pool: &Arc<ConnectionPool>,
    release: &Arc<AppRelease>,
    endpoints: &[(String, Result<Endpoint, String>)],
    actions: &[HostAction],
    last: Option<&LastRun>,
) -> Vec<HostRun> {
    let deploy_at: Vec<usize> = (0..endpoints.len())
        .filter(|i| actions[*i] == HostAction::Deploy)
        .collect();
    let check_at: Vec<usize> = (0..endpoints.len())
        .filter(|i| matches!(actions[*i], HostAction::Check { .. }))
        .collect();
    let settings = release.delivery().rollout.clone();
    let work = |at: &[usize]| {
        let at = at.to_vec();
        move |k: usize| {
            let index = at[k];
            let endpoint = endpoints[index].clone();
            let (pool, release) = (pool.clone(), release.clone());
            let action = actions[index];
            async move {
                match &endpoint.1 {
                    Ok(endpoint) => on_host(&pool, endpoint, &release, action).await,
                    Err(why) => unusable(&endpoint.0, &release, action, why),
                }
            }
        }
    };
    let failed = |r: &HostRun| is_failure(r.view.record.result);
    let every = driftless_api::Rollout {
        parallel: CHECK_PARALLEL,
        stop_on_failure: false,
    };
    let (deployed, checked) = tokio::join!(
        in_order(&settings, deploy_at.len(), work(&deploy_at), failed),
        in_order(&every, check_at.len(), work(&check_at), failed),
    );
    let mut runs: Vec<Option<HostRun>> = (0..endpoints.len()).map(|_| None).collect();
    for (at, done) in [(deploy_at, deployed), (check_at, checked)] {
        for (index, run) in at.into_iter().zip(done) {
            runs[index] = run;
        }
    }
    runs.into_iter()
        .zip(endpoints)
        .zip(actions)
        .map(|((run, (name, _)), action)| {
            run.unwrap_or_else(|| not_run(name, release.revision(), *action, last))
        })
        .collect()
}

/// A host that nothing ran on: skipped by a stopped rollout, or held with
/// the record of its rolled-back release.
fn not_run(host: &str, revision: &str, action: HostAction, last: Option<&LastRun>) -> HostRun {
    let held = last
        .and_then(|l| l.held.get(host))
        .filter(|_| action == HostAction::Hold);
    let record = held.cloned().unwrap_or_else(|| {
        let mut skipped = record(host, revision);
        skipped.message = Some(driftless_host::SKIPPED.to_owned());
        skipped
    });
    HostRun {
        deployed: action == HostAction::Deploy,
        drift: None,
        contact: None,
        view: HostView {
            record,
            failure: None,
            drift: Vec::new(),
        },
    }
}

/// A host whose credentials could not be made: failed, nothing sent to it.
fn unusable(host: &str, release: &AppRelease, action: HostAction, why: &str) -> HostRun {
    let mut record = record(host, release.revision());
    record.result = HostResult::Failed;
    record.health = HealthStatus::Degraded;
    record.message = Some(format!("host {host}: {why}; nothing was deployed to it"));
    HostRun {
        deployed: action == HostAction::Deploy,
        drift: None,
        contact: Some(Contact::credentials(why)),
        view: HostView {
            record,
            failure: Some(Failure::Unreachable),
            drift: Vec::new(),
        },
    }
}

/// One host's part, over the pool's connection to it, shared by its steps
/// (and run once more on a new one when the held connection turns out to
/// have closed before anything ran).
async fn on_host(
    pool: &ConnectionPool,
    endpoint: &Endpoint,
    release: &AppRelease,
    action: HostAction,
) -> HostRun {
    let started = std::time::Instant::now();
    let mut record = record(&endpoint.name, release.revision());
    let mut drift = None;
    let mut retried = false;
    let result = loop {
        let lease = match pool.lease(endpoint, Timeouts::default()).await {
            Ok(lease) => lease,
            Err(e) => break Err(HostError::from(e)),
        };
        let conn = &lease.connection;
        let done = match action {
            HostAction::Check { heal } => check(conn, endpoint, release, heal, &mut record)
                .await
                .map(|d| drift = d),
            _ => deploy(conn, endpoint, release, &mut record).await,
        };
        if done.is_err() && pool.failed(endpoint, &lease).await && !retried {
            retried = true;
            continue;
        }
        break done;
    };
    let contact = Contact::of(result.as_ref().map(|_| ()));
    let failure = result.err().map(|e| {
        record.result = HostResult::Failed;
        record.health = HealthStatus::Degraded;
        record.message = Some(e.to_string());
        match e {
            HostError::Ssh(_) => Failure::Unreachable,
            _ => Failure::Release,
        }
    });
    record.total = format!("{}ms", started.elapsed().as_millis())
        .parse()
        .unwrap_or(record.total);
    let left = match &drift {
        Some((files, false)) => files.clone(),
        _ => Vec::new(),
    };
    HostRun {
        deployed: action == HostAction::Deploy,
        drift,
        contact: Some(contact),
        view: HostView {
            record,
            failure,
            drift: left,
        },
    }
}

/// Checks a host running the release; restores what drifted when `heal`.
/// Returns the drift in words and whether it was restored.
async fn check(
    conn: &Connection,
    endpoint: &Endpoint,
    release: &AppRelease,
    heal: bool,
    record: &mut HostRollout,
) -> Result<Option<(Vec<String>, bool)>, HostError> {
    let report: DriftReport =
        check_drift(conn, endpoint, release.app(), release.revision()).await?;
    record.result = HostResult::Unchanged;
    record.health = HealthStatus::Healthy;
    record.previous = Some(release.revision().to_owned());
    if report.is_clean() {
        return Ok(None);
    }
    let files = host_plan::describe(&report.events);
    if !heal {
        return Ok(Some((files, false)));
    }
    let repaired = restore(conn, endpoint, release).await?;
    record.files_sent = repaired.files_sent;
    Ok(Some((files, true)))
}

/// What the next reconcile needs of this one.
fn last_run(sha: &str, runs: &[HostRun]) -> LastRun {
    LastRun {
        sha: sha.to_owned(),
        hosts: runs
            .iter()
            .map(|r| (r.view.record.host.clone(), r.view.record.result))
            .collect(),
        drift: runs
            .iter()
            .filter(|r| !r.view.drift.is_empty())
            .map(|r| (r.view.record.host.clone(), r.view.drift.clone()))
            .collect(),
        held: runs
            .iter()
            .filter(|r| r.view.record.result == HostResult::RolledBack)
            .map(|r| (r.view.record.host.clone(), r.view.record.clone()))
            .collect(),
    }
}

fn log_rollout(app: &str, revision: &Revision, records: &[HostRollout]) {
    for r in records {
        tracing::info!(
            app = %app,
            host = %r.host,
            revision = %revision.sha,
            "host {}: {} {} ({} files sent, {}){}",
            r.host,
            r.result.as_str(),
            short(&revision.sha),
            r.files_sent,
            r.total,
            r.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
        );
    }
}

/// `path` inside the snapshot `root`, once symlinks are resolved; `None`
/// when it leads outside.
fn confined(root: &Path, path: &str) -> Option<PathBuf> {
    let root = root.canonicalize().ok()?;
    let dir = root
        .join(path.trim_start_matches('/'))
        .canonicalize()
        .ok()?;
    dir.starts_with(&root).then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_confined_to_the_snapshot() {
        let root = tempfile::tempdir().expect("temp dir");
        let outside = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(root.path().join("hosts/web")).expect("mkdir");
        std::os::unix::fs::symlink(outside.path(), root.path().join("escape")).expect("link");
        std::os::unix::fs::symlink("hosts/web", root.path().join("inside")).expect("link");
        assert!(confined(root.path(), "hosts/web").is_some());
        assert!(confined(root.path(), "/inside").is_some());
        assert!(confined(root.path(), "escape").is_none());
        assert!(confined(root.path(), "hosts/../..").is_none());
    }

    #[test]
    fn selectors_are_described_as_written() {
        let by_labels = driftless_api::HostSelector {
            match_labels: [("role".to_owned(), "web".to_owned())].into(),
            names: Vec::new(),
        };
        assert_eq!(by_labels.to_string(), "matchLabels role=web");
        let by_names = driftless_api::HostSelector {
            match_labels: Default::default(),
            names: vec!["a".into(), "b".into()],
        };
        assert_eq!(by_names.to_string(), "names a, b");
    }
}
