//! Who hears of what the store records: one observer, told after each commit
//! of a sync's start and end, an App status change and a drift event. The
//! notifications read their events from here, so every path that records a
//! state also tells it.

use std::sync::{Arc, RwLock};

use super::{AppStatus, AuditEvent, HealthStatus, SyncRecord};

/// What an App's status was before a change: the parts events are made of.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Glance {
    /// Aggregate health.
    pub health: HealthStatus,
    /// Suspended or not.
    pub suspended: bool,
    /// The commit it is pinned at.
    pub pinned: Option<String>,
}

impl Glance {
    /// The glance of `status`.
    pub fn of(status: &AppStatus) -> Self {
        Self {
            health: status.health,
            suspended: status.suspended,
            pinned: status.pinned.as_ref().map(|p| p.sha.clone()),
        }
    }
}

/// One recorded change.
#[derive(Debug)]
pub enum Recorded<'a> {
    /// A sync was recorded as started.
    SyncBegun(&'a SyncRecord),
    /// A sync was recorded as finished.
    SyncFinished(&'a SyncRecord),
    /// An App's status changed from `before` to `after`.
    App {
        /// The App.
        name: &'a str,
        /// What it was.
        before: Glance,
        /// What it is now.
        after: &'a AppStatus,
    },
    /// A drift event was appended to the audit log.
    Audit(&'a AuditEvent),
}

/// The observer: called on the recording thread, so it must be quick.
pub type Observer = Arc<dyn Fn(&Recorded<'_>) + Send + Sync>;

/// The store's slot for its observer.
#[derive(Clone, Default)]
pub(super) struct Slot(Arc<RwLock<Option<Observer>>>);

impl Slot {
    pub(super) fn set(&self, observer: Option<Observer>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = observer;
    }

    /// The observer, if one listens (cloned out, so none is called under the lock).
    pub(super) fn get(&self) -> Option<Observer> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}
