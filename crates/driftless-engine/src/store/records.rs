//! The records the store keeps: app status, sync history entries, audit events.

use serde::{Deserialize, Serialize};

use crate::timing::UnixMillis;

/// A Git revision as driftless records it: the ref it came from and the commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    /// Human-readable ref, e.g. `main` or `v1.2.0`.
    pub ref_label: String,
    /// Full commit SHA.
    pub sha: String,
}

/// Whether the live state matches what Git says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SyncState {
    /// Live objects match the last rendered revision.
    Synced,
    /// Live objects differ from Git (new commit or drift).
    OutOfSync,
    /// Not compared yet.
    #[default]
    Unknown,
}

/// Aggregated health of an App or one of its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Health {
    /// Every object reports ready.
    Healthy,
    /// Objects are still rolling out.
    Progressing,
    /// An object failed (crash loop, failed rollout, ...).
    Degraded,
    /// An object driftless expects is absent.
    Missing,
    /// The App is suspended; health is not evaluated.
    Suspended,
    /// Not evaluated yet.
    #[default]
    Unknown,
}

/// A Kubernetes-style condition on an App.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason.
    pub reason: String,
    /// Human-readable detail.
    pub message: String,
    /// When the status last changed.
    pub last_transition_ms: UnixMillis,
}

/// One object an App owns, with its health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    /// `group/version` or `version`.
    pub api_version: String,
    /// Object kind.
    pub kind: String,
    /// Namespace; empty for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
    /// Health of this object.
    pub health: Health,
}

/// Everything the engine knows about one App between reconciles.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    /// App name (the store key).
    pub name: String,
    /// Revision whose objects are live.
    pub last_applied: Option<Revision>,
    /// Revision of the most recent sync attempt, successful or not.
    pub last_attempted: Option<Revision>,
    /// Revision the App is held at by a rollback; `None` follows the source.
    pub pinned: Option<Revision>,
    /// Sync state.
    pub sync: SyncState,
    /// Aggregated health.
    pub health: Health,
    /// Conditions, one per type.
    pub conditions: Vec<Condition>,
    /// Objects the App owns.
    pub resources: Vec<ResourceStatus>,
    /// Error of the last failed reconcile, cleared on success.
    pub last_error: Option<String>,
    /// A suspended App is not reconciled.
    pub suspended: bool,
    /// When the last sync finished.
    pub last_synced_ms: Option<UnixMillis>,
    /// When this record last changed.
    pub updated_ms: UnixMillis,
}

impl AppStatus {
    /// A fresh status for an App the engine has not reconciled yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
}

/// Why a sync ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncTrigger {
    /// The interval timer fired.
    Interval,
    /// A webhook reported a push.
    Webhook,
    /// A watch saw live objects drift.
    Drift,
    /// A user asked for it (`driftless sync`).
    Manual,
    /// The configuration changed.
    Config,
    /// A user rolled back to an earlier revision.
    Rollback,
    /// A dependency became ready.
    Dependency,
}

/// How a sync ended; `Running` until it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResult {
    /// Still in progress (or the process died during it; see [`super::Store::open`]).
    Running,
    /// Applied and healthy.
    Succeeded,
    /// Fetch, render, apply or health wait failed.
    Failed,
    /// Stopped before finishing: crash, shutdown or a newer revision.
    Interrupted,
}

/// What is known when a sync starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStart {
    /// Revision being synced.
    pub revision: Revision,
    /// Commit author, `Name <email>`.
    pub author: String,
    /// First line of the commit message.
    pub subject: String,
    /// Why the sync runs.
    pub trigger: SyncTrigger,
}

/// Object counts of a finished sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ObjectCounts {
    /// Objects created.
    pub created: u32,
    /// Objects changed.
    pub updated: u32,
    /// Objects pruned.
    pub deleted: u32,
    /// Objects already as Git says.
    pub unchanged: u32,
}

/// An existing object a sync took over: no App owned it before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdoptedObject {
    /// Object identity, `apiVersion/kind/namespace/name`.
    pub object: String,
    /// Field managers other than driftless that held its fields before.
    pub previous_managers: Vec<String>,
}

/// How a sync ended, as the reconcile loop reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    /// Final result; must not be `Running`.
    pub result: SyncResult,
    /// Object counts.
    pub counts: ObjectCounts,
    /// Error message for failed or interrupted syncs.
    pub error: Option<String>,
    /// Objects the sync took over (also when it failed later).
    pub adopted: Vec<AdoptedObject>,
}

/// One entry of an App's sync history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRecord {
    /// Identifier, increasing across all Apps.
    pub id: u64,
    /// App name.
    pub app: String,
    /// Revision, author, subject and trigger.
    #[serde(flatten)]
    pub start: SyncStart,
    /// When the sync started.
    pub started_ms: UnixMillis,
    /// When it finished; `None` while running.
    pub finished_ms: Option<UnixMillis>,
    /// Result.
    pub result: SyncResult,
    /// Object counts.
    pub counts: ObjectCounts,
    /// Error message.
    pub error: Option<String>,
    /// Objects the sync took over.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adopted: Vec<AdoptedObject>,
}

/// What driftless did about a drift it saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DriftAction {
    /// Self-heal re-applied the Git state.
    Reverted,
    /// Self-heal is off: the App was marked OutOfSync only.
    Reported,
    /// The change is in an ignored field.
    Ignored,
    /// A sync took over an existing object no App owned.
    Adopted,
}

/// One audit log entry: a drift seen on a live object and the response to
/// it, or the adoption of an existing object by a sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// Identifier, assigned by the store (any value passed in is replaced).
    pub id: u64,
    /// When the drift was seen.
    pub time_ms: UnixMillis,
    /// App owning the object.
    pub app: String,
    /// Object identity, `kind/namespace/name`.
    pub object: String,
    /// Changed field paths.
    pub fields: Vec<String>,
    /// Field managers that made the change, when the API server says; for
    /// an adoption, those that held the object before.
    pub manager: Option<String>,
    /// What driftless did.
    pub action: DriftAction,
}
