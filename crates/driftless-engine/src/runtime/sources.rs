//! Fetching GitSources: a queue job per source, and the revision each App follows.

use std::sync::Arc;
use std::time::Instant;

use driftless_api::{GitSource, SourceKind};
use driftless_source::{FetchError, RefSpec, Revision, Snapshot, SnapshotError, SourceSpec};
use tokio::task::JoinError;

use super::Inner;
use super::clusters::{ClusterError, secret};
use super::spec::SpecError;
use crate::queue::{Job, Outcome};
use driftless_api::Time;
use driftless_api::status::{Artifact, GitSourceStatus};

use crate::store::{Named, SyncTrigger};
use crate::timing::now_ms;

/// Queue keys of sources start with this; App names cannot contain `:`.
pub(crate) const SOURCE_PREFIX: &str = "source:";

/// The queue key of GitSource `name`.
pub(crate) fn source_key(name: &str) -> String {
    format!("{SOURCE_PREFIX}{name}")
}

/// Namespace of the Secrets sources and Apps refer to when their object names none.
pub const SECRETS_NAMESPACE: &str = "driftless-system";

/// The namespace a config object's Secret references resolve in.
pub(crate) fn secret_namespace(meta: &driftless_api::ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or(SECRETS_NAMESPACE)
}

/// Where a revision's files come from.
#[derive(Debug)]
pub(crate) enum Origin {
    /// A Git repository, by its fetch spec.
    Git(SourceSpec),
    /// An OCISource's artifact.
    Oci {
        /// The OCISource.
        source: Box<driftless_api::OciSource>,
        /// Its registry.
        origin: super::oci_sources::OciOrigin,
    },
}

impl Origin {
    /// The Git fetch spec, whose credentials remote bases on its host may borrow.
    pub(crate) fn git(&self) -> Option<&SourceSpec> {
        match self {
            Origin::Git(spec) => Some(spec),
            Origin::Oci { .. } => None,
        }
    }
}

/// Why a GitSource could not be fetched or exported.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SourceError {
    /// The GitSource's spec does not make a fetch spec.
    #[error("GitSource/{source_name}: {source}")]
    Spec {
        /// The GitSource.
        source_name: String,
        /// What is wrong with its spec.
        source: SpecError,
    },
    /// A Secret it names could not be read.
    #[error(transparent)]
    Secret(#[from] ClusterError),
    /// Git failed.
    #[error(transparent)]
    Fetch(Box<FetchError>),
    /// The fetch ended without a result (it panicked or was cancelled).
    #[error("fetch task failed: {0}")]
    FetchTask(#[source] JoinError),
    /// The fetch took longer than the GitSource's `timeout`.
    #[error("fetching {url}: no answer within {timeout}")]
    Timeout {
        /// The remote, without credentials.
        url: String,
        /// The GitSource's `timeout`.
        timeout: driftless_api::Duration,
    },
    /// Exporting the commit's tree failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The export ended without a result.
    #[error("snapshot task failed: {0}")]
    SnapshotTask(#[source] JoinError),
    /// An OCISource's settings (its URL, its Secret) do not make a registry client.
    #[error("OCISource/{name}: {message}")]
    OciSettings {
        /// The OCISource.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The registry of an OCISource failed, or its artifact is refused.
    #[error("OCISource/{name}: {source}")]
    Oci {
        /// The OCISource.
        name: String,
        /// What failed.
        source: Box<driftless_source::oci::OciError>,
    },
}

impl Inner {
    /// Runs a source job: fetch, and trigger the source's Apps when the
    /// revision changed (preempting a health wait on the old one).
    pub(crate) async fn fetch_job(self: &Arc<Self>, job: &Job, name: &str) -> Outcome {
        let config = self.config();
        let Some(source) = config.git_source(name).cloned() else {
            return Outcome::Succeeded;
        };
        let fetched = self.fetch(&source, None).await;
        self.note_fetch(name, fetched.as_ref().err().map(ToString::to_string));
        let revision = match fetched {
            Ok((_, revision)) => revision,
            Err(e) => {
                tracing::warn!(source = %name, "{e}");
                self.notice_source_failure(&config, SourceKind::GitSource, name, &e.to_string());
                for app in config.apps_of_source(name) {
                    self.note_waiting(app.name(), &format!("fetching GitSource {name}: {e}"));
                }
                return Outcome::Failed;
            }
        };
        let previous = self
            .lock_revisions()
            .insert(name.to_owned(), revision.clone());
        if previous.as_ref().map(|r| &r.sha) == Some(&revision.sha) {
            return Outcome::Succeeded;
        }
        tracing::info!(
            source = %name,
            revision = %revision.sha,
            "revision {}@sha1:{} ({})",
            revision.reference,
            revision.sha,
            revision.subject
        );
        // Apps whose directory the commit touched go first, so that a push
        // reaches them without waiting behind Apps it did not change.
        let changed = match previous {
            Some(old) => self.changed_files(&source, &old.sha, &revision.sha).await,
            None => Vec::new(),
        };
        let touched = |app: &&driftless_api::App| {
            let dir = app.spec.path.trim_matches('/');
            changed
                .iter()
                .any(|f| dir.is_empty() || f.strip_prefix(dir).is_some_and(|r| r.starts_with('/')))
        };
        let (first, rest): (Vec<_>, Vec<_>) = config.apps_of_source(name).partition(touched);
        for app in first.into_iter().chain(rest) {
            // A failure to queue means the engine is shutting down.
            let _ = self.queue.preempt(app.name(), job.trigger);
        }
        Outcome::Succeeded
    }

    /// Fetches `source` (at `commit` instead of its ref when given) and
    /// returns the spec used with the revision.
    pub(crate) async fn fetch(
        self: &Arc<Self>,
        source: &GitSource,
        commit: Option<&str>,
    ) -> Result<(SourceSpec, Revision), SourceError> {
        let mut spec = self.source_spec(source).await?;
        if let Some(sha) = commit {
            spec.reference = RefSpec::Commit(sha.to_owned());
        }
        let fetcher = self.fetcher.clone();
        let timeout = source.spec.timeout.get();
        let start = Instant::now();
        let work = {
            let spec = spec.clone();
            tokio::task::spawn_blocking(move || fetcher.fetch(&spec))
        };
        let result = match tokio::time::timeout(timeout, work).await {
            Ok(Ok(result)) => result.map_err(|e| SourceError::Fetch(Box::new(e))),
            Ok(Err(e)) => Err(SourceError::FetchTask(e)),
            Err(_) => Err(SourceError::Timeout {
                url: driftless_source::auth::redact_url(&spec.url),
                timeout: source.spec.timeout,
            }),
        };
        self.metrics
            .observe_fetch(source.name(), start.elapsed(), result.is_err());
        result.map(|rev| (spec, rev))
    }

    /// Paths that differ between two commits of `source`; empty when unknown
    /// (for example when the old commit is no longer in the cache).
    async fn changed_files(&self, source: &GitSource, old: &str, new: &str) -> Vec<String> {
        let repo = self.fetcher.repo_dir(&source.spec.url);
        let (old, new) = (old.to_owned(), new.to_owned());
        let diff = tokio::task::spawn_blocking(move || {
            driftless_source::git::Git::in_dir(&repo).run(&[
                "diff",
                "--name-only",
                "--no-renames",
                &old,
                &new,
            ])
        })
        .await;
        match diff {
            Ok(Ok(out)) => out.lines().map(str::to_owned).collect(),
            _ => Vec::new(),
        }
    }

    /// Exports the whole tree of `revision` (overlays may read `../base`),
    /// or unpacks the artifact it names.
    pub(crate) async fn snapshot(
        self: &Arc<Self>,
        origin: &Origin,
        revision: &Revision,
    ) -> Result<Snapshot, SourceError> {
        let spec = match origin {
            Origin::Git(spec) => spec.clone(),
            Origin::Oci { source, origin } => {
                return self.oci_snapshot(source, origin, revision).await;
            }
        };
        let fetcher = self.fetcher.clone();
        let revision = revision.clone();
        let snapshot = tokio::task::spawn_blocking(move || fetcher.snapshot(&spec, &revision, ""))
            .await
            .map_err(SourceError::SnapshotTask)??;
        Ok(snapshot)
    }

    /// The fetch spec of `source`, with the Secrets it names read afresh.
    pub(crate) async fn source_spec(
        self: &Arc<Self>,
        source: &GitSource,
    ) -> Result<SourceSpec, SourceError> {
        let namespace = secret_namespace(&source.metadata);
        let read = |name: String| {
            let inner = self.clone();
            async move {
                let config = inner.config();
                let cluster = inner.cluster(&config, None).await?;
                secret(&cluster.target, namespace, &name).await
            }
        };
        let secret_data = match &source.spec.secret_ref {
            Some(r) => Some(read(r.name.clone()).await?),
            None => None,
        };
        let keys = match &source.spec.verify {
            Some(v) => Some(read(v.secret_ref.name.clone()).await?),
            None => None,
        };
        super::spec::source_spec(source, secret_data.as_ref(), keys.as_ref()).map_err(|e| {
            SourceError::Spec {
                source_name: source.name().to_owned(),
                source: e,
            }
        })
    }

    pub(crate) fn note_fetch(&self, name: &str, error: Option<String>) {
        let mut fetches = super::lock(&self.fetches);
        let state = fetches.entry(name.to_owned()).or_default();
        state.0 = now_ms();
        state.1 = error;
    }

    /// What is known of every declared source: URL, ref, revision, last fetch.
    pub(crate) fn source_statuses(&self) -> Vec<Named<GitSourceStatus>> {
        let config = self.config();
        let fetches = super::lock(&self.fetches).clone();
        config
            .git_sources()
            .map(|s| {
                let name = s.name();
                let revision = self.revision(name);
                let (fetched, error) = fetches.get(name).cloned().unwrap_or_default();
                let status = GitSourceStatus {
                    url: driftless_source::auth::redact_url(&s.spec.url),
                    artifact: revision.map(|r| Artifact {
                        author: super::outcome::author_of(&r),
                        revision: crate::store::Revision::git(r.reference, r.sha),
                        subject: r.subject,
                    }),
                    last_fetch_time: (fetched > 0).then(|| Time::from_unix_ms(fetched)),
                    last_error: error,
                    suspended: s.spec.suspend,
                    ..GitSourceStatus::default()
                };
                Named::new(name, status)
            })
            .collect()
    }

    /// The latest fetched revision of GitSource `name`.
    pub(crate) fn revision(&self, name: &str) -> Option<Revision> {
        self.lock_revisions().get(name).cloned()
    }

    /// The latest fetched revision of the source `source` names.
    pub(crate) fn source_revision(&self, source: &driftless_api::SourceRef) -> Option<Revision> {
        match source.kind {
            SourceKind::GitSource => self.revision(&source.name),
            SourceKind::OciSource => self
                .lock_revisions()
                .get(&super::oci_sources::oci_source_key(&source.name))
                .cloned(),
        }
    }

    /// Queues a fetch of every source a verified push names; returns how many.
    pub(crate) fn trigger_sources<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> usize {
        names
            .into_iter()
            .filter(|name| {
                self.queue
                    .trigger(&source_key(name), SyncTrigger::Webhook)
                    .is_ok()
            })
            .count()
    }
}
