//! The validated, ordered output of a render and its content digest.

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Errors in rendered objects.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// A document is not a mapping.
    #[error("{origin}: object is not a mapping but {found}")]
    NotAnObject {
        /// File and document index (or other origin).
        origin: String,
        /// What was found instead.
        found: &'static str,
    },
    /// A required field is missing or not a non-empty string.
    #[error("{origin}: {field} is missing or not a non-empty string")]
    MissingField {
        /// File and document index (or other origin).
        origin: String,
        /// The field at fault, e.g. `metadata.name`.
        field: &'static str,
    },
    /// Two objects share group, kind, namespace and name.
    #[error("duplicate object {id}: defined at {first} and at {second}")]
    Duplicate {
        /// The shared identity (boxed to keep the error small).
        id: Box<ObjectId>,
        /// Where the first one came from.
        first: String,
        /// Where the second one came from.
        second: String,
    },
    /// The objects could not be printed as YAML.
    #[error("printing objects as YAML: {0}")]
    Yaml(#[from] driftless_kustomize::Error),
}

/// The identity of an object as the Kubernetes API sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    /// API group, empty for the core group.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// metadata.namespace, empty when unset.
    pub namespace: String,
    /// metadata.name
    pub name: String,
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}", self.kind)?;
        } else {
            write!(f, "{}.{}", self.kind, self.group)?;
        }
        if !self.namespace.is_empty() {
            write!(f, " {}/{}", self.namespace, self.name)
        } else {
            write!(f, " {}", self.name)
        }
    }
}

/// One rendered object with where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    /// The object.
    pub object: Value,
    /// File and document index, or another description of its source.
    pub origin: String,
}

impl Rendered {
    /// Pairs an object with its origin.
    pub fn new(object: Value, origin: impl Into<String>) -> Rendered {
        Rendered {
            object,
            origin: origin.into(),
        }
    }
}

/// An ordered set of validated objects with unique identities and a digest.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectSet {
    items: Vec<Rendered>,
    ids: Vec<ObjectId>,
    digest: String,
}

impl ObjectSet {
    /// Validates `items` (in order) and computes the digest.
    pub fn new(items: Vec<Rendered>) -> Result<ObjectSet, ObjectError> {
        let mut ids = Vec::with_capacity(items.len());
        let mut index: HashMap<ObjectId, usize> = HashMap::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let id = identity(item)?;
            if let Some(&first) = index.get(&id) {
                return Err(ObjectError::Duplicate {
                    id: Box::new(id),
                    first: items[first].origin.clone(),
                    second: item.origin.clone(),
                });
            }
            index.insert(id.clone(), i);
            ids.push(id);
        }
        let digest = digest_of(items.iter().map(|r| &r.object));
        Ok(ObjectSet { items, ids, digest })
    }

    /// `sha256:<hex>` over the canonical form of every object, in order.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when the render produced nothing.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The objects in render order.
    pub fn iter(&self) -> impl Iterator<Item = &Value> {
        self.items.iter().map(|r| &r.object)
    }

    /// Objects with their origins, in render order.
    pub fn items(&self) -> &[Rendered] {
        &self.items
    }

    /// Identities, parallel to [`ObjectSet::iter`].
    pub fn ids(&self) -> &[ObjectId] {
        &self.ids
    }

    /// A YAML stream printed exactly as kustomize prints.
    pub fn to_yaml(&self) -> Result<String, ObjectError> {
        let objects: Vec<Value> = self.iter().cloned().collect();
        Ok(driftless_kustomize::to_yaml_stream(&objects)?)
    }

    /// A pretty-printed JSON array of the objects.
    pub fn to_json(&self) -> String {
        let objects: Vec<&Value> = self.iter().collect();
        serde_json::to_string_pretty(&objects).expect("JSON values always serialize")
    }
}

/// Reads the identity of one object, validating the fields it needs.
fn identity(item: &Rendered) -> Result<ObjectId, ObjectError> {
    let origin = &item.origin;
    let Value::Object(obj) = &item.object else {
        return Err(ObjectError::NotAnObject {
            origin: origin.clone(),
            found: type_name(&item.object),
        });
    };
    let field = |name: &'static str, value: Option<&Value>| match value {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(ObjectError::MissingField {
            origin: origin.clone(),
            field: name,
        }),
    };
    let api_version = field("apiVersion", obj.get("apiVersion"))?;
    let kind = field("kind", obj.get("kind"))?;
    let meta = obj.get("metadata").and_then(Value::as_object);
    let name = field("metadata.name", meta.and_then(|m| m.get("name")))?;
    let namespace = match meta.and_then(|m| m.get("namespace")) {
        None | Some(Value::Null) => String::new(),
        other => field("metadata.namespace", other)?,
    };
    let group = api_version
        .split_once('/')
        .map(|(g, _)| g.to_string())
        .unwrap_or_default();
    Ok(ObjectId {
        group,
        kind,
        namespace,
        name,
    })
}

/// A word for the JSON type of `value`, for messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Hashes the canonical form (sorted keys, compact JSON) of each object, so the
/// digest does not depend on key order or formatting in the source files.
pub(crate) fn digest_of<'a>(objects: impl Iterator<Item = &'a Value>) -> String {
    let mut hasher = Sha256::new();
    let mut buf = String::new();
    for object in objects {
        buf.clear();
        write_canonical(object, &mut buf);
        buf.push('\n');
        hasher.update(buf.as_bytes());
    }
    format!("sha256:{}", hex(&hasher.finalize()))
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => write_map(map, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn write_map(map: &Map<String, Value>, out: &mut String) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    out.push('{');
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(key.clone()).to_string());
        out.push(':');
        write_canonical(&map[key], out);
    }
    out.push('}');
}

/// Expands list documents (`kind: List` and typed lists such as
/// `ConfigMapList` or `RoleList`) into their items, nested lists too, as
/// kubectl and kustomize do.
pub(crate) fn expand_lists(object: Value, origin: &str, out: &mut Vec<Rendered>) {
    let is_list = object
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"))
        && object.get("items").is_some_and(Value::is_array);
    if !is_list {
        out.push(Rendered::new(object, origin));
        return;
    }
    if let Value::Object(mut map) = object
        && let Some(Value::Array(items)) = map.remove("items")
    {
        for (i, item) in items.into_iter().enumerate() {
            expand_lists(item, &format!("{origin} item {i}"), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{ObjectError, ObjectSet, Rendered};

    fn cm(name: &str, ns: Option<&str>) -> serde_json::Value {
        let mut v = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
        if let Some(ns) = ns {
            v["metadata"]["namespace"] = json!(ns);
        }
        v
    }

    #[test]
    fn typed_and_nested_lists_expand_into_their_items() {
        let list = json!({"apiVersion": "v1", "kind": "ConfigMapList", "items": [
            cm("a", None),
            {"apiVersion": "v1", "kind": "List", "items": [cm("b", Some("x"))]},
        ]});
        let mut out = Vec::new();
        super::expand_lists(list, "lists.yaml", &mut out);
        let names: Vec<_> = out
            .iter()
            .map(|r| r.object["metadata"]["name"].clone())
            .collect();
        assert_eq!(names, [json!("a"), json!("b")]);
        // A kind that only ends in "List" without items is an object of its own.
        let mut out = Vec::new();
        let odd = json!({"apiVersion": "x/v1", "kind": "AllowList", "metadata": {"name": "l"}});
        super::expand_lists(odd.clone(), "odd.yaml", &mut out);
        assert_eq!(out[0].object, odd);
    }

    #[test]
    fn digest_ignores_key_order_but_not_object_order() {
        let a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "1", "y": "2"}});
        let a2 = json!({"data": {"y": "2", "x": "1"}, "metadata": {"name": "a"}, "kind": "ConfigMap", "apiVersion": "v1"});
        let b = cm("b", None);
        let one = ObjectSet::new(vec![
            Rendered::new(a.clone(), "f#0"),
            Rendered::new(b.clone(), "f#1"),
        ]);
        let two = ObjectSet::new(vec![
            Rendered::new(a2, "g#0"),
            Rendered::new(b.clone(), "g#1"),
        ]);
        let swapped = ObjectSet::new(vec![Rendered::new(b, "f#1"), Rendered::new(a, "f#0")]);
        let (one, two, swapped) = (
            one.expect("valid"),
            two.expect("valid"),
            swapped.expect("valid"),
        );
        assert_eq!(one.digest(), two.digest());
        assert_ne!(one.digest(), swapped.digest());
        assert!(one.digest().starts_with("sha256:") && one.digest().len() == 71);
    }

    #[test]
    fn same_name_in_other_namespace_or_group_is_not_a_duplicate() {
        let mut other_group = cm("a", None);
        other_group["apiVersion"] = json!("example.com/v1");
        let set = ObjectSet::new(vec![
            Rendered::new(cm("a", None), "x#0"),
            Rendered::new(cm("a", Some("prod")), "x#1"),
            Rendered::new(other_group, "x#2"),
        ]);
        assert_eq!(set.expect("distinct identities").len(), 3);
        let err = ObjectSet::new(vec![
            Rendered::new(cm("a", Some("prod")), "one.yaml#0"),
            Rendered::new(cm("a", Some("prod")), "two.yaml#3"),
        ])
        .expect_err("duplicate");
        assert!(matches!(err, ObjectError::Duplicate { .. }));
        assert_eq!(
            err.to_string(),
            "duplicate object ConfigMap prod/a: defined at one.yaml#0 and at two.yaml#3"
        );
    }

    #[test]
    fn missing_fields_are_named_with_their_origin() {
        let cases = [
            (
                json!({"kind": "ConfigMap", "metadata": {"name": "a"}}),
                "apiVersion",
            ),
            (
                json!({"apiVersion": "v1", "metadata": {"name": "a"}}),
                "kind",
            ),
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}),
                "metadata.name",
            ),
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap"}),
                "metadata.name",
            ),
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": 3}}),
                "metadata.name",
            ),
        ];
        for (object, field) in cases {
            let err = ObjectSet::new(vec![Rendered::new(object, "bad.yaml#2")]).expect_err(field);
            assert_eq!(
                err.to_string(),
                format!("bad.yaml#2: {field} is missing or not a non-empty string")
            );
        }
        let err = ObjectSet::new(vec![Rendered::new(json!([1]), "list.yaml#0")]).expect_err("list");
        assert_eq!(
            err.to_string(),
            "list.yaml#0: object is not a mapping but a list"
        );
    }

    #[test]
    fn yaml_and_json_output_keep_order() {
        let set = ObjectSet::new(vec![
            Rendered::new(cm("b", None), "f#0"),
            Rendered::new(cm("a", None), "f#1"),
        ])
        .expect("valid");
        assert_eq!(
            set.to_yaml().expect("yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
        );
        let back: Vec<serde_json::Value> = serde_json::from_str(&set.to_json()).expect("json");
        assert_eq!(back, vec![cm("b", None), cm("a", None)]);
    }
}
