//! Shared helpers for the fuzz targets: a scratch kustomization directory
//! per input, so targets exercise `build` exactly as the CLI does.

use std::path::{Path, PathBuf};

/// A per-process scratch directory, emptied before each input so files
/// from a previous input never leak into the next build.
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// Creates (or reuses) the scratch directory named after `target`.
    pub fn new(target: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("driftless-fuzz-{target}-{}", std::process::id()));
        Scratch { dir }
    }

    /// Empties the directory and writes `files` (name, contents) into it.
    pub fn write(&self, files: &[(&str, &[u8])]) -> &Path {
        // A failed removal only means the directory did not exist yet.
        let _ = std::fs::remove_dir_all(&self.dir);
        std::fs::create_dir_all(&self.dir).expect("scratch directory is writable");
        for (name, contents) in files {
            std::fs::write(self.dir.join(name), contents).expect("scratch file is writable");
        }
        &self.dir
    }
}

/// Splits `data` at the first `sep` byte sequences into at most `n` parts.
pub fn split(data: &[u8], sep: &[u8], n: usize) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    let mut rest = data;
    while parts.len() + 1 < n {
        match rest.windows(sep.len()).position(|w| w == sep) {
            Some(at) => {
                parts.push(rest[..at].to_vec());
                rest = &rest[at + sep.len()..];
            }
            None => break,
        }
    }
    parts.push(rest.to_vec());
    parts
}
