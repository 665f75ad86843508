//! JSON schemas for config files and CustomResourceDefinitions for the
//! in-cluster mode, both derived from the Rust types so they cannot drift.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::meta::{API_VERSION, GROUP, Kind, VERSION};
use crate::{
    AppSpec, ClusterSpec, GitSourceSpec, HelmRepositorySpec, HostSpec, NotifierSpec, OciSourceSpec,
    ReceiverSpec, ServerSpec, SyncWindowSpec,
};

/// Why CRDs could not be rendered as YAML.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The YAML emitter refused a document.
    #[error("rendering CustomResourceDefinition {name} as YAML: {source}")]
    Yaml {
        /// CRD name.
        name: String,
        /// Emitter error.
        source: driftless_yaml::YamlError,
    },
}

/// Schema of `T` with every subschema inlined (CRDs allow no `$ref`).
fn inline_schema<T: JsonSchema>(settings: SchemaSettings) -> Value {
    let generator = settings
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    if let Some(map) = schema.as_object_mut() {
        for key in ["$schema", "title", "$defs", "definitions", "components"] {
            map.remove(key);
        }
    }
    schema
}

/// JSON Schema (draft 2020-12) of a whole `S` object as written in a config
/// file, for editors and linters.
pub fn json_schema<S: Kind>() -> Value {
    let spec = inline_schema::<S>(SchemaSettings::draft2020_12());
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": S::KIND,
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": false,
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "kind": {"const": S::KIND},
            "metadata": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"},
                    "namespace": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}}
                }
            },
            "spec": spec,
            "status": inline_schema::<S::Status>(SchemaSettings::draft2020_12()),
        }
    })
}

/// JSON schemas of every kind, as (kind, schema).
pub fn json_schemas() -> Vec<(&'static str, Value)> {
    vec![
        (GitSourceSpec::KIND, json_schema::<GitSourceSpec>()),
        (AppSpec::KIND, json_schema::<AppSpec>()),
        (ClusterSpec::KIND, json_schema::<ClusterSpec>()),
        (ReceiverSpec::KIND, json_schema::<ReceiverSpec>()),
        (NotifierSpec::KIND, json_schema::<NotifierSpec>()),
        (ServerSpec::KIND, json_schema::<ServerSpec>()),
        (HostSpec::KIND, json_schema::<HostSpec>()),
        (SyncWindowSpec::KIND, json_schema::<SyncWindowSpec>()),
        (
            HelmRepositorySpec::KIND,
            json_schema::<HelmRepositorySpec>(),
        ),
        (OciSourceSpec::KIND, json_schema::<OciSourceSpec>()),
    ]
}

/// The CustomResourceDefinition of `S` (apiextensions.k8s.io/v1).
pub fn crd<S: Kind>() -> Value {
    let singular = S::KIND.to_lowercase();
    let mut spec = inline_schema::<S>(SchemaSettings::openapi3());
    let mut status = inline_schema::<S::Status>(SchemaSettings::openapi3());
    structural(&mut spec);
    structural(&mut status);
    let columns: Vec<Value> = S::PRINTER_COLUMNS
        .iter()
        .map(|c| json!({"name": c.name, "type": c.type_, "jsonPath": c.json_path}))
        .collect();
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("{}.{GROUP}", S::PLURAL),
            "labels": {"app.kubernetes.io/part-of": "driftless"}
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": S::KIND,
                "listKind": format!("{}List", S::KIND),
                "plural": S::PLURAL,
                "singular": singular,
                "shortNames": S::SHORT_NAMES,
                "categories": ["driftless"]
            },
            "scope": "Namespaced",
            "versions": [{
                "name": VERSION,
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": spec,
                        "status": status
                    }
                }}
            }]
        }
    })
}

/// CRDs of every kind served as a CustomResource, as (file name, CRD).
pub fn crds() -> Vec<(String, Value)> {
    fn entry<S: Kind>(out: &mut Vec<(String, Value)>) {
        if S::CUSTOM_RESOURCE {
            out.push((format!("{GROUP}_{}.yaml", S::PLURAL), crd::<S>()));
        }
    }
    let mut out = Vec::new();
    entry::<GitSourceSpec>(&mut out);
    entry::<AppSpec>(&mut out);
    entry::<ClusterSpec>(&mut out);
    entry::<ReceiverSpec>(&mut out);
    entry::<NotifierSpec>(&mut out);
    entry::<ServerSpec>(&mut out);
    entry::<HostSpec>(&mut out);
    entry::<SyncWindowSpec>(&mut out);
    entry::<HelmRepositorySpec>(&mut out);
    entry::<OciSourceSpec>(&mut out);
    out
}

/// One CRD as a YAML document.
pub fn crd_yaml(crd: &Value) -> Result<String, SchemaError> {
    driftless_yaml::emit_document(crd).map_err(|source| SchemaError::Yaml {
        name: crd
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned(),
        source,
    })
}

/// Rewrites a generated schema into the structural form the Kubernetes API
/// server demands: no boolean `additionalProperties`, enums spelled as
/// `enum` rather than `oneOf` of constants, no unsigned formats, and
/// free-form maps marked to keep unknown fields.
fn structural(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    for key in ["$schema", "title", "examples", "$id"] {
        map.remove(key);
    }
    if let Some(Value::Bool(open)) = map.get("additionalProperties").cloned() {
        map.remove("additionalProperties");
        if open {
            map.insert(
                "x-kubernetes-preserve-unknown-fields".into(),
                Value::Bool(true),
            );
        }
    }
    if map
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|f| f.starts_with("uint"))
    {
        map.remove("format");
    }
    merge_constant_alternatives(map);
    for key in ["properties"] {
        if let Some(Value::Object(props)) = map.get_mut(key) {
            props.values_mut().for_each(structural);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = map.get_mut(key) {
            structural(sub);
        }
    }
}

/// `oneOf: [{enum: [a]}, {enum: [b]}]` (how documented enum variants come
/// out) becomes `type: string, enum: [a, b]`.
fn merge_constant_alternatives(map: &mut Map<String, Value>) {
    for key in ["oneOf", "anyOf"] {
        let Some(Value::Array(alts)) = map.get(key) else {
            continue;
        };
        let mut values = Vec::new();
        for alt in alts {
            let constant = alt.get("const").map(|c| vec![c.clone()]);
            let listed = alt.get("enum").and_then(Value::as_array).cloned();
            match constant.or(listed) {
                Some(v) if v.iter().all(Value::is_string) => values.extend(v),
                _ => return,
            }
        }
        map.remove(key);
        map.insert("type".into(), Value::String("string".into()));
        map.insert("enum".into(), Value::Array(values));
    }
}
