//! Why a reconcile stopped, and the condition reasons an App's status shows.
//!
//! Each [`ReconcileError`] variant names the stage that failed; its
//! [`Reason`] is the CamelCase reason of the App's `Ready` condition, and its
//! message (with the causes) is the condition's message and the App's
//! `lastError`.

use driftless_kube::{ApplyError, WaitError, error_chain};
use tokio::task::JoinError;

use super::clusters::ClusterError;
use super::decrypt::DecryptionError;
use super::outcome::PathError;
use super::sources::SourceError;
use crate::store::StoreError;

/// The reasons of the conditions the engine sets on an App.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Applied, and every object is healthy.
    ReconciliationSucceeded,
    /// Applied; some objects are still on their way to healthy.
    Progressing,
    /// Applied; some objects are unhealthy, or their health could not be read.
    HealthCheckFailed,
    /// Reconciliation is suspended by the spec or a user.
    Suspended,
    /// An App it depends on is not healthy at the same commit yet.
    DependencyNotReady,
    /// Pinned to a commit by a rollback.
    RolledBack,
    /// A sync window holds the App's syncs.
    SyncWindowClosed,
    /// The App's syncs are manual, and its objects differ from Git.
    ManualSyncPending,
    /// The retry limit is reached; only the interval and new revisions run it.
    RetryLimitReached,
    /// The App's GitSource is not declared.
    SourceNotFound,
    /// The GitSource could not be fetched or exported.
    FetchFailed,
    /// The App's path is not a directory of the commit.
    PathNotFound,
    /// The destination cluster could not be connected to or did not answer.
    ClusterUnreachable,
    /// The chart could not be had from its HelmRepository.
    ChartFailed,
    /// Rendering (or reading its substitution variables) failed.
    RenderFailed,
    /// An encrypted object could not be decrypted, or its keys not read.
    DecryptionFailed,
    /// The apply failed.
    ApplyFailed,
    /// The render was empty with prune on: the objects of earlier syncs stay.
    PruneWithheld,
    /// The state store could not record the sync.
    StoreFailed,
    /// A host could not be connected to or logged into (App for hosts).
    HostUnreachable,
    /// The release could not be made, or a step or hook failed on a host.
    ReleaseFailed,
    /// The release failed its health check on a host and was rolled back there.
    RolloutFailed,
}

impl Reason {
    /// The reason as conditions show it.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::ReconciliationSucceeded => "ReconciliationSucceeded",
            Self::Progressing => "Progressing",
            Self::HealthCheckFailed => "HealthCheckFailed",
            Self::Suspended => "Suspended",
            Self::DependencyNotReady => "DependencyNotReady",
            Self::RolledBack => "RolledBack",
            Self::SyncWindowClosed => "SyncWindowClosed",
            Self::ManualSyncPending => "ManualSyncPending",
            Self::RetryLimitReached => "RetryLimitReached",
            Self::SourceNotFound => "SourceNotFound",
            Self::FetchFailed => "FetchFailed",
            Self::PathNotFound => "PathNotFound",
            Self::ClusterUnreachable => "ClusterUnreachable",
            Self::ChartFailed => "ChartFailed",
            Self::RenderFailed => "RenderFailed",
            Self::DecryptionFailed => "DecryptionFailed",
            Self::ApplyFailed => "ApplyFailed",
            Self::PruneWithheld => "PruneWithheld",
            Self::StoreFailed => "StoreFailed",
            Self::HostUnreachable => "HostUnreachable",
            Self::ReleaseFailed => "ReleaseFailed",
            Self::RolloutFailed => "RolloutFailed",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a reconcile stopped before the App was in sync.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReconcileError {
    /// The App's `sourceRef` names no declared source (its kind and name).
    #[error("{0} is not declared")]
    SourceNotFound(String),
    /// Fetching or exporting the revision failed.
    #[error(transparent)]
    Fetch(#[from] SourceError),
    /// The App's path is not a directory of the commit.
    #[error(transparent)]
    Path(#[from] PathError),
    /// The destination cluster is not declared or could not be connected to.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// A ConfigMap or Secret of the App's substitutions could not be read.
    #[error(transparent)]
    Substitution(ClusterError),
    /// The App's chart could not be had from its HelmRepository, or its
    /// `valuesFrom` not read.
    #[error(transparent)]
    Chart(Box<super::charts::ChartError>),
    /// The render ended without a result (it panicked or was cancelled).
    #[error("render task failed: {0}")]
    RenderTask(#[source] JoinError),
    /// The renderer refused or failed the App's path.
    #[error("rendering path {path:?}: {source}")]
    Render {
        /// The App's path.
        path: String,
        /// The renderer's error.
        source: Box<driftless_render::Error>,
    },
    /// Encrypted objects of the render did not decrypt.
    #[error(transparent)]
    Decryption(#[from] DecryptionError),
    /// No API server answered a request of the apply or health read.
    #[error("{cluster} at {url} is unreachable: {}", error_chain(.source.as_ref()))]
    Unreachable {
        /// How messages name the cluster.
        cluster: String,
        /// Its API server's address.
        url: String,
        /// The failed request.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The apply failed.
    #[error("{}", error_chain(.0))]
    Apply(#[source] ApplyError),
    /// The health of the App's objects could not be read.
    #[error("{}", error_chain(.0))]
    HealthCheck(#[source] WaitError),
    /// The state store could not begin the sync's record.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `spec.destination.hosts` selects no declared Host.
    #[error("spec.destination.hosts: {0} selects no declared Host; nothing was deployed")]
    NoHosts(String),
    /// The App's path leads outside the repository.
    #[error(
        "path {path:?} leads outside the repository of GitSource {source_name}; nothing was deployed"
    )]
    OutsideRepository {
        /// The App's path.
        path: String,
        /// The GitSource.
        source_name: String,
    },
    /// The release could not be made from the App's tree.
    #[error("path {path:?}: {source}; nothing was deployed")]
    Release {
        /// The App's path.
        path: String,
        /// Why.
        source: driftless_host::ReleaseError,
    },
    /// Reading the tree ended without a result.
    #[error("reading the release tree failed: {0}")]
    ReleaseTask(#[source] JoinError),
}

impl ReconcileError {
    /// The reason of the App's `Ready` condition.
    pub(crate) fn reason(&self) -> Reason {
        match self {
            Self::SourceNotFound(_) => Reason::SourceNotFound,
            Self::Fetch(_) => Reason::FetchFailed,
            Self::Path(_) => Reason::PathNotFound,
            Self::Cluster(_) | Self::Unreachable { .. } => Reason::ClusterUnreachable,
            Self::Substitution(_) | Self::RenderTask(_) | Self::Render { .. } => {
                Reason::RenderFailed
            }
            Self::Chart(_) => Reason::ChartFailed,
            Self::Decryption(_) => Reason::DecryptionFailed,
            Self::Apply(_) => Reason::ApplyFailed,
            Self::HealthCheck(_) => Reason::HealthCheckFailed,
            Self::Store(_) => Reason::StoreFailed,
            Self::NoHosts(_) => Reason::HostUnreachable,
            Self::OutsideRepository { .. } | Self::Release { .. } | Self::ReleaseTask(_) => {
                Reason::ReleaseFailed
            }
        }
    }
}

impl From<super::charts::ChartError> for ReconcileError {
    fn from(e: super::charts::ChartError) -> Self {
        Self::Chart(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stage_shows_its_reason() {
        let cases = [
            (
                ReconcileError::SourceNotFound("GitSource repo".to_owned()),
                "SourceNotFound",
                "GitSource repo is not declared",
            ),
            (
                ReconcileError::Cluster(ClusterError::NotDeclared("east".to_owned())),
                "ClusterUnreachable",
                "Cluster east is not declared",
            ),
            (
                ReconcileError::Path(PathError::Missing {
                    path: "apps/web".to_owned(),
                    sha: "0123456789abcdef".to_owned(),
                    source_name: "repo".to_owned(),
                }),
                "PathNotFound",
                "path \"apps/web\" does not exist at commit 0123456789ab of GitSource repo \
                 (removed or renamed in Git?)",
            ),
            (
                ReconcileError::Unreachable {
                    cluster: "Cluster east".to_owned(),
                    url: "https://10.0.0.1:6443/".to_owned(),
                    source: "connection refused".into(),
                },
                "ClusterUnreachable",
                "Cluster east at https://10.0.0.1:6443/ is unreachable: connection refused",
            ),
        ];
        for (err, reason, message) in cases {
            assert_eq!(err.reason().as_str(), reason, "{err:?}");
            assert_eq!(err.to_string(), message);
        }
    }
}
