//! Values kustomize keeps in one YAML node for several places of an object.
//!
//! A label or annotation transformer (`labels`, `commonLabels`,
//! `commonAnnotations`, `managedByLabel`, transformer configurations) makes
//! one node per object and key, and puts that very node in every map where
//! it adds the key (`metadata.labels`, selectors, pod templates). Where the
//! key already was, it copies the value instead. A later write in place to
//! one of those places — another such transformer, a strategic-merge patch,
//! a replacement — therefore shows in all of them, while a JSON patch
//! rebuilds the whole object and ends the sharing. Objects here are plain
//! JSON values, so each object keeps the places that share a node and
//! carries such a write over to the others.

use serde_json::Value;

/// Places of one object (JSON pointers) that hold one node, and its value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SharedNode {
    pointers: Vec<String>,
    value: String,
}

impl SharedNode {
    /// The places a transformer added one key to, if it shared the node
    /// between more than one.
    pub(crate) fn new(pointers: Vec<String>, value: &str) -> Option<SharedNode> {
        (pointers.len() > 1).then(|| SharedNode {
            pointers,
            value: value.to_string(),
        })
    }
}

/// Carries writes made since the last call over to the places sharing a
/// node with the place written: a place that holds another string than the
/// node's value was written in place, and every place takes the new value
/// (when several were written, the node holds the last write: that of the
/// place last in the order kustomize walks an object, keys sorted). A place whose key is gone (deleted, or
/// turned into something that is not a string) no longer holds the node.
pub(crate) fn propagate(obj: &mut Value, nodes: &mut Vec<SharedNode>) {
    for node in nodes.iter_mut() {
        let mut written: Option<(String, String)> = None;
        node.pointers.retain(|p| match obj.pointer(p) {
            Some(Value::String(s)) => {
                if *s != node.value
                    && written
                        .as_ref()
                        .is_none_or(|(last, _)| walk_order(last, p).is_le())
                {
                    written = Some((p.clone(), s.clone()));
                }
                true
            }
            _ => false,
        });
        let Some((_, new)) = written else {
            continue;
        };
        for p in &node.pointers {
            if let Some(slot) = obj.pointer_mut(p) {
                *slot = Value::String(new.clone());
            }
        }
        node.value = new;
    }
    nodes.retain(|n| n.pointers.len() > 1);
}

/// Carries the values just written in place at `written` (JSON pointers)
/// over to the places sharing a node with them: the same as [`propagate`],
/// looking only at the nodes holding a place written.
pub(crate) fn carry(obj: &mut Value, nodes: &mut Vec<SharedNode>, written: &[String]) {
    if written.is_empty() || nodes.is_empty() {
        return;
    }
    let mut touched: Vec<SharedNode> = Vec::new();
    let mut i = 0;
    while i < nodes.len() {
        if nodes[i].pointers.iter().any(|p| written.contains(p)) {
            touched.push(nodes.swap_remove(i));
        } else {
            i += 1;
        }
    }
    // swap_remove reorders; the order of nodes does not matter.
    propagate(obj, &mut touched);
    nodes.extend(touched);
}

/// Compares two JSON pointers in the order kustomize walks an object: map
/// keys sorted, list items by index.
fn walk_order(a: &str, b: &str) -> std::cmp::Ordering {
    let token = |t: &str| (t.parse::<usize>().ok(), t.to_string());
    a.split('/').map(token).cmp(b.split('/').map(token))
}

/// Forgets the places under `prefix` (a JSON pointer ending in `/`), whose
/// map was written anew.
pub(crate) fn forget_under(nodes: &mut Vec<SharedNode>, prefix: &str) {
    for node in nodes.iter_mut() {
        node.pointers.retain(|p| !p.starts_with(prefix));
    }
    nodes.retain(|n| n.pointers.len() > 1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_write_to_one_place_shows_in_the_others() {
        let mut obj = json!({"a": {"k": "new"}, "b": {"k": "old"}, "c": {"k": "old"}});
        let mut nodes = vec![
            SharedNode::new(vec!["/a/k".into(), "/b/k".into(), "/c/k".into()], "old")
                .expect("three places"),
        ];
        propagate(&mut obj, &mut nodes);
        assert_eq!(
            obj,
            json!({"a": {"k": "new"}, "b": {"k": "new"}, "c": {"k": "new"}})
        );
        assert_eq!(nodes[0].value, "new");
    }

    #[test]
    fn a_deleted_place_leaves_the_node() {
        let mut obj = json!({"a": {}, "b": {"k": "old"}});
        let mut nodes =
            vec![SharedNode::new(vec!["/a/k".into(), "/b/k".into()], "old").expect("two places")];
        propagate(&mut obj, &mut nodes);
        assert!(nodes.is_empty());
        obj["a"]["k"] = json!("again");
        propagate(&mut obj, &mut nodes);
        assert_eq!(obj["b"]["k"], "old");
    }

    #[test]
    fn one_place_is_not_shared() {
        assert!(SharedNode::new(vec!["/a/k".into()], "v").is_none());
    }
}
