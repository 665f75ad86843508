//! Health of workload controllers: Deployment, StatefulSet, DaemonSet,
//! ReplicaSet, Job and CronJob.

use serde_json::Value;

use super::{
    Health, at, count_at, find, generation_observed, int_at, or_else, status_conditions, str_at,
};

const NOT_OBSERVED: &str = "waiting for the controller to observe the latest spec";

/// Deployment: paused, progress deadline, then rollout counters.
pub(super) fn deployment(obj: &Value) -> Health {
    if at(obj, "/spec/paused").and_then(Value::as_bool) == Some(true) {
        return Health::suspended("deployment is paused");
    }
    if !generation_observed(obj) {
        return Health::progressing(NOT_OBSERVED);
    }
    let conds = status_conditions(obj);
    if let Some(c) = find(&conds, "Progressing")
        && c.reason == "ProgressDeadlineExceeded"
    {
        // The controller stops retrying after the deadline: waiting longer is useless.
        let name = str_at(obj, "/metadata/name");
        return Health::failed(or_else(c.message, || {
            format!("deployment {name:?} exceeded its progress deadline")
        }));
    }
    let updated = count_at(obj, "/status/updatedReplicas");
    if let Some(wanted) = int_at(obj, "/spec/replicas")
        && updated < wanted
    {
        return Health::progressing(format!(
            "waiting for rollout: {updated} of {wanted} new replicas updated"
        ));
    }
    let total = count_at(obj, "/status/replicas");
    if total > updated {
        return Health::progressing(format!(
            "waiting for rollout: {} old replicas pending termination",
            total - updated
        ));
    }
    let available = count_at(obj, "/status/availableReplicas");
    if available < updated {
        return Health::progressing(format!(
            "waiting for rollout: {available} of {updated} updated replicas available"
        ));
    }
    Health::healthy(format!("{available} replicas available"))
}

/// StatefulSet: readiness, partitioned rollouts and revisions.
pub(super) fn stateful_set(obj: &Value) -> Health {
    if int_at(obj, "/status/observedGeneration").unwrap_or(0) == 0 || !generation_observed(obj) {
        return Health::progressing(NOT_OBSERVED);
    }
    let ready = count_at(obj, "/status/readyReplicas");
    let wanted = int_at(obj, "/spec/replicas");
    if let Some(wanted) = wanted
        && ready < wanted
    {
        return Health::progressing(format!("waiting for pods: {ready} of {wanted} ready"));
    }
    let strategy = str_at(obj, "/spec/updateStrategy/type");
    if strategy == "OnDelete" {
        // Pods are only replaced by hand: nothing to wait for.
        return Health::healthy(format!("{ready} pods ready (OnDelete update strategy)"));
    }
    let updated = count_at(obj, "/status/updatedReplicas");
    if let Some(partition) = int_at(obj, "/spec/updateStrategy/rollingUpdate/partition") {
        let target = wanted.unwrap_or(1) - partition;
        if updated < target {
            return Health::progressing(format!(
                "waiting for partitioned rollout: {updated} of {target} pods updated"
            ));
        }
        return Health::healthy(format!(
            "partitioned rollout complete: {updated} pods updated"
        ));
    }
    let current = str_at(obj, "/status/currentRevision");
    let update = str_at(obj, "/status/updateRevision");
    if current != update {
        return Health::progressing(format!(
            "waiting for rolling update to revision {update}: {updated} pods updated"
        ));
    }
    Health::healthy(format!("{ready} pods ready at revision {current}"))
}

/// DaemonSet: pods scheduled and available on every node that should run one.
pub(super) fn daemon_set(obj: &Value) -> Health {
    if !generation_observed(obj) {
        return Health::progressing(NOT_OBSERVED);
    }
    let desired = count_at(obj, "/status/desiredNumberScheduled");
    let updated = count_at(obj, "/status/updatedNumberScheduled");
    let available = count_at(obj, "/status/numberAvailable");
    if str_at(obj, "/spec/updateStrategy/type") == "OnDelete" {
        // Pods are only replaced by hand: outdated pods are expected.
        return Health::healthy(format!(
            "{available} of {desired} pods available (OnDelete update strategy)"
        ));
    }
    if updated < desired {
        return Health::progressing(format!(
            "waiting for rollout: {updated} of {desired} pods updated"
        ));
    }
    if available < desired {
        return Health::progressing(format!(
            "waiting for rollout: {available} of {desired} pods available"
        ));
    }
    Health::healthy(format!("{available} pods available"))
}

/// ReplicaSet and ReplicationController: replica failures and availability.
pub(super) fn replica_set(obj: &Value) -> Health {
    if !generation_observed(obj) {
        return Health::progressing(NOT_OBSERVED);
    }
    let conds = status_conditions(obj);
    if let Some(c) = find(&conds, "ReplicaFailure")
        && c.is_true()
    {
        return Health::degraded(or_else(c.message, || c.reason.to_owned()));
    }
    let available = count_at(obj, "/status/availableReplicas");
    if let Some(wanted) = int_at(obj, "/spec/replicas")
        && available < wanted
    {
        return Health::progressing(format!(
            "waiting for replicas: {available} of {wanted} available"
        ));
    }
    Health::healthy(format!("{available} replicas available"))
}

/// Job: failed and complete are final; suspended jobs wait for a human.
pub(super) fn job(obj: &Value) -> Health {
    let conds = status_conditions(obj);
    let truthy = |kind: &str| find(&conds, kind).filter(|c| c.is_true());
    // FailureTarget precedes Failed while pods terminate; the outcome is already decided.
    if let Some(c) = truthy("Failed").or_else(|| truthy("FailureTarget")) {
        return Health::failed(or_else(c.message, || format!("job failed: {}", c.reason)));
    }
    if let Some(c) = truthy("Complete") {
        return Health::healthy(or_else(c.message, || "job completed".to_owned()));
    }
    if let Some(c) = truthy("Suspended") {
        return Health::suspended(or_else(c.message, || "job suspended".to_owned()));
    }
    if at(obj, "/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return Health::suspended("job suspended");
    }
    let active = count_at(obj, "/status/active");
    Health::progressing(format!("job running: {active} active pods"))
}

/// CronJob: only suspension is a state of its own; runs are judged as Jobs.
pub(super) fn cron_job(obj: &Value) -> Health {
    if at(obj, "/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return Health::suspended("cronjob is suspended");
    }
    match at(obj, "/status/lastScheduleTime").and_then(Value::as_str) {
        Some(t) => Health::healthy(format!("last scheduled at {t}")),
        None => Health::healthy("not scheduled yet"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{HealthStatus, assess, is_terminal_failure};
    use serde_json::json;

    fn status_of(obj: serde_json::Value) -> HealthStatus {
        assess(&obj).status
    }

    #[test]
    fn deployment_deadline_is_terminal() {
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1,
                "conditions": [{"type": "Progressing", "status": "False",
                    "reason": "ProgressDeadlineExceeded"}]}});
        let h = assess(&obj);
        assert_eq!(h.status, HealthStatus::Degraded);
        assert!(is_terminal_failure(&h));
        assert!(h.message.contains("\"web\""), "{}", h.message);
    }

    #[test]
    fn deployment_unobserved_generation_is_progressing() {
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "generation": 3},
            "status": {"observedGeneration": 2}});
        assert_eq!(status_of(obj), HealthStatus::Progressing);
    }

    #[test]
    fn statefulset_partitioned_and_rolling() {
        let base = |partition: i64, updated: i64| {
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": {"name": "db", "generation": 1},
                "spec": {"replicas": 3, "updateStrategy": {"type": "RollingUpdate",
                    "rollingUpdate": {"partition": partition}}},
                "status": {"observedGeneration": 1, "readyReplicas": 3,
                    "updatedReplicas": updated}})
        };
        assert_eq!(status_of(base(1, 1)), HealthStatus::Progressing);
        assert_eq!(status_of(base(1, 2)), HealthStatus::Healthy);
        let rolling = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "generation": 1}, "spec": {"replicas": 1},
            "status": {"observedGeneration": 1, "readyReplicas": 1,
                "currentRevision": "db-1", "updateRevision": "db-2"}});
        assert_eq!(status_of(rolling), HealthStatus::Progressing);
    }

    #[test]
    fn daemonset_rollout_counters() {
        let ds = |updated: i64, available: i64| {
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
                "metadata": {"name": "agent", "generation": 1},
                "status": {"observedGeneration": 1, "desiredNumberScheduled": 3,
                    "updatedNumberScheduled": updated, "numberAvailable": available}})
        };
        assert_eq!(status_of(ds(2, 3)), HealthStatus::Progressing);
        assert_eq!(status_of(ds(3, 2)), HealthStatus::Progressing);
        assert_eq!(status_of(ds(3, 3)), HealthStatus::Healthy);
    }

    #[test]
    fn replicaset_failure_and_availability() {
        let failing = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "rs"}, "spec": {"replicas": 2},
            "status": {"conditions": [{"type": "ReplicaFailure", "status": "True",
                "message": "pods \"rs-x\" is forbidden: exceeded quota"}]}});
        let h = assess(&failing);
        assert_eq!(h.status, HealthStatus::Degraded);
        assert!(h.message.contains("exceeded quota"));
        let short = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "rs"}, "spec": {"replicas": 2},
            "status": {"availableReplicas": 1}});
        assert_eq!(status_of(short), HealthStatus::Progressing);
        let rc = json!({"apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": "rc"}, "spec": {"replicas": 1},
            "status": {"availableReplicas": 1}});
        assert_eq!(status_of(rc), HealthStatus::Healthy);
    }

    #[test]
    fn job_failure_target_is_terminal() {
        let obj = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
            "status": {"conditions": [{"type": "FailureTarget", "status": "True",
                "reason": "BackoffLimitExceeded"}]}});
        let h = assess(&obj);
        assert!(is_terminal_failure(&h));
        assert!(h.message.contains("BackoffLimitExceeded"));
    }

    #[test]
    fn cronjob_suspension() {
        let suspended = json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "c"}, "spec": {"suspend": true, "schedule": "* * * * *"}});
        assert_eq!(status_of(suspended), HealthStatus::Suspended);
        let active = json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "c"}, "spec": {"schedule": "* * * * *"},
            "status": {"lastScheduleTime": "2024-01-01T00:00:00Z"}});
        let h = assess(&active);
        assert_eq!(h.status, HealthStatus::Healthy);
        assert!(h.message.contains("2024-01-01"));
    }
}
