//! Integration tests: one binary, small helpers for scratch repositories.

mod cache;
mod chart_locks;
mod decrypt;
mod helm;
mod helm_limits;
mod jq_worker;
#[cfg(feature = "jsonnet")]
mod jsonnet;
#[cfg(feature = "jsonnet")]
mod limits;
mod pipeline;
mod plain;
mod reads;
mod remote;
mod repo_charts;
mod sops_generators;

use std::path::{Path, PathBuf};

/// A scratch repository root that is removed at the end of the test.
pub struct Repo {
    dir: tempfile::TempDir,
}

impl Default for Repo {
    fn default() -> Repo {
        Repo {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
}

impl Repo {
    pub fn new() -> Repo {
        Repo::default()
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `text` to `rel`, creating parent directories.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write file");
        path
    }

    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(&path).expect("mkdir");
        path
    }

    /// Options restricted to this repository.
    pub fn opts(&self) -> driftless_render::RenderOptions {
        driftless_render::RenderOptions::new(self.root())
    }
}

pub use driftless_testenv::manifests::config_map;

/// Names of the objects in order.
pub fn names(set: &driftless_render::ObjectSet) -> Vec<String> {
    set.ids().iter().map(|id| id.name.clone()).collect()
}
