//! A chart's lock file (`Chart.lock`, or `requirements.lock`), as
//! `helm dependency build` reads it: the exact version of each dependency,
//! usable only while its `digest` is the one Helm computes from the
//! dependencies of `Chart.yaml` and those of the lock.
//!
//! Helm's digest is `sha256:` and the hex SHA-256 of the JSON of
//! `[dependencies, locked]` as Go's `encoding/json` writes its `Dependency`
//! struct (fields in order, empty ones left out, `<`, `>` and `&` escaped);
//! an apiVersion v1 chart's lock may instead carry Helm 2's digest, of
//! `{"dependencies": dependencies}`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::dependencies::{ChartFile, Dependency, DependencyError};

/// A lock file read from a chart directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lock {
    /// The file read.
    pub path: PathBuf,
    /// Its `digest`.
    pub digest: String,
    /// Its `dependencies` (`None` when absent or null).
    pub dependencies: Option<Vec<Dependency>>,
}

/// The lock file of the chart in `chart_dir`, if it has one: as Helm's
/// loader reads files in lexical order, `requirements.lock` wins over
/// `Chart.lock` when both are there.
pub fn read_lock(chart_dir: &Path) -> Result<Option<Lock>, DependencyError> {
    for name in ["requirements.lock", "Chart.lock"] {
        let path = chart_dir.join(name);
        if !path.is_file() {
            continue;
        }
        let bad = |detail: String| DependencyError::ChartFile {
            path: path.clone(),
            detail,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
        let docs = driftless_yaml::parse_documents(&text, &path.display().to_string())
            .map_err(|e| bad(e.to_string()))?;
        let doc = docs.into_iter().next().unwrap_or(Value::Null);
        let digest = match doc.get("digest") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => String::new(),
            Some(_) => return Err(bad("`digest` is not a string".into())),
        };
        let dependencies = super::dependencies::dependency_list(&doc, &path)?;
        return Ok(Some(Lock {
            path,
            digest,
            dependencies,
        }));
    }
    Ok(None)
}

/// Checks that `lock` was made from the dependencies of `chart`, as
/// `helm dependency build` does before using it.
pub fn check_lock(chart: &ChartFile, lock: &Lock) -> Result<(), DependencyError> {
    let current = hash_req(chart.dependencies.as_deref(), lock.dependencies.as_deref());
    if current == lock.digest {
        return Ok(());
    }
    let v1 = chart.api_version == "v1";
    if v1 && hash_v2_req(chart.dependencies.as_deref()) == lock.digest {
        return Ok(());
    }
    let (lock_name, deps_name) = if v1 {
        ("requirements.lock", "requirements.yaml")
    } else {
        ("Chart.lock", "Chart.yaml")
    };
    Err(DependencyError::LockOutOfSync {
        path: lock.path.clone(),
        chart: chart.name.clone(),
        lock_name,
        deps_name,
    })
}

/// Helm 3's digest of a chart's dependencies and their locked versions.
pub fn hash_req(req: Option<&[Dependency]>, locked: Option<&[Dependency]>) -> String {
    let mut json = String::from("[");
    write_list(&mut json, req);
    json.push(',');
    write_list(&mut json, locked);
    json.push(']');
    digest(&json)
}

/// Helm 2's digest of a chart's dependencies, still accepted for
/// apiVersion v1 charts.
pub fn hash_v2_req(req: Option<&[Dependency]>) -> String {
    let mut json = String::from("{\"dependencies\":");
    write_list(&mut json, req);
    json.push('}');
    digest(&json)
}

fn digest(json: &str) -> String {
    let sum = Sha256::digest(json.as_bytes());
    let mut out = String::from("sha256:");
    for b in sum {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A Go slice of `*Dependency`: `null` when nil.
fn write_list(out: &mut String, deps: Option<&[Dependency]>) {
    let Some(deps) = deps else {
        out.push_str("null");
        return;
    };
    out.push('[');
    for (i, dep) in deps.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_dependency(out, dep);
    }
    out.push(']');
}

/// One `Dependency` as Go writes it: its JSON tags in field order,
/// `omitempty` ones left out when empty (`repository` and `name` never).
fn write_dependency(out: &mut String, dep: &Dependency) {
    out.push_str("{\"name\":");
    write_string(out, &dep.name);
    if !dep.version.is_empty() {
        out.push_str(",\"version\":");
        write_string(out, &dep.version);
    }
    out.push_str(",\"repository\":");
    write_string(out, &dep.repository);
    if !dep.condition.is_empty() {
        out.push_str(",\"condition\":");
        write_string(out, &dep.condition);
    }
    if !dep.tags.is_empty() {
        out.push_str(",\"tags\":[");
        for (i, tag) in dep.tags.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_string(out, tag);
        }
        out.push(']');
    }
    if dep.enabled {
        out.push_str(",\"enabled\":true");
    }
    if !dep.import_values.is_empty() {
        out.push_str(",\"import-values\":");
        write_value(out, &Value::Array(dep.import_values.clone()));
    }
    if !dep.alias.is_empty() {
        out.push_str(",\"alias\":");
        write_string(out, &dep.alias);
    }
    out.push('}');
}

/// Any value as Go writes an `interface{}` decoded from YAML: mapping keys
/// sorted, numbers as `float64`.
fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, &map[key]);
            }
            out.push('}');
        }
    }
}

/// A number as Go writes a `float64`: integral values without a fraction,
/// exponents from 1e21.
fn write_number(out: &mut String, n: &serde_json::Number) {
    if n.is_i64() || n.is_u64() {
        let _ = write!(out, "{n}");
        return;
    }
    let f = n.as_f64().unwrap_or_default();
    if f.fract() == 0.0 && f.abs() < 1e21 {
        let _ = write!(out, "{f:.0}");
    } else {
        let _ = write!(out, "{f}");
    }
}

/// A string as Go's `encoding/json` escapes it (HTML-safe).
fn write_string(out: &mut String, s: &str) {
    driftless_yaml::write_go_json_string(s, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(name: &str, version: &str, repository: &str) -> Dependency {
        Dependency {
            name: name.into(),
            version: version.into(),
            repository: repository.into(),
            ..Dependency::default()
        }
    }

    #[test]
    fn strings_are_escaped_as_go_escapes_them() {
        let mut out = String::new();
        write_string(&mut out, ">=1.0.0 <2.0.0 & \"x\"\\\u{1}");
        assert_eq!(out, r#""\u003e=1.0.0 \u003c2.0.0 \u0026 \"x\"\\\u0001""#);
    }

    #[test]
    fn empty_fields_are_left_out_and_nil_lists_are_null() {
        let mut out = String::new();
        let mut d = dep("web", "", "");
        d.tags = vec!["front".into()];
        d.enabled = true;
        d.import_values = vec![serde_json::json!({"b": 1, "a": 2.5}), "data".into()];
        write_dependency(&mut out, &d);
        assert_eq!(
            out,
            r#"{"name":"web","repository":"","tags":["front"],"enabled":true,"import-values":[{"a":2.5,"b":1},"data"]}"#
        );
        let mut list = String::new();
        write_list(&mut list, None);
        write_list(&mut list, Some(&[]));
        assert_eq!(list, "null[]");
    }

    #[test]
    fn the_digest_covers_both_lists() {
        let req = [dep("web", "^1.0.0", "http://127.0.0.1:1/")];
        let locked = [dep("web", "1.0.0", "http://127.0.0.1:1/")];
        let relocked = [dep("web", "1.1.0", "http://127.0.0.1:1/")];
        let a = hash_req(Some(&req), Some(&locked));
        assert!(a.starts_with("sha256:") && a.len() == 7 + 64, "{a}");
        assert_ne!(a, hash_req(Some(&req), Some(&relocked)));
        assert_ne!(a, hash_req(Some(&req), None));
    }
}
