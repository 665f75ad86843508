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

/// `Chart.yaml` of the chart [`GROWING_CHART_TEMPLATE`] belongs to.
pub const GROWING_CHART: &str = "apiVersion: v2\nname: grow\nversion: 0.1.0\n";

/// A Helm template that doubles a 16-byte string `.Values.doublings` times and
/// keeps only its length: helm's memory grows as 16 << doublings while its
/// output (ConfigMap `grown`) stays small.
pub const GROWING_CHART_TEMPLATE: &str = r#"{{- $s := "xxxxxxxxxxxxxxxx" }}
{{- range until (int .Values.doublings) }}{{ $s = printf "%s%s" $s $s }}{{ end }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: grown
data:
  length: {{ len $s | quote }}
"#;
