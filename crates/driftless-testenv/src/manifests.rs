//! Small Kubernetes manifests the tests deploy and render.

use serde_json::{Value, json};

/// A ConfigMap manifest (YAML) without a namespace, holding `value` under key `v`.
pub fn config_map(name: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: \"{value}\"\n")
}

/// A ConfigMap object (JSON) without a namespace, holding `data`.
pub fn config_map_object(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}
