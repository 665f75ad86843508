//! Apply and delete order: sync waves first, then a fixed kind order inside a wave,
//! so that what an object depends on (its namespace, CRD, service account,
//! config, ...) exists before the object itself.

use std::collections::HashMap;

use serde_json::Value;

use crate::object::{ObjectError, ObjectRef, SYNC_WAVE_ANNOTATION};

/// Why objects could not be ordered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OrderError {
    /// An object has no usable identity.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// The sync-wave annotation is not an integer.
    #[error("{object}: annotation {SYNC_WAVE_ANNOTATION} must be an integer, got {value}")]
    InvalidWave {
        /// The object carrying the annotation.
        object: String,
        /// The value found, as JSON.
        value: String,
    },
    /// A custom resource is in an earlier wave than the CRD that defines it.
    #[error(
        "{object} is in sync wave {wave}, before its definition {definition} in wave {definition_wave}"
    )]
    BeforeDefinition {
        /// The custom resource.
        object: String,
        /// Its wave.
        wave: i64,
        /// The CustomResourceDefinition.
        definition: String,
        /// The definition's wave.
        definition_wave: i64,
    },
}

/// One sync wave: objects sharing a wave number, in apply (or delete) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Wave<'a> {
    /// The wave number from the annotation (0 by default).
    pub number: i64,
    /// Objects of this wave, in the order to process them.
    pub objects: Vec<&'a Value>,
}

/// Rank of kinds without a place of their own: custom resources, which must
/// follow the CRDs (rank 1) that define them.
const CUSTOM_RESOURCE_RANK: u8 = 17;

/// Position of a kind inside a wave; lower ranks are applied first.
pub fn kind_rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "CustomResourceDefinition" => 1,
        "ResourceQuota" | "LimitRange" | "NetworkPolicy" | "PodSecurityPolicy" => 2,
        "ClusterRole" => 3,
        "ServiceAccount" => 5,
        "Role" => 6,
        "ClusterRoleBinding" | "RoleBinding" => 7,
        "ConfigMap" | "Secret" => 8,
        "PersistentVolume" => 9,
        "PersistentVolumeClaim" => 10,
        "PodDisruptionBudget" => 11,
        "Service" | "Endpoints" | "EndpointSlice" => 12,
        "DaemonSet"
        | "Deployment"
        | "ReplicaSet"
        | "ReplicationController"
        | "StatefulSet"
        | "Job"
        | "CronJob"
        | "Pod" => 13,
        "Ingress" => 14,
        "HorizontalPodAutoscaler" => 15,
        "APIService" => 16,
        // Admission hooks last: applied early, they could reject the rest of the sync
        // while their own backend is not running yet.
        "MutatingWebhookConfiguration"
        | "ValidatingWebhookConfiguration"
        | "ValidatingAdmissionPolicy"
        | "ValidatingAdmissionPolicyBinding" => 18,
        // StorageClass, IngressClass, PriorityClass, RuntimeClass, GatewayClass, ...
        k if k.ends_with("Class") => 4,
        _ => CUSTOM_RESOURCE_RANK,
    }
}

/// The sync wave of an object: its `driftless.dev/sync-wave` annotation, default 0.
pub fn sync_wave(obj: &Value) -> Result<i64, OrderError> {
    let Some(raw) = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(SYNC_WAVE_ANNOTATION))
    else {
        return Ok(0);
    };
    let parsed = raw.as_str().and_then(|s| s.parse::<i64>().ok());
    parsed.ok_or_else(|| OrderError::InvalidWave {
        object: ObjectRef::from_object(obj).map_or_else(|e| e.to_string(), |r| r.to_string()),
        value: raw.to_string(),
    })
}

/// Groups objects into waves in ascending wave order, each in kind order.
/// Ties are broken by kind, namespace and name so the result does not depend
/// on the order the renderer emitted the objects.
pub fn apply_order<'a>(
    objects: impl IntoIterator<Item = &'a Value>,
) -> Result<Vec<Wave<'a>>, OrderError> {
    let mut refs = Vec::new();
    for obj in objects {
        let r = ObjectRef::from_object(obj)?;
        let wave = sync_wave(obj)?;
        refs.push((wave, r, obj));
    }
    check_definitions_first(&refs)?;
    let mut keyed: Vec<_> = refs
        .into_iter()
        .map(|(wave, r, obj)| ((wave, kind_rank(&r.kind), r.kind, r.namespace, r.name), obj))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut waves: Vec<Wave<'a>> = Vec::new();
    for ((number, ..), obj) in keyed {
        match waves.last_mut() {
            Some(w) if w.number == number => w.objects.push(obj),
            _ => waves.push(Wave {
                number,
                objects: vec![obj],
            }),
        }
    }
    Ok(waves)
}

/// Kind order puts CRDs before custom resources only within a wave; across
/// waves a resource applied before its definition would be rejected.
fn check_definitions_first(refs: &[(i64, ObjectRef, &Value)]) -> Result<(), OrderError> {
    let definitions: HashMap<(&str, &str), (i64, &ObjectRef)> = refs
        .iter()
        .filter(|(_, r, _)| {
            r.kind == "CustomResourceDefinition" && r.group == "apiextensions.k8s.io"
        })
        .filter_map(|(wave, r, obj)| {
            let group = obj.pointer("/spec/group").and_then(Value::as_str)?;
            let kind = obj.pointer("/spec/names/kind").and_then(Value::as_str)?;
            Some(((group, kind), (*wave, r)))
        })
        .collect();
    for (wave, r, _) in refs {
        if let Some((definition_wave, definition)) =
            definitions.get(&(r.group.as_str(), r.kind.as_str()))
            && wave < definition_wave
        {
            return Err(OrderError::BeforeDefinition {
                object: r.to_string(),
                wave: *wave,
                definition: definition.to_string(),
                definition_wave: *definition_wave,
            });
        }
    }
    Ok(())
}

/// Order for deletion: the exact reverse of [`apply_order`] (last wave first,
/// webhooks before workloads, namespaces and CRDs last).
pub fn delete_order<'a>(
    objects: impl IntoIterator<Item = &'a Value>,
) -> Result<Vec<Wave<'a>>, OrderError> {
    let mut waves = apply_order(objects)?;
    waves.reverse();
    for wave in &mut waves {
        wave.objects.reverse();
    }
    Ok(waves)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(api: &str, kind: &str, name: &str) -> Value {
        json!({"apiVersion": api, "kind": kind, "metadata": {"name": name}})
    }

    fn with_wave(mut o: Value, wave: &str) -> Value {
        o["metadata"]["annotations"] = json!({SYNC_WAVE_ANNOTATION: wave});
        o
    }

    fn kinds(waves: &[Wave<'_>]) -> Vec<Vec<String>> {
        waves
            .iter()
            .map(|w| {
                w.objects
                    .iter()
                    .map(|o| {
                        let field = |v: &Value| v.as_str().unwrap_or("").to_owned();
                        format!("{}/{}", field(&o["kind"]), field(&o["metadata"]["name"]))
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn kind_order_within_one_wave() {
        let set = vec![
            obj(
                "admissionregistration.k8s.io/v1",
                "ValidatingWebhookConfiguration",
                "hook",
            ),
            obj("example.com/v1", "Widget", "w"),
            obj("networking.k8s.io/v1", "Ingress", "web"),
            obj("apps/v1", "Deployment", "web"),
            obj("v1", "Service", "web"),
            obj("v1", "PersistentVolumeClaim", "data"),
            obj("v1", "ConfigMap", "cfg"),
            obj("rbac.authorization.k8s.io/v1", "RoleBinding", "rb"),
            obj("v1", "ServiceAccount", "sa"),
            obj("storage.k8s.io/v1", "StorageClass", "fast"),
            obj("rbac.authorization.k8s.io/v1", "ClusterRole", "cr"),
            obj(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "widgets.example.com",
            ),
            obj("v1", "Namespace", "web"),
            obj("autoscaling/v2", "HorizontalPodAutoscaler", "web"),
        ];
        let waves = apply_order(&set).expect("valid objects");
        assert_eq!(waves.len(), 1);
        assert_eq!(waves[0].number, 0);
        let order: Vec<&str> = waves[0]
            .objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            order,
            [
                "Namespace",
                "CustomResourceDefinition",
                "ClusterRole",
                "StorageClass",
                "ServiceAccount",
                "RoleBinding",
                "ConfigMap",
                "PersistentVolumeClaim",
                "Service",
                "Deployment",
                "Ingress",
                "HorizontalPodAutoscaler",
                "Widget",
                "ValidatingWebhookConfiguration",
            ]
        );
    }

    #[test]
    fn waves_group_and_sort_numerically() {
        let set = vec![
            with_wave(obj("v1", "ConfigMap", "late"), "10"),
            with_wave(obj("v1", "Namespace", "late-ns"), "10"),
            obj("apps/v1", "Deployment", "default"),
            with_wave(obj("batch/v1", "Job", "migrate"), "-1"),
            with_wave(obj("v1", "ConfigMap", "two"), "2"),
        ];
        let waves = apply_order(&set).expect("valid objects");
        let numbers: Vec<i64> = waves.iter().map(|w| w.number).collect();
        assert_eq!(numbers, [-1, 0, 2, 10]);
        assert_eq!(kinds(&waves)[3], ["Namespace/late-ns", "ConfigMap/late"]);
    }

    #[test]
    fn delete_order_is_the_reverse() {
        let set = vec![
            obj("v1", "Namespace", "web"),
            obj("apps/v1", "Deployment", "web"),
            with_wave(obj("v1", "ConfigMap", "first"), "-5"),
            obj("v1", "ServiceAccount", "sa"),
        ];
        let apply = kinds(&apply_order(&set).expect("valid"));
        let reversed: Vec<Vec<String>> = apply
            .into_iter()
            .rev()
            .map(|w| w.into_iter().rev().collect())
            .collect();
        let delete = kinds(&delete_order(&set).expect("valid"));
        assert_eq!(delete, reversed);
        assert_eq!(delete[0][0], "Deployment/web");
        assert_eq!(delete[0][2], "Namespace/web");
    }

    #[test]
    fn ties_do_not_depend_on_input_order() {
        let a = vec![obj("v1", "ConfigMap", "b"), obj("v1", "ConfigMap", "a")];
        let b = vec![obj("v1", "ConfigMap", "a"), obj("v1", "ConfigMap", "b")];
        assert_eq!(
            kinds(&apply_order(&a).expect("valid")),
            kinds(&apply_order(&b).expect("valid"))
        );
    }

    #[test]
    fn invalid_wave_names_the_object() {
        let bad = with_wave(obj("apps/v1", "Deployment", "web"), "soon");
        let err = apply_order([&bad]).expect_err("non-integer wave");
        assert_eq!(
            err.to_string(),
            "apps/v1/Deployment/web: annotation driftless.dev/sync-wave must be an integer, got \"soon\""
        );
        let mut numeric = obj("v1", "ConfigMap", "c");
        numeric["metadata"]["annotations"] = json!({SYNC_WAVE_ANNOTATION: 3});
        assert!(matches!(
            sync_wave(&numeric),
            Err(OrderError::InvalidWave { .. })
        ));
        assert_eq!(sync_wave(&with_wave(obj("v1", "Pod", "p"), "-3")), Ok(-3));
    }

    #[test]
    fn custom_resource_before_its_definition_is_rejected() {
        let mut crd = obj(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            "widgets.example.com",
        );
        crd["spec"] = json!({"group": "example.com", "names": {"kind": "Widget"}});
        let crd = with_wave(crd, "1");
        let early = obj("example.com/v1", "Widget", "w");
        let err = apply_order([&early, &crd]).expect_err("widget before its CRD");
        assert_eq!(
            err.to_string(),
            "example.com/v1/Widget/w is in sync wave 0, before its definition \
             apiextensions.k8s.io/v1/CustomResourceDefinition/widgets.example.com in wave 1"
        );
        let same_wave = with_wave(obj("example.com/v1", "Widget", "w"), "1");
        let waves = apply_order([&same_wave, &crd]).expect("same wave is fine");
        assert_eq!(waves[0].objects[0]["kind"], "CustomResourceDefinition");
        let other_group = obj("other.io/v1", "Widget", "w");
        assert!(apply_order([&other_group, &crd]).is_ok());
    }

    #[test]
    fn object_without_name_is_rejected() {
        let nameless = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}});
        let err = apply_order([&nameless]).expect_err("no name");
        assert_eq!(err.to_string(), "v1 ConfigMap: missing field metadata.name");
    }
}
