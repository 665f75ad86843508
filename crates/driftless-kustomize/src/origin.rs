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

fn configured_block(
    root: &Path,
    configured_in: &Path,
    kind: &str,
    name: Option<&str>,
    indent: &str,
) -> String {
    let mut s = format!(
        "configuredIn: {}\n{indent}configuredBy:\n{indent}  apiVersion: builtin\n{indent}  kind: {kind}\n",
        relative(root, configured_in)
    );
    if let Some(n) = name {
        s.push_str(&format!("{indent}  name: {n}\n"));
    }
    s
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
                Some(Origin::Generated {
                    configured_in,
                    kind,
                    name,
                }) => add.push((
                    "config.kubernetes.io/origin",
                    configured_block(root, configured_in, kind, name.as_deref(), ""),
                )),
                None => {}
            }
        }
        if transformations && !r.transformations.is_empty() {
            let text: String = r
                .transformations
                .iter()
                .map(|(file, kind)| format!("- {}", configured_block(root, file, kind, None, "  ")))
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

/// Records that the transformer `kind` configured in `file` ran over `res`.
pub fn record(res: &mut [Resource], file: &Path, kind: &str) {
    for r in res.iter_mut() {
        r.transformations
            .push((file.to_path_buf(), kind.to_string()));
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
