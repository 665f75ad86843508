//! Field specs: which fields of which kinds a transformer touches, and the
//! walker that visits them.

use serde_json::{Map, Value};

use crate::resource::Gvk;

/// A path (slash-separated, `[]` marks a list) in resources of matching GVK.
#[derive(Clone, Debug)]
pub struct FieldSpec {
    /// Which resources the spec applies to (empty fields match anything).
    pub gvk: Gvk,
    /// Slash-separated field path.
    pub path: String,
    /// Whether missing fields are created.
    pub create: bool,
}

impl FieldSpec {
    /// Builds a spec from `"group/version/Kind"`-less parts.
    pub fn new(group: &str, version: &str, kind: &str, path: &str, create: bool) -> FieldSpec {
        FieldSpec {
            gvk: Gvk {
                group: group.into(),
                version: version.into(),
                kind: kind.into(),
            },
            path: path.into(),
            create,
        }
    }

    /// Reads a spec from a kustomization `fieldSpecs`/`fieldPaths`-style entry.
    pub fn from_value(v: &Value) -> Option<FieldSpec> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Some(FieldSpec {
            gvk: Gvk {
                group: s("group"),
                version: s("version"),
                kind: s("kind"),
            },
            path: v.get("path")?.as_str()?.to_string(),
            create: v.get("create").and_then(Value::as_bool).unwrap_or(false),
        })
    }
}

/// Two specs for the same field of overlapping kinds that disagree on `create`.
#[derive(Debug)]
pub struct Conflict(pub FieldSpec);

/// The specs a transformer uses when `configurations:` adds `custom` to its
/// `defaults`, merged as kustomize merges transformer configurations: a spec
/// is dropped when an earlier one with the same path is selected by its kinds
/// (so `kind: ConfigMap, path: metadata/labels` replaces the default
/// `metadata/labels` for every kind), after ordering the specs by kind; a
/// dropped spec that disagrees on `create` is a conflict.
pub fn settle(defaults: Vec<FieldSpec>, custom: &[FieldSpec]) -> Result<Vec<FieldSpec>, Conflict> {
    if custom.is_empty() {
        return Ok(defaults);
    }
    let mut merged = defaults;
    merge_all(&mut merged, custom)?;
    merged.sort_by_cached_key(|s| (crate::order::legacy_rank(&s.gvk.kind), s.gvk.to_string()));
    let mut settled = Vec::with_capacity(merged.len());
    for spec in &merged {
        merge_one(&mut settled, spec)?;
    }
    Ok(settled)
}

/// Adds each of `custom` to `list` unless a spec for the same field is
/// there already (a conflict when the two disagree on `create`).
pub fn merge_all(list: &mut Vec<FieldSpec>, custom: &[FieldSpec]) -> Result<(), Conflict> {
    custom.iter().try_for_each(|spec| merge_one(list, spec))
}

fn merge_one(list: &mut Vec<FieldSpec>, spec: &FieldSpec) -> Result<(), Conflict> {
    match list
        .iter()
        .find(|s| s.path == spec.path && s.gvk.is_selected_by(&spec.gvk))
    {
        Some(s) if s.create != spec.create => Err(Conflict(spec.clone())),
        Some(_) => Ok(()),
        None => {
            list.push(spec.clone());
            Ok(())
        }
    }
}

/// Splits a path on `/`, honouring `\/` escapes and `[...]` selectors.
pub fn split_path(path: &str) -> Vec<String> {
    split_outside_brackets(path, '/')
}

/// Splits on `sep` except inside `[...]`; `\` escapes a following `sep`.
pub fn split_outside_brackets(path: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&sep) => {
                cur.push(sep);
                chars.next();
            }
            '[' => {
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth -= 1;
                cur.push(c);
            }
            c if c == sep && depth == 0 => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    parts.retain(|p| !p.is_empty());
    parts
}

/// Visits every field at `path` below `node`, creating missing maps when
/// `create` is set. The callback receives the parent map and the key.
pub fn visit_path(
    node: &mut Value,
    path: &[String],
    create: bool,
    f: &mut dyn FnMut(&mut Map<String, Value>, &str),
) {
    visit_path_at(node, path, create, &mut String::new(), &mut |m, key, _| {
        f(m, key)
    });
}

/// A callback given a map, a key in it and the map's JSON pointer.
pub type VisitAt<'a> = dyn FnMut(&mut Map<String, Value>, &str, &str) + 'a;

/// [`visit_path`], also telling the callback where the parent map sits
/// (a JSON pointer from `node`, which `at` holds on entry).
pub fn visit_path_at(
    node: &mut Value,
    path: &[String],
    create: bool,
    at: &mut String,
    f: &mut VisitAt<'_>,
) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if let Value::Array(items) = node {
        let len = at.len();
        for (i, item) in items.iter_mut().enumerate() {
            use std::fmt::Write as _;
            let _ = write!(at, "/{i}");
            visit_path_at(item, path, create, at, f);
            at.truncate(len);
        }
        return;
    }
    let Value::Object(map) = node else {
        return;
    };
    let (key, is_list) = match first.strip_suffix("[]") {
        Some(k) => (k, true),
        None => (first.as_str(), false),
    };
    if rest.is_empty() {
        if map.contains_key(key) || create {
            f(map, key, at);
        }
        return;
    }
    if !map.contains_key(key) || map.get(key).is_some_and(Value::is_null) {
        // Missing lists are never created, only maps.
        if !create || is_list {
            return;
        }
        let fresh = if is_list {
            Value::Array(Vec::new())
        } else {
            Value::Object(Map::new())
        };
        map.insert(key.to_string(), fresh);
    }
    if let Some(child) = map.get_mut(key) {
        let len = at.len();
        push_pointer_token(at, key);
        visit_path_at(child, rest, create, at, f);
        at.truncate(len);
    }
}

/// Appends `/token` to a JSON pointer, escaped as RFC 6901 says.
pub fn push_pointer_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    if !token.contains(['~', '/']) {
        pointer.push_str(token);
        return;
    }
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// Applies `f` to every matching field of `obj` for the specs selecting `gvk`.
pub fn apply_specs(
    obj: &mut Value,
    gvk: &Gvk,
    specs: &[FieldSpec],
    f: &mut dyn FnMut(&mut Map<String, Value>, &str),
) {
    apply_specs_at(obj, gvk, specs, &mut |m, key, _| f(m, key));
}

/// [`apply_specs`], also telling the callback where the parent map sits
/// (a JSON pointer from `obj`).
pub fn apply_specs_at(obj: &mut Value, gvk: &Gvk, specs: &[FieldSpec], f: &mut VisitAt<'_>) {
    let mut seen: Vec<&str> = Vec::new();
    let mut at = String::new();
    for spec in specs {
        if !gvk.is_selected_by(&spec.gvk) || seen.contains(&spec.path.as_str()) {
            continue;
        }
        seen.push(&spec.path);
        visit_path_at(obj, &split_path(&spec.path), spec.create, &mut at, f);
    }
}

/// The field `namePrefix`/`nameSuffix` change by default: the name.
pub fn name_specs() -> Vec<FieldSpec> {
    vec![FieldSpec::new("", "", "", "metadata/name", false)]
}

/// Field specs for labels that are also selectors (kustomize's commonLabels).
pub fn common_label_specs() -> Vec<FieldSpec> {
    let mut v = vec![
        FieldSpec::new("", "", "", "metadata/labels", true),
        FieldSpec::new("", "v1", "Service", "spec/selector", true),
        FieldSpec::new("", "v1", "ReplicationController", "spec/selector", true),
        FieldSpec::new(
            "",
            "v1",
            "ReplicationController",
            "spec/template/metadata/labels",
            true,
        ),
    ];
    for (group, kind) in [
        ("", "Deployment"),
        ("", "ReplicaSet"),
        ("", "DaemonSet"),
        ("apps", "StatefulSet"),
    ] {
        v.push(FieldSpec::new(
            group,
            "",
            kind,
            "spec/selector/matchLabels",
            true,
        ));
        v.push(FieldSpec::new(
            group,
            "",
            kind,
            "spec/template/metadata/labels",
            true,
        ));
    }
    for kind in ["Deployment", "StatefulSet"] {
        for aff in ["podAffinity", "podAntiAffinity"] {
            v.push(FieldSpec::new(
                "apps",
                "",
                kind,
                &format!("spec/template/spec/affinity/{aff}/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels"),
                false,
            ));
            v.push(FieldSpec::new(
                "apps",
                "",
                kind,
                &format!("spec/template/spec/affinity/{aff}/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels"),
                false,
            ));
        }
        v.push(FieldSpec::new(
            "apps",
            "",
            kind,
            "spec/template/spec/topologySpreadConstraints/labelSelector/matchLabels",
            false,
        ));
    }
    v.extend([
        FieldSpec::new(
            "apps",
            "",
            "StatefulSet",
            "spec/volumeClaimTemplates[]/metadata/labels",
            true,
        ),
        FieldSpec::new("batch", "", "Job", "spec/selector/matchLabels", false),
        FieldSpec::new("batch", "", "Job", "spec/template/metadata/labels", true),
        FieldSpec::new(
            "batch",
            "",
            "CronJob",
            "spec/jobTemplate/spec/selector/matchLabels",
            false,
        ),
        FieldSpec::new(
            "batch",
            "",
            "CronJob",
            "spec/jobTemplate/metadata/labels",
            true,
        ),
        FieldSpec::new(
            "batch",
            "",
            "CronJob",
            "spec/jobTemplate/spec/template/metadata/labels",
            true,
        ),
        FieldSpec::new(
            "policy",
            "",
            "PodDisruptionBudget",
            "spec/selector/matchLabels",
            false,
        ),
        FieldSpec::new(
            "networking.k8s.io",
            "",
            "NetworkPolicy",
            "spec/podSelector/matchLabels",
            false,
        ),
        FieldSpec::new(
            "networking.k8s.io",
            "",
            "NetworkPolicy",
            "spec/ingress/from/podSelector/matchLabels",
            false,
        ),
        FieldSpec::new(
            "networking.k8s.io",
            "",
            "NetworkPolicy",
            "spec/egress/to/podSelector/matchLabels",
            false,
        ),
    ]);
    v
}

/// kustomize's `templateLabels` table: the fields `labels` with
/// `includeTemplates` sets, merged with `configurations:` specs.
pub fn template_label_config_specs() -> Vec<FieldSpec> {
    let t = "spec/template/metadata/labels";
    [
        ("", "", "", "metadata/labels"),
        ("", "v1", "ReplicationController", t),
        ("", "", "Deployment", t),
        ("", "", "ReplicaSet", t),
        ("", "", "DaemonSet", t),
        ("apps", "", "StatefulSet", t),
        (
            "apps",
            "",
            "StatefulSet",
            "spec/volumeClaimTemplates[]/metadata/labels",
        ),
        ("batch", "", "Job", t),
        ("batch", "", "CronJob", "spec/jobTemplate/metadata/labels"),
        (
            "batch",
            "",
            "CronJob",
            "spec/jobTemplate/spec/template/metadata/labels",
        ),
    ]
    .iter()
    .map(|(g, v, k, p)| FieldSpec::new(g, v, k, p, true))
    .collect()
}

/// Field specs for commonAnnotations.
pub fn annotation_specs() -> Vec<FieldSpec> {
    let mut v = vec![
        FieldSpec::new("", "", "", "metadata/annotations", true),
        FieldSpec::new(
            "",
            "v1",
            "ReplicationController",
            "spec/template/metadata/annotations",
            true,
        ),
    ];
    for kind in [
        "Deployment",
        "ReplicaSet",
        "DaemonSet",
        "StatefulSet",
        "Job",
    ] {
        v.push(FieldSpec::new(
            "",
            "",
            kind,
            "spec/template/metadata/annotations",
            true,
        ));
    }
    v.push(FieldSpec::new(
        "batch",
        "",
        "CronJob",
        "spec/jobTemplate/metadata/annotations",
        true,
    ));
    v.push(FieldSpec::new(
        "batch",
        "",
        "CronJob",
        "spec/jobTemplate/spec/template/metadata/annotations",
        true,
    ));
    v
}

/// Where pod specs live in workload kinds.
const POD_SPEC_ROOTS: [&str; 3] = [
    "spec",
    "spec/template/spec",
    "spec/jobTemplate/spec/template/spec",
];

/// `<pod spec>/<containers|initContainers>/<field>` for every pod spec root.
fn container_field_specs(fields: &[&str]) -> Vec<FieldSpec> {
    let mut v = Vec::new();
    for prefix in POD_SPEC_ROOTS {
        for c in ["containers", "initContainers"] {
            for f in fields {
                v.push(FieldSpec::new(
                    "",
                    "",
                    "",
                    &format!("{prefix}/{c}/{f}"),
                    false,
                ));
            }
        }
    }
    v
}

/// Where container images live (kustomize's images transformer).
pub fn image_specs() -> Vec<FieldSpec> {
    container_field_specs(&["image"])
}

/// kustomize's declared `images` table, as `configurations:` merge with it
/// (the transformer itself walks [`image_specs`] and every container list).
pub fn image_config_specs() -> Vec<FieldSpec> {
    ["spec", "spec/template/spec"]
        .iter()
        .flat_map(|root| {
            ["containers", "initContainers"]
                .map(|c| FieldSpec::new("", "", "", &format!("{root}/{c}[]/image"), true))
        })
        .collect()
}

/// kustomize's declared `namespace` table, as `configurations:` merge with
/// it (`metadata/namespace` itself is set by the scope-aware transformer).
pub fn namespace_config_specs() -> Vec<FieldSpec> {
    vec![
        FieldSpec::new("", "", "Namespace", "metadata/name", true),
        FieldSpec::new(
            "apiregistration.k8s.io",
            "",
            "APIService",
            "spec/service/namespace",
            true,
        ),
        FieldSpec::new(
            "apiextensions.k8s.io",
            "",
            "CustomResourceDefinition",
            "spec/conversion/webhook/clientConfig/service/namespace",
            false,
        ),
    ]
}

/// Where replica counts live.
pub fn replica_specs() -> Vec<FieldSpec> {
    [
        "Deployment",
        "ReplicationController",
        "ReplicaSet",
        "StatefulSet",
    ]
    .iter()
    .map(|k| FieldSpec::new("", "", k, "spec/replicas", true))
    .collect()
}

/// Workload kinds whose pod specs take `$(VAR)` references, with the
/// pod spec's path (kustomize's varReference table names kinds, not paths
/// alone: other kinds with the same fields are left as they are).
const VAR_POD_SPECS: [(&str, &str); 7] = [
    ("CronJob", "spec/jobTemplate/spec/template/spec"),
    ("DaemonSet", "spec/template/spec"),
    ("Deployment", "spec/template/spec"),
    ("Job", "spec/template/spec"),
    ("Pod", "spec"),
    ("ReplicaSet", "spec/template/spec"),
    ("StatefulSet", "spec/template/spec"),
];

/// Fields where legacy `$(VAR)` references are expanded (kustomize's
/// default varReference field specs).
pub fn var_reference_specs() -> Vec<FieldSpec> {
    let mut v = Vec::new();
    for (kind, root) in VAR_POD_SPECS {
        for c in ["containers", "initContainers"] {
            for f in ["args", "command", "env/value", "volumeMounts/mountPath"] {
                v.push(FieldSpec::new(
                    "",
                    "",
                    kind,
                    &format!("{root}/{c}/{f}"),
                    false,
                ));
            }
        }
        // kustomize v5.5.0's table misses the pod spec of CronJob volumes.
        let volumes = match kind {
            "CronJob" => "spec/jobTemplate/spec/template/volumes/nfs/server".to_string(),
            _ => format!("{root}/volumes/nfs/server"),
        };
        v.push(FieldSpec::new("", "", kind, &volumes, false));
    }
    for (kind, path) in [
        ("Ingress", "spec/rules/host"),
        ("Ingress", "spec/tls/hosts"),
        ("Ingress", "spec/tls/secretName"),
        ("Deployment", "spec/template/metadata/annotations"),
        ("Service", "spec/ports/port"),
        ("Service", "spec/ports/targetPort"),
        ("StatefulSet", "spec/volumeClaimTemplates/spec/nfs/server"),
        ("PersistentVolume", "spec/nfs/server"),
        ("", "metadata/labels"),
        ("", "metadata/annotations"),
    ] {
        v.push(FieldSpec::new("", "", kind, path, false));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visit_creates_and_walks_lists() {
        let mut v: Value = serde_json::json!({"spec": {"items": [{"a": 1}, {"a": 2}]}});
        let mut seen = 0;
        visit_path(&mut v, &split_path("spec/items/a"), false, &mut |m, k| {
            seen += 1;
            m.insert(k.to_string(), Value::from(0));
        });
        assert_eq!(seen, 2);
        visit_path(&mut v, &split_path("spec/new/x"), true, &mut |m, k| {
            m.insert(k.to_string(), Value::from("y"));
        });
        assert_eq!(v["spec"]["new"]["x"], "y");
    }
}
