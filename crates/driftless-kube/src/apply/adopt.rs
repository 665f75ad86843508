//! Adoption: taking over a live object that no App owns yet (it carries no
//! owner label). It is allowed by default, as in Flux and Argo CD, but never
//! silent: each one is reported with the field managers that held the object
//! before, and a manifest or an App can refuse it.

use serde::Serialize;
use serde_json::Value;

use crate::FIELD_MANAGER;
use crate::object::{ADOPT_ANNOTATION, ObjectRef, adoption_disabled};

use super::options::ApplyOptions;

/// A live object without an owner label that an apply took over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Adoption {
    /// The object.
    pub object: ObjectRef,
    /// The field managers other than driftless that held fields of it
    /// (`kubectl-create`, `kubectl-client-side-apply`, `helm`, ...).
    pub previous_managers: Vec<String>,
}

impl Adoption {
    /// The adoption of `object`, whose managers are read from `live`.
    pub(crate) fn of(object: &ObjectRef, live: &Value) -> Self {
        Self {
            object: object.clone(),
            previous_managers: other_managers(live),
        }
    }
}

/// Why an unowned live object must not be taken over for `manifest`, if it
/// must not: the manifest's annotation wins over the App's setting.
pub(crate) fn refusal(manifest: &Value, opts: &ApplyOptions) -> Option<String> {
    if adoption_disabled(manifest) {
        Some(format!(
            "its manifest is annotated {ADOPT_ANNOTATION}: \"false\""
        ))
    } else if !opts.adopt_existing {
        Some(format!(
            "app {} does not adopt existing objects (adoptExisting: false)",
            opts.app
        ))
    } else {
        None
    }
}

/// The field managers of `obj` other than driftless, each once, in the order
/// `metadata.managedFields` lists them.
pub(crate) fn other_managers(obj: &Value) -> Vec<String> {
    let entries = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut managers: Vec<String> = Vec::new();
    for name in entries
        .iter()
        .filter_map(|e| e.get("manager").and_then(Value::as_str))
    {
        if name != FIELD_MANAGER && !managers.iter().any(|m| m == name) {
            managers.push(name.to_owned());
        }
    }
    managers
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn previous_managers_leave_out_driftless_and_repeats() {
        let live = json!({"metadata": {"managedFields": [
            {"manager": "kubectl-create", "operation": "Update"},
            {"manager": FIELD_MANAGER, "operation": "Apply"},
            {"manager": "kubectl-edit", "operation": "Update"},
            {"manager": "kubectl-create", "operation": "Update", "subresource": "status"},
        ]}});
        assert_eq!(other_managers(&live), ["kubectl-create", "kubectl-edit"]);
        assert!(other_managers(&json!({"metadata": {}})).is_empty());
    }

    #[test]
    fn the_manifest_annotation_or_the_app_refuses() {
        let plain = json!({"metadata": {"name": "c"}});
        let marked = json!({"metadata": {"name": "c",
            "annotations": {ADOPT_ANNOTATION: "false"}}});
        let mut opts = ApplyOptions::new("web");
        assert_eq!(refusal(&plain, &opts), None);
        let why = refusal(&marked, &opts).expect("annotation refuses");
        assert!(why.contains("driftless.dev/adopt"), "{why}");
        opts.adopt_existing = false;
        let why = refusal(&plain, &opts).expect("the App refuses");
        assert!(
            why.contains("app web") && why.contains("adoptExisting"),
            "{why}"
        );
    }
}
