//! The custom resources the controller reads, kept current by watches.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use driftless_api::{
    AppSpec, ClusterSpec, GROUP, GitSourceSpec, HelmRepositorySpec, HostSpec, Kind, NotifierSpec,
    OciSourceSpec, ReceiverSpec, SyncWindowSpec, VERSION,
};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PartialObjectMeta};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::Notify;

/// Label that assigns an object to a shard (`--shard KEY`).
pub const SHARD_LABEL: &str = "sharding.driftless.dev/key";

/// A kind of custom resource the controller reconciles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CrKind {
    /// GitSource.
    GitSource,
    /// App.
    App,
    /// Cluster.
    Cluster,
    /// Receiver.
    Receiver,
    /// Notifier.
    Notifier,
    /// Host.
    Host,
    /// SyncWindow.
    SyncWindow,
    /// HelmRepository.
    HelmRepository,
    /// OCISource.
    OciSource,
}

impl CrKind {
    /// Every kind, in the order their objects are read.
    pub const ALL: [Self; 9] = [
        Self::GitSource,
        Self::App,
        Self::Cluster,
        Self::Receiver,
        Self::Notifier,
        Self::Host,
        Self::SyncWindow,
        Self::HelmRepository,
        Self::OciSource,
    ];

    /// The `kind` value.
    pub fn kind(self) -> &'static str {
        match self {
            Self::GitSource => GitSourceSpec::KIND,
            Self::App => AppSpec::KIND,
            Self::Cluster => ClusterSpec::KIND,
            Self::Receiver => ReceiverSpec::KIND,
            Self::Notifier => NotifierSpec::KIND,
            Self::Host => HostSpec::KIND,
            Self::SyncWindow => SyncWindowSpec::KIND,
            Self::HelmRepository => HelmRepositorySpec::KIND,
            Self::OciSource => OciSourceSpec::KIND,
        }
    }

    /// The plural resource name.
    pub fn plural(self) -> &'static str {
        match self {
            Self::GitSource => GitSourceSpec::PLURAL,
            Self::App => AppSpec::PLURAL,
            Self::Cluster => ClusterSpec::PLURAL,
            Self::Receiver => ReceiverSpec::PLURAL,
            Self::Notifier => NotifierSpec::PLURAL,
            Self::Host => HostSpec::PLURAL,
            Self::SyncWindow => SyncWindowSpec::PLURAL,
            Self::HelmRepository => HelmRepositorySpec::PLURAL,
            Self::OciSource => OciSourceSpec::PLURAL,
        }
    }

    /// The API resource, for dynamic clients.
    pub fn resource(self) -> ApiResource {
        let gvk = GroupVersionKind::gvk(GROUP, VERSION, self.kind());
        ApiResource::from_gvk_with_plural(&gvk, self.plural())
    }
}

/// Which objects this instance reconciles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Only this namespace (`--watch-namespace`); every namespace when `None`.
    pub namespace: Option<String>,
    /// Only objects labelled with this shard key (`--shard`); without one,
    /// only objects with no shard label.
    pub shard: Option<String>,
}

impl Scope {
    /// The label selector of the shard.
    pub fn selector(&self) -> String {
        match &self.shard {
            Some(key) => format!("{SHARD_LABEL}={key}"),
            None => format!("!{SHARD_LABEL}"),
        }
    }

    /// An API for `resource` over the watched namespaces.
    pub fn api(&self, client: Client, resource: &ApiResource) -> Api<DynamicObject> {
        match &self.namespace {
            Some(ns) => Api::namespaced_with(client, ns, resource),
            None => Api::all_with(client, resource),
        }
    }
}

/// One custom resource as the watch last saw it.
#[derive(Debug, Clone)]
pub struct CrObject {
    /// Its kind.
    pub kind: CrKind,
    /// The object.
    pub object: Arc<DynamicObject>,
}

impl CrObject {
    /// Its namespace (custom resources of driftless are namespaced).
    pub fn namespace(&self) -> String {
        self.object.namespace().unwrap_or_default()
    }

    /// Its name.
    pub fn name(&self) -> String {
        self.object.name_any()
    }

    /// The engine's name of it, `NAMESPACE.NAME`.
    pub fn qualified(&self) -> String {
        driftless_api::qualified_name(&self.namespace(), &self.name())
    }

    /// Whether it is being deleted.
    pub fn deleting(&self) -> bool {
        self.object.metadata.deletion_timestamp.is_some()
    }
}

/// The resourceVersion of each Secret, by namespace and name.
pub type SecretVersions = BTreeMap<(String, String), String>;

/// Local copies of the watched objects; every change wakes `changed`.
pub struct Cache {
    stores: Vec<(CrKind, Store<DynamicObject>)>,
    secrets: Store<PartialObjectMeta<Secret>>,
}

impl Cache {
    /// Starts a watch per kind (within `scope`) and one on Secret metadata.
    pub fn start(client: &Client, scope: &Scope, changed: Arc<Notify>) -> Self {
        let selector = scope.selector();
        let mut stores = Vec::new();
        for kind in CrKind::ALL {
            let resource = kind.resource();
            let api = scope.api(client.clone(), &resource);
            let writer = reflector::store::Writer::new(resource);
            stores.push((kind, writer.as_reader()));
            let config = watcher::Config::default().labels(&selector);
            let stream = reflector::reflector(writer, watcher(api, config).default_backoff());
            tokio::spawn(drain_objects(stream, kind.plural(), changed.clone()));
        }
        let secrets_api: Api<PartialObjectMeta<Secret>> = match &scope.namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let (secrets, writer) = reflector::store();
        let stream = reflector::reflector(
            writer,
            watcher(secrets_api, watcher::Config::default()).default_backoff(),
        );
        tokio::spawn(drain(stream, "secrets", changed));
        Self { stores, secrets }
    }

    /// Waits until every watch has listed its objects once.
    pub async fn wait_until_ready(&self) {
        for (_, store) in &self.stores {
            let _ = store.wait_until_ready().await;
        }
        let _ = self.secrets.wait_until_ready().await;
    }

    /// Every watched object, by kind.
    pub fn objects(&self) -> Vec<CrObject> {
        let mut out = Vec::new();
        for (kind, store) in &self.stores {
            out.extend(store.state().into_iter().map(|object| CrObject {
                kind: *kind,
                object,
            }));
        }
        out
    }

    /// The resourceVersion of every Secret, by namespace and name.
    pub fn secret_versions(&self) -> SecretVersions {
        self.secrets
            .state()
            .iter()
            .map(|s| {
                let key = (s.namespace().unwrap_or_default(), s.name_any());
                (key, s.resource_version().unwrap_or_default())
            })
            .collect()
    }
}

/// Runs a watch stream of custom resources, waking `changed` when an object
/// comes, goes, or changes other than in its status: the controller's own status
/// writes need no pass of their own.
async fn drain_objects<S>(stream: S, what: &'static str, changed: Arc<Notify>)
where
    S: futures_util::Stream<Item = Result<watcher::Event<DynamicObject>, watcher::Error>>,
{
    let mut seen: HashMap<(Option<String>, Option<String>), u64> = HashMap::new();
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        let news = match event {
            Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                let key = (
                    object.metadata.namespace.clone(),
                    object.metadata.name.clone(),
                );
                seen.insert(key, outside_status(&object)) != Some(outside_status(&object))
            }
            Ok(watcher::Event::Delete(object)) => {
                let key = (
                    object.metadata.namespace.clone(),
                    object.metadata.name.clone(),
                );
                seen.remove(&key);
                true
            }
            Ok(watcher::Event::Init) => {
                seen.clear();
                false
            }
            Ok(watcher::Event::InitDone) => true,
            Err(e) => {
                tracing::warn!("watching {what}: {e}");
                false
            }
        };
        if news {
            changed.notify_one();
        }
    }
}

/// A hash of what a pass reads from an object besides its status.
fn outside_status(object: &DynamicObject) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let meta = &object.metadata;
    let mut hasher = DefaultHasher::new();
    (&meta.uid, meta.generation, &meta.labels, &meta.annotations).hash(&mut hasher);
    (&meta.finalizers, meta.deletion_timestamp.is_some()).hash(&mut hasher);
    hasher.finish()
}

/// Runs a watch stream, waking `changed` on every event.
async fn drain<S, T>(stream: S, what: &'static str, changed: Arc<Notify>)
where
    S: futures_util::Stream<Item = Result<T, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(_) => changed.notify_one(),
            Err(e) => tracing::warn!("watching {what}: {e}"),
        }
    }
}
