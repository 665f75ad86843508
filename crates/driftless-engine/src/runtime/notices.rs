//! Notifications of what the engine recorded. The store tells each recorded
//! change ([`Recorded`]); this turns it into events and commit states and
//! hands them to the dispatcher, which never makes a reconcile wait.

use std::collections::HashMap;
use std::sync::Mutex;

use driftless_api::status::{AppStatus, HealthStatus, SyncStatus};
use driftless_api::{Config, EventKind, NotificationDelivery, Time};
use driftless_notify::{
    Commit, CommitState, CommitUpdate, Delivery, Dispatcher, Drift, Event, RetryPolicy, Target,
    TargetError,
};

use super::{Inner, lock};
use crate::store::{DriftAction, Glance, Recorded, SyncRecord, SyncResult, SyncStart};

/// The engine's side of notifications.
pub(crate) struct Notices {
    pub(crate) dispatcher: Dispatcher,
    /// Per App: the start of its latest sync, which names the commit's subject and author.
    starts: Mutex<HashMap<String, SyncStart>>,
    /// Per App: the commit state last handed on.
    commits: Mutex<HashMap<String, (String, CommitState)>>,
    /// Per Notifier with a `secretRef`: the value read from its Secret, or why
    /// it could not be read (the controller reads them).
    secrets: Mutex<HashMap<String, Result<String, String>>>,
}

/// The dispatcher's policy from the Server object's `notifications`.
pub(crate) fn policy(delivery: &NotificationDelivery) -> RetryPolicy {
    RetryPolicy {
        tries: delivery.tries,
        first_wait: delivery.retry_wait.get(),
        min_gap: delivery.min_interval.get(),
        queue: usize::try_from(delivery.queue).unwrap_or(usize::MAX),
        ..RetryPolicy::default()
    }
}

impl Notices {
    pub(crate) fn new(policy: RetryPolicy) -> Self {
        Self {
            dispatcher: Dispatcher::new(policy),
            starts: Mutex::default(),
            commits: Mutex::default(),
            secrets: Mutex::default(),
        }
    }

    /// Takes the values of the Notifiers' `secretRef` Secrets, by Notifier name.
    pub(crate) fn set_secrets(&self, secrets: HashMap<String, Result<String, String>>) {
        *lock(&self.secrets) = secrets;
    }

    /// Makes the config's Notifiers the ones in force, their secrets read
    /// from the environment (`secretEnv`) or as given by [`Notices::set_secrets`]
    /// (`secretRef`).
    pub(crate) fn configure(&self, config: &Config) {
        let secrets = lock(&self.secrets);
        let targets = config
            .notifiers()
            .map(|n| {
                let name = n.name().to_owned();
                let target = match (&n.spec.secret_ref, secrets.get(&name)) {
                    (Some(_), Some(Ok(secret))) => {
                        Target::new(name.clone(), n.spec.clone(), Some(secret.clone()))
                    }
                    (Some(_), Some(Err(why))) => Err(TargetError::SecretUnavailable {
                        notifier: name.clone(),
                        why: why.clone(),
                    }),
                    _ => Target::from_env(n, |var| std::env::var(var).ok()),
                };
                target.map_err(|e| (name, e))
            })
            .collect();
        drop(secrets);
        self.dispatcher.configure(targets);
    }
}

/// Events an App's status change tells, with their messages.
pub(crate) fn app_events(before: &Glance, after: &AppStatus) -> Vec<(EventKind, String)> {
    let mut out = Vec::new();
    if before.health != HealthStatus::Degraded && after.health == HealthStatus::Degraded {
        out.push((EventKind::HealthDegraded, degraded_reason(after)));
    }
    if before.health == HealthStatus::Degraded && after.health == HealthStatus::Healthy {
        out.push((EventKind::HealthRecovered, "healthy again".to_owned()));
    }
    if !before.suspended && after.suspended {
        out.push((
            EventKind::Suspended,
            "suspended: not reconciled until resumed".to_owned(),
        ));
    }
    if before.suspended && !after.suspended {
        out.push((EventKind::Resumed, "resumed".to_owned()));
    }
    let pinned = after.pinned.as_ref().map(|p| p.sha.as_str());
    if let Some(sha) = pinned
        && before.pinned.as_deref() != Some(sha)
    {
        let short = short(sha);
        out.push((EventKind::RolledBack, format!("rolled back to {short}")));
    }
    out
}

/// Why an App is Degraded: its error, or its first Degraded object's message.
fn degraded_reason(status: &AppStatus) -> String {
    if let Some(error) = &status.last_error {
        return error.clone();
    }
    status
        .resources
        .iter()
        .find(|r| r.health == HealthStatus::Degraded)
        .map_or_else(
            || "health turned Degraded".to_owned(),
            |r| {
                let place = if r.namespace.is_empty() {
                    format!("{}/{}", r.kind, r.name)
                } else {
                    format!("{}/{}/{}", r.kind, r.namespace, r.name)
                };
                format!("{place}: {}", r.message.as_deref().unwrap_or("Degraded"))
            },
        )
}

/// The commit state an App's status shows for its applied commit: success
/// once Synced and Healthy, failure once Degraded.
pub(crate) fn commit_state(status: &AppStatus) -> Option<(String, CommitState, String)> {
    let sha = status.last_applied.as_ref()?.sha.clone();
    match (status.sync, status.health) {
        (SyncStatus::Synced, HealthStatus::Healthy) => Some((
            sha,
            CommitState::Success,
            "applied: Synced and Healthy".to_owned(),
        )),
        (_, HealthStatus::Degraded) => Some((
            sha,
            CommitState::Failure,
            format!("Degraded: {}", degraded_reason(status)),
        )),
        _ => None,
    }
}

fn commit_of(start: &SyncStart) -> Commit {
    Commit {
        sha: start.revision.sha.clone(),
        subject: start.subject.clone(),
        author: start.author.clone(),
    }
}

fn short(sha: &str) -> &str {
    super::outcome::short(sha)
}

impl Inner {
    /// Tells the dispatcher what `recorded` means, if anyone listens.
    pub(crate) fn notice(&self, recorded: &Recorded<'_>) {
        let notices = &self.notices;
        if notices.dispatcher.is_empty() {
            return;
        }
        let config = self.config();
        match recorded {
            Recorded::SyncBegun(record) => {
                lock(&notices.starts).insert(record.app.clone(), record.start.clone());
                let sha = &record.start.revision.sha;
                let what = format!("applying {}", short(sha));
                self.tell_commit(&config, &record.app, sha, CommitState::Pending, what);
            }
            Recorded::SyncFinished(record) => self.notice_finish(&config, record),
            Recorded::App {
                name,
                before,
                after,
            } => {
                for (kind, message) in app_events(before, after) {
                    let commit = self.commit_at(name, after);
                    let error = (kind == EventKind::HealthDegraded).then(|| message.clone());
                    let event = self.event(&config, name, kind, commit, message, error);
                    notices.dispatcher.send(&Delivery::Event(Box::new(event)));
                }
                if let Some((sha, state, what)) = commit_state(after) {
                    self.tell_commit(&config, name, &sha, state, what);
                }
            }
            Recorded::Audit(audit) => {
                let kind = match audit.action {
                    DriftAction::Reverted => EventKind::DriftReverted,
                    DriftAction::Reported => EventKind::DriftDetected,
                    DriftAction::Ignored | DriftAction::Adopted => return,
                };
                let on_host = audit.object.starts_with("Host/");
                let message = match (kind, on_host) {
                    (EventKind::DriftReverted, false) => {
                        "a change made in the cluster was reverted to Git"
                    }
                    (EventKind::DriftReverted, true) => {
                        "files changed on a host were restored from Git"
                    }
                    (_, false) => {
                        "a change made in the cluster differs from Git (self-heal is off)"
                    }
                    (_, true) => "files on a host differ from Git (self-heal is off)",
                };
                let commit = lock(&notices.starts).get(&audit.app).map(commit_of);
                let mut event =
                    self.event(&config, &audit.app, kind, commit, message.to_owned(), None);
                event.drift = Some(Drift {
                    object: audit.object.clone(),
                    fields: audit.fields.clone(),
                    manager: audit.manager.clone(),
                });
                notices.dispatcher.send(&Delivery::Event(Box::new(event)));
            }
        }
    }

    fn notice_finish(&self, config: &Config, record: &SyncRecord) {
        let commit = Some(commit_of(&record.start));
        let short = short(&record.start.revision.sha).to_owned();
        let (kind, message) = match record.result {
            SyncResult::Succeeded => {
                let c = &record.counts;
                let message = format!(
                    "applied {short}: {} created, {} updated, {} deleted, {} unchanged",
                    c.created, c.updated, c.deleted, c.unchanged
                );
                (EventKind::SyncSucceeded, message)
            }
            SyncResult::Failed => (EventKind::SyncFailed, format!("sync of {short} failed")),
            SyncResult::Running | SyncResult::Interrupted => return,
        };
        let event = self.event(
            config,
            &record.app,
            kind,
            commit,
            message,
            record.error.clone(),
        );
        self.notices
            .dispatcher
            .send(&Delivery::Event(Box::new(event)));
        let sha = &record.start.revision.sha;
        if record.result == SyncResult::Failed {
            let what = record
                .error
                .clone()
                .unwrap_or_else(|| "sync failed".to_owned());
            self.tell_commit(config, &record.app, sha, CommitState::Failure, what);
        } else if let Ok(Some(status)) = self.store.app(&record.app)
            && let Some((applied, state, what)) = commit_state(&status)
            && applied == *sha
        {
            self.tell_commit(config, &record.app, sha, state, what);
        }
    }

    /// The commit an App's status change is about: its applied commit, named
    /// with subject and author when its latest sync was of it.
    fn commit_at(&self, app: &str, status: &AppStatus) -> Option<Commit> {
        let revision = status.last_applied.as_ref()?;
        let starts = lock(&self.notices.starts);
        Some(match starts.get(app) {
            Some(start) if start.revision.sha == revision.sha => commit_of(start),
            _ => Commit {
                sha: revision.sha.clone(),
                subject: String::new(),
                author: String::new(),
            },
        })
    }

    /// Hands on a commit state unless it is the one last handed on for the App.
    fn tell_commit(&self, config: &Config, app: &str, sha: &str, state: CommitState, what: String) {
        let Some(spec) = config.app(app) else {
            return;
        };
        // A commit status needs a Git host; an artifact has no commit there.
        if spec.spec.source_ref.kind != driftless_api::SourceKind::GitSource {
            return;
        }
        let Some(source) = config.git_source(&spec.spec.source_ref.name) else {
            return;
        };
        {
            let mut commits = lock(&self.notices.commits);
            let told = (sha.to_owned(), state);
            if commits.get(app) == Some(&told) {
                return;
            }
            commits.insert(app.to_owned(), told);
        }
        let update = CommitUpdate {
            app: app.to_owned(),
            sha: sha.to_owned(),
            state,
            description: what,
            url: app_url(config, app),
            source_url: source.spec.url.clone(),
        };
        self.notices
            .dispatcher
            .send(&Delivery::Commit(Box::new(update)));
    }

    /// An event of `app`, placed in its cluster and namespace.
    fn event(
        &self,
        config: &Config,
        app: &str,
        kind: EventKind,
        revision: Option<Commit>,
        message: String,
        error: Option<String>,
    ) -> Event {
        let destination = config.app(app).map(|a| &a.spec.destination);
        Event {
            kind,
            app: app.to_owned(),
            source: None,
            apps: Vec::new(),
            cluster: destination
                .and_then(|d| d.cluster.clone())
                .unwrap_or_else(|| "default".to_owned()),
            namespace: destination.and_then(|d| d.namespace.clone()),
            revision,
            message,
            error: error.map(|e| driftless_notify::excerpt(&e, driftless_notify::ERROR_EXCERPT)),
            drift: None,
            url: app_url(config, app),
            time: Time::now(),
        }
    }

    /// Tells that the source of `kind` named `source` could not be fetched.
    pub(crate) fn notice_source_failure(
        &self,
        config: &Config,
        kind: driftless_api::SourceKind,
        source: &str,
        error: &str,
    ) {
        if self.notices.dispatcher.is_empty() {
            return;
        }
        let apps: Vec<String> = config
            .apps_of(kind, source)
            .map(|a| a.name().to_owned())
            .collect();
        let event = Event {
            kind: EventKind::SourceFailed,
            app: String::new(),
            source: Some(source.to_owned()),
            apps,
            cluster: "default".to_owned(),
            namespace: None,
            revision: None,
            message: format!(
                "{} {source} could not be fetched; its Apps stay at their revisions",
                kind.as_str()
            ),
            error: Some(driftless_notify::excerpt(
                error,
                driftless_notify::ERROR_EXCERPT,
            )),
            drift: None,
            url: None,
            time: Time::now(),
        };
        self.notices
            .dispatcher
            .send(&Delivery::Event(Box::new(event)));
    }
}

/// The App's page under the server's external URL, when it is set.
fn app_url(config: &Config, app: &str) -> Option<String> {
    let base = config.server()?.spec.external_url.as_deref()?;
    Some(format!("{}/apps/{app}", base.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftless_api::history::Revision;
    use driftless_api::status::ResourceStatus;

    fn applied(sha: &str, sync: SyncStatus, health: HealthStatus) -> AppStatus {
        AppStatus {
            last_applied: Some(Revision {
                ref_label: "main".into(),
                sha: sha.into(),
                chart: None,
            }),
            sync,
            health,
            ..AppStatus::default()
        }
    }

    #[test]
    fn health_suspension_and_pins_tell_their_transitions_once() {
        let healthy = Glance {
            health: HealthStatus::Healthy,
            ..Glance::default()
        };
        let mut degraded = applied("a", SyncStatus::Synced, HealthStatus::Degraded);
        degraded.resources.push(ResourceStatus {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: "web".into(),
            name: "web".into(),
            health: HealthStatus::Degraded,
            message: Some("ProgressDeadlineExceeded".into()),
            ..ResourceStatus::default()
        });
        assert_eq!(
            app_events(&healthy, &degraded),
            [(
                EventKind::HealthDegraded,
                "Deployment/web/web: ProgressDeadlineExceeded".to_owned()
            )]
        );
        assert!(app_events(&Glance::of(&degraded), &degraded).is_empty());
        let back = applied("a", SyncStatus::Synced, HealthStatus::Healthy);
        assert_eq!(
            app_events(&Glance::of(&degraded), &back)[0].0,
            EventKind::HealthRecovered
        );
        let mut suspended = back.clone();
        suspended.suspended = true;
        suspended.pinned = suspended.last_applied.clone();
        let kinds: Vec<_> = app_events(&healthy, &suspended)
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(kinds, [EventKind::Suspended, EventKind::RolledBack]);
        let kinds: Vec<_> = app_events(&Glance::of(&suspended), &back)
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(kinds, [EventKind::Resumed]);
    }

    #[test]
    fn a_commit_succeeds_once_synced_and_healthy_and_fails_when_degraded() {
        let ok = applied("abc", SyncStatus::Synced, HealthStatus::Healthy);
        assert_eq!(commit_state(&ok).map(|c| c.1), Some(CommitState::Success));
        let waiting = applied("abc", SyncStatus::Synced, HealthStatus::Progressing);
        assert_eq!(commit_state(&waiting), None);
        let mut bad = applied("abc", SyncStatus::OutOfSync, HealthStatus::Degraded);
        bad.last_error = Some("image pull failed".into());
        assert_eq!(
            commit_state(&bad),
            Some((
                "abc".into(),
                CommitState::Failure,
                "Degraded: image pull failed".into()
            ))
        );
        assert_eq!(commit_state(&AppStatus::default()), None);
    }
}
