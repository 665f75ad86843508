//! What an apply, prune or delete reports: progress events while it runs
//! and the outcome per object when it ends.

use serde::Serialize;

use crate::health::{Health, HealthStatus};
use crate::hooks::HookRun;
use crate::object::ObjectRef;
use crate::wait::ObjectHealth;

use super::adopt::Adoption;

/// Progress reported while applying.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum ApplyEvent {
    /// An object was written (or found as intended).
    Applied {
        /// The object.
        object: ObjectRef,
        /// What happened.
        action: Action,
    },
    /// Waiting for a wave's objects to become healthy.
    Waiting {
        /// The wave number.
        wave: i64,
        /// How many objects.
        objects: usize,
    },
    /// An existing object no App owned is being taken over (its write
    /// follows).
    Adopted {
        /// The object.
        object: ObjectRef,
        /// The field managers other than driftless that held it.
        previous_managers: Vec<String>,
    },
    /// An object was deleted by prune or delete.
    Deleted {
        /// The object.
        object: ObjectRef,
    },
    /// While waiting, an object's health changed.
    Health {
        /// The object.
        object: ObjectRef,
        /// Its health now.
        health: Health,
    },
    /// A hook was created (result `running`) or ended.
    Hook(HookRun),
}

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// It did not exist and was created.
    Created,
    /// It existed and was changed.
    Updated,
    /// It was deleted and created again (immutable field change with force).
    Recreated,
    /// It already was as intended; nothing was written.
    Unchanged,
}

/// An object prune or delete left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The object.
    pub object: ObjectRef,
    /// Why it was not deleted.
    pub reason: String,
}

/// The outcome of an apply or delete.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    /// The App.
    pub app: String,
    /// Objects created.
    pub created: Vec<ObjectRef>,
    /// Objects changed (including re-created ones).
    pub updated: Vec<ObjectRef>,
    /// Objects already as intended.
    pub unchanged: Vec<ObjectRef>,
    /// Existing objects no App owned that were taken over (also counted in
    /// `updated`), with their previous field managers.
    pub adopted: Vec<Adoption>,
    /// Objects deleted by prune or delete.
    pub deleted: Vec<ObjectRef>,
    /// Objects prune left alone (not ours any more, or prune disabled).
    pub skipped: Vec<Skipped>,
    /// Objects whose deletion failed; they stay in the inventory for a retry.
    pub delete_failed: Vec<Skipped>,
    /// Health of every object when the apply ended (when waited for).
    pub health: Vec<ObjectHealth>,
    /// Health of the whole set (Healthy when not waited for and all applied).
    pub status: Option<HealthStatus>,
    /// Whether prune was skipped because the set was empty.
    pub empty_set_not_pruned: bool,
    /// The hooks the sync ran, in the order they ended.
    pub hooks: Vec<HookRun>,
    /// Health of every applied object as the apply saw it (from the write's
    /// response, or the live object when nothing was written), without
    /// waiting or reading again.
    #[serde(skip)]
    pub observed: Vec<ObjectHealth>,
}

impl ApplyReport {
    /// Whether anything in the cluster was written.
    pub fn changed(&self) -> bool {
        !(self.created.is_empty() && self.updated.is_empty() && self.deleted.is_empty())
    }

    pub(super) fn record(&mut self, object: ObjectRef, written: Written) {
        let Written {
            action,
            health,
            adopted,
        } = written;
        self.observed.push(ObjectHealth {
            object: object.clone(),
            health,
        });
        self.adopted.extend(adopted);
        match action {
            Action::Created => self.created.push(object),
            Action::Updated | Action::Recreated => self.updated.push(object),
            Action::Unchanged => self.unchanged.push(object),
        }
    }
}

/// What applying one object did.
#[derive(Debug)]
pub(super) struct Written {
    /// Created, updated, re-created or left alone.
    pub action: Action,
    /// Health of the object as written (or as found).
    pub health: Health,
    /// Set when the object existed without an owner label and was taken over.
    pub adopted: Option<Adoption>,
}

impl Written {
    /// Nothing written: `live` already is as intended (or is left alone).
    pub fn unchanged(live: &serde_json::Value, adopted: Option<Adoption>) -> Self {
        Self {
            action: Action::Unchanged,
            health: crate::health::assess(live),
            adopted,
        }
    }
}
