//! Reads about an App's live objects for the API and the web UI: the objects
//! the cluster created for them, and the difference between Git and the
//! cluster. Nothing here writes to the cluster, the store or the App's state.

use std::sync::Arc;
use std::time::Duration;

use driftless_api::inspect::{AppDiff, Change, ObjectChange, OwnedTree};
use driftless_api::{App, Config};
use driftless_kube::compare::{ChangeKind, DiffSummary};
use driftless_kube::{ObjectRef, error_chain};

use super::error::ReconcileError;
use super::plan::{self, Start};
use super::reconcile::object_ref;
use super::{Engine, Inner};
use crate::store::AppStatus;

/// The longest an inspection may take; a slow cluster answers with an error
/// instead of holding a page open.
const INSPECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Why an App could not be inspected.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// No App of that name is declared.
    #[error("there is no App {0}")]
    NoSuchApp(String),
    /// The App has nothing to compare yet (its source was never fetched).
    #[error("{0}")]
    NotYet(String),
    /// The source, render or cluster failed; the message names the stage.
    #[error("{0}")]
    Failed(String),
}

impl Engine {
    /// The objects the cluster created for App `name`'s objects (a
    /// Deployment's ReplicaSets and Pods), read with the App's identity.
    pub async fn owned_objects(&self, name: &str) -> Result<OwnedTree, InspectError> {
        let inner = self.inner.clone();
        let name = name.to_owned();
        bounded("reading the owned objects", &name.clone(), async move {
            inner.owned_objects(&name).await
        })
        .await
    }

    /// App `name`'s objects in Git, at the revision it follows (its pin, else
    /// its source's latest fetched commit), against the cluster: what a sync
    /// would create, change and prune, compared through a server-side dry
    /// run, with Secret values masked.
    pub async fn diff(&self, name: &str) -> Result<AppDiff, InspectError> {
        let inner = self.inner.clone();
        let name = name.to_owned();
        bounded(
            "comparing Git with the cluster",
            &name.clone(),
            async move { inner.diff(&name).await },
        )
        .await
    }
}

async fn bounded<T>(
    what: &str,
    app: &str,
    work: impl Future<Output = Result<T, InspectError>>,
) -> Result<T, InspectError> {
    match tokio::time::timeout(INSPECT_TIMEOUT, work).await {
        Ok(result) => result,
        Err(_) => Err(InspectError::Failed(format!(
            "{what} for App {app} took longer than {} s",
            INSPECT_TIMEOUT.as_secs()
        ))),
    }
}

fn failed(err: &ReconcileError) -> InspectError {
    InspectError::Failed(err.to_string())
}

impl Inner {
    /// The config in force, the declared App `name` and its status.
    fn declared(&self, name: &str) -> Result<(Arc<Config>, App, AppStatus), InspectError> {
        let config = self.config();
        let app = config
            .app(name)
            .cloned()
            .ok_or_else(|| InspectError::NoSuchApp(name.to_owned()))?;
        let status = self
            .store
            .app(name)
            .map_err(|e| InspectError::Failed(e.to_string()))?
            .unwrap_or_default();
        Ok((config, app, status))
    }

    async fn owned_objects(self: &Arc<Self>, name: &str) -> Result<OwnedTree, InspectError> {
        let (config, app, status) = self.declared(name)?;
        if app.spec.destination.hosts.is_some() {
            // Its resources are hosts: no cluster created anything for them.
            return Ok(OwnedTree::default());
        }
        let roots: Vec<ObjectRef> = status.resources.iter().filter_map(object_ref).collect();
        if roots.is_empty() {
            return Ok(OwnedTree::default());
        }
        let cluster = self
            .cluster(&config, app.spec.destination.cluster.as_deref())
            .await
            .map_err(|e| failed(&e.into()))?;
        let opts = self.apply_options(&app);
        driftless_kube::owned_tree(&cluster.target, &opts, &roots)
            .await
            .map_err(|e| failed(&cluster.apply_failed(e)))
    }

    async fn diff(self: &Arc<Self>, name: &str) -> Result<AppDiff, InspectError> {
        let (config, app, status) = self.declared(name)?;
        if app.spec.destination.hosts.is_some() {
            return Err(InspectError::Failed(format!(
                "App {name} deploys files to hosts, not objects to a cluster: the drift of \
                 its files shows in its events"
            )));
        }
        let source = plan::app_source(&config, &app).map_err(|e| failed(&e))?;
        let latest = self.source_revision(&app.spec.source_ref);
        let start = match (&status.pinned, &latest) {
            (Some(pin), _) => Start::Fetch {
                source,
                pin: Some(pin),
            },
            (None, Some(revision)) => Start::Follow { source, revision },
            (None, None) => {
                return Err(InspectError::NotYet(format!(
                    "{} {} has not been fetched yet; nothing to compare",
                    app.spec.source_ref.kind.as_str(),
                    source.name()
                )));
            }
        };
        let (origin, revision) = self
            .begin(name, start)
            .await
            .map_err(|e| failed(&e))?
            .ok_or_else(|| {
                InspectError::Failed(format!("App {name} has no revision to compare"))
            })?;
        let cluster = self
            .cluster(&config, app.spec.destination.cluster.as_deref())
            .await
            .map_err(|e| failed(&e.into()))?;
        let snapshot = self
            .snapshot(&origin, &revision)
            .await
            .map_err(|e| failed(&e.into()))?;
        let rendered = self
            .render_snapshot(&app, &cluster.target, &origin, &snapshot, &revision)
            .await
            .map_err(|e| failed(&e))?;
        let objects: Vec<serde_json::Value> = rendered.set.iter().cloned().collect();
        let mut opts = self.apply_options(&app);
        opts.masked_fields = rendered.encrypted;
        let summary = driftless_kube::diff(&cluster.target, &objects, &opts)
            .await
            .map_err(|e| InspectError::Failed(error_chain(&e)))?;
        Ok(app_diff(revision.sha, summary))
    }
}

/// What the kube diff found, as the API shows it: the objects that differ.
pub(crate) fn app_diff(revision: String, summary: DiffSummary) -> AppDiff {
    let objects = summary
        .entries
        .into_iter()
        .filter_map(|entry| {
            let change = match entry.change {
                ChangeKind::Create => Change::Create,
                ChangeKind::Update => Change::Update,
                ChangeKind::Delete => Change::Delete,
                ChangeKind::Unchanged => return None,
            };
            let o = entry.object;
            Some(ObjectChange {
                api_version: o.api_version(),
                kind: o.kind,
                namespace: o.namespace.unwrap_or_default(),
                name: o.name,
                change,
                diff: entry.diff,
            })
        })
        .collect();
    AppDiff {
        revision,
        create: summary.create,
        update: summary.update,
        delete: summary.delete,
        unchanged: summary.unchanged,
        objects,
    }
}
