//! Connections to the clusters Apps deploy to, each with one shared drift watch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use driftless_api::Config;
use driftless_kube::{ApplyError, DriftWatch, Target, TargetError, WaitError};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use tokio::sync::Mutex;

use super::error::ReconcileError;
use super::spec::SecretData;
use driftless_api::status::{ClusterStatus, READY};

use crate::store::{Condition, ConditionStatus, Named};

/// How long a cluster's listed inventories are trusted before they are
/// listed again (in between, this process's own writes keep them current; a
/// write after another process's change is refused and read again).
const INVENTORY_RELIST: Duration = Duration::from_secs(300);

/// How long a status probe waits for a cluster's API server.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a cluster could not be connected to, probed or read from.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClusterError {
    /// An App names a Cluster the config does not declare.
    #[error("Cluster {0} is not declared")]
    NotDeclared(String),
    /// No client could be made for the cluster.
    #[error("connecting to {label}: {source}")]
    Connect {
        /// How messages name the cluster.
        label: String,
        /// What went wrong.
        source: Box<TargetError>,
    },
    /// The API server refused or failed the version request of a probe.
    #[error("asking for the server version: {0}")]
    Version(#[source] kube::Error),
    /// The API server did not answer a probe in time.
    #[error("no answer within {}s", .0.as_secs())]
    NoAnswer(Duration),
    /// A Secret or ConfigMap could not be read.
    #[error("reading {kind} {namespace}/{name}: {source}")]
    Read {
        /// `Secret` or `ConfigMap`.
        kind: &'static str,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// What went wrong.
        source: Box<kube::Error>,
    },
    /// A Secret value is binary where text is needed.
    #[error("Secret {namespace}/{name}: key {key} is not UTF-8 text")]
    NotText {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The key at fault.
        key: String,
    },
}

/// A connected cluster and its drift watch.
pub(crate) struct Cluster {
    /// The API client.
    pub(crate) target: Target,
    /// Watches shared by every App on this cluster.
    pub(crate) watch: DriftWatch,
    /// How messages name it: `Cluster NAME` or `the default cluster`.
    pub(crate) label: String,
}

impl Cluster {
    /// A failed apply to this cluster: [`ReconcileError::Unreachable`]
    /// when no API server answered.
    pub(crate) fn apply_failed(&self, err: ApplyError) -> ReconcileError {
        if driftless_kube::is_unreachable(&err) {
            self.unreachable(Box::new(err))
        } else {
            ReconcileError::Apply(err)
        }
    }

    /// A failed health read of this cluster's objects:
    /// [`ReconcileError::Unreachable`] when no API server answered.
    pub(crate) fn health_failed(&self, err: WaitError) -> ReconcileError {
        if driftless_kube::is_unreachable(&err) {
            self.unreachable(Box::new(err))
        } else {
            ReconcileError::HealthCheck(err)
        }
    }

    fn unreachable(&self, source: Box<dyn std::error::Error + Send + Sync>) -> ReconcileError {
        ReconcileError::Unreachable {
            cluster: self.label.clone(),
            url: self.target.cluster_url(),
            source,
        }
    }
}

/// Clusters by their connection settings; connected on first use.
#[derive(Default)]
pub(crate) struct Clusters {
    connected: Mutex<HashMap<String, Arc<Cluster>>>,
    /// The last probe of each declared Cluster, for transition times.
    probed: std::sync::Mutex<HashMap<String, Named<ClusterStatus>>>,
}

/// The name the default cluster (no `destination.cluster`) goes by.
const DEFAULT: &str = "(default)";

impl Clusters {
    /// The cluster named `name` in `config` (the default cluster for `None`),
    /// connecting when first asked. `on_new` receives the drift watch of a
    /// new connection, to subscribe to, and how messages name the cluster.
    pub(crate) async fn get(
        &self,
        config: &Config,
        name: Option<&str>,
        on_new: impl FnOnce(&DriftWatch, &str),
    ) -> Result<Arc<Cluster>, ClusterError> {
        let (key, path, context, in_cluster) = match name {
            None => (DEFAULT.to_owned(), None, None, false),
            Some(name) => {
                let cluster = config
                    .cluster(name)
                    .ok_or_else(|| ClusterError::NotDeclared(name.to_owned()))?;
                let spec = &cluster.spec;
                let path = spec.kubeconfig.as_ref().map(|k| k.path.clone());
                let context = spec.kubeconfig.as_ref().and_then(|k| k.context.clone());
                // Settings in the key make a changed Cluster connect afresh.
                let key = format!("{name}|{path:?}|{context:?}|{}", spec.in_cluster);
                (key, path, context, spec.in_cluster)
            }
        };
        let mut connected = self.connected.lock().await;
        if let Some(cluster) = connected.get(&key) {
            return Ok(cluster.clone());
        }
        let label = name.map_or_else(
            || "the default cluster".to_owned(),
            |n| format!("Cluster {n}"),
        );
        let target = if in_cluster {
            // Never the kubeconfig: a Cluster that says in-cluster means the
            // pod's own API server, and outside a pod that is an error.
            Target::in_cluster()
        } else {
            Target::connect(
                path.as_deref().map(std::path::Path::new),
                context.as_deref(),
            )
            .await
        }
        .map_err(|source| ClusterError::Connect {
            label: label.clone(),
            source: Box::new(source),
        })?
        // Synced again and again: inventories are listed, then kept.
        .with_inventory_cache(INVENTORY_RELIST);
        let watch = DriftWatch::start(target.clone());
        on_new(&watch, &label);
        let cluster = Arc::new(Cluster {
            target,
            watch,
            label,
        });
        connected.insert(key, cluster.clone());
        Ok(cluster)
    }

    /// Records the outcome of probing Cluster `name`: its server version or
    /// why it could not be reached. Keeps the transition time of an
    /// unchanged `Ready`.
    pub(crate) fn record(
        &self,
        name: &str,
        probed: Result<String, ClusterError>,
    ) -> Named<ClusterStatus> {
        let (status, reason, message, version) = match probed {
            Ok(version) => (
                ConditionStatus::True,
                "Connected",
                format!("API server {version} answered"),
                Some(version),
            ),
            Err(e) => (ConditionStatus::False, "Unreachable", e.to_string(), None),
        };
        let mut probed = self
            .probed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut conditions = probed
            .get(name)
            .map(|s| s.status.conditions.clone())
            .unwrap_or_default();
        let ready = Condition::new(READY, status, reason, message);
        driftless_api::status::set_condition(&mut conditions, ready);
        let state = Named::new(
            name,
            ClusterStatus {
                conditions,
                server_version: version,
            },
        );
        probed.insert(name.to_owned(), state.clone());
        state
    }

    /// Turns self-heal of `app` on or off on every cluster.
    pub(crate) async fn set_self_heal(&self, app: &str, on: bool) {
        for cluster in self.connected.lock().await.values() {
            cluster.watch.set_self_heal(app, on);
        }
    }

    /// Stops drift reports for `app` on every cluster.
    pub(crate) async fn untrack(&self, app: &str) {
        for cluster in self.connected.lock().await.values() {
            cluster.watch.untrack(app);
        }
    }
}

/// Asks the API server of `target` for its version, within [`PROBE_TIMEOUT`].
pub(crate) async fn probe(target: &Target) -> Result<String, ClusterError> {
    match tokio::time::timeout(PROBE_TIMEOUT, target.client().apiserver_version()).await {
        Ok(Ok(info)) => Ok(info.git_version),
        Ok(Err(e)) => Err(ClusterError::Version(e)),
        Err(_) => Err(ClusterError::NoAnswer(PROBE_TIMEOUT)),
    }
}

/// The data of Secret `namespace/name`, decoded.
pub(crate) async fn secret(
    target: &Target,
    namespace: &str,
    name: &str,
) -> Result<SecretData, ClusterError> {
    let api: Api<Secret> = Api::namespaced(target.client().clone(), namespace);
    let secret = api
        .get(name)
        .await
        .map_err(read_error("Secret", namespace, name))?;
    let mut data = SecretData::new();
    for (key, value) in secret.data.unwrap_or_default() {
        let text = String::from_utf8(value.0).map_err(|_| ClusterError::NotText {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            key: key.clone(),
        })?;
        data.insert(key, text);
    }
    data.extend(secret.string_data.unwrap_or_default());
    Ok(data)
}

/// The data of ConfigMap `namespace/name`.
pub(crate) async fn config_map(
    target: &Target,
    namespace: &str,
    name: &str,
) -> Result<SecretData, ClusterError> {
    let api: Api<ConfigMap> = Api::namespaced(target.client().clone(), namespace);
    let map = api
        .get(name)
        .await
        .map_err(read_error("ConfigMap", namespace, name))?;
    Ok(map.data.unwrap_or_default().into_iter().collect())
}

fn read_error<'a>(
    kind: &'static str,
    namespace: &'a str,
    name: &'a str,
) -> impl FnOnce(kube::Error) -> ClusterError + 'a {
    move |source| ClusterError::Read {
        kind,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        source: Box::new(source),
    }
}
