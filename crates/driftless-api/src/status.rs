//! Observed state the engine records: shared by the REST API and CR `.status`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition type: the object reached its desired state.
pub const READY: &str = "Ready";
/// Condition type: work is in progress.
pub const RECONCILING: &str = "Reconciling";
/// Condition type: progress stopped on an error that needs a change to clear.
pub const STALLED: &str = "Stalled";

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
    /// RFC 3339 time the status last changed.
    pub last_transition_time: String,
    /// CamelCase machine-readable reason.
    pub reason: String,
    /// Human-readable detail.
    #[serde(default)]
    pub message: String,
}

/// Status of a condition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet.
    #[default]
    Unknown,
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
            let since = std::mem::take(&mut old.last_transition_time);
            *old = Condition {
                last_transition_time: since,
                ..new
            };
        }
        Some(old) => *old = new,
        None => conditions.push(new),
    }
}

/// Whether live objects match the rendered revision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SyncStatus {
    /// Live state equals desired state.
    Synced,
    /// Live state differs from desired state.
    OutOfSync,
    /// Not compared yet.
    #[default]
    Unknown,
}

/// Health of an object or of a whole App.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum HealthStatus {
    /// Running as intended.
    Healthy,
    /// Not there yet but moving.
    Progressing,
    /// Failed or stuck.
    Degraded,
    /// Paused on purpose.
    Suspended,
    /// Expected but absent.
    Missing,
    /// Not assessed.
    #[default]
    Unknown,
}

/// Observed state of an App.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    /// Generation of the spec last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling and Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Revision (`branch@sha1:...`) last applied successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,
    /// Revision of the last attempt, successful or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision: Option<String>,
    /// Revision held by a rollback until resumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_revision: Option<String>,
    /// Sync state.
    #[serde(default)]
    pub sync: SyncStatus,
    /// Aggregate health of the App's objects.
    #[serde(default)]
    pub health: HealthStatus,
    /// Objects the App owns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceStatus>,
}

/// One object an App owns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    /// API group; empty for the core group.
    #[serde(default)]
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Namespace; absent for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
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
    /// The last fetched (and verified) revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
}

/// A fetched revision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// `<ref>@sha1:<commit>`.
    pub revision: String,
    /// Commit author, `Name <email>`.
    #[serde(default)]
    pub author: String,
    /// Commit subject line.
    #[serde(default)]
    pub message: String,
    /// RFC 3339 time of the fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetched_at: Option<String>,
}

/// Observed state of a Cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// Ready when the API server answers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Server version reported by the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(status: ConditionStatus, time: &str, message: &str) -> Condition {
        Condition {
            type_: READY.to_owned(),
            status,
            observed_generation: Some(1),
            last_transition_time: time.to_owned(),
            reason: "Test".to_owned(),
            message: message.to_owned(),
        }
    }

    #[test]
    fn set_condition_keeps_transition_time_while_status_holds() {
        let mut conds = vec![ready(ConditionStatus::True, "t1", "a")];
        set_condition(&mut conds, ready(ConditionStatus::True, "t2", "b"));
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0].last_transition_time, "t1");
        assert_eq!(conds[0].message, "b");
        set_condition(&mut conds, ready(ConditionStatus::False, "t3", "c"));
        assert_eq!(conds[0].last_transition_time, "t3");
        assert_eq!(
            find_condition(&conds, READY).map(|c| c.status),
            Some(ConditionStatus::False)
        );
    }

    #[test]
    fn app_status_serializes_camel_case_kubernetes_shape() {
        let status = AppStatus {
            observed_generation: Some(3),
            conditions: vec![ready(
                ConditionStatus::True,
                "2026-01-01T00:00:00Z",
                "applied",
            )],
            last_applied_revision: Some("main@sha1:abc".to_owned()),
            sync: SyncStatus::OutOfSync,
            health: HealthStatus::Progressing,
            ..AppStatus::default()
        };
        let json = serde_json::to_value(&status).expect("serializable");
        assert_eq!(json["observedGeneration"], 3);
        assert_eq!(json["lastAppliedRevision"], "main@sha1:abc");
        assert_eq!(json["sync"], "OutOfSync");
        assert_eq!(json["health"], "Progressing");
        assert_eq!(json["conditions"][0]["type"], "Ready");
        assert_eq!(json["conditions"][0]["status"], "True");
        assert_eq!(
            json["conditions"][0]["lastTransitionTime"],
            "2026-01-01T00:00:00Z"
        );
        let back: AppStatus = serde_json::from_value(json).expect("round trip");
        assert_eq!(back, status);
    }
}
