//! Chart dependencies: the `dependencies` of a chart's `Chart.yaml` taken
//! from their repositories into its `charts/` directory, as
//! `helm dependency build` does, for charts kept in Git without them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::{ChartRepository, HelmRepoError, HelmRepoSpec};

/// How old a dependency repository's index may be before a render polls it
/// again (one conditional request): a GitSource's default interval.
const INDEX_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// Charts' dependencies that cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum DependencyError {
    /// `Chart.yaml` is unreadable or not a chart's.
    #[error("{path}: {detail}")]
    ChartFile {
        /// The `Chart.yaml`.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A dependency names a repository this version cannot use.
    #[error("{path}: dependency {name}: repository `{repository}`: {reason}")]
    Repository {
        /// The `Chart.yaml`.
        path: PathBuf,
        /// The dependency.
        name: String,
        /// Its repository as written.
        repository: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The repository could not give the dependency.
    #[error("{path}: dependency {name}: {source}")]
    Fetch {
        /// The `Chart.yaml`.
        path: PathBuf,
        /// The dependency.
        name: String,
        /// The cause.
        source: Box<HelmRepoError>,
    },
    /// The chart could not be copied to add its dependencies.
    #[error("copying chart {path}: {source}")]
    Copy {
        /// The chart directory.
        path: PathBuf,
        /// The cause.
        source: Box<crate::Error>,
    },
}

/// One entry of `Chart.yaml`'s `dependencies`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    /// The chart's name.
    pub name: String,
    /// Its version constraint.
    pub version: String,
    /// Its repository URL (empty for a chart kept in `charts/`).
    pub repository: String,
}

/// Most repositories kept in memory with their indexes: past it, those
/// known are dropped and made again when next used (their archives stay
/// cached on disk), so that charts naming ever new URLs cannot grow the
/// engine without end.
const MAX_KNOWN: usize = 64;

/// The chart repositories known by URL (with their credentials), and
/// anonymous ones made for dependencies on other URLs; all share one cache.
#[derive(Debug)]
pub struct ChartRepositories {
    cache_dir: PathBuf,
    known: Mutex<HashMap<String, Arc<ChartRepository>>>,
}

impl ChartRepositories {
    /// Repositories cached under `cache_dir`.
    pub fn new(cache_dir: &Path) -> ChartRepositories {
        ChartRepositories {
            cache_dir: cache_dir.to_path_buf(),
            known: Mutex::default(),
        }
    }

    /// The repository of `spec`: the one already known when its spec is the
    /// same (keeping its last good index), else a new one replacing it.
    pub fn add(&self, spec: HelmRepoSpec) -> Arc<ChartRepository> {
        let mut known = crate::lock(&self.known);
        let key = spec.url.clone();
        if let Some(repo) = known.get(&key).filter(|r| r.spec == spec) {
            return repo.clone();
        }
        let repo = Arc::new(ChartRepository::new(&self.cache_dir, spec));
        if known.len() >= MAX_KNOWN {
            known.clear();
        }
        known.insert(key, repo.clone());
        repo
    }

    /// The repository at `url` (HTTP(S) or `oci://`): a known one, else an
    /// anonymous one.
    pub fn for_url(&self, url: &str) -> Result<Arc<ChartRepository>, HelmRepoError> {
        let spec = HelmRepoSpec::new(url)?;
        if let Some(repo) = crate::lock(&self.known).get(&spec.url) {
            return Ok(repo.clone());
        }
        Ok(self.add(spec))
    }

    /// A copy of `chart_dir` in `scratch` with the archives of its
    /// dependencies added to `charts/`, or `None` when `charts/` already has
    /// every one (or there are none).
    pub fn with_dependencies(
        &self,
        chart_dir: &Path,
        scratch: &Path,
    ) -> Result<Option<PathBuf>, DependencyError> {
        let chart_file = chart_dir.join("Chart.yaml");
        let missing: Vec<Dependency> = dependencies(&chart_file)?
            .into_iter()
            .filter(|d| !d.repository.is_empty() && !d.repository.starts_with("file://"))
            .filter(|d| !vendored(&chart_dir.join("charts"), &d.name))
            .collect();
        if missing.is_empty() {
            return Ok(None);
        }
        let mut archives = Vec::new();
        for dep in &missing {
            archives.push(self.archive_of(&chart_file, dep)?);
        }
        let name = chart_dir
            .file_name()
            .map_or_else(|| "chart".into(), |n| n.to_os_string());
        let copy = scratch.join(name);
        let copied = |source| DependencyError::Copy {
            path: chart_dir.to_path_buf(),
            source: Box::new(source),
        };
        crate::copy_tree(chart_dir, &copy).map_err(copied)?;
        for (dep, archive) in missing.iter().zip(archives) {
            let to = copy
                .join("charts")
                .join(format!("{}-{}.tgz", dep.name, archive.0));
            let io = |source| crate::Error::Output {
                path: to.clone(),
                source,
            };
            std::fs::create_dir_all(copy.join("charts")).map_err(|e| copied(io(e)))?;
            std::fs::copy(&archive.1, &to).map_err(|e| copied(io(e)))?;
        }
        Ok(Some(copy))
    }

    /// The version chosen for `dep` and its verified archive, from an index
    /// polled at most [`INDEX_MAX_AGE`] ago when the repository answers.
    fn archive_of(
        &self,
        chart_file: &Path,
        dep: &Dependency,
    ) -> Result<(String, PathBuf), DependencyError> {
        let refused = |reason: &str| DependencyError::Repository {
            path: chart_file.to_path_buf(),
            name: dep.name.clone(),
            repository: dep.repository.clone(),
            reason: reason.to_string(),
        };
        if dep.repository.starts_with('@') || !dep.repository.contains("://") {
            return Err(refused(
                "repositories are named by URL here, not by a `helm repo add` name",
            ));
        }
        let failed = |e: HelmRepoError| DependencyError::Fetch {
            path: chart_file.to_path_buf(),
            name: dep.name.clone(),
            source: Box::new(e),
        };
        let repo = self.for_url(&dep.repository).map_err(failed)?;
        let polled = repo.refresh_if_older(INDEX_MAX_AGE);
        // A repository that is down leaves its last good index in use.
        if repo.index().is_none() {
            polled.map_err(failed)?;
        }
        let chosen = repo.resolve(&dep.name, &dep.version).map_err(failed)?;
        let archive = repo.chart(&chosen).map_err(failed)?;
        Ok((chosen.version, archive))
    }
}

/// The `dependencies` of the chart whose `Chart.yaml` is `path`.
pub fn dependencies(path: &Path) -> Result<Vec<Dependency>, DependencyError> {
    let bad = |detail: String| DependencyError::ChartFile {
        path: path.to_path_buf(),
        detail,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let docs = driftless_yaml::parse_documents(&text, &path.display().to_string())
        .map_err(|e| bad(e.to_string()))?;
    let Some(Value::Array(list)) = docs.first().and_then(|d| d.get("dependencies")) else {
        return Ok(Vec::new());
    };
    let field = |entry: &Value, key: &str| match entry.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    list.iter()
        .enumerate()
        .map(|(i, entry)| {
            let name = field(entry, "name");
            if name.is_empty() {
                return Err(bad(format!("dependencies[{i}] has no name")));
            }
            Ok(Dependency {
                name,
                version: field(entry, "version"),
                repository: field(entry, "repository"),
            })
        })
        .collect()
}

/// Whether `charts` holds chart `name`, as a directory or an archive.
fn vendored(charts: &Path, name: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(charts) else {
        return false;
    };
    entries.flatten().any(|e| {
        let file = e.file_name().to_string_lossy().into_owned();
        file == name
            || file.strip_prefix(&format!("{name}-")).is_some_and(|rest| {
                rest.ends_with(".tgz") && rest.starts_with(|c: char| c.is_ascii_digit() || c == 'v')
            })
    })
}
