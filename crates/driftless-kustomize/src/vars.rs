//! Legacy `vars:`: `$(NAME)` in well-known fields becomes a field of another resource.

use serde_json::Value;

use crate::Error;
use crate::fieldspec::var_reference_specs;
use crate::kustomization::Kustomization;
use crate::replacements::parse_field_path;
use crate::resource::Resource;

/// One declared variable.
#[derive(Clone, Debug)]
pub struct Var {
    name: String,
    kind: String,
    object_name: String,
    api_version: String,
    namespace: Option<String>,
    field_path: String,
}

/// Reads `vars:` from a kustomization.
pub fn read(k: &Kustomization) -> Result<Vec<Var>, Error> {
    let mut out = Vec::new();
    for v in k.list("vars")? {
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
        let name = s("/name").ok_or_else(|| k.bad("vars", "entry without name"))?;
        out.push(Var {
            name,
            kind: s("/objref/kind").unwrap_or_default(),
            object_name: s("/objref/name").unwrap_or_default(),
            api_version: s("/objref/apiVersion").unwrap_or_default(),
            namespace: s("/objref/namespace"),
            field_path: s("/fieldref/fieldPath").unwrap_or_else(|| "metadata.name".into()),
        });
    }
    Ok(out)
}

/// Substitutes every `$(VAR)` in the var-reference fields.
pub fn resolve(res: &mut [Resource], vars: &[Var]) -> Result<(), String> {
    if vars.is_empty() {
        return Ok(());
    }
    let mut values = Vec::new();
    for (i, var) in vars.iter().enumerate() {
        if vars[..i].iter().any(|v| v.name == var.name) {
            return Err(format!("var '{}' already encountered", var.name));
        }
        let matches: Vec<&Resource> = res
            .iter()
            .filter(|r| {
                r.all_ids().iter().any(|id| {
                    id.gvk.kind == var.kind
                        && id.name == var.object_name
                        && (var.api_version.is_empty()
                            || format!(
                                "{}{}{}",
                                id.gvk.group,
                                if id.gvk.group.is_empty() { "" } else { "/" },
                                id.gvk.version
                            ) == var.api_version)
                        && var
                            .namespace
                            .as_ref()
                            .is_none_or(|ns| id.effective_namespace() == ns)
                })
            })
            .collect();
        let r = match matches.as_slice() {
            [one] => *one,
            [] => {
                return Err(format!(
                    "var '{}' cannot be mapped to a field in the set of known resources",
                    var.name
                ));
            }
            _ => {
                return Err(format!(
                    "found {} resId matches for var '{}' (unable to disambiguate)",
                    matches.len(),
                    var.name
                ));
            }
        };
        let mut cur = r.as_json();
        for seg in parse_field_path(&var.field_path) {
            let seg = seg
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            cur = match cur {
                Value::Object(m) => m.get(&seg).ok_or(format!(
                    "field path {} not found for var {}",
                    var.field_path, var.name
                ))?,
                Value::Array(a) => {
                    seg.parse::<usize>()
                        .ok()
                        .and_then(|i| a.get(i))
                        .ok_or(format!(
                            "field path {} not found for var {}",
                            var.field_path, var.name
                        ))?
                }
                _ => {
                    return Err(format!(
                        "field path {} not found for var {}",
                        var.field_path, var.name
                    ));
                }
            };
        }
        values.push((var.name.clone(), crate::resource::scalar_text(cur)));
    }
    let specs = var_reference_specs();
    for r in res.iter_mut() {
        let gvk = r.gvk();
        crate::fieldspec::apply_specs(&mut r.obj, &gvk, &specs, &mut |m, key| {
            if let Some(v) = m.get_mut(key) {
                substitute(v, &values);
            }
        });
    }
    Ok(())
}

fn substitute(v: &mut Value, values: &[(String, String)]) {
    match v {
        Value::String(s) => {
            let mut out = s.clone();
            for (name, val) in values {
                out = out.replace(&format!("$({name})"), val);
            }
            *s = out;
        }
        Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, values)),
        Value::Object(m) => m.values_mut().for_each(|x| substitute(x, values)),
        _ => {}
    }
}
