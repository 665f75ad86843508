//! The built-in field transformers: namespace, name prefix/suffix, labels,
//! annotations, replicas and images.

use serde_json::{Map, Value};

use crate::Error;
use crate::config::TransformerConfig;
use crate::fieldspec::{self, FieldSpec, apply_specs};
use crate::kustomization::Kustomization;
use crate::resource::Resource;

/// Applies `namespace:`, also to the fields `configurations:` name.
pub fn namespace(
    k: &Kustomization,
    cfg: &TransformerConfig,
    res: &mut [Resource],
) -> Result<(), Error> {
    let Some(ns) = k.str("namespace").filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    set_namespace(res, ns);
    // metadata/namespace stays with the scope-aware code above, as in kustomize.
    let specs: Vec<FieldSpec> = cfg
        .namespace
        .iter()
        .filter(|s| s.path != "metadata/namespace")
        .cloned()
        .collect();
    if specs.is_empty() {
        return Ok(());
    }
    for r in res.iter_mut() {
        let gvk = r.gvk();
        apply_specs(&mut r.obj, &gvk, &specs, &mut |m, key| {
            m.insert(key.to_string(), Value::String(ns.to_string()));
        });
    }
    Ok(())
}

/// Sets the namespace of every namespaced resource and of the references
/// kustomize keeps in step with it.
pub fn set_namespace(res: &mut [Resource], ns: &str) {
    for r in res.iter_mut() {
        let gvk = r.gvk();
        if gvk.is_cluster_scoped() {
            if gvk.kind == "Namespace" && gvk.group.is_empty() && r.name() != ns {
                r.remember_id();
                r.set_name(ns);
            }
            if matches!(gvk.kind.as_str(), "ClusterRoleBinding") {
                set_subject_namespaces(r, ns);
            }
            // Webhook configurations keep their service namespaces; name
            // references update them when the service is part of the build.
            let service = match gvk.kind.as_str() {
                "APIService" => Some("/spec/service"),
                "CustomResourceDefinition" => Some("/spec/conversion/webhook/clientConfig/service"),
                _ => None,
            };
            if let Some(Value::Object(svc)) = service.and_then(|p| r.obj.pointer_mut(p)) {
                svc.insert("namespace".into(), Value::String(ns.into()));
            }
            continue;
        }
        r.remember_id();
        r.set_namespace(ns);
        if gvk.kind == "Namespace" && gvk.group.is_empty() {
            r.set_name(ns);
        }
        if gvk.kind == "RoleBinding" {
            set_subject_namespaces(r, ns);
        }
    }
}

fn set_subject_namespaces(r: &mut Resource, ns: &str) {
    if let Some(Value::Array(subjects)) = r.obj.pointer_mut("/subjects") {
        for s in subjects.iter_mut().filter_map(Value::as_object_mut) {
            // kustomize moves every subject named "default", whatever its kind.
            if s.get("name").and_then(Value::as_str) == Some("default") {
                s.insert("namespace".into(), Value::String(ns.into()));
            }
        }
    }
}

/// Kinds whose names prefixes and suffixes leave alone.
fn skips_affix(r: &Resource) -> bool {
    matches!(r.kind(), "CustomResourceDefinition" | "Namespace")
        || (r.kind() == "APIService" && r.api_version().starts_with("apiregistration.k8s.io"))
}

/// Applies `namePrefix:` and `nameSuffix:`.
pub fn prefix_suffix(
    k: &Kustomization,
    cfg: &TransformerConfig,
    res: &mut [Resource],
) -> Result<(), Error> {
    let prefix = k.str("namePrefix").unwrap_or("");
    let suffix = k.str("nameSuffix").unwrap_or("");
    if !prefix.is_empty() {
        crate::origin::record_builtin(res, &k.path, "PrefixTransformer", 1);
    }
    if !suffix.is_empty() {
        crate::origin::record_builtin(res, &k.path, "SuffixTransformer", 1);
    }
    let prefix_specs = name_specs(k, "NamePrefix", &cfg.name_prefix)?;
    add_affixes(res, prefix, "", prefix_specs.as_deref());
    let suffix_specs = name_specs(k, "NameSuffix", &cfg.name_suffix)?;
    add_affixes(res, "", suffix, suffix_specs.as_deref());
    Ok(())
}

/// The specs `namePrefix`/`nameSuffix` (`field`) use: `None` (every name)
/// without custom ones, else the default `metadata/name` settled with them.
fn name_specs(
    k: &Kustomization,
    field: &str,
    custom: &[FieldSpec],
) -> Result<Option<Vec<FieldSpec>>, Error> {
    if custom.is_empty() {
        return Ok(None);
    }
    settled(k, field, fieldspec::name_specs(), custom).map(Some)
}

/// [`fieldspec::settle`], a conflict reported against the kustomization.
pub fn settled(
    k: &Kustomization,
    field: &str,
    defaults: Vec<FieldSpec>,
    custom: &[FieldSpec],
) -> Result<Vec<FieldSpec>, Error> {
    fieldspec::settle(defaults, custom).map_err(|c| conflict(&k.path, field, &c))
}

/// kustomize's refusal of a `configurations:` spec that disagrees on
/// `create` with another for the same field.
pub fn conflict(path: &std::path::Path, field: &str, c: &fieldspec::Conflict) -> Error {
    Error::invalid(
        path,
        format!(
            "configurations: failed to merge {field} fieldSpec: conflicting fieldspecs \
             ({}:{}:{} and another spec for that field disagree on create)",
            c.0.gvk, c.0.create, c.0.path
        ),
    )
}

/// Adds a prefix and suffix to names, or only where `specs` select: a
/// `metadata/name` spec renames the object, any other adds the affixes to
/// the string at its path.
pub fn add_affixes(res: &mut [Resource], prefix: &str, suffix: &str, specs: Option<&[FieldSpec]>) {
    if prefix.is_empty() && suffix.is_empty() {
        return;
    }
    for r in res.iter_mut() {
        if skips_affix(r) {
            continue;
        }
        let rename = match specs {
            None => true,
            Some(specs) => affix_fields(r, prefix, suffix, specs),
        };
        if rename {
            rename_with_affixes(r, prefix, suffix);
        }
    }
}

/// Adds the affixes to the fields other than the name that `specs` select
/// in `r`; true when a `metadata/name` spec selects it.
fn affix_fields(r: &mut Resource, prefix: &str, suffix: &str, specs: &[FieldSpec]) -> bool {
    let gvk = r.gvk();
    let mut rename = false;
    for spec in specs.iter().filter(|s| gvk.is_selected_by(&s.gvk)) {
        if spec.path == "metadata/name" {
            rename = true;
            continue;
        }
        let path = fieldspec::split_path(&spec.path);
        fieldspec::visit_path(&mut r.obj, &path, spec.create, &mut |m, key| {
            let old = m.get(key).and_then(Value::as_str).unwrap_or("");
            let new = format!("{prefix}{old}{suffix}");
            m.insert(key.to_string(), Value::String(new));
        });
    }
    rename
}

fn rename_with_affixes(r: &mut Resource, prefix: &str, suffix: &str) {
    r.remember_id();
    let name = format!("{prefix}{}{suffix}", r.name());
    r.set_name(&name);
    if !prefix.is_empty() {
        r.prefixes.push(prefix.to_string());
    }
    if !suffix.is_empty() {
        r.suffixes.push(suffix.to_string());
    }
}

/// Applies the `labels:` entries, then `commonLabels:`, as kustomize does.
pub fn labels(
    k: &Kustomization,
    cfg: &TransformerConfig,
    res: &mut [Resource],
) -> Result<(), Error> {
    for entry in k.list("labels")? {
        let Some(pairs) = entry.get("pairs").and_then(Value::as_object) else {
            continue;
        };
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.clone(), crate::resource::scalar_text(v)))
            .collect();
        let flag = |name: &str| entry.get(name).and_then(Value::as_bool).unwrap_or(false);
        // As kustomize: the entry's own fields, then the defaults merged
        // into them (one for a field already there is dropped, or refused
        // when it disagrees on `create`); every spec applies.
        let mut specs: Vec<FieldSpec> = match entry.get("fields") {
            Some(Value::Array(extra)) => extra.iter().filter_map(FieldSpec::from_value).collect(),
            _ => Vec::new(),
        };
        let mut merge = |defaults: &[FieldSpec], what: &str| {
            fieldspec::merge_all(&mut specs, defaults).map_err(|c| {
                Error::invalid(
                    &k.path,
                    format!(
                        "labels: failed to merge {what}: conflicting fieldspecs ({}:{}:{} \
                         and a spec in the entry's fields disagree on create)",
                        c.0.gvk, c.0.create, c.0.path
                    ),
                )
            })
        };
        if flag("includeSelectors") {
            let common = settled(
                k,
                "CommonLabels",
                fieldspec::common_label_specs(),
                &cfg.common_labels,
            )?;
            merge(&common, "labels")?;
        } else {
            merge(
                &[FieldSpec::new("", "", "", "metadata/labels", true)],
                "labels",
            )?;
            if flag("includeTemplates") {
                let templates = settled(
                    k,
                    "TemplateLabels",
                    fieldspec::template_label_config_specs(),
                    &cfg.template_labels,
                )?;
                merge(&templates, "template fieldSpec")?;
            }
        }
        specs.extend(cfg.labels.iter().cloned());
        let groups: Vec<&[FieldSpec]> = specs.iter().map(std::slice::from_ref).collect();
        apply_map(res, &pairs, &groups);
    }
    // As in kustomize, `commonLabels` comes after the `labels` entries.
    let common = k.string_map("commonLabels")?;
    if !common.is_empty() {
        let specs = settled(
            k,
            "CommonLabels",
            fieldspec::common_label_specs(),
            &cfg.common_labels,
        )?;
        apply_map(res, &common, &[&specs]);
    }
    Ok(())
}

/// Applies `commonAnnotations:`.
pub fn annotations(
    k: &Kustomization,
    cfg: &TransformerConfig,
    res: &mut [Resource],
) -> Result<(), Error> {
    let common = k.string_map("commonAnnotations")?;
    if !common.is_empty() {
        let specs = settled(
            k,
            "CommonAnnotations",
            fieldspec::annotation_specs(),
            &cfg.common_annotations,
        )?;
        apply_map(res, &common, &[&specs]);
    }
    Ok(())
}

/// Merges string pairs into the maps at the specs of `groups`, as one label
/// or annotation transformer: each group of specs is applied on its own (a
/// path twice in a group counts once). The places of an object where a key
/// is added share one node, as in kustomize, and writes to places that
/// already had the key reach the places sharing a node with them (see
/// `shared`).
pub fn apply_map(res: &mut [Resource], pairs: &[(String, String)], groups: &[&[FieldSpec]]) {
    for r in res.iter_mut() {
        let gvk = r.gvk();
        // Per pair, the places it was added to; and the places that had the
        // key with another value, written in place.
        let mut added: Vec<Vec<String>> = vec![Vec::new(); pairs.len()];
        let mut written: Vec<String> = Vec::new();
        for specs in groups {
            fieldspec::apply_specs_at(&mut r.obj, &gvk, specs, &mut |parent, key, at| {
                let slot = parent
                    .entry(key.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if slot.is_null() {
                    *slot = Value::Object(Map::new());
                }
                let Value::Object(m) = slot else {
                    return;
                };
                for ((k, v), places) in pairs.iter().zip(added.iter_mut()) {
                    let old = m.insert(k.clone(), Value::String(v.clone()));
                    if old.as_ref().and_then(Value::as_str) == Some(v.as_str()) {
                        continue;
                    }
                    let mut pointer = at.to_string();
                    fieldspec::push_pointer_token(&mut pointer, key);
                    fieldspec::push_pointer_token(&mut pointer, k);
                    match old {
                        None => places.push(pointer),
                        Some(_) => written.push(pointer),
                    }
                }
            });
        }
        crate::shared::carry(&mut r.obj, &mut r.shared, &written);
        for ((_, v), places) in pairs.iter().zip(added) {
            r.shared.extend(crate::shared::SharedNode::new(places, v));
        }
    }
}

/// Applies `replicas:`.
pub fn replicas(
    k: &Kustomization,
    cfg: &TransformerConfig,
    res: &mut [Resource],
) -> Result<(), Error> {
    for entry in k.list("replicas")? {
        let name = entry.get("name").and_then(Value::as_str).unwrap_or("");
        let count = entry
            .get("count")
            .cloned()
            .ok_or_else(|| k.bad("replicas", "entry without count"))?;
        let mut specs = fieldspec::replica_specs();
        specs.extend(cfg.replicas.iter().cloned());
        for r in res.iter_mut() {
            if r.name() != name && !r.all_ids().iter().any(|id| id.name == name) {
                continue;
            }
            let gvk = r.gvk();
            apply_specs(&mut r.obj, &gvk, &specs, &mut |m, key| {
                m.insert(key.to_string(), count.clone());
            });
        }
    }
    Ok(())
}

/// Applies `images:`.
pub fn images(
    k: &Kustomization,
    cfg: &TransformerConfig,
    res: &mut [Resource],
) -> Result<(), Error> {
    let entries = k.list("images")?;
    if entries.is_empty() {
        return Ok(());
    }
    let mut specs = fieldspec::image_specs();
    // kustomize's image filter never creates a field, whatever `create` says.
    specs.extend(cfg.images.iter().map(|s| FieldSpec {
        create: false,
        ..s.clone()
    }));
    let images: Vec<Image> = entries
        .iter()
        .map(|entry| {
            let get = |f: &str| {
                entry
                    .get(f)
                    .map(crate::resource::scalar_text)
                    .unwrap_or_default()
            };
            Image {
                name: get("name"),
                new_name: get("newName"),
                new_tag: get("newTag"),
                digest: get("digest"),
                tag_suffix: get("tagSuffix"),
            }
        })
        .collect();
    for r in res.iter_mut() {
        // kustomize first rewrites the images of every `containers` and
        // `initContainers` list wherever it sits (custom resources and
        // objects without an apiVersion too), CRDs aside, then the field specs.
        if r.kind() != "CustomResourceDefinition" {
            rewrite_container_images(&mut r.obj, &images);
        }
        let gvk = r.gvk();
        for image in &images {
            apply_specs(&mut r.obj, &gvk, &specs, &mut |m, key| {
                image.rewrite_field(m, key);
            });
        }
    }
    Ok(())
}

/// Rewrites `image` in the elements of every `containers`/`initContainers`
/// list below `node`.
fn rewrite_container_images(node: &mut Value, images: &[Image]) {
    match node {
        Value::Object(m) => {
            for (key, child) in m.iter_mut() {
                rewrite_container_images(child, images);
                if !matches!(key.as_str(), "containers" | "initContainers") {
                    continue;
                }
                let Value::Array(items) = child else {
                    continue;
                };
                for container in items.iter_mut().filter_map(Value::as_object_mut) {
                    for image in images {
                        image.rewrite_field(container, "image");
                    }
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|x| rewrite_container_images(x, images)),
        _ => {}
    }
}

struct Image {
    name: String,
    new_name: String,
    new_tag: String,
    digest: String,
    tag_suffix: String,
}

impl Image {
    /// Rewrites the image reference at `key` of `m` when it names this image.
    fn rewrite_field(&self, m: &mut Map<String, Value>, key: &str) {
        if let Some(Value::String(current)) = m.get(key)
            && let Some(updated) = self.rewrite(current)
        {
            m.insert(key.to_string(), Value::String(updated));
        }
    }

    /// Whether `current` is this image: the entry's name (which may carry a
    /// tag or digest itself), then at most a tag and a sha256 digest, as
    /// kustomize matches it.
    fn matches(&self, current: &str) -> bool {
        let Some(rest) = current.strip_prefix(self.name.as_str()) else {
            return false;
        };
        let tag_char = |c: char| c.is_ascii_alphanumeric() || "_.{}-".contains(c);
        let rest = match rest.strip_prefix(':') {
            Some(tagged) => tagged.trim_start_matches(tag_char),
            None => rest,
        };
        rest.is_empty()
            || rest
                .strip_prefix("@sha256:")
                .is_some_and(|d| d.chars().all(|c| c.is_ascii_alphanumeric()))
    }

    /// The rewritten reference, or None when `current` is a different image.
    /// A new tag or digest replaces both old ones (both given: both kept);
    /// otherwise `tagSuffix` extends the tag and drops the digest.
    fn rewrite(&self, current: &str) -> Option<String> {
        if !self.matches(current) {
            return None;
        }
        let (name, tag, digest) = split_image(current);
        let name = if self.new_name.is_empty() {
            name
        } else {
            &self.new_name
        };
        let (tag, digest) = match (self.new_tag.as_str(), self.digest.as_str()) {
            ("", "") if !self.tag_suffix.is_empty() => {
                (format!("{}{}", tag.unwrap_or(""), self.tag_suffix), "")
            }
            ("", "") => (tag.unwrap_or("").to_string(), digest.unwrap_or("")),
            (new_tag, new_digest) => (new_tag.to_string(), new_digest),
        };
        let mut out = name.to_string();
        if !tag.is_empty() {
            out.push(':');
            out.push_str(&tag);
        }
        if !digest.is_empty() {
            out.push('@');
            out.push_str(digest);
        }
        Some(out)
    }
}

/// Splits `registry/name:tag@digest` into name, tag and digest.
fn split_image(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..]), digest),
        None => (rest, None, digest),
    }
}

/// Removes the bookkeeping kustomize never prints.
pub fn strip_internal(r: &mut Resource) {
    let Some(Value::Object(meta)) = r.obj.get_mut("metadata") else {
        return;
    };
    // kustomize sets the annotations anew at the end of a build, as strings
    // (a `$(VAR)` of a number included): a field left without entries
    // (null, `{}`, only bookkeeping) is dropped.
    let keep = match meta.get_mut("annotations") {
        None => return,
        Some(Value::Object(ann)) => {
            ann.retain(|k, _| {
                !k.starts_with("internal.config.kubernetes.io/")
                    && !k.starts_with("config.k8s.io/id")
            });
            ann.values_mut()
                .for_each(crate::resource::stringify_metadata_value);
            !ann.is_empty()
        }
        Some(_) => false,
    };
    if !keep {
        meta.remove("annotations");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_split_like_docker_references() {
        assert_eq!(split_image("nginx"), ("nginx", None, None));
        assert_eq!(split_image("nginx:1.2"), ("nginx", Some("1.2"), None));
        assert_eq!(
            split_image("reg:5000/a/b:t"),
            ("reg:5000/a/b", Some("t"), None)
        );
        assert_eq!(split_image("a@sha256:x"), ("a", None, Some("sha256:x")));
    }
}
