//! What a reconcile of an App for hosts does, decided without I/O: which
//! hosts get the release, which are only checked for drift and which are
//! held back; and, from how each host ended, the App's status (one resource
//! per host, the `Ready` reason and message) and its history entry.
//!
//! `hosts` carries the decisions out over SSH.

use std::collections::BTreeMap;

use driftless_api::{HostResult, HostRollout};
use driftless_host::FileDrift;

use super::error::Reason;
use super::outcome::short;
use crate::store::{
    AppStatus, HealthStatus, ObjectCounts, ResourceStatus, SyncResult, SyncStatus, SyncTrigger,
};

/// `apiVersion` of the Host resources an App's status lists.
pub(crate) const HOST_API_VERSION: &str = "driftless.dev/v1alpha1";

/// What this process knows of an App's last run on its hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LastRun {
    /// The commit it worked on.
    pub(crate) sha: String,
    /// How each host ended.
    pub(crate) hosts: BTreeMap<String, HostResult>,
    /// Per held host, the record that put it on hold (a rolled-back release).
    pub(crate) held: BTreeMap<String, HostRollout>,
    /// Per host, the drift last reported and not restored (so that the same
    /// drift is reported once, not at every interval).
    pub(crate) drift: BTreeMap<String, Vec<String>>,
}

/// What one host gets in a reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostAction {
    /// The release is deployed (a host already running it is left as it is).
    Deploy,
    /// The host runs the release: its files are checked against the
    /// manifest, and restored when `heal`.
    Check {
        /// Restore what drifted.
        heal: bool,
    },
    /// Left alone: the release failed its check there (or the rollout
    /// stopped before it), and only a new commit or a user's sync retries.
    Hold,
}

/// Decides each host's action. A new commit, a rollback, or a host not yet
/// deployed gets the release; hosts that run it are checked for drift (a
/// user's sync always restores); a host that rolled this commit back, and
/// with it the hosts the stopped rollout skipped, are held.
pub(crate) fn actions(
    last: Option<&LastRun>,
    sha: &str,
    trigger: SyncTrigger,
    failures: u32,
    hosts: &[String],
    self_heal: bool,
) -> Vec<HostAction> {
    let asked = failures == 0 && matches!(trigger, SyncTrigger::Manual | SyncTrigger::Rollback);
    let last = match last {
        Some(last) if last.sha == sha && trigger != SyncTrigger::Rollback => last,
        _ => return vec![HostAction::Deploy; hosts.len()],
    };
    let stopped = last.hosts.values().any(|r| *r == HostResult::RolledBack);
    hosts
        .iter()
        .map(|host| match last.hosts.get(host) {
            Some(HostResult::Succeeded | HostResult::Unchanged) => HostAction::Check {
                heal: self_heal || asked,
            },
            Some(HostResult::RolledBack) if !asked => HostAction::Hold,
            Some(HostResult::Skipped) if stopped && !asked => HostAction::Hold,
            _ => HostAction::Deploy,
        })
        .collect()
}

/// Whether a rollout gets its history entry from the start: not when it
/// re-deploys the live commit on a routine run (it is recorded only if it
/// changes something or fails).
pub(crate) fn records_from_start(trigger: SyncTrigger, status: &AppStatus, sha: &str) -> bool {
    let live = status.last_applied.as_ref().map(|r| r.sha.as_str());
    live != Some(sha) || matches!(trigger, SyncTrigger::Manual | SyncTrigger::Rollback)
}

/// Why a host's part failed, as far as the status tells it apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// It could not be connected to, logged into, or the connection died.
    Unreachable,
    /// The release could not be made or a step or hook failed on it.
    Release,
}

/// How one host ended in a reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostView {
    /// Its record: a rollout's, or for a checked or held host, what it runs.
    pub(crate) record: HostRollout,
    /// Why it failed, when it did (a rolled-back host did not fail to deploy).
    pub(crate) failure: Option<Failure>,
    /// Drift found and left in place (self-heal off, or the restore failed).
    pub(crate) drift: Vec<String>,
}

/// The App's status after a reconcile on its hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Every host runs the commit, healthy.
    pub(crate) applied: bool,
    /// Worst health of the hosts.
    pub(crate) health: HealthStatus,
    /// Synced when every host runs the commit and nothing drifted.
    pub(crate) sync: SyncStatus,
    /// The `Ready` reason.
    pub(crate) reason: Reason,
    /// The `Ready` message, naming each host at fault.
    pub(crate) message: String,
    /// One resource per host.
    pub(crate) resources: Vec<ResourceStatus>,
}

/// The App's status from how each host ended, in rollout order.
pub(crate) fn verdict(sha: &str, hosts: &[HostView]) -> Verdict {
    let mut problems = Vec::new();
    let mut reason = None;
    let mut skipped = Vec::new();
    for view in hosts {
        let record = &view.record;
        let name = &record.host;
        let message = record.message.as_deref().unwrap_or("failed");
        let (why, text) = match (record.result, view.failure) {
            (HostResult::Skipped, _) => {
                skipped.push(name.as_str());
                continue;
            }
            (HostResult::RolledBack, _) => {
                let back = record.previous.as_deref().map_or("", short);
                (
                    Reason::RolloutFailed,
                    format!(
                        "host {name}: {} rolled back to {back}: {message}",
                        short(sha)
                    ),
                )
            }
            (HostResult::Failed, Some(Failure::Unreachable)) => {
                (Reason::HostUnreachable, named(name, message))
            }
            (HostResult::Failed, _) => (Reason::ReleaseFailed, named(name, message)),
            (HostResult::Succeeded | HostResult::Unchanged, _) => continue,
        };
        reason.get_or_insert(why);
        problems.push(text);
    }
    if !skipped.is_empty() && !problems.is_empty() {
        problems.push(format!("rollout stopped before {}", skipped.join(", ")));
    }
    let resources: Vec<ResourceStatus> = hosts.iter().map(resource).collect();
    let health = resources
        .iter()
        .map(|r| r.health)
        .max_by_key(|h| h.severity())
        .unwrap_or(HealthStatus::Unknown);
    let applied = hosts.iter().all(|v| {
        matches!(
            v.record.result,
            HostResult::Succeeded | HostResult::Unchanged
        )
    });
    let sync = if resources.iter().all(|r| r.sync == SyncStatus::Synced) {
        SyncStatus::Synced
    } else {
        SyncStatus::OutOfSync
    };
    let (reason, message) = match reason {
        Some(reason) => (reason, problems.join("; ")),
        None if hosts.is_empty() => (Reason::HostUnreachable, "no hosts selected".to_owned()),
        None => (
            Reason::ReconciliationSucceeded,
            format!("{} on {} hosts and healthy", short(sha), hosts.len()),
        ),
    };
    Verdict {
        applied,
        health,
        sync,
        reason,
        message,
        resources,
    }
}

/// `message` starting with the host's name.
fn named(host: &str, message: &str) -> String {
    if message.starts_with(&format!("host {host}:")) {
        message.to_owned()
    } else {
        format!("host {host}: {message}")
    }
}

/// A host as a resource of the App.
fn resource(view: &HostView) -> ResourceStatus {
    let record = &view.record;
    let on_release = matches!(record.result, HostResult::Succeeded | HostResult::Unchanged);
    let sync = if on_release && view.drift.is_empty() {
        SyncStatus::Synced
    } else {
        SyncStatus::OutOfSync
    };
    let message = if !view.drift.is_empty() {
        Some(format!("drift: {}", view.drift.join(", ")))
    } else if on_release {
        None
    } else {
        record.message.clone()
    };
    ResourceStatus {
        api_version: HOST_API_VERSION.to_owned(),
        kind: "Host".to_owned(),
        namespace: String::new(),
        name: record.host.clone(),
        sync,
        health: record.health,
        message,
    }
}

/// How a rollout ends in the history, and the counts it shows: hosts given
/// their first release (created), a new one (updated), or left (unchanged).
pub(crate) fn outcome(records: &[HostRollout]) -> (SyncResult, ObjectCounts) {
    let mut counts = ObjectCounts::default();
    let mut result = SyncResult::Succeeded;
    for record in records {
        match record.result {
            HostResult::Succeeded if record.previous.is_none() => counts.created += 1,
            HostResult::Succeeded => counts.updated += 1,
            HostResult::Unchanged => counts.unchanged += 1,
            HostResult::RolledBack | HostResult::Failed | HostResult::Skipped => {
                result = SyncResult::Failed;
            }
        }
    }
    (result, counts)
}

/// Each drift of a host's release in words, naming the file.
pub(crate) fn describe(events: &[FileDrift]) -> Vec<String> {
    events
        .iter()
        .map(|event| match event {
            FileDrift::Modified { path } => format!("{path} modified"),
            FileDrift::ModeChanged {
                path,
                expected,
                found,
            } => format!("{path} mode {found:o} (expected {expected:o})"),
            FileDrift::Added { path } => format!("{path} added"),
            FileDrift::Removed { path } => format!("{path} removed"),
            FileDrift::CurrentMoved { expected, found } => format!(
                "current points to {} instead of {}",
                found.as_deref().map_or("nothing", short),
                short(expected)
            ),
            FileDrift::ReleaseMissing { revision } => {
                format!("release {} missing", short(revision))
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "host_plan_tests.rs"]
mod tests;
