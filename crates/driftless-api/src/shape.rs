//! Finds every unknown and missing field of a document by walking it against
//! the kind's JSON schema. serde stops at the first error of a document; this
//! walk lets one run report all of them.

use serde_json::{Map, Value};

use crate::meta::Kind;
use crate::schema::json_schema;
use crate::validate::{FieldProblem, did_you_mean};

/// Unknown and missing fields of `value` read as an `S` object.
pub fn field_problems<S: Kind>(value: &Value) -> Vec<FieldProblem> {
    let mut out = Vec::new();
    walk(&json_schema::<S>(), value, "", &mut out);
    out
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn walk(schema: &Value, value: &Value, path: &str, out: &mut Vec<FieldProblem>) {
    let Some(schema) = schema.as_object() else {
        return;
    };
    // Optional structs come out as `anyOf: [struct, null]`: follow the struct.
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array)
            && let Some(alt) = alts.iter().find(|a| a.get("properties").is_some())
        {
            walk(alt, value, path, out);
        }
    }
    match value {
        Value::Object(fields) => walk_object(schema, fields, path, out),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item_schema, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

fn walk_object(
    schema: &Map<String, Value>,
    fields: &Map<String, Value>,
    path: &str,
    out: &mut Vec<FieldProblem>,
) {
    let empty = Map::new();
    let properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
    for (name, child) in fields {
        if let Some(child_schema) = properties.get(name) {
            walk(child_schema, child, &join(path, name), out);
        } else if closed {
            let allowed: Vec<&str> = properties.keys().map(String::as_str).collect();
            let hint = did_you_mean(name, allowed.iter().copied());
            out.push(FieldProblem::new(
                join(path, name),
                format!("unknown field{hint}; allowed: {}", allowed.join(", ")),
            ));
        } else if let Some(values_schema) = schema.get("additionalProperties") {
            walk(values_schema, child, &join(path, name), out);
        }
    }
    for name in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !fields.contains_key(name) {
            out.push(FieldProblem::new(
                join(path, name),
                "required field is missing",
            ));
        }
    }
}
