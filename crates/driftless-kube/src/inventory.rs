//! The inventory: the list of objects an App owns in a cluster, kept in a
//! ConfigMap per App so that pruning knows what an earlier sync created even
//! when the objects have since left the desired set.
//!
//! A long-running process keeps an [`InventoryCache`] on its [`Target`]: the
//! inventories of a namespace are listed once, then kept current by the
//! process's own writes, so a sync reads no inventory from the API server.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::FIELD_MANAGER;
use crate::object::{ObjectKey, ObjectRef};
use crate::target::{Target, is_not_found};

/// Namespace holding inventories unless the caller names another.
pub const DEFAULT_INVENTORY_NAMESPACE: &str = "driftless-system";
/// Label on an inventory ConfigMap naming its App.
pub const INVENTORY_LABEL: &str = "app.driftless.dev/inventory";
/// Key of the ConfigMap data holding the object list.
const OBJECTS_KEY: &str = "objects";
/// Inventories per page when a namespace's inventories are listed.
const LIST_PAGE: u32 = 500;

/// Why an inventory could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The API server refused or failed a read.
    #[error("reading the inventory of app {app} (ConfigMap {namespace}/{name}): {source}")]
    Read {
        /// The App.
        app: String,
        /// The ConfigMap's namespace.
        namespace: String,
        /// The ConfigMap's name.
        name: String,
        /// What went wrong.
        source: kube::Error,
    },
    /// The API server refused or failed a write.
    #[error("writing the inventory of app {app} (ConfigMap {namespace}/{name}): {source}")]
    Write {
        /// The App.
        app: String,
        /// The ConfigMap's namespace.
        namespace: String,
        /// The ConfigMap's name.
        name: String,
        /// What went wrong.
        source: kube::Error,
    },
    /// Someone else wrote or created the ConfigMap since this process last
    /// read it; the write was refused, and the next read asks the API server.
    #[error(
        "writing the inventory of app {app} (ConfigMap {namespace}/{name}): another process changed it since this one read it; the next attempt reads it again"
    )]
    Changed {
        /// The App.
        app: String,
        /// The ConfigMap's namespace.
        namespace: String,
        /// The ConfigMap's name.
        name: String,
    },
    /// The ConfigMap exists but does not hold an inventory of this App.
    #[error("ConfigMap {namespace}/{name} is not the inventory of app {app}: {detail}")]
    Corrupt {
        /// The App.
        app: String,
        /// The ConfigMap's namespace.
        namespace: String,
        /// The ConfigMap's name.
        name: String,
        /// What is wrong with it.
        detail: String,
    },
}

/// The objects one App owns, as last recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// The recorded objects, sorted.
    pub objects: BTreeSet<ObjectRef>,
}

impl Inventory {
    /// This inventory with `objects` added. An object listed under another
    /// API version is listed under the new one instead, as the one served now.
    pub fn with(&self, objects: impl IntoIterator<Item = ObjectRef>) -> Self {
        let added: BTreeSet<ObjectRef> = objects.into_iter().collect();
        let keys: HashSet<ObjectKey> = added.iter().map(ObjectRef::key).collect();
        let mut merged: BTreeSet<ObjectRef> = self
            .objects
            .iter()
            .filter(|o| !keys.contains(&o.key()))
            .cloned()
            .collect();
        merged.extend(added);
        Self { objects: merged }
    }
}

/// Where an App's inventory lives.
#[derive(Debug, Clone)]
pub struct InventoryStore {
    app: String,
    namespace: String,
    name: String,
}

impl InventoryStore {
    /// The inventory of `app` in `namespace`.
    pub fn new(app: &str, namespace: &str) -> Self {
        Self {
            app: app.to_owned(),
            namespace: namespace.to_owned(),
            name: config_map_name(app),
        }
    }

    /// Name of the ConfigMap.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads the inventory; an absent ConfigMap is an empty inventory.
    pub async fn load(&self, target: &Target) -> Result<Inventory, InventoryError> {
        let found = match target.inventories() {
            Some(cache) => cache.get(target, &self.namespace, &self.name).await,
            None => fetch(target, &self.namespace, &self.name).await,
        }
        .map_err(|source| self.read_error(source))?;
        let Some(cm) = found else {
            return Ok(Inventory::default());
        };
        let owner = cm
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(INVENTORY_LABEL));
        if owner.map(String::as_str) != Some(self.app.as_str()) {
            return Err(self.corrupt(format!("label {INVENTORY_LABEL} is {owner:?}")));
        }
        let text = cm
            .data
            .as_ref()
            .and_then(|d| d.get(OBJECTS_KEY))
            .map_or("[]", String::as_str);
        let objects: Vec<ObjectRef> = serde_json::from_str(text)
            .map_err(|e| self.corrupt(format!("data.{OBJECTS_KEY}: {e}")))?;
        Ok(Inventory {
            objects: objects.into_iter().collect(),
        })
    }

    /// Writes `inventory`, creating the namespace when needed: the namespace
    /// is written only after the API server said it is missing, so an
    /// ordinary save is one request. With a cache, the write is refused
    /// ([`InventoryError::Changed`]) when the ConfigMap is no longer the one
    /// last read or written here.
    pub async fn save(&self, target: &Target, inventory: &Inventory) -> Result<(), InventoryError> {
        let list: Vec<&ObjectRef> = inventory.objects.iter().collect();
        let text = serde_json::to_string(&list).expect("object references always serialize");
        let mut cm = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": self.name, "namespace": self.namespace,
                "labels": {INVENTORY_LABEL: self.app}},
            "data": {OBJECTS_KEY: text},
        });
        let cache = target.inventories();
        let last = match cache {
            Some(cache) => cache.last(&self.namespace, &self.name),
            None => Cached::Unknown,
        };
        let written = match last {
            Cached::Absent => self.create(target, &cm).await,
            Cached::Present(seen) => {
                cm["metadata"]["resourceVersion"] = json!(seen.metadata.resource_version);
                self.apply(target, &cm).await
            }
            Cached::Unknown => self.apply(target, &cm).await,
        };
        match written {
            Ok(written) => {
                if let Some(cache) = cache {
                    cache.put(&self.namespace, &self.name, Cached::Present(kept(written)));
                }
                Ok(())
            }
            Err(e) if is_conflict(&e) => {
                if let Some(cache) = cache {
                    cache.put(&self.namespace, &self.name, Cached::Unknown);
                }
                Err(InventoryError::Changed {
                    app: self.app.clone(),
                    namespace: self.namespace.clone(),
                    name: self.name.clone(),
                })
            }
            Err(source) => Err(self.write_error(source)),
        }
    }

    /// Server-side apply of `cm`, creating the namespace if it is missing.
    async fn apply(
        &self,
        target: &Target,
        cm: &serde_json::Value,
    ) -> Result<ConfigMap, kube::Error> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let api: Api<ConfigMap> = Api::namespaced(target.client().clone(), &self.namespace);
        match api.patch(&self.name, &params, &Patch::Apply(cm)).await {
            Err(e) if is_not_found(&e) => {}
            done => return done,
        }
        self.ensure_namespace(target).await?;
        api.patch(&self.name, &params, &Patch::Apply(cm)).await
    }

    /// Creation of `cm`, refused when it exists already; creates the
    /// namespace if it is missing.
    async fn create(
        &self,
        target: &Target,
        cm: &serde_json::Value,
    ) -> Result<ConfigMap, kube::Error> {
        let made: ConfigMap = serde_json::from_value(cm.clone()).expect("a ConfigMap in JSON");
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        let api: Api<ConfigMap> = Api::namespaced(target.client().clone(), &self.namespace);
        match api.create(&params, &made).await {
            Err(e) if is_not_found(&e) => {}
            done => return done,
        }
        self.ensure_namespace(target).await?;
        api.create(&params, &made).await
    }

    async fn ensure_namespace(&self, target: &Target) -> Result<(), kube::Error> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let namespaces: Api<Namespace> = Api::all(target.client().clone());
        let ns = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": self.namespace}});
        namespaces
            .patch(&self.namespace, &params, &Patch::Apply(&ns))
            .await
            .map(|_| ())
    }

    /// Removes the inventory (after everything it listed is gone).
    pub async fn remove(&self, target: &Target) -> Result<(), InventoryError> {
        let api: Api<ConfigMap> = Api::namespaced(target.client().clone(), &self.namespace);
        let removed = match api.delete(&self.name, &Default::default()).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(source) => Err(self.write_error(source)),
        };
        if let Some(cache) = target.inventories() {
            let now = if removed.is_ok() {
                Cached::Absent
            } else {
                Cached::Unknown
            };
            cache.put(&self.namespace, &self.name, now);
        }
        removed
    }

    fn read_error(&self, source: kube::Error) -> InventoryError {
        InventoryError::Read {
            app: self.app.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        }
    }

    fn write_error(&self, source: kube::Error) -> InventoryError {
        InventoryError::Write {
            app: self.app.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        }
    }

    fn corrupt(&self, detail: String) -> InventoryError {
        InventoryError::Corrupt {
            app: self.app.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            detail,
        }
    }
}

/// What a cache knows of one inventory ConfigMap.
#[derive(Debug, Clone)]
enum Cached {
    /// It did not exist when last listed, read or removed here.
    Absent,
    /// As last listed, read or written here.
    Present(Arc<ConfigMap>),
    /// Not known: the next read asks the API server.
    Unknown,
}

/// The inventories a long-running process reads and writes, listed once per
/// namespace (again after `relist`, so that one deleted by hand is noticed)
/// and in between kept current by the process's own writes. Each write names
/// the `resourceVersion` last seen (or creates, when none existed), so a
/// change made by another process is never overwritten: the write fails with
/// [`InventoryError::Changed`] and the next read asks the API server.
#[derive(Debug)]
pub struct InventoryCache {
    relist: Duration,
    /// Held while a namespace is listed, so it is listed once.
    listing: tokio::sync::Mutex<()>,
    state: Mutex<CacheState>,
}

#[derive(Debug, Default)]
struct CacheState {
    /// When each namespace's inventories were last listed, and whether the
    /// list was allowed.
    listed: HashMap<String, (Instant, bool)>,
    /// By (namespace, name), with the step at which each was learnt; in a
    /// listed namespace a missing entry is absent.
    entries: HashMap<(String, String), (Cached, u64)>,
    /// Counts what the cache learnt, so a list keeps what was learnt while
    /// it ran.
    step: u64,
}

impl InventoryCache {
    /// A cache listing each namespace again once `relist` has passed.
    pub(crate) fn new(relist: Duration) -> Self {
        Self {
            relist,
            listing: tokio::sync::Mutex::new(()),
            state: Mutex::default(),
        }
    }

    /// The ConfigMap `namespace/name`, from the cache when it knows it.
    async fn get(
        &self,
        target: &Target,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<ConfigMap>>, kube::Error> {
        let listed = self.list_when_due(target, namespace).await?;
        match self.last(namespace, name) {
            Cached::Absent if listed => Ok(None),
            Cached::Present(cm) if listed => Ok(Some(cm)),
            // Read from the API server when the cache does not know, or may
            // not list (RBAC): then every read asks and only writes use
            // what was read.
            _ => {
                let found = fetch(target, namespace, name).await?;
                let now = found.clone().map_or(Cached::Absent, Cached::Present);
                self.put(namespace, name, now);
                Ok(found)
            }
        }
    }

    /// Lists the inventories of `namespace` when it was never listed or
    /// its last list is older than `relist`. Returns whether the list was
    /// allowed: an identity that may read inventories but not list them
    /// reads each one as it is needed.
    async fn list_when_due(&self, target: &Target, namespace: &str) -> Result<bool, kube::Error> {
        if let Some(listable) = self.fresh(namespace) {
            return Ok(listable);
        }
        let _listing = self.listing.lock().await;
        if let Some(listable) = self.fresh(namespace) {
            return Ok(listable);
        }
        let began = self.lock().step;
        let api: Api<ConfigMap> = Api::namespaced(target.client().clone(), namespace);
        let mut params = ListParams::default()
            .labels(INVENTORY_LABEL)
            .limit(LIST_PAGE);
        let mut found = Vec::new();
        loop {
            let page = match api.list(&params).await {
                Ok(page) => page,
                Err(e) if is_forbidden(&e) => {
                    let mut state = self.lock();
                    state
                        .listed
                        .insert(namespace.to_owned(), (Instant::now(), false));
                    return Ok(false);
                }
                Err(e) => return Err(e),
            };
            found.extend(page.items);
            match page.metadata.continue_ {
                Some(token) if !token.is_empty() => params = params.continue_token(&token),
                _ => break,
            }
        }
        let mut state = self.lock();
        // The list replaces what was known before it began; what was read
        // or written while it ran is newer than the list.
        state
            .entries
            .retain(|(ns, _), (_, step)| ns != namespace || *step > began);
        for cm in found {
            let Some(name) = cm.metadata.name.clone() else {
                continue;
            };
            state
                .entries
                .entry((namespace.to_owned(), name))
                .or_insert_with(|| (Cached::Present(kept(cm)), began));
        }
        state
            .listed
            .insert(namespace.to_owned(), (Instant::now(), true));
        Ok(true)
    }

    /// Whether `namespace` may be listed, when it was listed (or refused)
    /// less than `relist` ago.
    fn fresh(&self, namespace: &str) -> Option<bool> {
        self.lock()
            .listed
            .get(namespace)
            .filter(|(at, _)| at.elapsed() < self.relist)
            .map(|(_, listable)| *listable)
    }

    /// What the cache knows of `namespace/name`.
    fn last(&self, namespace: &str, name: &str) -> Cached {
        let state = self.lock();
        match state.entries.get(&(namespace.to_owned(), name.to_owned())) {
            Some((cached, _)) => cached.clone(),
            None if state.listed.get(namespace).is_some_and(|(_, l)| *l) => Cached::Absent,
            None => Cached::Unknown,
        }
    }

    fn put(&self, namespace: &str, name: &str, cached: Cached) {
        let mut state = self.lock();
        state.step += 1;
        let step = state.step;
        state
            .entries
            .insert((namespace.to_owned(), name.to_owned()), (cached, step));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The ConfigMap `namespace/name` as the API server has it now, if it exists.
async fn fetch(
    target: &Target,
    namespace: &str,
    name: &str,
) -> Result<Option<Arc<ConfigMap>>, kube::Error> {
    let api: Api<ConfigMap> = Api::namespaced(target.client().clone(), namespace);
    match api.get_opt(name).await {
        Ok(found) => Ok(found.map(kept)),
        // Without its namespace there is no inventory yet.
        Err(e) if is_not_found(&e) => Ok(None),
        Err(source) => Err(source),
    }
}

/// A ConfigMap as the cache keeps it: without its field managers.
fn kept(mut cm: ConfigMap) -> Arc<ConfigMap> {
    cm.metadata.managed_fields = None;
    Arc::new(cm)
}

/// A request RBAC refused.
fn is_forbidden(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403)
}

/// A write refused because the object changed or already exists.
fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// ConfigMap names are lowercase DNS subdomains; App names are label values
/// that may hold capitals and underscores.
fn config_map_name(app: &str) -> String {
    let cleaned: String = app
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            'a'..='z' | '0'..='9' | '-' | '.' => c,
            _ => '-',
        })
        .collect();
    format!("inventory.{cleaned}")
}

#[cfg(test)]
mod tests {
    use super::{Inventory, config_map_name};
    use crate::object::ObjectRef;

    fn object(version: &str, name: &str) -> ObjectRef {
        ObjectRef {
            group: "autoscaling".into(),
            version: version.into(),
            kind: "HorizontalPodAutoscaler".into(),
            namespace: Some("web".into()),
            name: name.into(),
        }
    }

    #[test]
    fn adding_keeps_the_old_objects_and_the_newest_version() {
        let old = Inventory {
            objects: [object("v1", "a"), object("v1", "b")].into(),
        };
        let merged = old.with([object("v2", "b"), object("v2", "c")]);
        let listed: Vec<String> = merged.objects.iter().map(ToString::to_string).collect();
        assert_eq!(
            listed,
            [
                "autoscaling/v1/HorizontalPodAutoscaler/web/a",
                "autoscaling/v2/HorizontalPodAutoscaler/web/b",
                "autoscaling/v2/HorizontalPodAutoscaler/web/c",
            ]
        );
        assert_eq!(merged.with([object("v2", "c")]), merged, "nothing new");
    }

    #[test]
    fn inventory_names_are_dns_subdomains() {
        assert_eq!(config_map_name("web-prod"), "inventory.web-prod");
        assert_eq!(config_map_name("Web_Prod"), "inventory.web-prod");
    }
}
