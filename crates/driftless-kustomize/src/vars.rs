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
    /// The resource the variable named in its own kustomization, when that
    /// level made it unambiguous.
    bound_to: Option<u64>,
}

impl Var {
    fn refers_to(&self, r: &Resource) -> bool {
        r.all_ids().iter().any(|id| {
            let api_version = if id.gvk.group.is_empty() {
                id.gvk.version.clone()
            } else {
                format!("{}/{}", id.gvk.group, id.gvk.version)
            };
            id.gvk.kind == self.kind
                && id.name == self.object_name
                && (self.api_version.is_empty() || api_version == self.api_version)
                && self
                    .namespace
                    .as_ref()
                    .is_none_or(|ns| id.effective_namespace() == ns)
        })
    }
}

/// Reads `vars:` from a kustomization, binding each to the one resource of
/// `level` it names (kustomize resolves the object reference per level).
pub fn read(k: &Kustomization, level: &[Resource]) -> Result<Vec<Var>, Error> {
    let mut out = Vec::new();
    for v in k.list("vars")? {
        let v = lowercase_keys(&v);
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
        let name = s("/name").ok_or_else(|| k.bad("vars", "entry without name"))?;
        let api_version = s("/objref/apiversion").unwrap_or_else(|| {
            match (s("/objref/group"), s("/objref/version")) {
                (Some(g), Some(v)) if !g.is_empty() => format!("{g}/{v}"),
                (_, Some(v)) => v,
                _ => String::new(),
            }
        });
        out.push(Var {
            name,
            kind: s("/objref/kind").unwrap_or_default(),
            object_name: s("/objref/name").unwrap_or_default(),
            api_version,
            namespace: s("/objref/namespace"),
            field_path: s("/fieldref/fieldpath").unwrap_or_else(|| "metadata.name".into()),
            bound_to: None,
        });
        if let Some(var) = out.last_mut() {
            let found: Vec<&Resource> = level.iter().filter(|r| var.refers_to(r)).collect();
            if let [one] = found.as_slice() {
                var.bound_to = Some(one.serial);
            }
        }
    }
    Ok(out)
}

/// Go's JSON decoding matches field names without regard to case.
fn lowercase_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), lowercase_keys(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Splits `a.b[0].c` into `a`, `b`, `0`, `c`.
fn field_segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for seg in parse_field_path(path) {
        let mut rest = seg.as_str();
        while let Some(open) = rest.find('[') {
            if open > 0 {
                out.push(rest[..open].to_string());
            }
            let close = rest[open..].find(']').map_or(rest.len(), |c| open + c);
            out.push(rest[open + 1..close].to_string());
            rest = rest.get(close + 1..).unwrap_or("");
        }
        if !rest.is_empty() {
            out.push(rest.to_string());
        }
    }
    out
}

/// Substitutes every `$(VAR)` in the var-reference fields.
pub fn resolve(
    res: &mut [Resource],
    vars: &[Var],
    cfg: &crate::config::TransformerConfig,
) -> Result<(), String> {
    if vars.is_empty() {
        return Ok(());
    }
    let mut values = Vec::new();
    for (i, var) in vars.iter().enumerate() {
        if vars[..i].iter().any(|v| v.name == var.name) {
            return Err(format!("var '{}' already encountered", var.name));
        }
        let matches: Vec<&Resource> = match var.bound_to {
            Some(serial) => res.iter().filter(|r| r.serial == serial).collect(),
            None => res.iter().filter(|r| var.refers_to(r)).collect(),
        };
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
        for seg in field_segments(&var.field_path) {
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
        values.push((var.name.clone(), cur.clone()));
    }
    let mut specs = var_reference_specs();
    specs.extend(cfg.var_reference.iter().cloned());
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

fn substitute(v: &mut Value, values: &[(String, Value)]) {
    match v {
        Value::String(s) => {
            // A field that is exactly one reference takes the referenced value's type.
            if let Some((_, val)) = values.iter().find(|(n, _)| *s == format!("$({n})")) {
                *v = val.clone();
                return;
            }
            let mut out = s.clone();
            for (name, val) in values {
                out = out.replace(&format!("$({name})"), &crate::resource::scalar_text(val));
            }
            *s = out;
        }
        Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, values)),
        Value::Object(m) => m.values_mut().for_each(|x| substitute(x, values)),
        _ => {}
    }
}
