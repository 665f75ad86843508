//! Health of non-workload built-in kinds: PVC, Service, Ingress, Namespace,
//! HorizontalPodAutoscaler, CustomResourceDefinition and APIService.

use serde_json::Value;

use super::{Condition, Health, at, conditions_of, find, or_else, status_conditions, str_at};

/// Annotation where autoscaling/v1 keeps the conditions v2 has in status.
const HPA_V1_CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";

/// PersistentVolumeClaim: by phase.
pub(super) fn pvc(obj: &Value) -> Health {
    match str_at(obj, "/status/phase") {
        "Bound" => Health::healthy("claim is bound"),
        "Pending" => Health::progressing("waiting for the claim to be bound"),
        "Lost" => Health::degraded("claim lost its volume"),
        phase => Health::unknown(format!("claim phase {phase:?}")),
    }
}

/// Service: only LoadBalancer services wait for something (an address).
pub(super) fn service(obj: &Value) -> Health {
    if str_at(obj, "/spec/type") != "LoadBalancer" {
        return Health::healthy("");
    }
    load_balancer(obj)
}

/// Ingress: healthy once the controller published an address.
pub(super) fn ingress(obj: &Value) -> Health {
    load_balancer(obj)
}

fn load_balancer(obj: &Value) -> Health {
    let assigned = at(obj, "/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .is_some_and(|list| !list.is_empty());
    if assigned {
        Health::healthy("load balancer assigned")
    } else {
        Health::progressing("waiting for a load balancer address")
    }
}

/// Namespace: Terminating until its content is gone.
pub(super) fn namespace(obj: &Value) -> Health {
    match str_at(obj, "/status/phase") {
        "Terminating" => Health::progressing("namespace is terminating"),
        _ => Health::healthy(""),
    }
}

/// HorizontalPodAutoscaler (v1 via annotation, v2 via status.conditions).
pub(super) fn hpa(obj: &Value) -> Health {
    let from_annotation;
    let list = match at(obj, "/status/conditions") {
        Some(list) => list,
        None => {
            from_annotation = match hpa_v1_conditions(obj) {
                Ok(parsed) => parsed,
                Err(health) => return health,
            };
            &from_annotation
        }
    };
    let conds = conditions_of(Some(list));
    // Any sign of a failing scale target or metric outweighs the healthy signals.
    if let Some(c) = conds.iter().find(|c| hpa_failure(c)) {
        return Health::degraded(or_else(c.message, || c.reason.to_owned()));
    }
    let healthy = conds
        .iter()
        .find(|c| c.is_true() && matches!(c.kind, "AbleToScale" | "ScalingLimited"));
    match healthy {
        Some(c) => Health::healthy(c.message),
        None => Health::progressing("waiting to autoscale"),
    }
}

/// The conditions autoscaling/v1 serialises as JSON into an annotation.
fn hpa_v1_conditions(obj: &Value) -> Result<Value, Health> {
    let raw = at(obj, "/metadata/annotations")
        .and_then(|a| a.get(HPA_V1_CONDITIONS))
        .and_then(Value::as_str);
    match raw {
        None => Ok(Value::Null),
        Some(raw) => serde_json::from_str(raw).map_err(|e| {
            Health::unknown(format!(
                "annotation {HPA_V1_CONDITIONS} is not valid JSON: {e}"
            ))
        }),
    }
}

/// Failures reported by the HPA controller: it could not read or update the
/// target's scale, or could not compute a replica count from its metrics.
fn hpa_failure(c: &Condition<'_>) -> bool {
    match c.kind {
        "AbleToScale" => matches!(c.reason, "FailedGetScale" | "FailedUpdateScale"),
        "ScalingActive" => {
            c.is_false() && (c.reason.starts_with("FailedGet") || c.reason.starts_with("Invalid"))
        }
        _ => false,
    }
}

/// CustomResourceDefinition: names accepted and established.
pub(super) fn crd(obj: &Value) -> Health {
    let conds = status_conditions(obj);
    if find(&conds, "Terminating").is_some_and(|c| c.is_true()) {
        return Health::progressing("definition is terminating");
    }
    if let Some(c) = find(&conds, "NamesAccepted").filter(|c| c.is_false()) {
        // Name conflicts need a manifest change: the API server will not retry.
        return Health::failed(or_else(c.message, || {
            format!("names not accepted: {}", c.reason)
        }));
    }
    match find(&conds, "Established") {
        Some(c) if c.is_true() => Health::healthy("definition is established"),
        _ => Health::progressing("waiting for the definition to be established"),
    }
}

/// APIService: Available once its backing service answers.
pub(super) fn api_service(obj: &Value) -> Health {
    let conds = status_conditions(obj);
    match find(&conds, "Available") {
        Some(c) if c.is_true() => Health::healthy(c.message),
        Some(c) => Health::progressing(or_else(c.message, || c.reason.to_owned())),
        None => Health::progressing("waiting for the API service to become available"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{HealthStatus, assess, is_terminal_failure};
    use serde_json::json;

    #[test]
    fn pvc_lost_and_odd_phase() {
        let lost = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "c"}, "status": {"phase": "Lost"}});
        assert_eq!(assess(&lost).status, HealthStatus::Degraded);
        let none = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "c"}});
        assert_eq!(assess(&none).status, HealthStatus::Unknown);
    }

    #[test]
    fn namespace_phases() {
        let active = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"},
            "status": {"phase": "Active"}});
        assert_eq!(assess(&active).status, HealthStatus::Healthy);
        let gone = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"},
            "status": {"phase": "Terminating"}});
        assert_eq!(assess(&gone).status, HealthStatus::Progressing);
    }

    fn crd(conditions: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "status": {"conditions": conditions}})
    }

    #[test]
    fn crd_established_names_rejected_and_pending() {
        let ok = crd(json!([{"type": "NamesAccepted", "status": "True"},
            {"type": "Established", "status": "True"}]));
        assert_eq!(assess(&ok).status, HealthStatus::Healthy);
        let conflict = crd(json!([{"type": "NamesAccepted", "status": "False",
            "reason": "ListKindConflict", "message": "\"WidgetList\" is already in use"},
            {"type": "Established", "status": "False"}]));
        let h = assess(&conflict);
        assert!(is_terminal_failure(&h));
        assert!(h.message.contains("WidgetList"));
        let pending = crd(json!([{"type": "NamesAccepted", "status": "True"}]));
        assert_eq!(assess(&pending).status, HealthStatus::Progressing);
        let terminating = crd(json!([{"type": "Terminating", "status": "True"}]));
        assert_eq!(assess(&terminating).status, HealthStatus::Progressing);
    }

    #[test]
    fn hpa_with_invalid_annotation_is_unknown() {
        let obj = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h", "annotations": {
                "autoscaling.alpha.kubernetes.io/conditions": "[{not json"}}});
        let h = assess(&obj);
        assert_eq!(h.status, HealthStatus::Unknown);
        assert!(
            h.message
                .contains("autoscaling.alpha.kubernetes.io/conditions")
        );
    }

    #[test]
    fn service_without_load_balancer_is_healthy() {
        let obj = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"type": "NodePort"}});
        assert_eq!(assess(&obj).status, HealthStatus::Healthy);
    }
}
