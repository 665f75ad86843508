//! File access for one kustomization root, enforcing the load restrictor.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::resource::Resource;
use crate::{Error, LoadRestrictor, yaml};

/// Reads files relative to a kustomization root.
#[derive(Clone, Debug)]
pub struct Loader {
    /// The kustomization directory (canonical).
    pub root: PathBuf,
    /// The restrictor in force.
    pub restrictor: LoadRestrictor,
}

impl Loader {
    /// A loader rooted at `root`.
    pub fn new(root: &Path, restrictor: LoadRestrictor) -> Result<Loader, Error> {
        let root = root.canonicalize().map_err(|source| Error::Io {
            path: root.to_path_buf(),
            source,
        })?;
        Ok(Loader { root, restrictor })
    }

    /// Resolves `rel` against the root, refusing escapes under the restrictor.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, Error> {
        let joined = self.root.join(rel);
        let real = joined.canonicalize().map_err(|source| Error::Io {
            path: joined.clone(),
            source,
        })?;
        if self.restrictor == LoadRestrictor::RootOnly
            && real.is_file()
            && !real.starts_with(&self.root)
        {
            return Err(Error::Restricted {
                path: real,
                root: self.root.clone(),
            });
        }
        Ok(real)
    }

    /// Reads a file below the root as text.
    pub fn read(&self, rel: &str) -> Result<(PathBuf, String), Error> {
        let path = self.resolve(rel)?;
        let meta = std::fs::metadata(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        if meta.len() > yaml::MAX_INPUT_BYTES as u64 {
            return Err(Error::invalid(&path, "file too large"));
        }
        let bytes = std::fs::read(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::invalid(&path, "file is not valid UTF-8"))?;
        Ok((path, text))
    }
}

/// Parses resource documents, expanding `List` kinds into their items.
pub fn parse_resources(text: &str, origin: &Path) -> Result<Vec<Resource>, Error> {
    let docs = yaml::parse_documents(text, &origin.display().to_string())?;
    let mut out = Vec::new();
    for doc in docs {
        expand(doc, origin, &mut out)?;
    }
    Ok(out)
}

fn expand(doc: Value, origin: &Path, out: &mut Vec<Resource>) -> Result<(), Error> {
    let Value::Object(map) = doc else {
        return Err(Error::invalid(origin, "resource document is not a mapping"));
    };
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind.ends_with("List") && map.contains_key("items") {
        if let Some(Value::Array(items)) = map.get("items") {
            for item in items.clone() {
                expand(item, origin, out)?;
            }
        }
        return Ok(());
    }
    if kind.is_empty() {
        return Err(Error::invalid(origin, "missing kind in resource"));
    }
    let mut obj = Value::Object(map);
    stringify_metadata_maps(&mut obj);
    out.push(Resource::new(obj));
    Ok(())
}

/// Label and annotation values are strings in Kubernetes; kustomize reads
/// `happy: true` as `"true"`.
fn stringify_metadata_maps(obj: &mut Value) {
    for field in ["labels", "annotations"] {
        if let Some(Value::Object(m)) = obj.pointer_mut(&format!("/metadata/{field}")) {
            for v in m.values_mut() {
                if !v.is_string() {
                    let text = match &*v {
                        Value::Null => "null".to_string(),
                        other => crate::resource::scalar_text(other),
                    };
                    *v = Value::String(text);
                }
            }
        }
    }
}
