//! The Kubernetes-shaped envelope every driftless object shares.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::validate::FieldProblem;

/// API group of every driftless kind.
pub const GROUP: &str = "driftless.dev";
/// API version of the kinds in this crate.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` value of every driftless object.
pub const API_VERSION: &str = "driftless.dev/v1alpha1";

/// Object metadata: the subset driftless reads. Other fields a Kubernetes API
/// server adds (uid, resourceVersion, managedFields ...) are accepted and
/// ignored, so the same type reads config files and CustomResources.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Object name, a DNS-1123 label; unique per kind.
    #[serde(default)]
    pub name: String,
    /// Namespace (in-cluster mode); config files may leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Generation set by the API server on every spec change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
}

/// A reference to another object of a known kind, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalRef {
    /// Name of the referenced object.
    pub name: String,
}

/// A printer column of a CustomResourceDefinition.
#[derive(Debug, Clone, Copy)]
pub struct PrinterColumn {
    /// Column header.
    pub name: &'static str,
    /// OpenAPI type of the value (`string`, `date` ...).
    pub type_: &'static str,
    /// JSONPath into the object.
    pub json_path: &'static str,
}

/// Column showing the status of the `Ready` condition.
pub const READY_COLUMN: PrinterColumn = PrinterColumn {
    name: "Ready",
    type_: "string",
    json_path: ".status.conditions[?(@.type==\"Ready\")].status",
};
/// Column showing the message of the `Ready` condition.
pub const STATUS_COLUMN: PrinterColumn = PrinterColumn {
    name: "Status",
    type_: "string",
    json_path: ".status.conditions[?(@.type==\"Ready\")].message",
};
/// Column showing the object's age.
pub const AGE_COLUMN: PrinterColumn = PrinterColumn {
    name: "Age",
    type_: "date",
    json_path: ".metadata.creationTimestamp",
};

/// A driftless kind: ties a spec type to its kind name, status and CRD naming.
pub trait Kind: Serialize + DeserializeOwned + JsonSchema + Clone + PartialEq {
    /// `kind` value.
    const KIND: &'static str;
    /// Plural resource name.
    const PLURAL: &'static str;
    /// Short names for kubectl.
    const SHORT_NAMES: &'static [&'static str];
    /// Whether the kind is served as a CustomResource (settings kinds are not).
    const CUSTOM_RESOURCE: bool = true;
    /// Extra columns `kubectl get` prints.
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[READY_COLUMN, STATUS_COLUMN, AGE_COLUMN];
    /// The status the engine fills for this kind.
    type Status: Serialize + DeserializeOwned + JsonSchema + Clone + PartialEq + Default;

    /// Checks a spec that deserialized, beyond what its types enforce.
    fn validate(&self, problems: &mut Vec<FieldProblem>);
}

/// One driftless object: envelope, spec and (optional) status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    deny_unknown_fields,
    bound(
        serialize = "S: Serialize, S::Status: Serialize",
        deserialize = "S: DeserializeOwned, S::Status: DeserializeOwned"
    )
)]
pub struct Object<S: Kind> {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// Always `S::KIND`.
    pub kind: String,
    /// Name and labels.
    pub metadata: ObjectMeta,
    /// Desired state.
    pub spec: S,
    /// Observed state, written by the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<S::Status>,
}

impl<S: Kind> Object<S> {
    /// A new object with the given name and spec.
    pub fn new(name: &str, spec: S) -> Self {
        Self {
            api_version: API_VERSION.to_owned(),
            kind: S::KIND.to_owned(),
            metadata: ObjectMeta {
                name: name.to_owned(),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        }
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// `Kind/name`, as errors and logs name objects.
    pub fn key(&self) -> String {
        format!("{}/{}", S::KIND, self.metadata.name)
    }
}
