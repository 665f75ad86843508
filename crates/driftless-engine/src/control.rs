//! User actions on Apps (sync, suspend, resume, rollback), behind a trait the API server
//! calls, implemented over the store and the work queue. Every action on a known App is
//! written to the audit log of operations with who asked and what came of it.

use driftless_api::Time;

use crate::queue::{QueueError, WorkQueue};
use crate::store::{
    AppStatus, Operation, OperationKind, Revision, Store, StoreError, SyncResult, SyncTrigger,
};

/// How many history entries a rollback searches for its target.
const ROLLBACK_SEARCH: usize = 1000;

/// Errors of user actions; each names the App.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No App of that name is known.
    #[error("app {app} not found")]
    UnknownApp {
        /// App name.
        app: String,
    },
    /// The App is suspended; resume it first.
    #[error("app {app} is suspended: resume it before syncing")]
    Suspended {
        /// App name.
        app: String,
    },
    /// No successful sync in the history matches the rollback target.
    #[error("app {app}: no successful sync of revision {target} to roll back to")]
    NoRollbackTarget {
        /// App name.
        app: String,
        /// Requested revision prefix, or `previous`.
        target: String,
    },
    /// Reading or writing the state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The work queue is shut down.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// What the API server may ask the engine to do to an App. `by` names who asks
/// (an API token's name); the audit log of operations records it.
pub trait AppControl: Send + Sync {
    /// Reconciles the App now.
    fn sync(&self, app: &str, by: &str) -> Result<AppStatus, ControlError>;
    /// Reconciles the App now even where a sync window holds it; the audit
    /// log records the override.
    fn sync_overriding_windows(&self, app: &str, by: &str) -> Result<AppStatus, ControlError>;
    /// Stops reconciling the App until resumed.
    fn suspend(&self, app: &str, by: &str) -> Result<AppStatus, ControlError>;
    /// Reconciles the App again, following its source (clears a rollback pin).
    fn resume(&self, app: &str, by: &str) -> Result<AppStatus, ControlError>;
    /// Pins the App to an earlier successfully synced revision (`to` is a SHA prefix;
    /// `None` picks the newest successful revision before the live one) and syncs it.
    fn rollback(&self, app: &str, to: Option<&str>, by: &str) -> Result<AppStatus, ControlError>;
}

/// [`AppControl`] over the state store and the work queue: flags live in the store, runs
/// go through the queue. The reconcile worker reads `suspended` and `pinned` from the store.
#[derive(Debug, Clone)]
pub struct EngineControl {
    store: Store,
    queue: WorkQueue,
}

impl EngineControl {
    /// Acts on Apps recorded in `store`, queueing runs on `queue`.
    pub fn new(store: Store, queue: WorkQueue) -> Self {
        Self { store, queue }
    }

    fn existing(&self, app: &str) -> Result<AppStatus, ControlError> {
        self.store
            .app(app)?
            .ok_or_else(|| ControlError::UnknownApp {
                app: app.to_owned(),
            })
    }

    /// Writes `outcome` of `operation` on `app` to the audit log and passes it on.
    /// An unknown App is not recorded: a caller cannot fill the log with names.
    fn audited(
        &self,
        app: &str,
        by: &str,
        (operation, override_window): (OperationKind, bool),
        target: Option<&str>,
        outcome: Result<AppStatus, ControlError>,
    ) -> Result<AppStatus, ControlError> {
        if matches!(outcome, Err(ControlError::UnknownApp { .. })) {
            return outcome;
        }
        let revision = match (&outcome, operation) {
            (Ok(status), OperationKind::Rollback) => status.pinned.clone(),
            _ => None,
        };
        self.store.record_operation(Operation {
            id: 0,
            time: Time::now(),
            app: app.to_owned(),
            operation,
            by: by.to_owned(),
            target: target.map(str::to_owned),
            revision,
            override_window,
            error: outcome.as_ref().err().map(ToString::to_string),
        })?;
        outcome
    }

    fn do_sync(&self, app: &str, override_window: bool) -> Result<AppStatus, ControlError> {
        let mut status = self.existing(app)?;
        if status.suspended {
            return Err(ControlError::Suspended {
                app: app.to_owned(),
            });
        }
        if override_window {
            // The reconcile the trigger starts reads and clears the flag.
            status = self.store.update_app(app, |s| s.window_override = true)?;
        }
        self.queue.trigger(app, SyncTrigger::Manual)?;
        Ok(status)
    }

    fn do_suspend(&self, app: &str) -> Result<AppStatus, ControlError> {
        self.existing(app)?;
        let status = self.store.update_app(app, |s| s.suspended = true)?;
        // The worker sees the flag and stops self-heal at once.
        self.queue.trigger(app, SyncTrigger::Manual)?;
        Ok(status)
    }

    fn do_resume(&self, app: &str) -> Result<AppStatus, ControlError> {
        self.existing(app)?;
        let status = self.store.update_app(app, |s| {
            s.suspended = false;
            s.pinned = None;
        })?;
        // Back to Git as an automatic sync would be: no request to sync, so
        // windows hold it and an App whose syncs are manual only compares.
        self.queue.trigger(app, SyncTrigger::Config)?;
        Ok(status)
    }

    fn do_rollback(&self, app: &str, to: Option<&str>) -> Result<AppStatus, ControlError> {
        let status = self.existing(app)?;
        let live = status.last_applied.as_ref();
        // A commit (or a prefix of it), the version of a chart from a
        // repository, or an artifact's digest (with or without `sha256:`,
        // or a prefix) or tag.
        let target: Option<Revision> = self
            .store
            .history(app, ROLLBACK_SEARCH)?
            .into_iter()
            .filter(|r| r.result == SyncResult::Succeeded)
            .map(|r| r.start.revision)
            .find(|rev| match to {
                Some(wanted) => {
                    let chart = rev.chart.as_ref().is_some_and(|c| c.version == wanted);
                    let artifact = rev
                        .sha
                        .strip_prefix("sha256:")
                        .is_some_and(|hex| hex.starts_with(wanted) || rev.ref_label == wanted);
                    !wanted.is_empty() && (rev.sha.starts_with(wanted) || chart || artifact)
                }
                None => live.is_none_or(|live| !rev.same_as(live)),
            });
        let Some(target) = target else {
            let target = to.unwrap_or("previous").to_owned();
            return Err(ControlError::NoRollbackTarget {
                app: app.to_owned(),
                target,
            });
        };
        let status = self.store.update_app(app, |s| s.pinned = Some(target))?;
        // A rollback is urgent: do not let it wait behind a health check of the bad revision.
        self.queue.preempt(app, SyncTrigger::Rollback)?;
        Ok(status)
    }
}

impl AppControl for EngineControl {
    fn sync(&self, app: &str, by: &str) -> Result<AppStatus, ControlError> {
        let outcome = self.do_sync(app, false);
        self.audited(app, by, (OperationKind::Sync, false), None, outcome)
    }

    fn sync_overriding_windows(&self, app: &str, by: &str) -> Result<AppStatus, ControlError> {
        let outcome = self.do_sync(app, true);
        self.audited(app, by, (OperationKind::Sync, true), None, outcome)
    }

    fn suspend(&self, app: &str, by: &str) -> Result<AppStatus, ControlError> {
        self.audited(
            app,
            by,
            (OperationKind::Suspend, false),
            None,
            self.do_suspend(app),
        )
    }

    fn resume(&self, app: &str, by: &str) -> Result<AppStatus, ControlError> {
        self.audited(
            app,
            by,
            (OperationKind::Resume, false),
            None,
            self.do_resume(app),
        )
    }

    fn rollback(&self, app: &str, to: Option<&str>, by: &str) -> Result<AppStatus, ControlError> {
        let outcome = self.do_rollback(app, to);
        self.audited(app, by, (OperationKind::Rollback, false), to, outcome)
    }
}
