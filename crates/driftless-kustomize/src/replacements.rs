//! `replacements:` copy a field of one resource into fields of others.

use serde_json::{Map, Value};

use crate::Error;
use crate::kustomization::Kustomization;
use crate::loader::Loader;
use crate::patch::Selector;
use crate::resource::Resource;

/// Applies the `replacements:` field.
pub fn apply_field(loader: &Loader, k: &Kustomization, res: &mut [Resource]) -> Result<(), Error> {
    for entry in k.list("replacements")? {
        let list = match entry.get("path").and_then(Value::as_str) {
            Some(path) => {
                let (file, text) = loader.read("replacements", path)?;
                let docs = crate::yaml::parse_documents(&text, &file.display().to_string())?;
                docs.into_iter()
                    .flat_map(|d| match d {
                        Value::Array(a) => a,
                        other => vec![other],
                    })
                    .collect()
            }
            None => vec![entry],
        };
        for r in list {
            apply_one(&r, res).map_err(|m| Error::invalid(&k.path, m))?;
        }
    }
    Ok(())
}

/// Applies a `ReplacementTransformer` configuration.
pub fn apply_config(
    loader: &Loader,
    k: &Kustomization,
    config: &Value,
    res: &mut [Resource],
) -> Result<(), Error> {
    let synthetic = Kustomization {
        path: k.path.clone(),
        fields: Map::from_iter([(
            "replacements".to_string(),
            config
                .get("replacements")
                .cloned()
                .unwrap_or(Value::Array(Vec::new())),
        )]),
    };
    apply_field(loader, &synthetic, res)
}

fn apply_one(rep: &Value, res: &mut [Resource]) -> Result<(), String> {
    let source = rep.get("source").ok_or("replacement without source")?;
    let sel = Selector::from_value(source);
    let found: Vec<&Resource> = res
        .iter()
        .filter(|r| sel.matches(r).unwrap_or(false))
        .collect();
    let src = match found.as_slice() {
        [one] => *one,
        [] => return Err(format!("nothing selected by replacement source {source}")),
        _ => return Err(format!("multiple matches for replacement source {source}")),
    };
    let path = source
        .get("fieldPath")
        .and_then(Value::as_str)
        .unwrap_or("metadata.name");
    let mut value = get_path(&src.obj, &parse_field_path(path))
        .cloned()
        .ok_or(format!(
            "fieldPath '{path}' missing from replacement source {}",
            src.cur_id()
        ))?;
    if let Some(opts) = source.get("options")
        && let Some(delim) = opts.get("delimiter").and_then(Value::as_str)
    {
        let text = crate::resource::scalar_text(&value);
        let idx = opts.get("index").and_then(Value::as_i64).unwrap_or(0);
        let parts: Vec<&str> = text.split(delim).collect();
        // The value itself stays out of the message: it may be a Secret's.
        let part = usize::try_from(idx)
            .ok()
            .and_then(|i| parts.get(i))
            .ok_or_else(|| {
                format!(
                    "options.index {idx} is out of bounds for value of fieldPath '{path}' in \
                     replacement source {} ({} parts split on {delim:?})",
                    src.cur_id(),
                    parts.len()
                )
            })?;
        value = Value::String(part.to_string());
    }
    for target in rep
        .get("targets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let select = target
            .get("select")
            .map(Selector::from_value)
            .unwrap_or_default();
        let rejects: Vec<Selector> = target
            .get("reject")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(Selector::from_value).collect())
            .unwrap_or_default();
        let opts = target.get("options").cloned().unwrap_or(Value::Null);
        let create = opts.get("create").and_then(Value::as_bool).unwrap_or(false);
        for r in res.iter_mut() {
            if !select.matches(r)? || rejects.iter().any(|s| s.matches(r).unwrap_or(false)) {
                continue;
            }
            for fp in target
                .get("fieldPaths")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(fp) = fp.as_str() else { continue };
                set_path(&mut r.obj, &parse_field_path(fp), &value, &opts, create)
                    .map_err(|e| target_error(fp, create, &e, r))?;
                crate::shared::propagate(&mut r.obj, &mut r.shared);
            }
        }
    }
    Ok(())
}

/// kustomize's words for a target field it could not set, with the target.
fn target_error(fp: &str, create: bool, why: &str, r: &Resource) -> String {
    let verb = if create { "find or create" } else { "find" };
    let why = if why == MISSING {
        String::new()
    } else {
        format!(": {why}")
    };
    format!(
        "unable to {verb} field \"{fp}\" in replacement target{why} (target {})",
        r.cur_id()
    )
}

/// Splits `a.b.[name=x].c` into segments, keeping bracketed parts whole.
pub fn parse_field_path(path: &str) -> Vec<String> {
    crate::fieldspec::split_outside_brackets(path, '.')
}

enum Seg<'a> {
    Key(&'a str),
    Match(&'a str, &'a str),
    Index(usize),
}

fn seg(s: &str) -> Seg<'_> {
    if let Some(inner) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        return match inner.split_once('=') {
            Some((k, v)) => Seg::Match(k, v),
            None => Seg::Key(inner),
        };
    }
    match s.parse::<usize>() {
        Ok(i) => Seg::Index(i),
        Err(_) => Seg::Key(s),
    }
}

fn get_path<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(v);
    };
    let next = match (seg(first), v) {
        (Seg::Key(k), Value::Object(m)) => m.get(k)?,
        (Seg::Index(i), Value::Array(a)) => a.get(i)?,
        (Seg::Match(k, val), Value::Array(a)) => a
            .iter()
            .find(|e| e.get(k).map(crate::resource::scalar_text).as_deref() == Some(val))?,
        _ => return None,
    };
    get_path(next, rest)
}

/// Why a target field could not be set.
const MISSING: &str = "missing";

/// The empty node kustomize creates for a missing path part, shaped by the
/// part after it: a list before an index or `[k=v]` part, a map before a
/// field, nothing at the end (the value goes there).
fn fresh_node(next: Option<&String>) -> Value {
    match next.map(|n| seg(n)) {
        None => Value::Null,
        Some(Seg::Key(_)) => Value::Object(Map::new()),
        Some(Seg::Index(_) | Seg::Match(..)) => Value::Array(Vec::new()),
    }
}

/// True when list element `e` matches a target's `[k=pattern]` part: as
/// kustomize matches targets, `pattern` is an unanchored regular expression
/// over the trimmed value of `k` (of the element itself when `k` is empty).
fn element_matches(e: &Value, k: &str, pattern: &regex::Regex) -> bool {
    let field = if k.is_empty() { Some(e) } else { e.get(k) };
    field.is_some_and(|v| !v.is_null() && pattern.is_match(crate::resource::scalar_text(v).trim()))
}

fn set_path(
    v: &mut Value,
    path: &[String],
    value: &Value,
    opts: &Value,
    create: bool,
) -> Result<(), String> {
    let Some((first, rest)) = path.split_first() else {
        *v = splice(v, value, opts)?;
        return Ok(());
    };
    if first == "*" {
        let children: Vec<&mut Value> = match v {
            Value::Array(a) => a.iter_mut().collect(),
            Value::Object(m) => m.values_mut().collect(),
            _ => return Err(MISSING.into()),
        };
        for child in children {
            set_path(child, rest, value, opts, create)?;
        }
        return Ok(());
    }
    match (seg(first), v) {
        (Seg::Key(k), Value::Object(m)) => {
            if !m.contains_key(k) {
                if !create {
                    return Err(MISSING.into());
                }
                m.insert(k.to_string(), fresh_node(rest.first()));
            }
            let child = m.get_mut(k).ok_or(MISSING)?;
            set_path(child, rest, value, opts, create)
        }
        (Seg::Index(i), Value::Array(a)) => {
            // kustomize creates an element only to append one.
            if create && i == a.len() {
                a.push(fresh_node(rest.first()));
            }
            let found = a.len();
            match a.get_mut(i) {
                Some(child) => set_path(child, rest, value, opts, create),
                None => Err(format!(
                    "index {i} specified but only {found} elements found"
                )),
            }
        }
        (Seg::Match(k, pattern), Value::Array(a)) => {
            let re = regex::Regex::new(pattern)
                .map_err(|_| format!("{first}: {pattern:?} is not a valid regular expression"))?;
            if create && !a.iter().any(|e| element_matches(e, k, &re)) {
                let key = Value::String(pattern.to_string());
                a.push(if k.is_empty() {
                    key
                } else {
                    Value::Object(Map::from_iter([(k.to_string(), key)]))
                });
            }
            let mut found = false;
            for e in a.iter_mut().filter(|e| element_matches(e, k, &re)) {
                found = true;
                set_path(e, rest, value, opts, create)?;
            }
            if found { Ok(()) } else { Err(MISSING.into()) }
        }
        (_, Value::Array(a)) => {
            for e in a.iter_mut() {
                set_path(e, path, value, opts, create)?;
            }
            Ok(())
        }
        _ => Err(MISSING.into()),
    }
}

/// Applies the target's delimiter/index options to produce the new value.
fn splice(current: &Value, value: &Value, opts: &Value) -> Result<Value, String> {
    let Some(delim) = opts.get("delimiter").and_then(Value::as_str) else {
        return Ok(value.clone());
    };
    let text = crate::resource::scalar_text(current);
    let mut parts: Vec<String> = text.split(delim).map(str::to_string).collect();
    let idx = opts.get("index").and_then(Value::as_i64).unwrap_or(0);
    let new = crate::resource::scalar_text(value);
    if idx < 0 {
        parts.insert(0, new);
    } else if (idx as usize) >= parts.len() {
        parts.push(new);
    } else {
        parts[idx as usize] = new;
    }
    Ok(Value::String(parts.join(delim)))
}
