//! Health of bare Pods.

use serde_json::Value;

use super::{Health, at, conditions_of, find, or_else, str_at};

/// Pod health from phase, container states and restart policy.
pub(super) fn pod(obj: &Value) -> Health {
    let restart_policy = match str_at(obj, "/spec/restartPolicy") {
        "" => "Always",
        p => p,
    };
    let statuses = container_statuses(obj);
    // Only long-running pods are judged by waiting reasons: a run-to-completion pod
    // pulling a missing image may still succeed once the image appears.
    if restart_policy == "Always" {
        let waiting: Vec<String> = statuses
            .iter()
            .filter_map(|c| at(c, "/state/waiting"))
            .filter(|w| is_error_reason(str_at(w, "/reason")))
            .map(|w| {
                let reason = str_at(w, "/reason");
                match str_at(w, "/message") {
                    "" => reason.to_owned(),
                    m => format!("{reason}: {m}"),
                }
            })
            .collect();
        if !waiting.is_empty() {
            return Health::degraded(waiting.join(", "));
        }
    }
    let message = str_at(obj, "/status/message");
    match str_at(obj, "/status/phase") {
        "Pending" => match statuses.iter().find_map(|c| termination_failure(c)) {
            Some(failure) => Health::degraded(failure),
            None => Health::progressing(or_else(message, || "pod is pending".to_owned())),
        },
        "Succeeded" => Health::healthy(or_else(message, || "pod succeeded".to_owned())),
        // A Failed pod never leaves that phase.
        "Failed" => Health::failed(if message.is_empty() {
            statuses
                .iter()
                .find_map(|c| termination_failure(c))
                .unwrap_or_else(|| "pod failed".to_owned())
        } else {
            message.to_owned()
        }),
        "Running" if restart_policy == "Always" => running_service_pod(obj, &statuses, message),
        // Pods that run to completion are only done when they succeed.
        "Running" => Health::progressing(format!(
            "pod is running to completion (restartPolicy {restart_policy})"
        )),
        phase => Health::unknown(format!("pod phase {phase:?}")),
    }
}

fn running_service_pod(obj: &Value, statuses: &[&Value], message: &str) -> Health {
    let conds = conditions_of(at(obj, "/status/conditions"));
    if find(&conds, "Ready").is_some_and(|c| c.is_true()) {
        return Health::healthy(or_else(message, || "pod is ready".to_owned()));
    }
    // Not ready after a container already died: it is restarting, not starting.
    if let Some(c) = statuses
        .iter()
        .find(|c| at(c, "/lastState/terminated").is_some())
    {
        let name = str_at(c, "/name");
        let reason = str_at(c, "/lastState/terminated/reason");
        let code = at(c, "/lastState/terminated/exitCode")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        return Health::degraded(or_else(message, || {
            format!("container {name:?} restarted after exit code {code} ({reason})")
        }));
    }
    Health::progressing(or_else(message, || {
        "waiting for the pod to become ready".to_owned()
    }))
}

fn container_statuses(obj: &Value) -> Vec<&Value> {
    ["/status/initContainerStatuses", "/status/containerStatuses"]
        .iter()
        .filter_map(|p| at(obj, p).and_then(Value::as_array))
        .flatten()
        .collect()
}

/// Waiting reasons that mean the kubelet hit an error (ErrImagePull,
/// CreateContainerConfigError, CrashLoopBackOff, ImagePullBackOff, ...).
fn is_error_reason(reason: &str) -> bool {
    reason.starts_with("Err") || reason.ends_with("Error") || reason.ends_with("BackOff")
}

/// A message for a container that terminated unsuccessfully.
fn termination_failure(status: &Value) -> Option<String> {
    let terminated = at(status, "/state/terminated")?;
    let name = str_at(status, "/name");
    let message = str_at(terminated, "/message");
    if !message.is_empty() {
        return Some(message.to_owned());
    }
    if str_at(terminated, "/reason") == "OOMKilled" {
        return Some(format!("container {name:?} was OOMKilled"));
    }
    match terminated.get("exitCode").and_then(Value::as_i64) {
        Some(code) if code != 0 => Some(format!("container {name:?} failed with exit code {code}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{HealthStatus, assess, is_terminal_failure};
    use serde_json::json;

    #[test]
    fn init_container_crash_loop_is_degraded() {
        let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"restartPolicy": "Always"},
            "status": {"phase": "Pending", "initContainerStatuses": [{"name": "init",
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}}]}});
        let h = assess(&obj);
        assert_eq!(h.status, HealthStatus::Degraded);
        assert_eq!(h.message, "CrashLoopBackOff: back-off");
    }

    #[test]
    fn hook_pod_with_missing_image_keeps_progressing() {
        let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"restartPolicy": "Never"},
            "status": {"phase": "Pending", "containerStatuses": [{"name": "main",
                "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}});
        assert_eq!(assess(&obj).status, HealthStatus::Progressing);
    }

    #[test]
    fn oom_killed_while_pending_and_failed_pods_are_terminal() {
        let pending = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"restartPolicy": "OnFailure"},
            "status": {"phase": "Pending", "containerStatuses": [{"name": "main",
                "state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}});
        let h = assess(&pending);
        assert_eq!(h.status, HealthStatus::Degraded);
        assert!(h.message.contains("OOMKilled"));
        let failed = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "status": {"phase": "Failed", "message": "evicted: low on memory"}});
        let h = assess(&failed);
        assert!(is_terminal_failure(&h));
        assert_eq!(h.message, "evicted: low on memory");
    }

    #[test]
    fn restarting_service_pod_names_the_last_exit() {
        let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{"name": "main", "state": {"running": {}},
                    "lastState": {"terminated": {"exitCode": 2, "reason": "Error"}}}]}});
        let h = assess(&obj);
        assert_eq!(h.status, HealthStatus::Degraded);
        assert_eq!(
            h.message,
            "container \"main\" restarted after exit code 2 (Error)"
        );
    }

    #[test]
    fn unknown_phase_is_unknown() {
        let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "status": {"phase": "Unknown"}});
        assert_eq!(assess(&obj).status, HealthStatus::Unknown);
    }
}
