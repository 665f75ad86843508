//! What a custom OpenAPI schema (`openapi.path`) tells strategic merge: the
//! kinds it declares and how their list fields merge.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::resource::Gvk;

/// How a list field merges, by its `x-kubernetes-patch-*` markers.
#[derive(Clone, Debug, PartialEq)]
pub enum ListMerge {
    /// A list of objects merged by the value of this key.
    Key(String),
    /// A list of scalars merged as a set: the patch's items, then the rest.
    Set,
}

/// List fields marked with a merge strategy, by field name.
pub type CustomLists = BTreeMap<String, ListMerge>;

/// A kind the custom schema declares, with its list fields by field name.
#[derive(Clone, Debug, Default)]
pub struct CustomKind {
    /// The declared group, version and kind.
    pub gvk: Gvk,
    /// List fields marked with a merge strategy, anywhere under the kind.
    pub lists: CustomLists,
}

/// Reads the kinds a custom OpenAPI document declares.
pub fn kinds(doc: &Value) -> Vec<CustomKind> {
    let empty = Map::new();
    let defs = doc
        .get("definitions")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut out = Vec::new();
    for def in defs.values() {
        for gvk in def
            .get("x-kubernetes-group-version-kind")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let s = |k: &str| gvk.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let mut kind = CustomKind {
                gvk: Gvk {
                    group: s("group"),
                    version: s("version"),
                    kind: s("kind"),
                },
                lists: BTreeMap::new(),
            };
            walk(defs, def, &mut kind.lists, &mut BTreeSet::new());
            out.push(kind);
        }
    }
    out
}

/// Follows a `#/definitions/NAME` reference.
fn resolve<'a>(defs: &'a Map<String, Value>, schema: &'a Value) -> (&'a Value, Option<&'a str>) {
    match schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/definitions/"))
    {
        Some(name) => (defs.get(name).unwrap_or(&Value::Null), Some(name)),
        None => (schema, None),
    }
}

/// Collects the merge markers of every property under `schema`, each
/// definition visited once per path (so recursive schemas end).
fn walk<'a>(
    defs: &'a Map<String, Value>,
    schema: &'a Value,
    lists: &mut BTreeMap<String, ListMerge>,
    seen: &mut BTreeSet<&'a str>,
) {
    let (schema, name) = resolve(defs, schema);
    if let Some(name) = name
        && !seen.insert(name)
    {
        return;
    }
    for (field, prop) in schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let marker = |k: &str| prop.get(k).and_then(Value::as_str);
        let merges = marker("x-kubernetes-patch-strategy")
            .is_some_and(|s| s.split(',').any(|p| p.trim() == "merge"));
        if merges {
            let rule = match marker("x-kubernetes-patch-merge-key") {
                Some(key) => ListMerge::Key(key.to_string()),
                None => ListMerge::Set,
            };
            lists.entry(field.clone()).or_insert(rule);
        }
        walk(defs, prop, lists, seen);
        if let Some(items) = prop.get("items") {
            walk(defs, items, lists, seen);
        }
    }
    if let Some(name) = name {
        seen.remove(name);
    }
}
