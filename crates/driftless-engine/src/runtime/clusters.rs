//! Connections to the clusters Apps deploy to, each with one shared drift watch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use driftless_api::Config;
use driftless_kube::{DriftWatch, Target};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use tokio::sync::Mutex;

use super::spec::SecretData;
use driftless_api::status::{ClusterStatus, READY};

use crate::store::{Condition, ConditionStatus, Named};

/// How long a status probe waits for a cluster's API server.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// The condition reason and message of a failed request to this
    /// cluster, with its causes: `reason`, or `ClusterUnreachable` with the
    /// Cluster and its address when no API server answered.
    pub(crate) fn explain(
        &self,
        err: &(dyn std::error::Error + 'static),
        reason: &'static str,
    ) -> (&'static str, String) {
        let chain = driftless_kube::error_chain(err);
        if driftless_kube::is_unreachable(err) {
            let message = format!(
                "{} at {} is unreachable: {chain}",
                self.label,
                self.target.cluster_url()
            );
            ("ClusterUnreachable", message)
        } else {
            (reason, chain)
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
    ) -> Result<Arc<Cluster>, String> {
        let (key, path, context, in_cluster) = match name {
            None => (DEFAULT.to_owned(), None, None, false),
            Some(name) => {
                let cluster = config
                    .cluster(name)
                    .ok_or_else(|| format!("Cluster {name} is not declared"))?;
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
        .map_err(|e| format!("connecting to {label}: {e}"))?;
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
        probed: Result<String, String>,
    ) -> Named<ClusterStatus> {
        let (status, reason, message, version) = match probed {
            Ok(version) => (
                ConditionStatus::True,
                "Connected",
                format!("API server {version} answered"),
                Some(version),
            ),
            Err(e) => (ConditionStatus::False, "Unreachable", e, None),
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
pub(crate) async fn probe(target: &Target) -> Result<String, String> {
    match tokio::time::timeout(PROBE_TIMEOUT, target.client().apiserver_version()).await {
        Ok(Ok(info)) => Ok(info.git_version),
        Ok(Err(e)) => Err(format!("asking for the server version: {e}")),
        Err(_) => Err(format!("no answer within {}s", PROBE_TIMEOUT.as_secs())),
    }
}

/// The data of Secret `namespace/name`, decoded.
pub(crate) async fn secret(
    target: &Target,
    namespace: &str,
    name: &str,
) -> Result<SecretData, String> {
    let api: Api<Secret> = Api::namespaced(target.client().clone(), namespace);
    let secret = api
        .get(name)
        .await
        .map_err(|e| format!("reading Secret {namespace}/{name}: {e}"))?;
    let mut data = SecretData::new();
    for (key, value) in secret.data.unwrap_or_default() {
        let text = String::from_utf8(value.0)
            .map_err(|_| format!("Secret {namespace}/{name}: key {key} is not UTF-8 text"))?;
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
) -> Result<SecretData, String> {
    let api: Api<ConfigMap> = Api::namespaced(target.client().clone(), namespace);
    let map = api
        .get(name)
        .await
        .map_err(|e| format!("reading ConfigMap {namespace}/{name}: {e}"))?;
    Ok(map.data.unwrap_or_default().into_iter().collect())
}
