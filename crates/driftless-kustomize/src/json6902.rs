//! RFC 6902 JSON patch operations.

use serde_json::Value;

/// Applies the operations in order.
///
/// kustomize keeps bookkeeping annotations on every object while it works, so
/// `metadata.annotations` always exists for patches; it is removed again when
/// it ends up empty.
pub fn apply(doc: &mut Value, ops: &[Value]) -> Result<(), String> {
    let added = match doc.get_mut("metadata") {
        Some(Value::Object(meta)) if !meta.contains_key("annotations") => {
            meta.insert("annotations".into(), Value::Object(serde_json::Map::new()));
            true
        }
        _ => false,
    };
    let result = apply_ops(doc, ops);
    if added
        && let Some(Value::Object(meta)) = doc.get_mut("metadata")
        && meta
            .get("annotations")
            .is_some_and(|a| a.as_object().is_some_and(|m| m.is_empty()))
    {
        meta.remove("annotations");
    }
    result
}

fn apply_ops(doc: &mut Value, ops: &[Value]) -> Result<(), String> {
    for op in ops {
        let name = op
            .get("op")
            .and_then(Value::as_str)
            .ok_or("patch operation without 'op'")?;
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or("patch operation without 'path'")?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or(format!("'{name}' at {path} needs a value"))
        };
        match name {
            "add" => add(doc, path, value()?)?,
            "remove" => {
                remove(doc, path)?;
            }
            "replace" => replace(doc, path, value()?)?,
            "move" => {
                let from = op
                    .get("from")
                    .and_then(Value::as_str)
                    .ok_or("move needs 'from'")?;
                let v = remove(doc, from)?;
                add(doc, path, v)?;
            }
            "copy" => {
                let from = op
                    .get("from")
                    .and_then(Value::as_str)
                    .ok_or("copy needs 'from'")?;
                let v = doc
                    .pointer(from)
                    .cloned()
                    .ok_or(format!("copy: path {from} does not exist"))?;
                add(doc, path, v)?;
            }
            "test" => {
                if doc.pointer(path) != Some(&value()?) {
                    return Err(format!("test failed at {path}"));
                }
            }
            other => return Err(format!("unknown patch operation '{other}'")),
        }
    }
    Ok(())
}

/// Replaces the value at `path`. As kustomize's JSON patch library does, a key
/// missing from an object that exists is added; a missing parent is an error.
fn replace(doc: &mut Value, path: &str, v: Value) -> Result<(), String> {
    if let Some(slot) = doc.pointer_mut(path) {
        *slot = v;
        return Ok(());
    }
    let missing = || format!("replace: path {path} does not exist");
    let (parent, last) = split(path).map_err(|_| missing())?;
    match doc.pointer_mut(&parent) {
        Some(Value::Object(m)) => {
            m.insert(last, v);
            Ok(())
        }
        _ => Err(missing()),
    }
}

fn split(path: &str) -> Result<(String, String), String> {
    let i = path
        .rfind('/')
        .ok_or(format!("invalid JSON pointer '{path}'"))?;
    let last = path[i + 1..].replace("~1", "/").replace("~0", "~");
    Ok((path[..i].to_string(), last))
}

fn add(doc: &mut Value, path: &str, v: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = v;
        return Ok(());
    }
    let (parent, last) = split(path)?;
    let target = doc
        .pointer_mut(&parent)
        .ok_or(format!("add: parent of {path} does not exist"))?;
    match target {
        Value::Object(m) => {
            m.insert(last, v);
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(v);
            } else {
                let i: usize = last
                    .parse()
                    .map_err(|_| format!("add: bad index in {path}"))?;
                if i > a.len() {
                    return Err(format!("add: index out of range in {path}"));
                }
                a.insert(i, v);
            }
        }
        _ => return Err(format!("add: parent of {path} is not a container")),
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split(path)?;
    let target = doc
        .pointer_mut(&parent)
        .ok_or(format!("remove: path {path} does not exist"))?;
    match target {
        Value::Object(m) => m
            .shift_remove(&last)
            .ok_or(format!("remove: path {path} does not exist")),
        Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| format!("remove: bad index in {path}"))?;
            if i >= a.len() {
                return Err(format!("remove: index out of range in {path}"));
            }
            Ok(a.remove(i))
        }
        _ => Err(format!("remove: parent of {path} is not a container")),
    }
}
