//! Strategic merge patch with Kubernetes merge keys and `$patch` directives.

use serde_json::{Map, Value};

use crate::openapi::ListMerge;

/// Merge keys of built-in list fields, by field name.
fn schema_merge_key(field: &str, items: &[&Value]) -> Option<&'static str> {
    let has = |k: &str| items.iter().all(|v| v.get(k).is_some());
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets" => "name",
        "secrets" | "webhooks" | "schedulingGates" | "resourceClaims" => "name",
        "ownerReferences" => "uid",
        "conditions" => "type",
        "readinessGates" => "conditionType",
        "resizePolicy" => "resourceName",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "ports" if has("containerPort") => "containerPort",
        "ports" if has("port") => "port",
        _ => return None,
    })
}

/// Lists that are replaced, not merged, even when elements carry a name.
const ATOMIC_LISTS: &[&str] = &[
    "args",
    "command",
    "tolerations",
    "envFrom",
    "rules",
    "subjects",
    "finalizers_atomic",
];

/// What the schema in effect says about a resource's lists.
#[derive(Clone, Copy, Debug)]
pub struct Lists<'a> {
    /// The kind has a schema (built-in or custom): only then do lists merge
    /// by key; otherwise they are replaced, as kustomize does for types it
    /// has no schema for.
    pub known: bool,
    /// The list fields a custom schema marks for the kind, which take
    /// precedence over the built-in ones of the same name.
    pub custom: Option<&'a crate::openapi::CustomLists>,
}

/// Merges `patch` into `target` in place.
pub fn merge(target: &mut Value, patch: &Value, lists: Lists<'_>) -> Result<(), String> {
    // Nulls the patch does not name stay, as in kustomize v5.5.0.
    merge_value(target, patch, "", lists)
}

/// Group/versions whose kinds kustomize's built-in schema (Kubernetes 1.21) knows.
const BUILTIN_GROUP_VERSIONS: &[&str] = &[
    "v1",
    "apps/v1",
    "batch/v1",
    "batch/v1beta1",
    "autoscaling/v1",
    "autoscaling/v2beta1",
    "autoscaling/v2beta2",
    "extensions/v1beta1",
    "networking.k8s.io/v1",
    "networking.k8s.io/v1beta1",
    "policy/v1",
    "policy/v1beta1",
    "rbac.authorization.k8s.io/v1",
    "rbac.authorization.k8s.io/v1beta1",
    "storage.k8s.io/v1",
    "storage.k8s.io/v1beta1",
    "scheduling.k8s.io/v1",
    "admissionregistration.k8s.io/v1",
    "admissionregistration.k8s.io/v1beta1",
    "apiextensions.k8s.io/v1",
    "apiextensions.k8s.io/v1beta1",
    "apiregistration.k8s.io/v1",
    "certificates.k8s.io/v1",
    "coordination.k8s.io/v1",
    "discovery.k8s.io/v1",
    "discovery.k8s.io/v1beta1",
    "node.k8s.io/v1",
    "flowcontrol.apiserver.k8s.io/v1beta1",
];

/// Kinds that exist in the core group (`v1`) of the built-in schema.
const CORE_KINDS: &[&str] = &[
    "Binding",
    "ComponentStatus",
    "ConfigMap",
    "Endpoints",
    "Event",
    "LimitRange",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Pod",
    "PodTemplate",
    "ReplicationController",
    "ResourceQuota",
    "Secret",
    "Service",
    "ServiceAccount",
];

/// True when kustomize's built-in schema describes this apiVersion and kind.
pub fn has_builtin_schema(api_version: &str, kind: &str) -> bool {
    if api_version == "v1" {
        return CORE_KINDS.contains(&kind);
    }
    BUILTIN_GROUP_VERSIONS.contains(&api_version)
}

fn merge_value(
    target: &mut Value,
    patch: &Value,
    field: &str,
    known: Lists<'_>,
) -> Result<(), String> {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => merge_map(t, p, known),
        (Value::Array(t), Value::Array(p)) => {
            merge_list(t, p, field, known)?;
            Ok(())
        }
        (t, p) => {
            *t = strip_directives(p);
            Ok(())
        }
    }
}

fn merge_map(
    t: &mut Map<String, Value>,
    p: &Map<String, Value>,
    known: Lists<'_>,
) -> Result<(), String> {
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *t = match strip_directives(&Value::Object(p.clone())) {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            return Ok(());
        }
        Some("delete") => {
            t.clear();
            return Ok(());
        }
        _ => {}
    }
    // Only `$patch` is a directive here: kustomize's merge keeps other
    // `$`-keys (`$setElementOrder/…`, `$retainKeys`) as ordinary fields.
    for (k, pv) in p {
        if k == "$patch" {
            continue;
        }
        if pv.is_null() {
            t.remove(k);
            continue;
        }
        if let Some(Value::Object(pm)) = Some(pv)
            && pm.get("$patch").and_then(Value::as_str) == Some("delete")
        {
            t.remove(k);
            continue;
        }
        match t.get_mut(k) {
            Some(tv) if !tv.is_null() => merge_value(tv, pv, k, known)?,
            _ => {
                let v = strip_directives(pv);
                // A patch that only deletes leaves nothing to add.
                if !matches!(&v, Value::Object(m) if m.is_empty() && pv.as_object().is_some_and(|pm| !pm.is_empty()))
                {
                    t.insert(k.clone(), v);
                }
            }
        }
    }
    Ok(())
}

fn merge_list(
    t: &mut Vec<Value>,
    p: &[Value],
    field: &str,
    lists: Lists<'_>,
) -> Result<(), String> {
    if p.iter()
        .any(|v| v.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *t = p
            .iter()
            .filter(|v| v.get("$patch").is_none())
            .map(strip_directives)
            .collect();
        return Ok(());
    }
    let custom = lists.custom.and_then(|c| c.get(field));
    let all_maps =
        !p.is_empty() && p.iter().all(Value::is_object) && t.iter().all(Value::is_object);
    if !all_maps {
        // Only a schema marks `finalizers` (ObjectMeta's) as a merged set:
        // kinds without one have them replaced.
        let builtin_set = field == "finalizers" && lists.known;
        if builtin_set || custom == Some(&ListMerge::Set) {
            // A merged primitive list: the patch's items first, then the rest.
            let mut merged: Vec<Value> = p.to_vec();
            merged.extend(t.iter().filter(|v| !p.contains(v)).cloned());
            *t = merged;
            return Ok(());
        }
        *t = p.iter().map(strip_directives).collect();
        return Ok(());
    }
    let custom_key = match custom {
        Some(ListMerge::Key(k)) => Some(k.as_str()),
        _ => None,
    };
    if custom_key.is_none() && ATOMIC_LISTS.contains(&field) {
        *t = p.iter().map(strip_directives).collect();
        return Ok(());
    }
    let elems: Vec<&Value> = t
        .iter()
        .chain(p.iter().filter(|v| v.get("$patch").is_none()))
        .collect();
    let key = match custom_key {
        Some(k) => Some(k),
        None if lists.known => schema_merge_key(field, &elems),
        None => None,
    };
    let Some(key) = key else {
        *t = p.iter().map(strip_directives).collect();
        return Ok(());
    };
    // Patch items come first, in patch order (merged with the original they
    // name), then the originals the patch does not mention.
    let mut original: Vec<Option<Value>> = std::mem::take(t).into_iter().map(Some).collect();
    let mut out = Vec::new();
    for pv in p {
        let Some(kv) = pv.get(key) else {
            continue;
        };
        let pos = original
            .iter()
            .position(|o| o.as_ref().is_some_and(|tv| tv.get(key) == Some(kv)));
        let directive = pv.get("$patch").and_then(Value::as_str);
        match (pos, directive) {
            (Some(i), Some("delete")) => original[i] = None,
            (None, Some("delete")) => {}
            (Some(i), _) => {
                if let Some(mut tv) = original[i].take() {
                    merge_value(&mut tv, pv, "", lists)?;
                    out.push(tv);
                }
            }
            (None, _) => out.push(strip_directives(pv)),
        }
    }
    out.extend(original.into_iter().flatten());
    *t = out;
    Ok(())
}

/// Removes `$patch`-style directives from a value being inserted.
fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != "$patch")
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|x| x.get("$patch").and_then(Value::as_str) != Some("delete"))
                .map(strip_directives)
                .collect(),
        ),
        other => other.clone(),
    }
}
