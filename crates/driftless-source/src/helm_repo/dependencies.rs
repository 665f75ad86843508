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
    /// The lock file was not made from the chart's current dependencies.
    #[error(
        "{path}: chart {chart}: the lock file ({lock_name}) is out of sync with the dependencies file ({deps_name}); run `helm dependency update`"
    )]
    LockOutOfSync {
        /// The lock file.
        path: PathBuf,
        /// The chart's name.
        chart: String,
        /// `Chart.lock`, or `requirements.lock` for an apiVersion v1 chart.
        lock_name: &'static str,
        /// `Chart.yaml`, or `requirements.yaml` for an apiVersion v1 chart.
        deps_name: &'static str,
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

/// One entry of `Chart.yaml`'s `dependencies` (or of a lock file's), with
/// the fields Helm's digest of a lock covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dependency {
    /// The chart's name.
    pub name: String,
    /// Its version constraint (an exact version in a lock file).
    pub version: String,
    /// Its repository URL (empty for a chart kept in `charts/`).
    pub repository: String,
    /// `condition`
    pub condition: String,
    /// `tags`
    pub tags: Vec<String>,
    /// `enabled`
    pub enabled: bool,
    /// `import-values`
    pub import_values: Vec<Value>,
    /// `alias`
    pub alias: String,
}

impl Dependency {
    /// Whether `helm dependency build` downloads it from a repository
    /// (neither kept in `charts/` nor a `file://` directory).
    fn fetched(&self) -> bool {
        !self.repository.is_empty() && !self.repository.starts_with("file://")
    }
}

/// What of a chart's `Chart.yaml` (and `requirements.yaml`) the
/// dependencies need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChartFile {
    /// `name`
    pub name: String,
    /// `apiVersion`; `v1` when absent, as Helm assumes.
    pub api_version: String,
    /// `dependencies` (`None` when absent or null, as Go's nil slice).
    pub dependencies: Option<Vec<Dependency>>,
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
    /// A `helm registry login` credentials file for `oci://` URLs no
    /// known repository covers (the command line's, never a server's).
    registry_logins: Option<PathBuf>,
}

impl ChartRepositories {
    /// Repositories cached under `cache_dir`.
    pub fn new(cache_dir: &Path) -> ChartRepositories {
        ChartRepositories {
            cache_dir: cache_dir.to_path_buf(),
            known: Mutex::default(),
            registry_logins: None,
        }
    }

    /// These repositories, taking the credentials of `oci://` registries
    /// that no known repository covers from `file`, as `helm registry
    /// login` wrote it (see [`super::helm_registry_config`]).
    pub fn with_registry_logins(mut self, file: PathBuf) -> ChartRepositories {
        self.registry_logins = Some(file);
        self
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

    /// The repository at `url` (HTTP(S) or `oci://`): a known one, else one
    /// with the registry login for its host when there is one, else an
    /// anonymous one.
    pub fn for_url(&self, url: &str) -> Result<Arc<ChartRepository>, HelmRepoError> {
        let mut spec = HelmRepoSpec::new(url)?;
        if let Some(repo) = crate::lock(&self.known).get(&spec.url) {
            return Ok(repo.clone());
        }
        if let (Some(file), Some(host)) = (&self.registry_logins, spec.oci_host())
            && let Some(auth) = super::registry_login(file, host)?
        {
            spec.auth = auth;
        }
        Ok(self.add(spec))
    }

    /// A copy of `chart_dir` in `scratch` with the archives of its
    /// dependencies added to `charts/`, or `None` when `charts/` already has
    /// every one (or there are none). With a lock file, the versions are the
    /// ones it locks, once its digest shows it was made from `Chart.yaml`.
    pub fn with_dependencies(
        &self,
        chart_dir: &Path,
        scratch: &Path,
    ) -> Result<Option<PathBuf>, DependencyError> {
        let charts = chart_dir.join("charts");
        let missing = |deps: Option<Vec<Dependency>>| -> Vec<Dependency> {
            deps.unwrap_or_default()
                .into_iter()
                .filter(|d| d.fetched() && !vendored(&charts, &d.name))
                .collect()
        };
        let chart = read_chart(chart_dir)?;
        let mut wanted = missing(chart.dependencies.clone());
        if wanted.is_empty() {
            return Ok(None);
        }
        let mut listed_in = chart_dir.join("Chart.yaml");
        if let Some(lock) = super::lock::read_lock(chart_dir)? {
            super::lock::check_lock(&chart, &lock)?;
            wanted = missing(lock.dependencies);
            listed_in = lock.path;
        }
        let mut archives = Vec::new();
        for dep in &wanted {
            archives.push(self.archive_of(&listed_in, dep)?);
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
        for (dep, archive) in wanted.iter().zip(archives) {
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

/// The `Chart.yaml` of the chart in `chart_dir`, its `dependencies`
/// replaced by those of `requirements.yaml` when that file sets them, as
/// Helm's loader reads an apiVersion v1 chart (and any other).
pub fn read_chart(chart_dir: &Path) -> Result<ChartFile, DependencyError> {
    let path = chart_dir.join("Chart.yaml");
    let doc = read_yaml(&path)?;
    let text = |key: &str| match doc.get(key) {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let mut chart = ChartFile {
        name: text("name"),
        api_version: Some(text("apiVersion"))
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "v1".into()),
        dependencies: dependency_list(&doc, &path)?,
    };
    let requirements = chart_dir.join("requirements.yaml");
    if requirements.is_file() {
        let doc = read_yaml(&requirements)?;
        if doc.get("dependencies").is_some() {
            chart.dependencies = dependency_list(&doc, &requirements)?;
        }
    }
    Ok(chart)
}

/// The first document of the YAML file `path` (null when empty).
fn read_yaml(path: &Path) -> Result<Value, DependencyError> {
    let bad = |detail: String| DependencyError::ChartFile {
        path: path.to_path_buf(),
        detail,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let docs = driftless_yaml::parse_documents(&text, &path.display().to_string())
        .map_err(|e| bad(e.to_string()))?;
    Ok(docs.into_iter().next().unwrap_or(Value::Null))
}

/// The `dependencies` of `doc`, read from `path`: `None` when absent or
/// null. Strings are cleaned as Helm's validation cleans them.
pub(super) fn dependency_list(
    doc: &Value,
    path: &Path,
) -> Result<Option<Vec<Dependency>>, DependencyError> {
    let bad = |detail: String| DependencyError::ChartFile {
        path: path.to_path_buf(),
        detail,
    };
    let list = match doc.get("dependencies") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(bad("`dependencies` is not a list".into())),
    };
    let field = |entry: &Value, key: &str| match entry.get(key) {
        Some(Value::String(s)) => sanitize(s),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    };
    list.iter()
        .enumerate()
        .map(|(i, entry)| {
            let name = field(entry, "name");
            if name.is_empty() {
                return Err(bad(format!("dependencies[{i}] has no name")));
            }
            let tags = match entry.get("tags") {
                Some(Value::Array(tags)) => tags
                    .iter()
                    .map(|t| t.as_str().map(sanitize).unwrap_or_else(|| t.to_string()))
                    .collect(),
                _ => Vec::new(),
            };
            let import_values = match entry.get("import-values") {
                Some(Value::Array(values)) => values.clone(),
                _ => Vec::new(),
            };
            Ok(Dependency {
                version: field(entry, "version"),
                repository: field(entry, "repository"),
                condition: field(entry, "condition"),
                tags,
                enabled: entry.get("enabled") == Some(&Value::Bool(true)),
                import_values,
                alias: field(entry, "alias"),
                name,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// A string as Helm's validation leaves it: white space made a plain
/// space, characters that do not print dropped.
fn sanitize(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            if c.is_whitespace() {
                Some(' ')
            } else if c.is_control() || is_format(c) {
                None
            } else {
                Some(c)
            }
        })
        .collect()
}

/// Invisible format characters, which Go does not count as printable.
fn is_format(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
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
