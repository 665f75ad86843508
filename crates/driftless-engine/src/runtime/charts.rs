//! HelmRepositories: a poll job per repository, which triggers the Apps
//! that take a chart from it when its index changes, and the chart an App
//! renders: the highest version its constraint allows (or the version a
//! rollback pinned), downloaded once and verified by digest.

use std::path::PathBuf;
use std::sync::Arc;

use driftless_api::history::ChartRevision;
use driftless_api::status::HelmRepositoryStatus;
use driftless_api::{App, HelmChart, HelmRepository, Time, ValuesKind};
use driftless_source::auth::redact_url;
use driftless_source::{
    ChartRepositories, ChartRepository, HelmRepoError, HelmRepoSpec, IndexChange,
};

use super::clusters::{ClusterError, config_map, secret};
use super::sources::secret_namespace;
use super::{Inner, lock};
use crate::queue::{Job, Outcome};
use crate::store::Named;
use crate::timing::now_ms;

/// Queue keys of HelmRepositories start with this; App names cannot contain `:`.
pub(crate) const HELM_REPO_PREFIX: &str = "helmrepo:";

/// The queue key of HelmRepository `name`.
pub(crate) fn helm_repo_key(name: &str) -> String {
    format!("{HELM_REPO_PREFIX}{name}")
}

/// What the engine knows of one HelmRepository.
#[derive(Default)]
pub(crate) struct RepoState {
    /// The repository as last built from its spec and Secret.
    repo: Option<Arc<ChartRepository>>,
    /// When the last poll ended.
    polled: crate::timing::UnixMillis,
    /// Why it failed; `None` after a success.
    error: Option<String>,
    /// Digest of the index in use.
    revision: Option<String>,
}

/// Why an App's chart could not be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChartError {
    /// The App names a HelmRepository the config lacks.
    #[error("spec.render.helm.chart.repository: HelmRepository {0} is not declared")]
    NotDeclared(String),
    /// Its Secret or CA file could not be read.
    #[error("HelmRepository {name}: {message}")]
    Settings {
        /// The HelmRepository.
        name: String,
        /// What failed.
        message: String,
    },
    /// The repository refused or failed (no matching version, digest, down).
    #[error("HelmRepository {name}: {source}")]
    Repository {
        /// The HelmRepository.
        name: String,
        /// The cause.
        source: HelmRepoError,
    },
    /// The work ended without a result.
    #[error("HelmRepository {0}: the download task failed")]
    Task(String),
    /// It took longer than the repository's timeout.
    #[error("HelmRepository {name}: no answer within {timeout}")]
    Timeout {
        /// The HelmRepository.
        name: String,
        /// Its timeout.
        timeout: driftless_api::Duration,
    },
    /// A Secret or ConfigMap of `valuesFrom` could not be used.
    #[error("spec.render.helm.valuesFrom[{index}]: {message}")]
    Values {
        /// Its index in the list.
        index: usize,
        /// What is wrong, naming the object and key.
        message: String,
    },
}

/// A chart ready to render: where its verified archive is and what it is.
pub(crate) struct ResolvedChart {
    pub(crate) revision: ChartRevision,
    pub(crate) archive: PathBuf,
}

/// The chart `app` takes from a repository, if any.
pub(crate) fn app_chart(app: &App) -> Option<&HelmChart> {
    app.spec.render.helm.as_ref().and_then(|h| h.chart.as_ref())
}

impl Inner {
    /// Runs a HelmRepository job: polls its index (one conditional request)
    /// and triggers its Apps when the index changed.
    pub(crate) async fn helm_repo_job(self: &Arc<Self>, job: &Job, name: &str) -> Outcome {
        let config = self.config();
        let Some(source) = config.helm_repository(name).cloned() else {
            return Outcome::Succeeded;
        };
        let polled = match self.chart_repository(&source).await {
            Ok(repo) => {
                let timeout = source.spec.timeout;
                self.blocking(name, timeout, move || repo.refresh()).await
            }
            Err(e) => Err(e),
        };
        let changed = {
            let mut repos = lock(&self.helm_repos);
            let state = repos.entry(name.to_owned()).or_default();
            state.polled = now_ms();
            match polled {
                Ok(change) => {
                    state.error = None;
                    match change {
                        IndexChange::Changed(digest) => {
                            state.revision = Some(format!("sha256:{digest}"));
                            true
                        }
                        IndexChange::Unchanged => false,
                    }
                }
                Err(e) => {
                    tracing::warn!(helm_repository = %name, "{e}");
                    state.error = Some(e.to_string());
                    return Outcome::Failed;
                }
            }
        };
        if changed {
            tracing::info!(helm_repository = %name, "new index of HelmRepository {name}");
            for app in config.apps_of_helm_repository(name) {
                let _ = self.queue.preempt(app.name(), job.trigger);
            }
        }
        Outcome::Succeeded
    }

    /// The repository of `source`, built again only when its settings
    /// changed (the cached index and charts stay either way).
    async fn chart_repository(
        self: &Arc<Self>,
        source: &HelmRepository,
    ) -> Result<Arc<ChartRepository>, ChartError> {
        let spec = self.helm_repo_spec(source).await?;
        let name = source.name();
        let mut repos = lock(&self.helm_repos);
        let state = repos.entry(name.to_owned()).or_default();
        if let Some(repo) = state.repo.as_ref().filter(|r| r.spec() == &spec) {
            return Ok(repo.clone());
        }
        let repo = Arc::new(ChartRepository::new(&self.helm_cache, spec));
        state.repo = Some(repo.clone());
        Ok(repo)
    }

    /// URL, credentials and certificate authorities of `source`.
    async fn helm_repo_spec(
        self: &Arc<Self>,
        source: &HelmRepository,
    ) -> Result<HelmRepoSpec, ChartError> {
        let name = source.name();
        let settings = |message: String| ChartError::Settings {
            name: name.to_owned(),
            message,
        };
        let mut spec =
            HelmRepoSpec::new(&source.spec.url).map_err(|source| ChartError::Repository {
                name: name.to_owned(),
                source,
            })?;
        spec.timeout = source.spec.timeout.get();
        (spec.auth, spec.tls) = self
            .http_credentials(
                &source.metadata,
                source.spec.secret_ref.as_ref(),
                source.spec.ca_file.as_deref(),
                "a Helm repository",
            )
            .await
            .map_err(settings)?;
        Ok(spec)
    }

    /// Runs `work` off the async runtime within `timeout`.
    async fn blocking<T: Send + 'static>(
        &self,
        name: &str,
        timeout: driftless_api::Duration,
        work: impl FnOnce() -> Result<T, HelmRepoError> + Send + 'static,
    ) -> Result<T, ChartError> {
        let task = tokio::task::spawn_blocking(work);
        match tokio::time::timeout(timeout.get(), task).await {
            Ok(Ok(result)) => result.map_err(|source| ChartError::Repository {
                name: name.to_owned(),
                source,
            }),
            Ok(Err(_)) => Err(ChartError::Task(name.to_owned())),
            Err(_) => Err(ChartError::Timeout {
                name: name.to_owned(),
                timeout,
            }),
        }
    }

    /// The chart `app` renders: the version `pinned` names when a rollback
    /// pinned one of this chart, else the highest its constraint allows in
    /// the repository's last good index (polled first if it never was).
    pub(crate) async fn resolve_chart(
        self: &Arc<Self>,
        app: &App,
        chart: &HelmChart,
        pinned: Option<&ChartRevision>,
    ) -> Result<ResolvedChart, ChartError> {
        let config = self.config();
        let name = chart.repository.as_str();
        let source = config
            .helm_repository(name)
            .cloned()
            .ok_or_else(|| ChartError::NotDeclared(name.to_owned()))?;
        let repo = self.chart_repository(&source).await?;
        if repo.index().is_none() {
            // The first App to need it need not wait for the poll job.
            let polling = repo.clone();
            self.blocking(name, source.spec.timeout, move || polling.refresh())
                .await?;
        }
        let constraint = match pinned.filter(|p| p.repository == name && p.name == chart.name) {
            Some(pin) => pin.version.clone(),
            None => chart.version.clone(),
        };
        let (chart_name, timeout) = (chart.name.clone(), source.spec.timeout);
        let (version, archive) = self
            .blocking(name, timeout, move || {
                let version = repo.resolve(&chart_name, &constraint)?;
                let archive = repo.chart(&version)?;
                Ok((version, archive))
            })
            .await?;
        let digest = match &version.digest {
            Some(hex) => format!("sha256:{hex}"),
            None => String::new(),
        };
        tracing::debug!(
            app = %app.name(),
            chart = %version.name,
            version = %version.version,
            "chart {} {} from HelmRepository {name}",
            version.name,
            version.version
        );
        Ok(ResolvedChart {
            revision: ChartRevision {
                repository: name.to_owned(),
                name: version.name,
                version: version.version,
                digest,
            },
            archive,
        })
    }

    /// The values of `app`'s `valuesFrom`, in order, each a mapping.
    pub(crate) async fn values_from(
        &self,
        app: &App,
        target: &driftless_kube::Target,
    ) -> Result<Vec<serde_json::Value>, ChartError> {
        let Some(helm) = &app.spec.render.helm else {
            return Ok(Vec::new());
        };
        let namespace = secret_namespace(&app.metadata);
        let mut out = Vec::new();
        for (index, from) in helm.values_from.iter().enumerate() {
            let problem = |message: String| ChartError::Values { index, message };
            let read = match from.kind {
                ValuesKind::Secret => secret(target, namespace, &from.name).await,
                ValuesKind::ConfigMap => config_map(target, namespace, &from.name).await,
            };
            let what = format!("{} {namespace}/{}", from.kind.as_str(), from.name);
            let data = match read {
                Ok(data) => data,
                Err(e) if from.optional && not_found(&e) => continue,
                Err(e) => return Err(problem(e.to_string())),
            };
            let Some(text) = data.get(&from.values_key) else {
                if from.optional {
                    continue;
                }
                let key = &from.values_key;
                return Err(problem(format!("{what} has no key {key}")));
            };
            let origin = format!("{what} key {}", from.values_key);
            // Never the text itself in an error: it may hold secrets.
            let docs = driftless_yaml::parse_documents(text, &origin)
                .map_err(|_| problem(format!("{origin} is not valid YAML")))?;
            match docs.as_slice() {
                [] => {}
                [serde_json::Value::Null] => {}
                [map @ serde_json::Value::Object(_)] => out.push(map.clone()),
                _ => return Err(problem(format!("{origin} is not a mapping of values"))),
            }
        }
        Ok(out)
    }

    /// What is known of every declared HelmRepository.
    pub(crate) fn helm_repo_statuses(&self) -> Vec<Named<HelmRepositoryStatus>> {
        let config = self.config();
        let repos = lock(&self.helm_repos);
        config
            .helm_repositories()
            .map(|r| {
                let state = repos.get(r.name());
                let charts = state
                    .and_then(|s| s.repo.as_ref())
                    .and_then(|repo| repo.index())
                    .map_or(0, |index| index.entries.len());
                let ready = super::oci_sources::poll_condition(
                    state.and_then(|s| s.error.as_deref()),
                    state.is_some_and(|s| s.polled > 0),
                    || format!("index with {charts} charts"),
                );
                let status = HelmRepositoryStatus {
                    conditions: vec![ready],
                    url: redact_url(&r.spec.url),
                    revision: state.and_then(|s| s.revision.clone()),
                    charts,
                    last_fetch_time: state
                        .filter(|s| s.polled > 0)
                        .map(|s| Time::from_unix_ms(s.polled)),
                    last_error: state.and_then(|s| s.error.clone()),
                    suspended: r.spec.suspend,
                    ..HelmRepositoryStatus::default()
                };
                Named::new(r.name(), status)
            })
            .collect()
    }

    /// The repositories the dependencies of the chart in `dir` come from for
    /// `app`: the HelmRepositories of its own namespace, with their
    /// credentials, for their URLs (as Flux matches them), and anonymous
    /// repositories for other URLs. Another namespace's credentials are never lent.
    pub(crate) async fn dependency_repositories(
        self: &Arc<Self>,
        app: &App,
        dir: &std::path::Path,
    ) -> Arc<ChartRepositories> {
        let config = self.config();
        let namespace = secret_namespace(&app.metadata);
        let declared: Vec<HelmRepository> = config
            .helm_repositories()
            .filter(|r| secret_namespace(&r.metadata) == namespace)
            .cloned()
            .collect();
        if declared.is_empty() || !dir.join("Chart.yaml").is_file() {
            return self.chart_repos.clone();
        }
        let repos = lock(&self.dependency_repos)
            .entry(namespace.to_owned())
            .or_insert_with(|| Arc::new(ChartRepositories::new(&self.helm_cache)))
            .clone();
        for repository in &declared {
            match self.helm_repo_spec(repository).await {
                Ok(spec) => {
                    repos.add(spec);
                }
                Err(e) => tracing::warn!(
                    app = %app.name(),
                    "{e}; chart dependencies on its URL are fetched without its credentials"
                ),
            }
        }
        repos
    }

    /// Forgets what was known of HelmRepository `name`, which the config no longer has.
    pub(crate) fn forget_helm_repo(&self, name: &str) {
        lock(&self.helm_repos).remove(name);
    }
}

/// Whether a read failed because the object does not exist.
fn not_found(e: &ClusterError) -> bool {
    match e {
        ClusterError::Read { source, .. } => {
            matches!(&**source, kube::Error::Api(status) if status.code == 404)
        }
        _ => false,
    }
}
