//! Finds every unknown and missing field of a document by walking it against
//! the kind's JSON schema. serde stops at the first error of a document; this
//! walk lets one run report all of them.

use serde_json::{Map, Value};

use crate::meta::Kind;
use crate::schema::json_schema;
use crate::validate::{FieldProblem, did_you_mean};

/// What the schema walk found in one document.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    /// Unknown and missing fields.
    pub problems: Vec<FieldProblem>,
    /// JSON pointers of the unknown fields.
    pub unknown: Vec<String>,
}

impl Shape {
    /// Removes the unknown fields from `value`.
    pub fn prune(&self, value: &mut Value) {
        for pointer in &self.unknown {
            let Some((parent, key)) = pointer.rsplit_once('/') else {
                continue;
            };
            let key = key.replace("~1", "/").replace("~0", "~");
            if let Some(map) = value.pointer_mut(parent).and_then(Value::as_object_mut) {
                map.remove(&key);
            }
        }
    }
}

/// Unknown and missing fields of `value` read as an `S` object.
pub fn check<S: Kind>(value: &Value) -> Shape {
    let mut out = Shape::default();
    walk(&json_schema::<S>(), value, &At::default(), &mut out);
    out
}

/// Where the walk is: the dotted path for messages and the JSON pointer for pruning.
#[derive(Default)]
struct At {
    path: String,
    pointer: String,
}

impl At {
    fn field(&self, name: &str) -> Self {
        let escaped = name.replace('~', "~0").replace('/', "~1");
        Self {
            path: join(&self.path, name),
            pointer: format!("{}/{escaped}", self.pointer),
        }
    }

    fn item(&self, i: usize) -> Self {
        Self {
            path: format!("{}[{i}]", self.path),
            pointer: format!("{}/{i}", self.pointer),
        }
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn walk(schema: &Value, value: &Value, at: &At, out: &mut Shape) {
    let Some(schema) = schema.as_object() else {
        return;
    };
    // Optional structs come out as `anyOf: [struct, null]`: follow the struct.
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array)
            && let Some(alt) = alts.iter().find(|a| a.get("properties").is_some())
        {
            walk(alt, value, at, out);
        }
    }
    match value {
        Value::Object(fields) => walk_object(schema, fields, at, out),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item_schema, item, &at.item(i), out);
                }
            }
        }
        _ => {}
    }
}

fn walk_object(schema: &Map<String, Value>, fields: &Map<String, Value>, at: &At, out: &mut Shape) {
    let empty = Map::new();
    let properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
    for (name, child) in fields {
        if let Some(child_schema) = properties.get(name) {
            walk(child_schema, child, &at.field(name), out);
        } else if closed {
            let allowed: Vec<&str> = properties.keys().map(String::as_str).collect();
            let hint = did_you_mean(name, allowed.iter().copied());
            let field = at.field(name);
            out.problems.push(FieldProblem::new(
                field.path,
                format!("unknown field{hint}; allowed: {}", allowed.join(", ")),
            ));
            out.unknown.push(field.pointer);
        } else if let Some(values_schema) = schema.get("additionalProperties") {
            walk(values_schema, child, &at.field(name), out);
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
            out.problems.push(FieldProblem::new(
                at.field(name).path,
                "required field is missing",
            ));
        }
    }
}
