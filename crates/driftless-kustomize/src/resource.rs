//! Resources, their identities, and the ordered list a build produces.

use std::fmt;
use std::path::Path;

use serde_json::{Map, Value};

use crate::Error;
use crate::yaml::{self, YamlError};

/// Group, version and kind of a resource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Gvk {
    /// API group (empty for the core group).
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
}

impl Gvk {
    /// Splits an `apiVersion` plus kind into a GVK.
    pub fn from_api_version(api_version: &str, kind: &str) -> Gvk {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.to_string()),
        };
        Gvk {
            group,
            version,
            kind: kind.to_string(),
        }
    }

    /// True when every non-empty field of `selector` equals this GVK's field.
    pub fn is_selected_by(&self, selector: &Gvk) -> bool {
        (selector.group.is_empty() || selector.group == self.group)
            && (selector.version.is_empty() || selector.version == self.version)
            && (selector.kind.is_empty() || selector.kind == self.kind)
    }

    /// True for kinds that are not namespaced: kustomize's table of the
    /// built-in kinds, then what a custom schema's paths say of other kinds.
    pub fn is_cluster_scoped(&self) -> bool {
        if CLUSTER_SCOPED
            .iter()
            .any(|(g, k)| *k == self.kind && *g == self.group)
        {
            return true;
        }
        crate::scope::custom_namespaced(self) == Some(false) && !self.has_builtin_schema()
    }

    fn has_builtin_schema(&self) -> bool {
        let api_version = if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        };
        crate::smp::has_builtin_schema(&api_version, &self.kind)
    }
}

/// kustomize's spelling: `Kind.version.group`, `[noGrp]` for the core group.
impl fmt::Display for Gvk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}",
            or_placeholder(&self.kind, "[noKind]"),
            or_placeholder(&self.version, "[noVer]"),
            or_placeholder(&self.group, "[noGrp]"),
        )
    }
}

/// Why a `generators:`/`transformers:` configuration (`role`) cannot run:
/// for kustomize's `builtin` plugin group in kustomize's words, else naming
/// the kind (external plugins are not supported).
pub(crate) fn unsupported_plugin(config: &Value, role: &str) -> String {
    let str_of = |f: &str| config.get(f).and_then(Value::as_str).unwrap_or("");
    let (api_version, kind) = (str_of("apiVersion"), str_of("kind"));
    if api_version == "builtin" {
        let gvk = Gvk::from_api_version(api_version, kind);
        format!("unable to load builtin {gvk}: {role} kind '{kind}' is not supported")
    } else {
        format!(
            "external {role} plugins are not supported: '{kind}' ({api_version}) is {}",
            plugin_form(config)
        )
    }
}

/// What kind of external plugin a configuration asks for: a KRM function
/// (its `config.kubernetes.io/function` annotation says how it runs) or a
/// legacy plugin found by kind.
fn plugin_form(config: &Value) -> &'static str {
    let annotations = config.pointer("/metadata/annotations");
    let function = ["config.kubernetes.io/function", "config.k8s.io/function"]
        .iter()
        .find_map(|key| annotations.and_then(|a| a.get(*key)))
        .and_then(Value::as_str);
    match function {
        Some(f) if f.contains("exec:") => "an exec KRM function",
        Some(f) if f.contains("container:") => "a container KRM function",
        Some(f) if f.contains("starlark:") => "a Starlark KRM function",
        Some(_) => "a KRM function",
        None => "a plugin kustomize would look up by kind",
    }
}

fn or_placeholder<'a>(value: &'a str, placeholder: &'a str) -> &'a str {
    if value.is_empty() { placeholder } else { value }
}

/// Kinds of the built-in API that are cluster-scoped, with their groups.
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("apiregistration.k8s.io", "APIService"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("", "ComponentStatus"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("networking.k8s.io", "IngressClass"),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("policy", "PodSecurityPolicy"),
    ("extensions", "PodSecurityPolicy"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("node.k8s.io", "RuntimeClass"),
    ("authorization.k8s.io", "SelfSubjectAccessReview"),
    ("authorization.k8s.io", "SelfSubjectRulesReview"),
    ("storage.k8s.io", "StorageClass"),
    ("authorization.k8s.io", "SubjectAccessReview"),
    ("authentication.k8s.io", "TokenReview"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    ("storage.k8s.io", "VolumeAttachment"),
];

/// The identity of a resource: GVK plus name and namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ResId {
    /// Group, version, kind.
    pub gvk: Gvk,
    /// metadata.name
    pub name: String,
    /// metadata.namespace (empty when unset).
    pub namespace: String,
}

impl ResId {
    /// The namespace with the empty namespace read as `default`.
    pub fn effective_namespace(&self) -> &str {
        if self.gvk.is_cluster_scoped() {
            "_cluster_"
        } else if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        }
    }

    /// Identity equality as kustomize counts conflicts.
    pub fn same_as(&self, other: &ResId) -> bool {
        self.gvk == other.gvk
            && self.name == other.name
            && self.effective_namespace() == other.effective_namespace()
    }
}

/// kustomize's spelling (`Kind.version.group/name.namespace`, with
/// `[noGrp]`-style placeholders), so error messages read as kustomize's do.
impl fmt::Display for ResId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}.{}",
            self.gvk,
            or_placeholder(&self.name, "[noName]"),
            or_placeholder(&self.namespace, "[noNs]"),
        )
    }
}

/// One Kubernetes object produced by a build.
#[derive(Clone, Debug)]
pub struct Resource {
    pub(crate) obj: Value,
    /// Unique per loaded or generated object (copies share it).
    pub(crate) serial: u64,
    /// Identities this resource had before renames, oldest first.
    pub(crate) prev_ids: Vec<ResId>,
    /// Generated ConfigMap/Secret that gets a content hash in its name.
    pub(crate) needs_hash: bool,
    /// Generator merge behavior (for generated resources).
    pub(crate) behavior: Option<String>,
    /// Name prefixes applied, oldest first, for matching name references.
    pub(crate) prefixes: Vec<String>,
    /// Name suffixes applied, oldest first.
    pub(crate) suffixes: Vec<String>,
    /// Where the resource came from (for `buildMetadata`).
    pub(crate) origin: Option<crate::origin::Origin>,
    /// Transformers that ran over it: configuring file and kind.
    pub(crate) transformations: Vec<std::sync::Arc<crate::origin::Configured>>,
    /// Places that hold one YAML node in kustomize (see `shared`).
    pub(crate) shared: Vec<crate::shared::SharedNode>,
}

impl Resource {
    /// Wraps a parsed object.
    pub(crate) fn new(obj: Value) -> Resource {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Resource {
            obj,
            serial: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            prev_ids: Vec::new(),
            needs_hash: false,
            behavior: None,
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            origin: None,
            transformations: Vec::new(),
            shared: Vec::new(),
        }
    }

    fn str_at(&self, path: &[&str]) -> &str {
        let mut cur = &self.obj;
        for p in path {
            match cur.get(p) {
                Some(v) => cur = v,
                None => return "",
            }
        }
        cur.as_str().unwrap_or("")
    }

    /// True when this resource and `other` went through the same recent
    /// prefixes and suffixes (compared over the shorter history).
    pub(crate) fn same_affixes(&self, other: &Resource, lenient: bool) -> bool {
        let eq = |a: &[String], b: &[String]| {
            (lenient && (a.is_empty() || b.is_empty())) || same_ending(a, b)
        };
        eq(&self.prefixes, &other.prefixes) && eq(&self.suffixes, &other.suffixes)
    }

    /// `apiVersion`
    pub fn api_version(&self) -> &str {
        self.str_at(&["apiVersion"])
    }

    /// `kind`
    pub fn kind(&self) -> &str {
        self.str_at(&["kind"])
    }

    /// `metadata.name`
    pub fn name(&self) -> &str {
        self.str_at(&["metadata", "name"])
    }

    /// `metadata.namespace`, if set.
    pub fn namespace(&self) -> Option<&str> {
        let ns = self.str_at(&["metadata", "namespace"]);
        (!ns.is_empty()).then_some(ns)
    }

    /// The object as an order-preserving JSON value.
    pub fn to_json(&self) -> Value {
        self.obj.clone()
    }

    /// The object as a borrowed JSON value.
    pub fn as_json(&self) -> &Value {
        &self.obj
    }

    /// The object as one YAML document, formatted as kustomize does.
    pub fn to_yaml(&self) -> Result<String, YamlError> {
        yaml::emit_document(&self.obj)
    }

    /// Current group/version/kind.
    pub fn gvk(&self) -> Gvk {
        Gvk::from_api_version(self.api_version(), self.kind())
    }

    /// Current identity.
    pub fn cur_id(&self) -> ResId {
        ResId {
            gvk: self.gvk(),
            name: self.name().to_string(),
            namespace: self.namespace().unwrap_or("").to_string(),
        }
    }

    /// True when the resource is or was called `name` (a cheap first filter
    /// before comparing whole identities).
    pub(crate) fn had_name(&self, name: &str) -> bool {
        self.name() == name || self.prev_ids.iter().any(|id| id.name == name)
    }

    /// True when the current identity equals `id` (as conflicts count),
    /// checked without building a new id.
    pub(crate) fn has_id(&self, id: &ResId) -> bool {
        self.name() == id.name
            && self.kind() == id.gvk.kind
            && self.gvk() == id.gvk
            && self.cur_id().effective_namespace() == id.effective_namespace()
    }

    /// Identity before any rename.
    pub fn org_id(&self) -> ResId {
        self.prev_ids
            .first()
            .cloned()
            .unwrap_or_else(|| self.cur_id())
    }

    /// All identities, oldest first, ending with the current one.
    pub(crate) fn all_ids(&self) -> Vec<ResId> {
        let mut ids = self.prev_ids.clone();
        ids.push(self.cur_id());
        ids
    }

    /// Records the current identity as a previous one, before a rename.
    pub(crate) fn remember_id(&mut self) {
        let cur = self.cur_id();
        if self.prev_ids.last() != Some(&cur) {
            self.prev_ids.push(cur);
        }
    }

    pub(crate) fn metadata_mut(&mut self) -> &mut Map<String, Value> {
        let obj = self.map_mut();
        let meta = obj
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            *meta = Value::Object(Map::new());
        }
        meta.as_object_mut()
            .expect("metadata was just made an object")
    }

    pub(crate) fn map_mut(&mut self) -> &mut Map<String, Value> {
        if !self.obj.is_object() {
            self.obj = Value::Object(Map::new());
        }
        self.obj.as_object_mut().expect("object was just ensured")
    }

    /// Sets `metadata.name`.
    pub(crate) fn set_name(&mut self, name: &str) {
        self.metadata_mut()
            .insert("name".into(), Value::String(name.to_string()));
    }

    /// Sets `metadata.namespace`.
    pub(crate) fn set_namespace(&mut self, ns: &str) {
        self.metadata_mut()
            .insert("namespace".into(), Value::String(ns.to_string()));
    }

    /// `metadata.labels` as string pairs.
    pub fn labels(&self) -> Vec<(String, String)> {
        self.string_map(&["metadata", "labels"])
    }

    /// `metadata.annotations` as string pairs.
    pub fn annotations(&self) -> Vec<(String, String)> {
        self.string_map(&["metadata", "annotations"])
    }

    fn string_map(&self, path: &[&str]) -> Vec<(String, String)> {
        let mut cur = &self.obj;
        for p in path {
            match cur.get(p) {
                Some(v) => cur = v,
                None => return Vec::new(),
            }
        }
        cur.as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), scalar_text(v))).collect())
            .unwrap_or_default()
    }
}

fn same_ending(a: &[String], b: &[String]) -> bool {
    let n = a.len().min(b.len());
    if n == 0 {
        return a.len() == b.len();
    }
    a[a.len() - n..] == b[b.len() - n..]
}

/// The text of a scalar as kustomize would compare it.
pub(crate) fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Number(n) => yaml::format_number(n).unwrap_or_else(|_| n.to_string()),
        other => other.to_string(),
    }
}

/// Makes a label or annotation value a string, as kustomize reads and
/// writes those maps (`true` becomes `"true"`, a null `"null"`).
pub(crate) fn stringify_metadata_value(v: &mut Value) {
    if !v.is_string() {
        let text = match &*v {
            Value::Null => "null".to_string(),
            other => scalar_text(other),
        };
        *v = Value::String(text);
    }
}

/// The ordered resources a build produces.
#[derive(Clone, Debug, Default)]
pub struct ResourceList {
    pub(crate) items: Vec<Resource>,
}

/// Adds a resource, refusing a second resource with the same identity.
pub(crate) fn append_unique(
    list: &mut Vec<Resource>,
    r: Resource,
    origin: &Path,
) -> Result<(), Error> {
    let id = r.cur_id();
    if list.iter().any(|x| x.has_id(&id)) {
        return Err(Error::invalid(
            origin,
            format!("may not add resource with an already registered id: {id}"),
        ));
    }
    list.push(r);
    Ok(())
}

impl ResourceList {
    /// Iterates over the resources in output order.
    pub fn iter(&self) -> impl Iterator<Item = &Resource> {
        self.items.iter()
    }

    /// Number of resources.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there are no resources.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The whole list as one YAML stream, byte-identical to `kustomize build`.
    pub fn to_yaml(&self) -> Result<String, YamlError> {
        yaml::emit_stream(self.items.iter().map(|r| &r.obj))
    }

    /// Every object as an order-preserving JSON value.
    pub fn to_json(&self) -> Vec<Value> {
        self.items.iter().map(Resource::to_json).collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Gvk, ResId, unsupported_plugin};

    #[test]
    fn ids_are_spelled_as_kustomize_spells_them() {
        let id = ResId {
            gvk: Gvk::from_api_version("apps/v1", "StatefulSet"),
            name: "my-sts".into(),
            namespace: String::new(),
        };
        assert_eq!(id.to_string(), "StatefulSet.v1.apps/my-sts.[noNs]");
        let core = ResId {
            gvk: Gvk::from_api_version("v1", "ConfigMap"),
            name: "cm".into(),
            namespace: "prod".into(),
        };
        assert_eq!(core.to_string(), "ConfigMap.v1.[noGrp]/cm.prod");
        assert_eq!(
            ResId::default().to_string(),
            "[noKind].[noVer].[noGrp]/[noName].[noNs]"
        );
    }

    #[test]
    fn unsupported_builtin_plugins_use_kustomizes_words() {
        let builtin = json!({"apiVersion": "builtin", "kind": "SortOrderTransformer"});
        assert!(
            unsupported_plugin(&builtin, "transformer")
                .starts_with("unable to load builtin SortOrderTransformer.builtin.[noGrp]: ")
        );
        let external = json!({"apiVersion": "example.com/v1", "kind": "Mine"});
        assert_eq!(
            unsupported_plugin(&external, "generator"),
            "external generator plugins are not supported: 'Mine' (example.com/v1) \
             is a plugin kustomize would look up by kind"
        );
        let exec = json!({"apiVersion": "fn.example.com/v1", "kind": "SetEnv",
            "metadata": {"annotations": {"config.kubernetes.io/function": "exec:\n  path: ./fn\n"}}});
        assert!(unsupported_plugin(&exec, "transformer").ends_with("is an exec KRM function"));
        let container = json!({"apiVersion": "fn.example.com/v1", "kind": "SetEnv",
            "metadata": {"annotations": {"config.kubernetes.io/function": "container:\n  image: fn:1\n"}}});
        assert!(
            unsupported_plugin(&container, "generator").ends_with("is a container KRM function")
        );
    }
}
