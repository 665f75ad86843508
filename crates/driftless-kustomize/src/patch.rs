//! Patches: strategic merge and JSON 6902, with kustomize's target selectors.

use regex::Regex;
use serde_json::Value;

use crate::config::Schema;
use crate::kustomization::Kustomization;
use crate::loader::Loader;
use crate::resource::{Gvk, Resource};
use crate::{Error, smp};

/// A `patches[].target` selector.
#[derive(Debug, Default)]
pub struct Selector {
    gvk: Gvk,
    name: Option<String>,
    namespace: Option<String>,
    label_selector: Option<String>,
    annotation_selector: Option<String>,
}

impl Selector {
    /// Reads a target selector.
    pub fn from_value(v: &Value) -> Selector {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        Selector {
            gvk: Gvk {
                group: s("group").unwrap_or_default(),
                version: s("version").unwrap_or_default(),
                kind: s("kind").unwrap_or_default(),
            },
            name: s("name"),
            namespace: s("namespace"),
            label_selector: s("labelSelector"),
            annotation_selector: s("annotationSelector"),
        }
    }

    /// True when `r` is selected.
    pub fn matches(&self, r: &Resource) -> Result<bool, String> {
        let ids = r.all_ids();
        let cur = r.cur_id();
        if !cur.gvk.is_selected_by(&self.gvk)
            && !ids.iter().any(|id| id.gvk.is_selected_by(&self.gvk))
        {
            return Ok(false);
        }
        if let Some(name) = &self.name
            && !full_match(name, &cur.name)?
            && !ids
                .iter()
                .any(|id| full_match(name, &id.name).unwrap_or(false))
        {
            return Ok(false);
        }
        if let Some(ns) = &self.namespace
            && !full_match(ns, &cur.namespace)?
        {
            return Ok(false);
        }
        if let Some(sel) = &self.label_selector
            && !label_selector_matches(sel, &r.labels())?
        {
            return Ok(false);
        }
        if let Some(sel) = &self.annotation_selector
            && !label_selector_matches(sel, &r.annotations())?
        {
            return Ok(false);
        }
        Ok(true)
    }
}

fn full_match(pattern: &str, value: &str) -> Result<bool, String> {
    let re = Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| format!("bad target pattern '{pattern}': {e}"))?;
    Ok(re.is_match(value))
}

/// Evaluates a Kubernetes label selector string (`a=b,c!=d,e in (x,y),!f,g`).
pub fn label_selector_matches(sel: &str, labels: &[(String, String)]) -> Result<bool, String> {
    let get = |k: &str| {
        labels
            .iter()
            .find(|(lk, _)| lk == k)
            .map(|(_, v)| v.as_str())
    };
    for term in split_terms(sel) {
        let term = term.trim();
        if term.is_empty() {
            continue;
        }
        let ok = if let Some((k, rest)) = term.split_once(" notin ") {
            let set = parse_set(rest)?;
            get(k.trim()).is_none_or(|v| !set.contains(&v.to_string()))
        } else if let Some((k, rest)) = term.split_once(" in ") {
            let set = parse_set(rest)?;
            get(k.trim()).is_some_and(|v| set.contains(&v.to_string()))
        } else if let Some((k, v)) = term.split_once("!=") {
            get(k.trim()) != Some(v.trim())
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            get(k.trim()) == Some(v.trim())
        } else if let Some(k) = term.strip_prefix('!') {
            get(k.trim()).is_none()
        } else {
            get(term).is_some()
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn split_terms(sel: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for c in sel.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

fn parse_set(s: &str) -> Result<Vec<String>, String> {
    let s = s.trim();
    let inner = s
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .ok_or_else(|| format!("bad set in selector: {s}"))?;
    Ok(inner.split(',').map(|x| x.trim().to_string()).collect())
}

/// A loaded patch document.
enum Patch {
    Strategic(Value),
    Json(Vec<Value>),
}

/// Parses patch text: a JSON/YAML list is a 6902 patch, a mapping a strategic merge.
fn parse_patch(text: &str, origin: &str) -> Result<Vec<Patch>, Error> {
    let docs = crate::yaml::parse_documents(text, origin)?;
    Ok(docs
        .into_iter()
        .map(|d| match d {
            Value::Array(ops) => Patch::Json(ops),
            other => Patch::Strategic(other),
        })
        .collect())
}

/// Loads `path` or `patch` from a patch entry.
fn load_patch_entry(
    loader: &Loader,
    k: &Kustomization,
    field: &str,
    entry: &Value,
) -> Result<(Vec<Patch>, String), Error> {
    if let Some(text) = entry.get("patch").and_then(Value::as_str) {
        let origin = k.path.display().to_string();
        return Ok((parse_patch(text, &origin)?, origin));
    }
    if let Some(path) = entry.get("path").and_then(Value::as_str) {
        let (file, text) = loader.read(field, path)?;
        let origin = file.display().to_string();
        return Ok((parse_patch(&text, &origin)?, origin));
    }
    Err(k.bad("patches", "entry needs 'path' or 'patch'").into())
}

/// Applies `patchesStrategicMerge:`.
pub fn apply_strategic_merge_field(
    loader: &Loader,
    k: &Kustomization,
    schema: &Schema,
    res: &mut Vec<Resource>,
) -> Result<(), Error> {
    let entries = k.strings("patchesStrategicMerge")?;
    let mut loaded = Vec::new();
    for entry in &entries {
        let (patches, origin) = if entry.contains('\n') || entry.contains(": ") {
            let origin = k.path.display().to_string();
            (parse_patch(entry, &origin)?, origin)
        } else {
            let (file, text) = loader.read("patchesStrategicMerge", entry)?;
            let origin = file.display().to_string();
            (parse_patch(&text, &origin)?, origin)
        };
        loaded.extend(patches.into_iter().map(|p| (p, origin.clone())));
    }
    if !entries.is_empty() && loaded.is_empty() {
        let entries: Vec<&str> = entries.iter().map(String::as_str).collect();
        return Err(empty_patches(k, &entries, ""));
    }
    for (p, origin) in loaded {
        apply_untargeted(res, p, &origin, schema)?;
    }
    Ok(())
}

/// kustomize's words for strategic-merge patch files and text that together
/// hold no patch at all.
fn empty_patches(k: &Kustomization, files: &[&str], inline: &str) -> Error {
    Error::invalid(
        &k.path,
        format!(
            "patch appears to be empty; files=[{}], Patch={inline}",
            files.join(" ")
        ),
    )
}

/// Applies `patches:`.
pub fn apply_patches_field(
    loader: &Loader,
    k: &Kustomization,
    schema: &Schema,
    res: &mut Vec<Resource>,
) -> Result<(), Error> {
    for entry in k.list("patches")? {
        apply_patch_entry(loader, k, schema, ("patches", &entry), res)?;
    }
    Ok(())
}

/// Applies one patch entry of the kustomization field named with it.
fn apply_patch_entry(
    loader: &Loader,
    k: &Kustomization,
    schema: &Schema,
    (field, entry): (&str, &Value),
    res: &mut Vec<Resource>,
) -> Result<(), Error> {
    let (patches, origin) = load_patch_entry(loader, k, field, entry)?;
    let allow_name = entry
        .pointer("/options/allowNameChange")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let allow_kind = entry
        .pointer("/options/allowKindChange")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match entry.get("target") {
        None => {
            for p in patches {
                apply_untargeted(res, p, &origin, schema)?;
            }
        }
        Some(t) => {
            let sel = Selector::from_value(t);
            for p in &patches {
                let mut i = 0;
                while i < res.len() {
                    if !sel
                        .matches(&res[i])
                        .map_err(|m| Error::invalid(&k.path, m))?
                    {
                        i += 1;
                        continue;
                    }
                    let before = res[i].cur_id();
                    let keep = apply_one(&mut res[i], p, &origin, schema, allow_name, allow_kind)?;
                    if !keep {
                        res.remove(i);
                        continue;
                    }
                    restore_identity(
                        &mut res[i],
                        &before,
                        allow_name,
                        allow_kind,
                        matches!(p, Patch::Strategic(_)),
                    );
                    i += 1;
                }
            }
        }
    }
    Ok(())
}

/// Strategic-merge patches may not rename unless allowed; kustomize keeps the
/// original name and kind in that case.
fn restore_identity(
    r: &mut Resource,
    before: &crate::resource::ResId,
    allow_name: bool,
    allow_kind: bool,
    smp: bool,
) {
    let after = r.cur_id();
    let renamed = after.name != before.name;
    let rekinded = after.gvk != before.gvk;
    if renamed && smp && !allow_name {
        r.set_name(&before.name);
    }
    if rekinded && smp && !allow_kind {
        r.map_mut()
            .insert("kind".into(), Value::String(before.gvk.kind.clone()));
    }
    if smp && before.namespace.is_empty() {
        // kustomize sets the namespace back after a strategic merge, and
        // setting an empty one removes the field.
        r.metadata_mut().remove("namespace");
    }
    if r.cur_id() != *before && r.prev_ids.last() != Some(before) {
        r.prev_ids.push(before.clone());
    }
}

/// Applies a patch to the resource its own identity names.
fn apply_untargeted(
    res: &mut Vec<Resource>,
    p: Patch,
    origin: &str,
    schema: &Schema,
) -> Result<(), Error> {
    let Patch::Strategic(doc) = &p else {
        return Err(Error::invalid(
            std::path::Path::new(origin),
            "a JSON 6902 patch needs a target",
        ));
    };
    let probe = Resource::new(doc.clone());
    let pid = probe.cur_id();
    let matches: Vec<usize> = res
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.had_name(&pid.name)
                && r.all_ids().iter().any(|id| {
                    (id.gvk.kind == pid.gvk.kind && id.gvk.group == pid.gvk.group)
                        && id.name == pid.name
                        && id.effective_namespace() == pid.effective_namespace()
                })
        })
        .map(|(i, _)| i)
        .collect();
    let idx = match matches.as_slice() {
        [one] => *one,
        [] => {
            return Err(Error::invalid(
                std::path::Path::new(origin),
                format!("no resource matches strategic merge patch \"{}\"", pid),
            ));
        }
        _ => {
            return Err(Error::invalid(
                std::path::Path::new(origin),
                format!(
                    "multiple matches for Id {pid}; failed to find unique target for patch {pid}"
                ),
            ));
        }
    };
    let before = res[idx].cur_id();
    if !apply_one(&mut res[idx], &p, origin, schema, false, false)? {
        res.remove(idx);
        return Ok(());
    }
    restore_identity(&mut res[idx], &before, false, false, true);
    Ok(())
}

/// Applies one patch; returns false when the patch deletes the resource.
fn apply_one(
    r: &mut Resource,
    p: &Patch,
    origin: &str,
    schema: &Schema,
    allow_name: bool,
    allow_kind: bool,
) -> Result<bool, Error> {
    match p {
        Patch::Strategic(doc) => {
            let mut patch = doc.clone();
            // The patch's identity fields select; they rename only when allowed.
            if let Some(m) = patch.as_object_mut() {
                if m.get("$patch").and_then(Value::as_str) == Some("delete") {
                    return Ok(false);
                }
                if let Some(Value::Object(meta)) = m.get_mut("metadata") {
                    if !allow_name {
                        meta.remove("name");
                    }
                    meta.remove("namespace");
                }
                if !allow_kind {
                    m.remove("apiVersion");
                    m.remove("kind");
                }
            }
            let gvk = r.gvk();
            let lists = smp::Lists {
                known: schema.knows(&gvk),
                custom: schema.custom_lists(&gvk),
            };
            smp::merge(&mut r.obj, &patch, lists)
                .map_err(|e| Error::invalid(std::path::Path::new(origin), e))?;
            // kustomize merges in place: a value written where a node is
            // shared shows in all its places.
            crate::shared::propagate(&mut r.obj, &mut r.shared);
            Ok(true)
        }
        Patch::Json(ops) => {
            crate::json6902::apply(&mut r.obj, ops)
                .map_err(|e| Error::invalid(std::path::Path::new(origin), e))?;
            // kustomize applies JSON patches to the object as JSON and reads
            // it back: no node is shared any more.
            r.shared.clear();
            Ok(true)
        }
    }
}

/// Applies `patchesJson6902:`.
pub fn apply_json6902_field(
    loader: &Loader,
    k: &Kustomization,
    schema: &Schema,
    res: &mut Vec<Resource>,
) -> Result<(), Error> {
    for entry in k.list("patchesJson6902")? {
        apply_patch_entry(loader, k, schema, ("patchesJson6902", &entry), res)?;
    }
    Ok(())
}

/// Runs one built-in transformer configuration from `transformers:`.
pub fn run_builtin_transformer(
    loader: &Loader,
    k: &Kustomization,
    cfg: &crate::config::TransformerConfig,
    config: &Value,
    res: &mut Vec<Resource>,
) -> Result<(), Error> {
    let kind = config.get("kind").and_then(Value::as_str).unwrap_or("");
    let mut fields = serde_json::Map::new();
    let spec_list = |field: &str| -> Option<Vec<crate::fieldspec::FieldSpec>> {
        config.get(field).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(crate::fieldspec::FieldSpec::from_value)
                .collect()
        })
    };
    match kind {
        "PatchTransformer" | "PatchJson6902Transformer" => {
            let mut entry = serde_json::Map::new();
            for f in ["path", "patch", "target", "options"] {
                if let Some(v) = config.get(f) {
                    entry.insert(f.into(), v.clone());
                }
            }
            if let Some(op) = config.get("jsonOp") {
                entry.insert("patch".into(), op.clone());
            }
            let entry = Value::Object(entry);
            return apply_patch_entry(loader, k, &cfg.schema, ("transformers", &entry), res);
        }
        "PatchStrategicMergeTransformer" => {
            let paths: Vec<&str> = config
                .get("paths")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let inline = config.get("patches").and_then(Value::as_str);
            let mut loaded = Vec::new();
            for path in &paths {
                let (file, text) = loader.read("transformers", path)?;
                let origin = file.display().to_string();
                loaded.extend(
                    parse_patch(&text, &origin)?
                        .into_iter()
                        .map(|p| (p, origin.clone())),
                );
            }
            if let Some(text) = inline {
                let origin = k.path.display().to_string();
                loaded.extend(
                    parse_patch(text, &origin)?
                        .into_iter()
                        .map(|p| (p, origin.clone())),
                );
            }
            if loaded.is_empty() {
                return Err(empty_patches(k, &paths, inline.unwrap_or("")));
            }
            for (patch, origin) in loaded {
                apply_untargeted(res, patch, &origin, &cfg.schema)?;
            }
            return Ok(());
        }
        "PrefixSuffixTransformer" | "PrefixTransformer" | "SuffixTransformer" => {
            let prefix = config.get("prefix").and_then(Value::as_str).unwrap_or("");
            let suffix = config.get("suffix").and_then(Value::as_str).unwrap_or("");
            let specs = spec_list("fieldSpecs");
            crate::transform::add_affixes(res, prefix, suffix, specs.as_deref());
            return Ok(());
        }
        "LabelTransformer" | "AnnotationsTransformer" => {
            let field = if kind == "LabelTransformer" {
                "labels"
            } else {
                "annotations"
            };
            let pairs: Vec<(String, String)> = config
                .get(field)
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), crate::resource::scalar_text(v)))
                        .collect()
                })
                .unwrap_or_default();
            let specs = spec_list("fieldSpecs").unwrap_or_default();
            crate::transform::apply_map(res, &pairs, &[&specs]);
            return Ok(());
        }
        "NamespaceTransformer" => {
            if let Some(ns) = config
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
            {
                crate::transform::set_namespace(res, ns);
            }
            return Ok(());
        }
        "ReplacementTransformer" => {
            return crate::replacements::apply_config(loader, k, config, res);
        }
        "ImageTagTransformer" => {
            if let Some(img) = config.get("imageTag") {
                fields.insert("images".into(), Value::Array(vec![img.clone()]));
            }
        }
        "ReplicaCountTransformer" => {
            if let Some(rep) = config.get("replica") {
                fields.insert("replicas".into(), Value::Array(vec![rep.clone()]));
            }
        }
        _ => {
            return Err(Error::invalid(
                &k.path,
                crate::resource::unsupported_plugin(config, "transformer"),
            ));
        }
    }
    let synthetic = Kustomization {
        path: k.path.clone(),
        fields,
    };
    crate::transform::images(&synthetic, cfg, res)?;
    crate::transform::replicas(&synthetic, cfg, res)?;
    Ok(())
}
