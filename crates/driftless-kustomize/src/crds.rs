//! `crds:` files: OpenAPI definitions (type name to `{Schema: ...}`), read
//! as kustomize reads them. Markers on the properties of a definition that
//! looks like a Kubernetes type add field specs for its kind: name
//! references (`x-kubernetes-object-ref-api-version` with
//! `x-kubernetes-object-ref-kind`, optionally `x-kubernetes-object-ref-name-key`),
//! annotation fields (`x-kubernetes-annotation`), label selector fields
//! (`x-kubernetes-label-selector`) and name-prefixed fields
//! (`x-kubernetes-identity`). Only `$ref`s are followed, not inline schemas.

use std::path::Path;

use serde_json::{Map, Value};

use crate::Error;
use crate::config::TransformerConfig;
use crate::fieldspec::FieldSpec;
use crate::kustomization::json_kind;
use crate::resource::Gvk;

/// How deep `$ref`s are followed (definitions may refer to each other in cycles).
const MAX_REF_DEPTH: usize = 32;

/// Adds the field specs the definitions in `text` (read from `file`, listed
/// as `entry`) declare to `cfg`; a file that is not a map of definitions (a
/// CustomResourceDefinition object, say) is refused as kustomize refuses it.
pub fn read(
    cfg: &mut TransformerConfig,
    file: &Path,
    entry: &str,
    text: &str,
) -> Result<(), Error> {
    let fail = |why: String| {
        Error::invalid(
            file,
            format!(
                "loading CRDs [{entry}]: unable to parse open API definition from '{entry}': {why}"
            ),
        )
    };
    // kustomize reads the first document only.
    let docs = crate::yaml::parse_documents(text, &file.display().to_string())?;
    let defs = match docs.into_iter().next() {
        None if text.trim().is_empty() => return Err(fail("the file is empty".into())),
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(defs)) => defs,
        Some(other) => {
            return Err(fail(format!(
                "cannot unmarshal {} into a map of OpenAPI definitions by type name",
                json_kind(&other)
            )));
        }
    };
    for (name, def) in &defs {
        check_definition(name, def).map_err(&fail)?;
    }
    for name in defs.keys() {
        let is_type = properties(&defs, name).is_some_and(|p| {
            ["kind", "apiVersion", "metadata"]
                .iter()
                .all(|k| p.contains_key(*k))
        });
        if is_type {
            // kustomize takes the kind from the type name, without group or version.
            let kind = name.rsplit('.').next().unwrap_or(name);
            walk(cfg, &defs, kind, name, "", 0);
        }
    }
    Ok(())
}

/// Refuses a definition that is not an object with an object `Schema` whose
/// `properties` are objects (what kustomize's decoder accepts).
fn check_definition(name: &str, def: &Value) -> Result<(), String> {
    let not = |what: &str, v: &Value| {
        format!(
            "cannot unmarshal {} into the OpenAPI definition '{name}'{what} (crds: takes \
             OpenAPI definitions by type name, not CustomResourceDefinition objects)",
            json_kind(v)
        )
    };
    let def = match def {
        Value::Null => return Ok(()),
        Value::Object(def) => def,
        other => return Err(not("", other)),
    };
    let schema = match schema_of(def) {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(schema)) => schema,
        Some(other) => return Err(not(", its Schema", other)),
    };
    match schema.get("properties") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(props)) => match props.iter().find(|(_, p)| !p.is_object()) {
            Some((prop, p)) => Err(not(&format!(", its property '{prop}'"), p)),
            None => Ok(()),
        },
        Some(other) => Err(not(", its properties", other)),
    }
}

/// The `Schema` of a definition (the key matched without case, as Go's JSON
/// decoder matches it).
fn schema_of(def: &Map<String, Value>) -> Option<&Value> {
    def.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("schema"))
        .map(|(_, v)| v)
}

fn properties<'a>(defs: &'a Map<String, Value>, name: &str) -> Option<&'a Map<String, Value>> {
    let def = defs.get(name)?.as_object()?;
    schema_of(def)?.get("properties")?.as_object()
}

/// Adds the specs the properties of definition `name` declare for `kind`,
/// below `path`, following `$ref`s.
fn walk(
    cfg: &mut TransformerConfig,
    defs: &Map<String, Value>,
    kind: &str,
    name: &str,
    path: &str,
    depth: usize,
) {
    let Some(props) = properties(defs, name) else {
        return;
    };
    if depth > MAX_REF_DEPTH {
        return;
    }
    for (prop, schema) in props {
        let field = if path.is_empty() {
            prop.clone()
        } else {
            format!("{path}/{prop}")
        };
        let marker = |key: &str| schema.get(key).and_then(Value::as_str);
        let spec = |p: &str| FieldSpec::new("", "", kind, p, false);
        if marker("x-kubernetes-annotation").is_some() {
            cfg.common_annotations.push(spec(&field));
        }
        if marker("x-kubernetes-label-selector").is_some() {
            cfg.common_labels.push(spec(&field));
        }
        if marker("x-kubernetes-identity").is_some() {
            cfg.name_prefix.push(spec(&field));
        }
        if let (Some(version), Some(target)) = (
            marker("x-kubernetes-object-ref-api-version"),
            marker("x-kubernetes-object-ref-kind"),
        ) {
            let key = marker("x-kubernetes-object-ref-name-key").unwrap_or("name");
            let target = Gvk {
                group: String::new(),
                version: version.to_string(),
                kind: target.to_string(),
            };
            cfg.name_reference
                .push((target, vec![spec(&format!("{field}/{key}"))]));
        }
        if let Some(reference) = marker("$ref") {
            walk(cfg, defs, kind, reference, &field, depth + 1);
        }
    }
}
