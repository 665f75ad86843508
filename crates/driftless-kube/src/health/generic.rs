//! Health of kinds without a dedicated rule, following the kstatus conventions
//! most controllers (Flux, cert-manager, Crossplane, ...) implement.

use serde_json::Value;

use super::{Health, at, find, int_at, or_else, status_conditions, str_at};

/// Custom resources and unrecognised built-ins.
pub(super) fn kstatus(obj: &Value) -> Health {
    // A suspended controller stops updating status, so this comes first.
    if at(obj, "/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return Health::suspended("reconciliation is suspended");
    }
    // Many controllers never publish observedGeneration; only compare when they do.
    if let (Some(generation), Some(observed)) = (
        int_at(obj, "/metadata/generation"),
        int_at(obj, "/status/observedGeneration"),
    ) && observed < generation
    {
        return Health::progressing(format!(
            "waiting for the controller to observe generation {generation} (observed {observed})"
        ));
    }
    let conds = status_conditions(obj);
    if let Some(c) = find(&conds, "Stalled").filter(|c| c.is_true()) {
        // kstatus: Stalled means the controller gave up until the spec changes.
        return Health::failed(or_else(c.message, || format!("stalled: {}", c.reason)));
    }
    for kind in ["Reconciling", "Progressing"] {
        if let Some(c) = find(&conds, kind).filter(|c| c.is_true()) {
            return Health::progressing(or_else(c.message, || format!("{kind}: {}", c.reason)));
        }
    }
    if let Some(c) = find(&conds, "Ready") {
        return match c.status {
            "True" => Health::healthy(c.message),
            // Observed, not reconciling and still not ready: the controller failed
            // this attempt (it may retry, so not terminal).
            "False" => Health::degraded(or_else(c.message, || format!("not ready: {}", c.reason))),
            _ => Health::progressing(or_else(c.message, || "readiness unknown".to_owned())),
        };
    }
    phase(obj).unwrap_or_else(|| Health::healthy(""))
}

/// Many older controllers publish only `status.phase`.
fn phase(obj: &Value) -> Option<Health> {
    let phase = str_at(obj, "/status/phase");
    let message = format!("phase {phase}");
    match phase.to_ascii_lowercase().as_str() {
        "" => None,
        "running" | "active" | "ready" | "available" | "bound" | "succeeded" | "complete"
        | "completed" | "healthy" | "deployed" => Some(Health::healthy(message)),
        "failed" | "error" => Some(Health::degraded(message)),
        "pending" | "progressing" | "creating" | "provisioning" | "updating" | "terminating"
        | "initializing" => Some(Health::progressing(message)),
        _ => Some(Health::unknown(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{HealthStatus, assess, is_terminal_failure};
    use serde_json::{Value, json};

    fn widget(generation: i64, status: Value) -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "generation": generation}, "status": status})
    }

    #[test]
    fn ready_true_with_current_generation_is_healthy() {
        let obj = widget(
            2,
            json!({"observedGeneration": 2,
            "conditions": [{"type": "Ready", "status": "True", "message": "applied rev 1"}]}),
        );
        let h = assess(&obj);
        assert_eq!(h.status, HealthStatus::Healthy);
        assert_eq!(h.message, "applied rev 1");
    }

    #[test]
    fn stale_observed_generation_is_progressing_even_if_ready() {
        let obj = widget(
            3,
            json!({"observedGeneration": 2,
            "conditions": [{"type": "Ready", "status": "True"}]}),
        );
        let h = assess(&obj);
        assert_eq!(h.status, HealthStatus::Progressing);
        assert!(h.message.contains("generation 3 (observed 2)"));
    }

    #[test]
    fn stalled_is_terminal_and_reconciling_is_progressing() {
        let stalled = widget(
            1,
            json!({"observedGeneration": 1, "conditions": [
            {"type": "Ready", "status": "False"},
            {"type": "Stalled", "status": "True", "message": "invalid spec"}]}),
        );
        let h = assess(&stalled);
        assert!(is_terminal_failure(&h));
        assert_eq!(h.message, "invalid spec");
        let busy = widget(
            1,
            json!({"observedGeneration": 1, "conditions": [
            {"type": "Ready", "status": "False"},
            {"type": "Reconciling", "status": "True", "reason": "Progressing"}]}),
        );
        assert_eq!(assess(&busy).status, HealthStatus::Progressing);
    }

    #[test]
    fn ready_false_is_degraded_but_not_terminal() {
        let obj = widget(
            1,
            json!({"observedGeneration": 1, "conditions": [
            {"type": "Ready", "status": "False", "reason": "BuildFailed"}]}),
        );
        let h = assess(&obj);
        assert_eq!(h.status, HealthStatus::Degraded);
        assert!(!is_terminal_failure(&h));
        let unknown = widget(
            1,
            json!({"conditions": [{"type": "Ready", "status": "Unknown"}]}),
        );
        assert!(assess(&unknown).message.contains("readiness unknown"));
        assert_eq!(assess(&unknown).status, HealthStatus::Progressing);
    }

    #[test]
    fn suspend_phase_and_plain_objects() {
        let suspended = json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization", "metadata": {"name": "k"}, "spec": {"suspend": true}});
        assert_eq!(assess(&suspended).status, HealthStatus::Suspended);
        let failed_phase = widget(1, json!({"observedGeneration": 1, "phase": "Failed"}));
        assert_eq!(assess(&failed_phase).status, HealthStatus::Degraded);
        let odd_phase = widget(1, json!({"observedGeneration": 1, "phase": "Sideways"}));
        assert_eq!(assess(&odd_phase).status, HealthStatus::Unknown);
        let unobserved = widget(
            4,
            json!({"conditions": [{"type": "Ready", "status": "True"}]}),
        );
        assert_eq!(assess(&unobserved).status, HealthStatus::Healthy);
        let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert_eq!(assess(&config).status, HealthStatus::Healthy);
    }
}
