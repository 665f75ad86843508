//! OCISources: a queue job per source that asks the registry which artifact
//! its ref names now (one manifest request; a tag listing first for a
//! version range), the Apps triggered when the digest changed, and the
//! artifact pulled once per digest for a render.

use std::sync::Arc;
use std::time::Instant;

use driftless_api::status::{Artifact, Condition, ConditionStatus, GitSourceStatus, READY};
use driftless_api::{LocalRef, ObjectMeta, OciSource, SourceKind, Time};
use driftless_source::oci::source::{Follow, resolve, snapshot};
use driftless_source::oci::{Limits, OciError, Options, Reference, Registry};
use driftless_source::{Auth, Revision, Snapshot, Tls};

use super::clusters::secret;
use super::sources::{SourceError, secret_namespace};
use super::{Inner, lock};
use crate::queue::{Job, Outcome};
use crate::store::Named;

/// Queue keys of OCISources start with this; App names cannot contain `:`.
pub(crate) const OCI_SOURCE_PREFIX: &str = "ocisource:";

/// The queue key of OCISource `name`, also its key among known revisions
/// and fetch results (apart from GitSources of the same name).
pub(crate) fn oci_source_key(name: &str) -> String {
    format!("{OCI_SOURCE_PREFIX}{name}")
}

/// How to reach the registry of one OCISource, and the repository it
/// follows. The client itself is made in each blocking task: a blocking
/// HTTP client must neither be made nor dropped on the async runtime.
pub(crate) struct OciOrigin {
    pub(crate) options: Options,
    pub(crate) repository: Reference,
    /// The OCISource's name, for errors.
    pub(crate) name: String,
}

impl std::fmt::Debug for OciOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OCISource/{} ({})", self.name, self.repository)
    }
}

/// The `Ready` condition of a polled object (an OCISource, a
/// HelmRepository): its last poll's error, `ok` after a success, or unknown
/// before the first poll.
pub(crate) fn poll_condition(
    error: Option<&str>,
    polled: bool,
    ok: impl FnOnce() -> String,
) -> Condition {
    match error {
        Some(e) => Condition::new(READY, ConditionStatus::False, "FetchFailed", e),
        None if polled => Condition::new(READY, ConditionStatus::True, "Succeeded", ok()),
        None => Condition::new(
            READY,
            ConditionStatus::Unknown,
            "Progressing",
            "not polled yet",
        ),
    }
}

/// What `source.spec.ref` follows.
fn follow(source: &OciSource) -> Follow {
    let r = &source.spec.oci_ref;
    match (&r.digest, &r.semver, &r.tag) {
        (Some(digest), _, _) => Follow::Digest(digest.clone()),
        (None, Some(range), _) => Follow::Range(range.clone()),
        (None, None, Some(tag)) => Follow::Tag(tag.clone()),
        (None, None, None) => Follow::Tag(driftless_api::DEFAULT_OCI_TAG.to_owned()),
    }
}

impl Inner {
    /// Runs an OCISource job: resolves its ref and triggers its Apps when
    /// the digest changed.
    pub(crate) async fn oci_source_job(self: &Arc<Self>, job: &Job, name: &str) -> Outcome {
        let config = self.config();
        let Some(source) = config.oci_source(name).cloned() else {
            return Outcome::Succeeded;
        };
        let key = oci_source_key(name);
        let resolved = self.resolve_oci(&source, None).await;
        self.note_fetch(&key, resolved.as_ref().err().map(ToString::to_string));
        let revision = match resolved {
            Ok((_, revision)) => revision,
            Err(e) => {
                tracing::warn!(oci_source = %name, "{e}");
                let message = format!("polling OCISource {name}: {e}");
                self.notice_source_failure(&config, SourceKind::OciSource, name, &e.to_string());
                for app in config.apps_of(SourceKind::OciSource, name) {
                    self.note_waiting(app.name(), &message);
                }
                return Outcome::Failed;
            }
        };
        let previous = lock(&self.revisions).insert(key, revision.clone());
        if previous.as_ref().map(|r| &r.sha) == Some(&revision.sha) {
            return Outcome::Succeeded;
        }
        tracing::info!(
            oci_source = %name,
            revision = %revision.sha,
            "artifact {}@{} ({})",
            source.spec.url,
            revision.sha,
            revision.subject
        );
        for app in config.apps_of(SourceKind::OciSource, name) {
            let _ = self.queue.preempt(app.name(), job.trigger);
        }
        Outcome::Succeeded
    }

    /// The registry of `source` and the artifact its ref names now, or the
    /// one `digest` names (a rollback's pin).
    pub(crate) async fn resolve_oci(
        self: &Arc<Self>,
        source: &OciSource,
        digest: Option<&str>,
    ) -> Result<(OciOrigin, Revision), SourceError> {
        let origin = self.oci_origin(source).await?;
        let wanted = match digest {
            Some(d) => Follow::Digest(d.to_owned()),
            None => follow(source),
        };
        let options = origin.options.clone();
        let repository = origin.repository.clone();
        let start = Instant::now();
        let revision = self
            .oci_blocking(source, move || {
                let registry = Registry::new(&repository, &options)?;
                resolve(&registry, &repository, &wanted)
            })
            .await;
        let key = oci_source_key(source.name());
        self.metrics
            .observe_fetch(&key, start.elapsed(), revision.is_err());
        Ok((origin, revision?))
    }

    /// The artifact `revision` of `origin`, unpacked once per digest.
    pub(crate) async fn oci_snapshot(
        self: &Arc<Self>,
        source: &OciSource,
        origin: &OciOrigin,
        revision: &Revision,
    ) -> Result<Snapshot, SourceError> {
        let options = origin.options.clone();
        let repository = origin.repository.clone();
        let digest = revision.sha.clone();
        let snapshots = self.fetcher.cache_dir().join("snapshots");
        self.oci_blocking(source, move || {
            let registry = Registry::new(&repository, &options)?;
            snapshot(
                &registry,
                &repository,
                &digest,
                &snapshots,
                Limits::default(),
            )
        })
        .await
    }

    /// How to reach the registry of `source`, with its Secret read afresh.
    pub(crate) async fn oci_origin(
        self: &Arc<Self>,
        source: &OciSource,
    ) -> Result<OciOrigin, SourceError> {
        let name = source.name().to_owned();
        let settings = |message: String| SourceError::OciSettings {
            name: name.clone(),
            message,
        };
        let repository = Reference::parse(&source.spec.url).map_err(|e| settings(e.to_string()))?;
        let (auth, tls) = self
            .http_credentials(
                &source.metadata,
                source.spec.secret_ref.as_ref(),
                source.spec.ca_file.as_deref(),
                "an OCI registry",
            )
            .await
            .map_err(settings)?;
        let options = Options {
            auth,
            tls,
            insecure: source.spec.insecure,
            timeout: source.spec.timeout.get(),
        };
        Ok(OciOrigin {
            options,
            repository,
            name,
        })
    }

    /// Basic or bearer credentials and certificate authorities of an object
    /// reached over HTTP(S) (a HelmRepository, an OCISource): its Secret
    /// read afresh, `ca_file` read from disk. `reached` says what the
    /// credentials are for, in the error refusing an SSH identity.
    pub(crate) async fn http_credentials(
        self: &Arc<Self>,
        meta: &ObjectMeta,
        secret_ref: Option<&LocalRef>,
        ca_file: Option<&str>,
        reached: &str,
    ) -> Result<(Auth, Tls), String> {
        let data = match secret_ref {
            Some(r) => {
                let config = self.config();
                let cluster = self
                    .cluster(&config, None)
                    .await
                    .map_err(|e| e.to_string())?;
                let namespace = secret_namespace(meta);
                Some(
                    secret(&cluster.target, namespace, &r.name)
                        .await
                        .map_err(|e| e.to_string())?,
                )
            }
            None => None,
        };
        let mut auth = Auth::None;
        if let Some(data) = &data {
            let secret = secret_ref.map_or("", |r| &r.name);
            auth = super::spec::auth(data).map_err(|e| format!("Secret {secret}: {e}"))?;
            if matches!(auth, Auth::Ssh { .. }) {
                return Err(format!(
                    "Secret {secret}: an SSH identity is for Git; {reached} takes username \
                     and password, or bearerToken"
                ));
            }
        }
        let tls = super::spec::tls(ca_file, data.as_ref())
            .map_err(|(path, e)| format!("spec.caFile {path}: {e}"))?;
        Ok((auth, tls))
    }

    /// Runs registry work off the async runtime within the source's timeout.
    async fn oci_blocking<T: Send + 'static>(
        &self,
        source: &OciSource,
        work: impl FnOnce() -> Result<T, OciError> + Send + 'static,
    ) -> Result<T, SourceError> {
        let name = source.name().to_owned();
        let timeout = source.spec.timeout;
        let task = tokio::task::spawn_blocking(work);
        match tokio::time::timeout(timeout.get(), task).await {
            Ok(Ok(result)) => result.map_err(|e| SourceError::Oci {
                name,
                source: Box::new(e),
            }),
            Ok(Err(e)) => Err(SourceError::FetchTask(e)),
            Err(_) => Err(SourceError::Timeout {
                url: source.spec.url.clone(),
                timeout,
            }),
        }
    }

    /// What is known of every declared OCISource: URL, ref, artifact, last poll.
    pub(crate) fn oci_source_statuses(&self) -> Vec<Named<GitSourceStatus>> {
        let config = self.config();
        let fetches = lock(&self.fetches).clone();
        let revisions = lock(&self.revisions).clone();
        config
            .oci_sources()
            .map(|s| {
                let key = oci_source_key(s.name());
                let (fetched, error) = fetches.get(&key).cloned().unwrap_or_default();
                let artifact = revisions.get(&key).cloned();
                let ready = poll_condition(error.as_deref(), fetched > 0, || match &artifact {
                    Some(r) if r.reference.is_empty() => format!("artifact {}", r.sha),
                    Some(r) => format!("artifact {}@{}", r.reference, r.sha),
                    None => "polled".to_owned(),
                });
                let status = GitSourceStatus {
                    conditions: vec![ready],
                    url: s.spec.url.clone(),
                    artifact: artifact.map(|r| Artifact {
                        revision: crate::store::Revision::git(r.reference, r.sha),
                        author: String::new(),
                        subject: r.subject,
                    }),
                    last_fetch_time: (fetched > 0).then(|| Time::from_unix_ms(fetched)),
                    last_error: error,
                    suspended: s.spec.suspend,
                    ..GitSourceStatus::default()
                };
                Named::new(s.name(), status)
            })
            .collect()
    }
}
