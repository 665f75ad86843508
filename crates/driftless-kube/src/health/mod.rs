//! Health assessment of live objects, in the vocabulary GitOps users know
//! (Healthy, Progressing, Degraded, Suspended, Missing, Unknown).
//!
//! Built-in kinds get dedicated rules; every other kind falls back to the
//! kstatus conventions (`Ready`, `Stalled`, `Reconciling`, observedGeneration).
//! The rules are described for users in `docs/health.md`.

mod core;
mod generic;
mod pod;
mod workloads;

use std::fmt;

pub use driftless_api::status::HealthStatus;
use serde::Serialize;
use serde_json::Value;

/// Health of a group of objects (an App): the most severe member status,
/// Healthy for an empty group.
pub fn aggregate<'a>(healths: impl IntoIterator<Item = &'a Health>) -> HealthStatus {
    healths
        .into_iter()
        .map(|h| h.status)
        .max_by_key(|s| s.severity())
        .unwrap_or(HealthStatus::Healthy)
}

/// Health of one object with a human-readable explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// The assessed state.
    pub status: HealthStatus,
    /// Why, in words taken from the object's status where possible.
    pub message: String,
    /// True when the failure will not heal by waiting (deadline exceeded,
    /// job failed, stalled); a waiter should stop at once.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub terminal: bool,
}

impl Health {
    fn new(status: HealthStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            terminal: false,
        }
    }

    /// A Healthy assessment.
    pub fn healthy(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Healthy, message)
    }

    /// A Progressing assessment.
    pub fn progressing(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Progressing, message)
    }

    /// A Degraded assessment that may still recover.
    pub fn degraded(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Degraded, message)
    }

    /// A Degraded assessment that will not recover without a change.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            terminal: true,
            ..Self::new(HealthStatus::Degraded, message)
        }
    }

    /// A Suspended assessment.
    pub fn suspended(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Suspended, message)
    }

    /// An Unknown assessment.
    pub fn unknown(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Unknown, message)
    }

    /// The health of a declared object that is absent from the cluster.
    pub fn missing() -> Self {
        Self::new(HealthStatus::Missing, "object does not exist")
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.status)
        } else {
            write!(f, "{}: {}", self.status, self.message)
        }
    }
}

/// Whether a waiter should give up now instead of waiting for its timeout.
pub fn is_terminal_failure(health: &Health) -> bool {
    health.status == HealthStatus::Degraded && health.terminal
}

/// Health of a live object, or Missing when it does not exist.
pub fn assess_live(live: Option<&Value>) -> Health {
    live.map_or_else(Health::missing, assess)
}

/// Health of one live object as read from the API server.
pub fn assess(obj: &Value) -> Health {
    if !obj.is_object() {
        return Health::unknown("object is not a mapping");
    }
    if at(obj, "/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()) {
        return Health::progressing("pending deletion");
    }
    let group = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .map_or("", |v| v.rsplit_once('/').map_or("", |(g, _)| g));
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    match (group, kind) {
        ("apps" | "extensions", "Deployment") => workloads::deployment(obj),
        ("apps", "StatefulSet") => workloads::stateful_set(obj),
        ("apps" | "extensions", "DaemonSet") => workloads::daemon_set(obj),
        ("apps" | "extensions", "ReplicaSet") | ("", "ReplicationController") => {
            workloads::replica_set(obj)
        }
        ("batch", "Job") => workloads::job(obj),
        ("batch", "CronJob") => workloads::cron_job(obj),
        ("", "Pod") => pod::pod(obj),
        ("", "PersistentVolumeClaim") => core::pvc(obj),
        ("", "Service") => core::service(obj),
        ("", "Namespace") => core::namespace(obj),
        ("networking.k8s.io" | "extensions", "Ingress") => core::ingress(obj),
        ("autoscaling", "HorizontalPodAutoscaler") => core::hpa(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => core::crd(obj),
        ("apiregistration.k8s.io", "APIService") => core::api_service(obj),
        _ => generic::kstatus(obj),
    }
}

/// One entry of a `status.conditions` list.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Condition<'a> {
    pub kind: &'a str,
    pub status: &'a str,
    pub reason: &'a str,
    pub message: &'a str,
}

impl Condition<'_> {
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }

    pub fn is_false(&self) -> bool {
        self.status == "False"
    }
}

/// Parses a conditions array; entries without a type are skipped.
pub(crate) fn conditions_of(list: Option<&Value>) -> Vec<Condition<'_>> {
    let Some(items) = list.and_then(Value::as_array) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|c| {
            let field = |name: &str| c.get(name).and_then(Value::as_str).unwrap_or("");
            let kind = field("type");
            (!kind.is_empty()).then(|| Condition {
                kind,
                status: field("status"),
                reason: field("reason"),
                message: field("message"),
            })
        })
        .collect()
}

/// `status.conditions` of an object.
pub(crate) fn status_conditions(obj: &Value) -> Vec<Condition<'_>> {
    conditions_of(at(obj, "/status/conditions"))
}

/// The first condition of the given type.
pub(crate) fn find<'a>(conds: &[Condition<'a>], kind: &str) -> Option<Condition<'a>> {
    conds.iter().find(|c| c.kind == kind).copied()
}

/// The value at a JSON pointer. Unlike `Value::pointer` it allocates nothing,
/// which matters when assessing every object of a cluster; the pointers used
/// here contain no `~` escapes.
pub(crate) fn at<'a>(obj: &'a Value, pointer: &str) -> Option<&'a Value> {
    pointer.split('/').skip(1).try_fold(obj, |v, key| match v {
        Value::Object(map) => map.get(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// An integer at a JSON pointer, if present.
pub(crate) fn int_at(obj: &Value, pointer: &str) -> Option<i64> {
    at(obj, pointer).and_then(Value::as_i64)
}

/// An integer at a JSON pointer, 0 when absent (as Kubernetes omits zero counts).
pub(crate) fn count_at(obj: &Value, pointer: &str) -> i64 {
    int_at(obj, pointer).unwrap_or(0)
}

/// A string at a JSON pointer, empty when absent.
pub(crate) fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    at(obj, pointer).and_then(Value::as_str).unwrap_or("")
}

/// Whether the controller has seen the latest spec (observedGeneration ≥ generation).
/// Objects without a generation count as observed.
pub(crate) fn generation_observed(obj: &Value) -> bool {
    match int_at(obj, "/metadata/generation") {
        Some(generation) => int_at(obj, "/status/observedGeneration").unwrap_or(0) >= generation,
        None => true,
    }
}

/// `message` if non-empty, else `fallback`.
pub(crate) fn or_else(message: &str, fallback: impl FnOnce() -> String) -> String {
    if message.is_empty() {
        fallback()
    } else {
        message.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_and_terminal_flags() {
        assert_eq!(assess_live(None).status, HealthStatus::Missing);
        assert!(is_terminal_failure(&Health::failed("deadline")));
        assert!(!is_terminal_failure(&Health::degraded("crash loop")));
        assert!(!is_terminal_failure(&Health::progressing("rolling")));
    }

    #[test]
    fn aggregate_takes_the_most_severe_status() {
        let progressing = Health::progressing("rolling");
        let suspended = Health::suspended("paused");
        let healthy = Health::healthy("");
        assert_eq!(aggregate([]), HealthStatus::Healthy);
        assert_eq!(
            aggregate([&healthy, &suspended, &progressing]),
            HealthStatus::Progressing
        );
        assert_eq!(aggregate([&healthy, &suspended]), HealthStatus::Suspended);
        let missing = Health::missing();
        let unknown = Health::unknown("?");
        let degraded = Health::degraded("crash");
        assert_eq!(aggregate([&missing, &progressing]), HealthStatus::Missing);
        assert_eq!(aggregate([&missing, &unknown]), HealthStatus::Unknown);
        assert_eq!(
            aggregate([&degraded, &unknown, &missing]),
            HealthStatus::Degraded
        );
    }

    #[test]
    fn deletion_in_progress_is_progressing_for_any_kind() {
        let obj = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "deletionTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(assess(&obj).status, HealthStatus::Progressing);
    }

    #[test]
    fn pointer_lookup_matches_serde_json() {
        let v = json!({"a": {"b": [10, {"c": "x"}]}, "": {"e": 1}});
        for p in [
            "", "/a", "/a/b", "/a/b/0", "/a/b/1/c", "/a/b/2", "/a/x", "/a/b/c", "//e",
        ] {
            assert_eq!(at(&v, p), v.pointer(p), "{p}");
        }
    }

    #[test]
    fn non_object_is_unknown() {
        assert_eq!(assess(&json!("text")).status, HealthStatus::Unknown);
    }

    #[test]
    fn display_and_json_forms() {
        let h = Health::failed("job failed");
        assert_eq!(h.to_string(), "Degraded: job failed");
        let v = serde_json::to_value(&h).expect("serialisable");
        assert_eq!(
            v,
            json!({"status": "Degraded", "message": "job failed", "terminal": true})
        );
        let v = serde_json::to_value(Health::healthy("")).expect("serialisable");
        assert_eq!(v, json!({"status": "Healthy", "message": ""}));
    }

    #[test]
    fn same_kind_in_another_group_uses_generic_rules() {
        // A custom "Deployment" kind must not be judged by apps/v1 rules.
        let obj = json!({"apiVersion": "example.com/v1", "kind": "Deployment",
            "metadata": {"name": "d"}, "spec": {"paused": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(assess(&obj).status, HealthStatus::Healthy);
    }
}
