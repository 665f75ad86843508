//! Observed state: the one status model of driftless. The engine's store
//! records it, the REST API sends it, the command-line client reads it and the
//! custom resources carry it as `.status`.
//!
//! Field names and shapes follow the Kubernetes API conventions: camelCase,
//! conditions in the `metav1.Condition` form, times as RFC 3339 strings.
//! Stores written before this model kept times as milliseconds under names
//! ending in `Ms`; the aliases below still read them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::history::{Revision, SyncSummary};
use crate::inspect::PendingSync;
use crate::time::Time;
use crate::window::WindowHold;

/// Condition type: the object reached its desired state.
pub const READY: &str = "Ready";
/// Condition type: work is in progress.
pub const RECONCILING: &str = "Reconciling";
/// Condition type: progress stopped on an error that needs a change to clear.
pub const STALLED: &str = "Stalled";
/// Condition type: an App is held at an earlier revision by a rollback.
pub const PINNED: &str = "Pinned";

/// A condition in the Kubernetes `metav1.Condition` format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. [`READY`].
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: ConditionStatus,
    /// Generation of the spec this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the status last changed.
    #[serde(alias = "lastTransitionMs")]
    pub last_transition_time: Time,
    /// CamelCase machine-readable reason.
    pub reason: String,
    /// Human-readable detail.
    #[serde(default)]
    pub message: String,
}

impl Condition {
    /// A condition that changes now.
    pub fn new(
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_: type_.to_owned(),
            status,
            observed_generation: None,
            last_transition_time: Time::now(),
            reason: reason.to_owned(),
            message: message.into(),
        }
    }
}

/// Status of a condition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet.
    #[default]
    Unknown,
}

impl ConditionStatus {
    /// Every status, in the order metrics list them.
    pub const ALL: [Self; 3] = [Self::True, Self::False, Self::Unknown];

    /// The word Kubernetes writes (`True`, `False`, `Unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

impl From<bool> for ConditionStatus {
    fn from(holds: bool) -> Self {
        if holds { Self::True } else { Self::False }
    }
}

/// Looks up a condition by type.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Sets a condition, keeping its transition time when the status is unchanged
/// (clients rely on that time to tell how long a state has lasted).
pub fn set_condition(conditions: &mut Vec<Condition>, new: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) if old.status == new.status => {
            *old = Condition {
                last_transition_time: old.last_transition_time,
                ..new
            };
        }
        Some(old) => *old = new,
        None => conditions.push(new),
    }
}

/// Whether live objects match the rendered revision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum SyncStatus {
    /// Live state equals desired state.
    Synced,
    /// Live state differs from desired state (a new commit or drift).
    OutOfSync,
    /// Not compared yet.
    #[default]
    Unknown,
}

impl SyncStatus {
    /// Every status, in the order metrics list them.
    pub const ALL: [Self; 3] = [Self::Synced, Self::OutOfSync, Self::Unknown];

    /// The word users see (`Synced`, `OutOfSync`, `Unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Synced => "Synced",
            Self::OutOfSync => "OutOfSync",
            Self::Unknown => "Unknown",
        }
    }
}

/// Health of an object or of a whole App, in the vocabulary GitOps users know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum HealthStatus {
    /// Running as declared.
    Healthy,
    /// Not yet as declared, but moving towards it.
    Progressing,
    /// Failed or stuck; needs attention.
    Degraded,
    /// Paused on purpose (also a suspended App, whose health is not evaluated).
    Suspended,
    /// Declared but absent from the cluster.
    Missing,
    /// Not assessed yet, or the object's state could not be interpreted.
    #[default]
    Unknown,
}

impl HealthStatus {
    /// Every status, in the order metrics list them.
    pub const ALL: [Self; 6] = [
        Self::Healthy,
        Self::Progressing,
        Self::Degraded,
        Self::Missing,
        Self::Suspended,
        Self::Unknown,
    ];

    /// The word users see (`Healthy`, `Progressing`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "Healthy",
            Self::Progressing => "Progressing",
            Self::Degraded => "Degraded",
            Self::Suspended => "Suspended",
            Self::Missing => "Missing",
            Self::Unknown => "Unknown",
        }
    }

    /// Rank when combining objects, best first: Healthy, Suspended, Progressing,
    /// Missing, Unknown, Degraded.
    pub fn severity(self) -> u8 {
        match self {
            Self::Healthy => 0,
            Self::Suspended => 1,
            Self::Progressing => 2,
            Self::Missing => 3,
            Self::Unknown => 4,
            Self::Degraded => 5,
        }
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(ConditionStatus, SyncStatus, HealthStatus);

/// Observed state of an App.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    /// Generation of the spec last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Stalled and Pinned, one per type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Revision whose objects are live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied: Option<Revision>,
    /// Revision of the most recent sync attempt, successful or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted: Option<Revision>,
    /// Revision the App is held at by a rollback; absent while it follows its source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<Revision>,
    /// Sync state.
    #[serde(default)]
    pub sync: SyncStatus,
    /// Aggregate health of the App's objects.
    #[serde(default)]
    pub health: HealthStatus,
    /// Objects the App owns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceStatus>,
    /// Error of the last failed reconcile, cleared on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// A suspended App is not reconciled.
    #[serde(default)]
    pub suspended: bool,
    /// When a sync last applied a revision.
    #[serde(
        default,
        alias = "lastSyncedMs",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_sync_time: Option<Time>,
    /// When this status last changed.
    #[serde(default, alias = "updatedMs", skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<Time>,
    /// What a sync would change, for an App whose syncs are manual; absent
    /// when its objects are as in Git.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingSync>,
    /// The sync window holding the App's automatic syncs and self-heal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<WindowHold>,
    /// A user's sync asked to go through the sync windows holding the App;
    /// cleared when that sync starts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub window_override: bool,
    /// The last syncs, newest first. Filled on custom resources, so `kubectl get
    /// -o yaml` shows them; the API serves the whole history on its own route.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<SyncSummary>,
}

/// One object an App owns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    /// `group/version`, or `version` for the core group.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Namespace; empty for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Whether the live object matches the rendered one.
    #[serde(default)]
    pub sync: SyncStatus,
    /// Health.
    #[serde(default)]
    pub health: HealthStatus,
    /// Why it is not healthy, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Observed state of a GitSource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitSourceStatus {
    /// Generation of the spec last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling and Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Remote URL fetched from, credentials removed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// The last fetched (and verified) revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// When the last fetch ended, successful or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fetch_time: Option<Time>,
    /// Why the last fetch failed; absent after a success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Polling is off.
    #[serde(default)]
    pub suspended: bool,
}

/// Observed state of a HelmRepository.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmRepositoryStatus {
    /// Generation of the spec last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready when the last poll succeeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Repository URL, credentials removed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// Digest of the index (or tag list) in use, `sha256:<hex>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Charts the index in use lists.
    #[serde(default)]
    pub charts: usize,
    /// When the last poll ended, successful or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fetch_time: Option<Time>,
    /// Why the last poll failed; absent after a success. The last good
    /// index stays in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Polling is off.
    #[serde(default)]
    pub suspended: bool,
}

/// A fetched revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// Ref and commit.
    pub revision: Revision,
    /// Commit author, `Name <email>`.
    #[serde(default)]
    pub author: String,
    /// Commit subject line.
    #[serde(default)]
    pub subject: String,
}

/// Observed state of a Cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// Ready when the API server answered the last probe.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Version the API server reported (e.g. `v1.36.0`), when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
}

impl ClusterStatus {
    /// Whether the last probe reached the API server.
    pub fn is_ready(&self) -> bool {
        find_condition(&self.conditions, READY).is_some_and(|c| c.status == ConditionStatus::True)
    }
}

/// Observed state of a Receiver.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverStatus {
    /// Ready when the webhook is served.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// URL path the webhook is served at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_path: Option<String>,
}

/// What became of a Notifier's deliveries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotifierStatus {
    /// Ready while deliveries succeed; False after one was given up on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Messages the receiver accepted.
    #[serde(default)]
    pub delivered: u64,
    /// Messages given up on after every try.
    #[serde(default)]
    pub failed: u64,
    /// Messages dropped because the queue was full.
    #[serde(default)]
    pub dropped: u64,
    /// Messages not sent again: the App failed the same way as last time.
    #[serde(default)]
    pub deduplicated: u64,
    /// Why the last delivery given up on failed (no URL or token in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When a message was last accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_delivery_time: Option<Time>,
}

/// An object's name with its status, as the REST API sends them:
/// `{"name": "web", ...the status fields}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "Named{S}")]
pub struct Named<S> {
    /// Object name.
    pub name: String,
    /// Its status.
    #[serde(flatten)]
    pub status: S,
}

impl<S> Named<S> {
    /// `status` of the object called `name`.
    pub fn new(name: impl Into<String>, status: S) -> Self {
        Self {
            name: name.into(),
            status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(status: ConditionStatus, ms: u64, message: &str) -> Condition {
        Condition {
            type_: READY.to_owned(),
            status,
            observed_generation: Some(1),
            last_transition_time: Time::from_unix_ms(ms),
            reason: "Test".to_owned(),
            message: message.to_owned(),
        }
    }

    #[test]
    fn set_condition_keeps_transition_time_while_status_holds() {
        let mut conds = vec![ready(ConditionStatus::True, 1, "a")];
        set_condition(&mut conds, ready(ConditionStatus::True, 2, "b"));
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0].last_transition_time, Time::from_unix_ms(1));
        assert_eq!(conds[0].message, "b");
        set_condition(&mut conds, ready(ConditionStatus::False, 3, "c"));
        assert_eq!(conds[0].last_transition_time, Time::from_unix_ms(3));
        assert_eq!(
            find_condition(&conds, READY).map(|c| c.status),
            Some(ConditionStatus::False)
        );
        set_condition(
            &mut conds,
            Condition::new(PINNED, ConditionStatus::True, "RolledBack", "held"),
        );
        assert_eq!(conds.len(), 2);
    }

    #[test]
    fn app_status_serializes_camel_case_kubernetes_shape() {
        let status = AppStatus {
            observed_generation: Some(3),
            conditions: vec![ready(ConditionStatus::True, 1_767_225_600_000, "applied")],
            last_applied: Some(Revision {
                ref_label: "main".to_owned(),
                sha: "abc".to_owned(),
                chart: None,
            }),
            sync: SyncStatus::OutOfSync,
            health: HealthStatus::Progressing,
            last_sync_time: Some(Time::from_unix_ms(1_767_225_600_000)),
            ..AppStatus::default()
        };
        let json = serde_json::to_value(&status).expect("serializable");
        assert_eq!(json["observedGeneration"], 3);
        assert_eq!(json["lastApplied"]["refLabel"], "main");
        assert_eq!(json["lastApplied"]["sha"], "abc");
        assert_eq!(json["sync"], "OutOfSync");
        assert_eq!(json["health"], "Progressing");
        assert_eq!(json["lastSyncTime"], "2026-01-01T00:00:00Z");
        assert_eq!(json["conditions"][0]["type"], "Ready");
        assert_eq!(json["conditions"][0]["status"], "True");
        assert_eq!(
            json["conditions"][0]["lastTransitionTime"],
            "2026-01-01T00:00:00Z"
        );
        assert!(json.get("pinned").is_none() && json.get("lastError").is_none());
        let back: AppStatus = serde_json::from_value(json).expect("round trip");
        assert_eq!(back, status);
    }

    /// An App as stores before this model wrote it.
    const OLD_APP: &str = r#"{"name":"web","lastApplied":{"refLabel":"main","sha":"9b8a7c6"},
        "lastAttempted":{"refLabel":"main","sha":"9b8a7c6"},"pinned":null,"sync":"OutOfSync",
        "health":"Progressing","conditions":[{"type":"Ready","status":"False","reason":"Progressing",
        "message":"rolling","lastTransitionMs":1714564800000}],
        "resources":[{"apiVersion":"apps/v1","kind":"Deployment","namespace":"web","name":"web","health":"Progressing"},
        {"apiVersion":"v1","kind":"Namespace","namespace":"","name":"web","health":"Healthy"}],
        "lastError":"rejected","suspended":true,"lastSyncedMs":1714564790000,"updatedMs":1714564800500}"#;

    #[test]
    fn app_status_of_older_stores_decodes() {
        let status: AppStatus = serde_json::from_str(OLD_APP).expect("old status decodes");
        assert_eq!(status.sync, SyncStatus::OutOfSync);
        assert!(status.pinned.is_none() && status.suspended);
        let ready = find_condition(&status.conditions, READY).expect("Ready");
        assert_eq!(ready.status, ConditionStatus::False);
        assert_eq!(
            ready.last_transition_time.to_string(),
            "2024-05-01T12:00:00Z"
        );
        assert_eq!(
            status.last_sync_time.map(|t| t.unix_ms()),
            Some(1_714_564_790_000)
        );
        assert_eq!(
            status.last_update_time.map(|t| t.unix_ms()),
            Some(1_714_564_800_500)
        );
        assert_eq!(status.resources[0].api_version, "apps/v1");
        assert!(status.resources[1].namespace.is_empty());
        assert_eq!(status.resources[1].health, HealthStatus::Healthy);
        let named: Named<AppStatus> = serde_json::from_str(OLD_APP).expect("with its name");
        assert_eq!(named.name, "web");
        assert_eq!(named.status, status);
    }

    #[test]
    fn named_status_is_flat() {
        let cluster = Named::new(
            "prod",
            ClusterStatus {
                conditions: vec![ready(ConditionStatus::True, 0, "up")],
                server_version: Some("v1.36.0".to_owned()),
            },
        );
        let json = serde_json::to_value(&cluster).expect("serialisable");
        assert_eq!(json["name"], "prod");
        assert_eq!(json["serverVersion"], "v1.36.0");
        assert!(cluster.status.is_ready());
        assert!(!ClusterStatus::default().is_ready());
    }

    #[test]
    fn health_severity_orders_every_status() {
        let mut all = HealthStatus::ALL;
        all.sort_by_key(|h| h.severity());
        let words: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(
            words,
            [
                "Healthy",
                "Suspended",
                "Progressing",
                "Missing",
                "Unknown",
                "Degraded"
            ]
        );
    }
}
