//! What a reconcile must do, decided without I/O from what is known: the
//! App and its GitSource, the App's stored status (pin, suspension, last
//! applied revision, live objects), the source's latest fetched revision,
//! the job that runs it and the set last applied.
//!
//! A reconcile decides twice: [`start`] before anything is fetched (follow
//! the known revision, fetch, wait, or stop for a suspension), and
//! [`after_render`] once the revision's objects are rendered (apply them,
//! only read health, or move to the revision without touching the cluster).
//! `reconcile` carries the decisions out.

use driftless_api::{App, Config, GitSource, OciSource, SourceKind};
use driftless_kube::hooks::HookRuns;
use driftless_source::Revision;

use super::Applied;
use super::error::ReconcileError;
use crate::store::{AppStatus, HealthStatus, SyncStatus, SyncTrigger};

/// The source an App takes its files from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum AppSource<'a> {
    /// A Git repository.
    Git(&'a GitSource),
    /// An artifact in an OCI registry.
    Oci(&'a OciSource),
}

impl AppSource<'_> {
    /// The source's name.
    pub(crate) fn name(&self) -> &str {
        match self {
            AppSource::Git(s) => s.name(),
            AppSource::Oci(s) => s.name(),
        }
    }
}

/// The source `app` names in `config`.
pub(crate) fn app_source<'a>(
    config: &'a Config,
    app: &App,
) -> Result<AppSource<'a>, ReconcileError> {
    let r = &app.spec.source_ref;
    let found = match r.kind {
        SourceKind::GitSource => config.git_source(&r.name).map(AppSource::Git),
        SourceKind::OciSource => config.oci_source(&r.name).map(AppSource::Oci),
    };
    found.ok_or_else(|| ReconcileError::SourceNotFound(format!("{} {}", r.kind.as_str(), r.name)))
}

/// How a reconcile begins.
#[derive(Debug, PartialEq)]
pub(crate) enum Start<'a> {
    /// Suspended by its spec or a user: drift is still reported, nothing is reverted.
    Suspend,
    /// No revision is known yet: the source's first fetch triggers the App.
    AwaitSource,
    /// The source's latest fetched revision, without fetching again.
    Follow {
        /// The App's source.
        source: AppSource<'a>,
        /// Its latest revision.
        revision: &'a Revision,
    },
    /// Fetch now: the pinned commit when `pin` is set, else the source's ref.
    Fetch {
        /// The App's source.
        source: AppSource<'a>,
        /// The commit a rollback pinned the App to, with the ref it was made from.
        pin: Option<&'a crate::store::Revision>,
    },
}

/// Decides how the reconcile of `app` begins. A user's sync fetches
/// afresh; a pinned App always fetches its pinned commit; other triggers
/// follow the source's latest fetched revision.
pub(crate) fn start<'a>(
    config: &'a Config,
    app: &App,
    status: &'a AppStatus,
    latest: Option<&'a Revision>,
    trigger: SyncTrigger,
) -> Result<Start<'a>, ReconcileError> {
    if app.spec.suspend || status.suspended {
        return Ok(Start::Suspend);
    }
    let source = app_source(config, app)?;
    let manual = trigger == SyncTrigger::Manual;
    Ok(match (&status.pinned, latest) {
        (None, Some(revision)) if !manual => Start::Follow { source, revision },
        (None, None) if !manual => Start::AwaitSource,
        (pin, _) => Start::Fetch {
            source,
            pin: pin.as_ref(),
        },
    })
}

/// What to do with a rendered revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterRender {
    /// The revision and objects last applied, on a routine look: only the
    /// health is read (the drift watch reports changes in between).
    RefreshHealth,
    /// A new revision that renders exactly the live objects (it changed
    /// other Apps): the App moves to it without touching the cluster.
    Advance {
        /// The App is healthy, so its dependents may go.
        release_dependents: bool,
    },
    /// Apply the objects.
    Apply {
        /// The sync gets its history entry now. A re-apply of the live
        /// revision (a restart, an interval, a push to another branch) is
        /// recorded only if it changes something or fails.
        record: bool,
    },
}

/// Decides what a reconcile does with `rendered`, given what was `last`
/// applied in this process and the App's stored `status`.
pub(crate) fn after_render(
    trigger: SyncTrigger,
    status: &AppStatus,
    last: Option<&Applied>,
    rendered: &Applied,
) -> AfterRender {
    let quiet = matches!(trigger, SyncTrigger::Interval | SyncTrigger::Dependency);
    if quiet && last == Some(rendered) && status.last_error.is_none() {
        return AfterRender::RefreshHealth;
    }
    let same_objects = last.is_some_and(|a| a.digest == rendered.digest);
    let in_sync = status.sync == SyncStatus::Synced && status.last_error.is_none();
    let routine = matches!(
        trigger,
        SyncTrigger::Interval | SyncTrigger::Webhook | SyncTrigger::Dependency
    );
    if routine && same_objects && in_sync {
        return AfterRender::Advance {
            release_dependents: status.health == HealthStatus::Healthy,
        };
    }
    let live = (status.last_applied.as_ref()).map(|r| super::revision_id(&r.sha, r.chart.as_ref()));
    let resync = live.as_deref() == Some(rendered.sha.as_str())
        && !matches!(trigger, SyncTrigger::Manual | SyncTrigger::Rollback);
    AfterRender::Apply { record: !resync }
}

/// When a sync started by `trigger` runs the App's hooks: always when a
/// user asked for it (a sync or a rollback), otherwise only when it writes
/// or prunes something, so that a routine resync never runs them.
pub(crate) fn hook_runs(trigger: SyncTrigger) -> HookRuns {
    match trigger {
        SyncTrigger::Manual | SyncTrigger::Rollback => HookRuns::Always,
        SyncTrigger::Interval
        | SyncTrigger::Webhook
        | SyncTrigger::Drift
        | SyncTrigger::Config
        | SyncTrigger::Dependency => HookRuns::WhenChanged,
    }
}

/// Whether a failed render of `sha` gets a history entry: retries of the
/// same revision's failure are not recorded again, while a new revision
/// that fails after a failure is.
pub(crate) fn records_render_failure(failures: u32, status: &AppStatus, sha: &str) -> bool {
    let retry = failures > 0 && status.last_attempted.as_ref().is_some_and(|r| r.sha == sha);
    !retry
}

/// Whether the failure of attempt `failures + 1` stalls the App: its retry
/// `limit` is reached, so only the interval and new revisions run it again.
pub(crate) fn stalls(limit: Option<u32>, failures: u32) -> bool {
    limit.is_some_and(|l| failures + 1 >= l)
}

/// Whether an apply whose empty render pruned nothing leaves objects of
/// earlier syncs live: the App is then not in sync with Git.
pub(crate) fn prune_withheld(empty_set_not_pruned: bool, before: &AppStatus) -> bool {
    empty_set_not_pruned && !before.resources.is_empty()
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
