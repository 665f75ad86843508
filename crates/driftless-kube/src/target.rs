//! A cluster to apply to: its client, an optional impersonated identity, and
//! a discovery cache mapping kinds to API resources.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::inventory::InventoryCache;
use crate::object::ObjectRef;

/// Why a cluster could not be reached or an API resource not resolved.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The kubeconfig file could not be read or has no usable context.
    #[error("reading kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file, or `default` for the standard search.
        path: String,
        /// What went wrong.
        source: kube::config::KubeconfigError,
    },
    /// Neither in-cluster configuration nor a default kubeconfig was found.
    #[error("no cluster configuration found: {0}")]
    NoConfig(String),
    /// In-cluster configuration was asked for outside a pod.
    #[error(
        "in-cluster configuration is unavailable: {missing} (is this process running in a pod?)"
    )]
    NotInCluster {
        /// What a pod would provide and this process lacks.
        missing: String,
    },
    /// The in-cluster configuration a pod provides could not be read.
    #[error("reading the in-cluster configuration: {0}")]
    InCluster(#[source] kube::config::InClusterError),
    /// The HTTP client could not be built from the configuration.
    #[error("building a client for {cluster}: {source}")]
    Client {
        /// The API server URL.
        cluster: String,
        /// What went wrong.
        source: kube::Error,
    },
    /// The API server did not answer a discovery request.
    #[error("discovering the resources of {api_version}: {source}")]
    Discovery {
        /// The group/version asked for.
        api_version: String,
        /// What went wrong.
        source: kube::Error,
    },
    /// The cluster does not serve the kind of an object.
    #[error("{object}: the cluster serves no kind {kind} in {api_version}")]
    UnknownKind {
        /// The object.
        object: String,
        /// Its kind.
        kind: String,
        /// Its apiVersion.
        api_version: String,
    },
    /// An impersonation name is not `NAME` or `NAMESPACE:NAME`.
    #[error("invalid service account {0:?}: expected NAME or NAMESPACE:NAME")]
    ServiceAccount(String),
}

/// An API resource with its scope, as discovery reports it.
#[derive(Debug, Clone)]
pub struct Resource {
    /// The resource: group, version, kind and plural.
    pub api: ApiResource,
    /// Whether objects of this kind live in namespaces.
    pub namespaced: bool,
}

/// A connected cluster. Cheap to clone; clones share the discovery cache.
#[derive(Clone)]
pub struct Target {
    client: Client,
    config: Config,
    /// The identity requests are made as, when impersonating.
    user: Option<String>,
    discovery: Arc<Mutex<HashMap<String, Arc<APIResourceList>>>>,
    /// Inventories kept in memory, for a process that syncs again and again.
    inventories: Option<Arc<InventoryCache>>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("cluster", &self.config.cluster_url.to_string())
            .field("user", &self.user)
            .finish()
    }
}

/// Where a pod finds its ServiceAccount's token, CA and namespace.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// `err` followed by each cause its message leaves out: a failed request
/// shows as `client error (Connect)` while the refused connection, the DNS
/// failure or the certificate problem is only in its sources.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        let part = e.to_string();
        if !part.is_empty() && !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = e.source();
    }
    text
}

/// Whether `err` failed before any API server answered: the connection or
/// the name lookup failed, or the connection broke.
pub fn is_unreachable(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(kube::Error::Api(_)) = e.downcast_ref::<kube::Error>() {
            return false;
        }
        // Connect, lookup and read failures all end in an I/O error.
        if e.downcast_ref::<std::io::Error>().is_some() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// How long a single API request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl Target {
    /// Connects with a kubeconfig file (or the default search: `KUBECONFIG`,
    /// `~/.kube/config`, in-cluster) and an optional context.
    pub async fn connect(
        kubeconfig: Option<&Path>,
        context: Option<&str>,
    ) -> Result<Self, TargetError> {
        let options = KubeConfigOptions {
            context: context.map(str::to_owned),
            ..KubeConfigOptions::default()
        };
        let config = match kubeconfig {
            Some(path) => {
                let fail = |source| TargetError::Kubeconfig {
                    path: path.display().to_string(),
                    source,
                };
                let kc = Kubeconfig::read_from(path).map_err(fail)?;
                Config::from_custom_kubeconfig(kc, &options)
                    .await
                    .map_err(fail)?
            }
            None if context.is_some() => {
                Config::from_kubeconfig(&options).await.map_err(|source| {
                    TargetError::Kubeconfig {
                        path: "default".to_owned(),
                        source,
                    }
                })?
            }
            None => Config::infer()
                .await
                .map_err(|e| TargetError::NoConfig(e.to_string()))?,
        };
        Self::from_config(config)
    }

    /// Connects with the ServiceAccount a pod is given: the API server from
    /// `KUBERNETES_SERVICE_HOST`/`_PORT`, the token and CA from
    /// [`SERVICE_ACCOUNT_DIR`]. Outside a pod this fails and says what is missing.
    pub fn in_cluster() -> Result<Self, TargetError> {
        let host = std::env::var_os("KUBERNETES_SERVICE_HOST").filter(|h| !h.is_empty());
        let token = Path::new(SERVICE_ACCOUNT_DIR).join("token");
        let missing = match (host.is_some(), token.is_file()) {
            (true, true) => None,
            (false, true) => Some("KUBERNETES_SERVICE_HOST is not set".to_owned()),
            (true, false) => Some(format!("no service-account token at {}", token.display())),
            (false, false) => Some(format!(
                "KUBERNETES_SERVICE_HOST is not set and there is no service-account token at {}",
                token.display()
            )),
        };
        if let Some(missing) = missing {
            return Err(TargetError::NotInCluster { missing });
        }
        Self::from_config(Config::incluster().map_err(TargetError::InCluster)?)
    }

    /// A target from a ready client configuration.
    pub fn from_config(mut config: Config) -> Result<Self, TargetError> {
        config.read_timeout = Some(REQUEST_TIMEOUT);
        config.write_timeout = Some(REQUEST_TIMEOUT);
        let client =
            crate::requests::client(config.clone()).map_err(|source| TargetError::Client {
                cluster: config.cluster_url.to_string(),
                source,
            })?;
        Ok(Self {
            user: config.auth_info.impersonate.clone(),
            client,
            config,
            discovery: Arc::default(),
            inventories: None,
        })
    }

    /// The same cluster, with every request made as ServiceAccount
    /// `account` (`NAME` in `namespace`, or `NAMESPACE:NAME`).
    pub fn impersonate(&self, account: &str, namespace: &str) -> Result<Self, TargetError> {
        let (ns, name) = account.split_once(':').unwrap_or((namespace, account));
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.".contains(c))
        };
        if !valid(ns) || !valid(name) {
            return Err(TargetError::ServiceAccount(account.to_owned()));
        }
        let mut config = self.config.clone();
        config.auth_info.impersonate = Some(format!("system:serviceaccount:{ns}:{name}"));
        config.auth_info.impersonate_groups = Some(vec![
            "system:serviceaccounts".to_owned(),
            format!("system:serviceaccounts:{ns}"),
            "system:authenticated".to_owned(),
        ]);
        let mut target = Self::from_config(config)?;
        // The discovered resources do not depend on who asks.
        target.discovery = Arc::clone(&self.discovery);
        target.inventories.clone_from(&self.inventories);
        Ok(target)
    }

    /// This target, keeping the inventories it reads and writes in memory
    /// (shared by its clones): each namespace's inventories are listed once,
    /// and again after `relist`, instead of each being read before every
    /// sync. For long-running processes; a one-off command reads only the
    /// inventory it needs.
    #[must_use]
    pub fn with_inventory_cache(mut self, relist: Duration) -> Self {
        self.inventories = Some(Arc::new(InventoryCache::new(relist)));
        self
    }

    /// The inventory cache, if this target keeps one.
    pub(crate) fn inventories(&self) -> Option<&InventoryCache> {
        self.inventories.as_deref()
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The impersonated user, if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The namespace the kubeconfig context names (`default` otherwise).
    pub fn default_namespace(&self) -> &str {
        &self.config.default_namespace
    }

    /// The API server URL.
    pub fn cluster_url(&self) -> String {
        self.config.cluster_url.to_string()
    }

    /// The resource serving `object`'s kind. A kind missing from the cached
    /// list triggers one fresh discovery of its group/version, which is how
    /// kinds of newly established CRDs become known.
    pub async fn resolve(&self, object: &ObjectRef) -> Result<Resource, TargetError> {
        let api_version = object.api_version();
        if let Some(found) = self.cached(&api_version, &object.kind) {
            return Ok(found);
        }
        self.forget(&api_version);
        self.discover(&api_version).await?;
        self.cached(&api_version, &object.kind)
            .ok_or_else(|| TargetError::UnknownKind {
                object: object.to_string(),
                kind: object.kind.clone(),
                api_version,
            })
    }

    /// Like [`Target::resolve`], but `None` when the kind is not served.
    pub async fn try_resolve(&self, object: &ObjectRef) -> Result<Option<Resource>, TargetError> {
        match self.resolve(object).await {
            Ok(r) => Ok(Some(r)),
            Err(TargetError::UnknownKind { .. }) => Ok(None),
            Err(TargetError::Discovery { source, .. }) if is_not_found(&source) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Waits until `kind` in `api_version` is served, rediscovering its
    /// group/version every 100 ms. A CRD's group can still answer 404 for a
    /// moment after the CRD is Established, while the API server's discovery
    /// catches up. `Ok(false)` when `timeout` passes first.
    pub async fn wait_served(
        &self,
        api_version: &str,
        kind: &str,
        timeout: Duration,
    ) -> Result<bool, TargetError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.forget(api_version);
            match self.discover(api_version).await {
                Ok(()) if self.cached(api_version, kind).is_some() => return Ok(true),
                Ok(()) => {}
                Err(TargetError::Discovery { source, .. }) if is_not_found(&source) => {}
                Err(e) => return Err(e),
            }
            if tokio::time::Instant::now() >= deadline {
                self.forget(api_version);
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Drops the cached resources of one group/version.
    pub fn forget(&self, api_version: &str) {
        self.lock_discovery().remove(api_version);
    }

    /// A dynamic API for `resource`, namespaced when it is and `namespace` is given.
    pub fn api(&self, resource: &Resource, namespace: Option<&str>) -> Api<DynamicObject> {
        match (resource.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &resource.api),
            _ => Api::all_with(self.client.clone(), &resource.api),
        }
    }

    fn lock_discovery(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<APIResourceList>>> {
        // A panic while holding the lock cannot leave the map half-written.
        self.discovery
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cached(&self, api_version: &str, kind: &str) -> Option<Resource> {
        let list = self.lock_discovery().get(api_version).cloned()?;
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        list.resources
            .iter()
            .find(|r| r.kind == kind && !r.name.contains('/'))
            .map(|r| Resource {
                api: ApiResource {
                    group: group.to_owned(),
                    version: version.to_owned(),
                    api_version: api_version.to_owned(),
                    kind: kind.to_owned(),
                    plural: r.name.clone(),
                },
                namespaced: r.namespaced,
            })
    }

    async fn discover(&self, api_version: &str) -> Result<(), TargetError> {
        let list = if api_version.contains('/') {
            self.client.list_api_group_resources(api_version).await
        } else {
            self.client.list_core_api_resources(api_version).await
        }
        .map_err(|source| TargetError::Discovery {
            api_version: api_version.to_owned(),
            source,
        })?;
        self.lock_discovery()
            .insert(api_version.to_owned(), Arc::new(list));
        Ok(())
    }
}

/// Whether an API error is a 404.
pub(crate) fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// A listed object as JSON with its apiVersion and kind, which list items lack.
pub(crate) fn typed(item: DynamicObject, resource: &Resource) -> serde_json::Value {
    let mut value = serde_json::to_value(item).expect("objects serialize");
    value["apiVersion"] = serde_json::Value::String(resource.api.api_version.clone());
    value["kind"] = serde_json::Value::String(resource.api.kind.clone());
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn errors_name_the_kubeconfig_and_the_account() {
        let missing = Path::new("/nonexistent/driftless/kubeconfig");
        let err = Target::connect(Some(missing), None)
            .await
            .expect_err("no such file");
        assert!(
            err.to_string()
                .starts_with("reading kubeconfig /nonexistent/driftless/kubeconfig: "),
            "{err}"
        );
        let config = Config::new("https://127.0.0.1:1".parse().expect("valid uri"));
        let target = Target::from_config(config).expect("a client needs no connection");
        let err = target.impersonate("Bad Name", "ns").expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "invalid service account \"Bad Name\": expected NAME or NAMESPACE:NAME"
        );
        let tenant = target.impersonate("team-a:deployer", "ns").expect("valid");
        assert_eq!(tenant.user(), Some("system:serviceaccount:team-a:deployer"));
        let local = target.impersonate("deployer", "web").expect("valid");
        assert_eq!(local.user(), Some("system:serviceaccount:web:deployer"));
    }
}
