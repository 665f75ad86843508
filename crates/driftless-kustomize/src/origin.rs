//! `buildMetadata`: annotations recording where each resource came from and
//! which transformers touched it.

use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value};

use crate::resource::Resource;

/// Where a resource came from.
#[derive(Clone, Debug)]
pub enum Origin {
    /// Read from a file.
    File(PathBuf),
    /// Read from a file of a remote Git base.
    Remote {
        /// The file's path in the repository.
        path: String,
        /// The repository as kustomize names it (the clone URL).
        repo: String,
        /// The ref the URL asked for, if any.
        reference: Option<String>,
    },
    /// Made by a generator configured in a file.
    Generated {
        /// The kustomization or plugin configuration file.
        configured_in: PathBuf,
        /// Generator kind (`ConfigMapGenerator`, `SecretGenerator`).
        kind: String,
        /// Name of the generator configuration, when it has one.
        name: Option<String>,
    },
}

/// The remote Git base a loader reads from, for the origins of its objects.
#[derive(Clone, Debug)]
pub struct RemoteBase {
    /// The clone URL.
    pub repo: String,
    /// The ref the URL asked for, if any.
    pub reference: Option<String>,
    /// The checkout's root (canonical), which paths are relative to.
    pub checkout: PathBuf,
    /// Whether the URL names the repository's root (no `//dir`).
    pub at_root: bool,
}

impl RemoteBase {
    /// The origin of an object read from `file` in the checkout.
    pub fn origin(&self, file: &Path) -> Origin {
        let path = relative(&self.checkout, file);
        Origin::Remote {
            // kustomize v5.5.0 names a base at the repository's root by the
            // directory it stands for before cloning, `notCloned`.
            path: match self.at_root {
                true => format!("notCloned/{path}"),
                false => path,
            },
            repo: self.repo.clone(),
            reference: self.reference.clone(),
        }
    }
}

/// A path from `base_dir` to `target`, using `..` where needed.
pub fn relative(base_dir: &Path, target: &Path) -> String {
    let base: Vec<Component> = base_dir.components().collect();
    let to: Vec<Component> = target.components().collect();
    let common = base.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = Vec::new();
    for _ in common..base.len() {
        parts.push("..".into());
    }
    for c in &to[common..] {
        parts.push(c.as_os_str().to_string_lossy().into_owned());
    }
    parts.join("/")
}

/// A generator or transformer configuration: the file it is configured in
/// and its identity (kustomize's `configuredIn` and `configuredBy`).
#[derive(Clone, Debug)]
pub struct Configured {
    /// The kustomization or plugin configuration file.
    pub file: PathBuf,
    /// `apiVersion` (`builtin` for the kustomization's own fields).
    pub api_version: String,
    /// Kind (`PrefixTransformer`, `ConfigMapGenerator`, ...).
    pub kind: String,
    /// `metadata.name` of a configuration, when it has one.
    pub name: Option<String>,
    /// `metadata.namespace` of a configuration, when it has one.
    pub namespace: Option<String>,
}

impl Configured {
    /// A built-in transformer that a kustomization field configures.
    pub fn builtin(file: &Path, kind: &str) -> Configured {
        Configured {
            file: file.to_path_buf(),
            api_version: "builtin".into(),
            kind: kind.into(),
            name: None,
            namespace: None,
        }
    }

    /// A configuration object read from `file` (`generators:`/`transformers:`).
    pub fn from_config(file: &Path, config: &Value) -> Configured {
        let text = |p: &str| {
            config
                .pointer(p)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Configured {
            file: file.to_path_buf(),
            api_version: text("/apiVersion").unwrap_or_default(),
            kind: text("/kind").unwrap_or_default(),
            name: text("/metadata/name"),
            namespace: text("/metadata/namespace"),
        }
    }

    /// The `configuredIn`/`configuredBy` lines, paths relative to `root`.
    fn block(&self, root: &Path, indent: &str) -> String {
        let mut s = format!(
            "configuredIn: {}\n{indent}configuredBy:\n",
            relative(root, &self.file)
        );
        let fields = [
            (
                "apiVersion",
                Some(&self.api_version).filter(|v| !v.is_empty()),
            ),
            ("kind", Some(&self.kind)),
            ("name", self.name.as_ref()),
            ("namespace", self.namespace.as_ref()),
        ];
        for (key, value) in fields {
            if let Some(v) = value {
                s.push_str(&format!("{indent}  {key}: {v}\n"));
            }
        }
        s
    }
}

/// Adds the annotations `buildMetadata` asks for, with paths relative to `root`.
pub fn annotate(res: &mut [Resource], root: &Path, origins: bool, transformations: bool) {
    for r in res.iter_mut() {
        let mut add: Vec<(&str, String)> = Vec::new();
        if origins {
            match &r.origin {
                Some(Origin::File(p)) => add.push((
                    "config.kubernetes.io/origin",
                    format!("path: {}\n", relative(root, p)),
                )),
                // kustomize's fields for a remote object: no `ref` without one.
                Some(Origin::Remote {
                    path,
                    repo,
                    reference,
                }) => {
                    let mut text = format!("path: {path}\nrepo: {repo}\n");
                    if let Some(r) = reference {
                        text.push_str(&format!("ref: {r}\n"));
                    }
                    add.push(("config.kubernetes.io/origin", text));
                }
                Some(Origin::Generated {
                    configured_in,
                    kind,
                    name,
                }) => {
                    let by = Configured {
                        name: name.clone(),
                        ..Configured::builtin(configured_in, kind)
                    };
                    add.push(("config.kubernetes.io/origin", by.block(root, "")));
                }
                None => {}
            }
        }
        if transformations && !r.transformations.is_empty() {
            let text: String = r
                .transformations
                .iter()
                .map(|by| format!("- {}", by.block(root, "  ")))
                .collect();
            add.push(("alpha.config.kubernetes.io/transformations", text));
        }
        if add.is_empty() {
            continue;
        }
        let meta = r.metadata_mut();
        let ann = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = ann {
            for (k, v) in add {
                m.insert(k.to_string(), Value::String(v));
            }
        }
    }
}

/// Records that the transformer `by` ran over `res` (kustomize records every
/// configured transformer on every resource present, touched or not).
pub fn record(res: &mut [Resource], by: Configured) {
    let by = std::sync::Arc::new(by);
    for r in res.iter_mut() {
        r.transformations.push(by.clone());
    }
}

/// Records `count` runs of the built-in transformer `kind` configured in `file`.
pub fn record_builtin(res: &mut [Resource], file: &Path, kind: &str, count: usize) {
    for _ in 0..count {
        record(res, Configured::builtin(file, kind));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_with_dotdot() {
        assert_eq!(
            relative(Path::new("/a/overlay"), Path::new("/a/base/k.yaml")),
            "../base/k.yaml"
        );
        assert_eq!(relative(Path::new("/a"), Path::new("/a/s.yaml")), "s.yaml");
    }
}
