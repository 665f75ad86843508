//! Identity of Kubernetes objects held as JSON values, and the labels that mark ownership.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Label naming the App that owns an applied object.
pub const OWNER_LABEL: &str = "app.driftless.dev/name";
/// Annotation that protects an object from pruning when set to [`PRUNE_DISABLED`].
pub const PRUNE_ANNOTATION: &str = "driftless.dev/prune";
/// Value of [`PRUNE_ANNOTATION`] that disables pruning.
pub const PRUNE_DISABLED: &str = "disabled";
/// Annotation placing an object in a sync wave (an integer, default 0).
pub const SYNC_WAVE_ANNOTATION: &str = "driftless.dev/sync-wave";
/// Annotation that, set to `"false"` in a manifest, refuses to take over a
/// live object of the same name that driftless does not own yet.
pub const ADOPT_ANNOTATION: &str = "driftless.dev/adopt";

/// Why a JSON value is not a usable Kubernetes object.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ObjectError {
    /// The value is not a JSON object at all.
    #[error("object is not a mapping (found {found})")]
    NotAnObject {
        /// JSON type that was found instead.
        found: &'static str,
    },
    /// A required string field is absent or empty.
    #[error("{context}: missing field {field}")]
    MissingField {
        /// Dotted path of the field, e.g. `metadata.name`.
        field: &'static str,
        /// What is known of the object so far, e.g. `apps/v1 Deployment`.
        context: String,
    },
    /// A field has the wrong JSON type.
    #[error("{context}: field {field} must be a string")]
    NotAString {
        /// Dotted path of the field.
        field: &'static str,
        /// What is known of the object so far.
        context: String,
    },
    /// A field that must hold a mapping holds something else.
    #[error("{context}: field {field} must be a mapping")]
    NotAMapping {
        /// Dotted path of the field.
        field: &'static str,
        /// The object.
        context: String,
    },
    /// A value cannot be used as a label value.
    #[error(
        "{context}: {value:?} is not a valid value for label {label} (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)"
    )]
    InvalidLabelValue {
        /// The label key.
        label: &'static str,
        /// The rejected value.
        value: String,
        /// The object.
        context: String,
    },
    /// `apiVersion` has more than one `/`.
    #[error("{context}: invalid apiVersion {api_version:?}")]
    InvalidApiVersion {
        /// The offending value.
        api_version: String,
        /// What is known of the object so far.
        context: String,
    },
    /// The sync options annotation cannot be read.
    #[error(transparent)]
    SyncOptions(#[from] crate::sync_options::SyncOptionsError),
}

/// Full reference to one object: group, version, kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    /// API group; empty for the core group (`v1`).
    pub group: String,
    /// API version within the group.
    pub version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Namespace; `None` for cluster-scoped objects or when not yet defaulted.
    pub namespace: Option<String>,
    /// metadata.name.
    pub name: String,
}

/// Identity of an object regardless of the API version it is read through.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ObjectKey {
    /// API group; empty for the core group.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace, if any.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// Reads and validates the identity fields of `obj`.
    pub fn from_object(obj: &Value) -> Result<Self, ObjectError> {
        let map = obj.as_object().ok_or(ObjectError::NotAnObject {
            found: json_type(obj),
        })?;
        let api_version = required_str(map.get("apiVersion"), "apiVersion", "object")?;
        let kind = required_str(map.get("kind"), "kind", &format!("{api_version} object"))?;
        let context = format!("{api_version} {kind}");
        let (group, version) = split_api_version(api_version, &context)?;
        let metadata = map.get("metadata");
        let name = required_str(
            metadata.and_then(|m| m.get("name")),
            "metadata.name",
            &context,
        )?;
        let namespace = match metadata.and_then(|m| m.get("namespace")) {
            None | Some(Value::Null) => None,
            Some(Value::String(ns)) if ns.is_empty() => None,
            Some(Value::String(ns)) => Some(ns.clone()),
            Some(_) => {
                return Err(ObjectError::NotAString {
                    field: "metadata.namespace",
                    context: format!("{context} {name}"),
                });
            }
        };
        Ok(Self {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
            namespace,
            name: name.to_owned(),
        })
    }

    /// `apiVersion` as written in manifests (`v1`, `apps/v1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The version-independent identity used to match desired and live objects.
    pub fn key(&self) -> ObjectKey {
        ObjectKey {
            group: self.group.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    /// Human-readable form for diff headers: `apps/v1 Deployment web/frontend`.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {} {ns}/{}", self.api_version(), self.kind, self.name),
            None => format!("{} {} {}", self.api_version(), self.kind, self.name),
        }
    }
}

impl fmt::Display for ObjectRef {
    /// `apps/v1/Deployment/ns/name`; cluster-scoped objects omit the namespace.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.api_version(), self.kind)?;
        if let Some(ns) = &self.namespace {
            write!(f, "/{ns}")?;
        }
        write!(f, "/{}", self.name)
    }
}

fn required_str<'a>(
    value: Option<&'a Value>,
    field: &'static str,
    context: &str,
) -> Result<&'a str, ObjectError> {
    match value {
        None | Some(Value::Null) => Err(ObjectError::MissingField {
            field,
            context: context.to_owned(),
        }),
        Some(Value::String(s)) if s.is_empty() => Err(ObjectError::MissingField {
            field,
            context: context.to_owned(),
        }),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ObjectError::NotAString {
            field,
            context: context.to_owned(),
        }),
    }
}

fn split_api_version<'a>(
    api_version: &'a str,
    context: &str,
) -> Result<(&'a str, &'a str), ObjectError> {
    let invalid = || ObjectError::InvalidApiVersion {
        api_version: api_version.to_owned(),
        context: context.to_owned(),
    };
    match api_version.split_once('/') {
        None => Ok(("", api_version)),
        Some((group, version)) => {
            if group.is_empty() || version.is_empty() || version.contains('/') {
                Err(invalid())
            } else {
                Ok((group, version))
            }
        }
    }
}

/// Name of the JSON type of `v`, for error messages.
pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "mapping",
    }
}

/// `metadata.annotations[key]` as a string, if present.
pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// `metadata.labels[key]` as a string, if present.
pub fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/labels")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// Whether the object is marked `driftless.dev/prune: disabled`.
pub fn prune_disabled(obj: &Value) -> bool {
    annotation(obj, PRUNE_ANNOTATION) == Some(PRUNE_DISABLED)
}

/// Whether the manifest says `driftless.dev/adopt: "false"`.
pub fn adoption_disabled(obj: &Value) -> bool {
    annotation(obj, ADOPT_ANNOTATION) == Some("false")
}

/// Whether the object carries the owner label of `app`.
pub fn owned_by(obj: &Value, app: &str) -> bool {
    label(obj, OWNER_LABEL) == Some(app)
}

/// Stamps the owner label of `app` on an object about to be applied, creating
/// `metadata.labels` when absent.
pub fn set_owner(obj: &mut Value, app: &str) -> Result<(), ObjectError> {
    let context =
        ObjectRef::from_object(obj).map_or_else(|_| "object".to_owned(), |r| r.to_string());
    if !is_label_value(app) {
        return Err(ObjectError::InvalidLabelValue {
            label: OWNER_LABEL,
            value: app.to_owned(),
            context,
        });
    }
    let found = json_type(obj);
    let map = obj
        .as_object_mut()
        .ok_or(ObjectError::NotAnObject { found })?;
    let metadata = mapping_entry(map, "metadata", "metadata", &context)?;
    let labels = mapping_entry(metadata, "labels", "metadata.labels", &context)?;
    labels.insert(OWNER_LABEL.to_owned(), Value::String(app.to_owned()));
    Ok(())
}

/// The mapping under `key`, created when absent or null.
fn mapping_entry<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
    field: &'static str,
    context: &str,
) -> Result<&'a mut Map<String, Value>, ObjectError> {
    let slot = map.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
        .ok_or_else(|| ObjectError::NotAMapping {
            field,
            context: context.to_owned(),
        })
}

/// Kubernetes label value syntax, without the empty value (an owner needs a
/// name): at most 63 of `[A-Za-z0-9_.-]`, starting and ending alphanumeric.
fn is_label_value(value: &str) -> bool {
    let edges_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && edges_ok(value.chars().next())
        && edges_ok(value.chars().last())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_namespaced_object_and_displays_it() {
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "frontend", "namespace": "web"}});
        let r = ObjectRef::from_object(&obj).expect("valid object");
        assert_eq!(r.group, "apps");
        assert_eq!(r.version, "v1");
        assert_eq!(r.to_string(), "apps/v1/Deployment/web/frontend");
        assert_eq!(r.describe(), "apps/v1 Deployment web/frontend");
    }

    #[test]
    fn core_group_and_cluster_scope() {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}});
        let r = ObjectRef::from_object(&obj).expect("valid object");
        assert_eq!(r.group, "");
        assert_eq!(r.namespace, None);
        assert_eq!(r.to_string(), "v1/Namespace/web");
        assert_eq!(r.api_version(), "v1");
    }

    #[test]
    fn errors_name_the_missing_field() {
        let no_api = json!({"kind": "Pod", "metadata": {"name": "a"}});
        let err = ObjectRef::from_object(&no_api).expect_err("no apiVersion");
        assert_eq!(err.to_string(), "object: missing field apiVersion");

        let no_kind = json!({"apiVersion": "v1", "metadata": {"name": "a"}});
        let err = ObjectRef::from_object(&no_kind).expect_err("no kind");
        assert_eq!(err.to_string(), "v1 object: missing field kind");

        let no_name = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {}});
        let err = ObjectRef::from_object(&no_name).expect_err("no name");
        assert_eq!(
            err.to_string(),
            "apps/v1 Deployment: missing field metadata.name"
        );

        let err = ObjectRef::from_object(&json!([1])).expect_err("array");
        assert_eq!(err, ObjectError::NotAnObject { found: "array" });

        let bad = json!({"apiVersion": "a/b/c", "kind": "X", "metadata": {"name": "n"}});
        assert!(matches!(
            ObjectRef::from_object(&bad),
            Err(ObjectError::InvalidApiVersion { .. })
        ));
        let bad_ns = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "n", "namespace": 3}});
        let err = ObjectRef::from_object(&bad_ns).expect_err("numeric namespace");
        assert_eq!(
            err.to_string(),
            "v1 Pod n: field metadata.namespace must be a string"
        );
    }

    #[test]
    fn key_ignores_version() {
        let a = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h", "namespace": "n"}});
        let b = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h", "namespace": "n"}});
        let ka = ObjectRef::from_object(&a).expect("valid").key();
        let kb = ObjectRef::from_object(&b).expect("valid").key();
        assert_eq!(ka, kb);
    }

    #[test]
    fn set_owner_creates_labels_and_keeps_others() {
        let mut bare = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        set_owner(&mut bare, "web-prod").expect("valid");
        assert!(owned_by(&bare, "web-prod"));
        assert!(!owned_by(&bare, "web"));
        let mut labelled = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": {"team": "a", OWNER_LABEL: "old"}}});
        set_owner(&mut labelled, "new").expect("valid");
        assert_eq!(
            labelled["metadata"]["labels"],
            json!({"team": "a", OWNER_LABEL: "new"})
        );
        let mut no_metadata = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": null});
        set_owner(&mut no_metadata, "a").expect("valid");
        assert!(owned_by(&no_metadata, "a"));
    }

    #[test]
    fn set_owner_rejects_bad_values_and_shapes() {
        let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        for bad in ["", "-web", "web-", "a b", &"x".repeat(64)] {
            let err = set_owner(&mut obj, bad).expect_err("invalid label value");
            assert!(err.to_string().starts_with("v1/ConfigMap/c: "), "{err}");
        }
        let mut odd = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": ["x"]}});
        let err = set_owner(&mut odd, "web").expect_err("labels as a list");
        assert_eq!(
            err.to_string(),
            "v1/ConfigMap/c: field metadata.labels must be a mapping"
        );
        assert!(set_owner(&mut json!("text"), "web").is_err());
    }

    #[test]
    fn ownership_helpers() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c",
            "labels": {OWNER_LABEL: "web"},
            "annotations": {PRUNE_ANNOTATION: PRUNE_DISABLED}}});
        assert_eq!(label(&obj, OWNER_LABEL), Some("web"));
        assert!(prune_disabled(&obj));
        let plain = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert!(!prune_disabled(&plain));
    }
}
