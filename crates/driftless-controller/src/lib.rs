//! `driftless controller`: the engine of `driftless serve` with its desired state
//! read from custom resources in the cluster.
//!
//! Watches keep a local copy of the GitSources, Apps, Clusters, Receivers, Notifiers and Hosts in
//! scope (a namespace or all, a shard or the unsharded objects). On every change
//! the objects become one config (invalid ones left out, each with its reasons
//! in its status) that the engine takes; Apps are removed from the engine only
//! through their deletion, which a finalizer holds until pruning is done. Status
//! goes back to the status subresource when it changed, with Events for syncs,
//! failures, health changes, rollbacks and drift. With leader election only the
//! holder of the Lease reconciles and writes; a standby serves reads and answers
//! changes with 503.

pub mod desired;
pub mod install;
pub mod objects;
pub mod status;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use driftless_api::history::SyncTrigger;
use driftless_api::status::ClusterStatus;
use driftless_api::{Config, ServerSpec};
use driftless_engine::control::{AppControl, EngineControl};
use driftless_engine::runtime::{Absent, Engine, Removal, Removed, RenderWorker};
use driftless_kube::lease::{Leadership, LeaseSettings};
use driftless_server::serve::{Desired, Running, ServeError, ServeOptions};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;

use crate::desired::{ObjectKey, key_of};
use crate::objects::{Cache, CrKind, CrObject, SecretVersions};
pub use crate::objects::{SHARD_LABEL, Scope};
use crate::status::StatusWriter;

/// Finalizer on every App: its deletion waits until the engine removed it
/// (and, with prune, deleted its objects).
pub const FINALIZER: &str = "driftless.dev/finalizer";
/// Annotation whose change asks for a reconcile now (any new value).
pub const REQUESTED_AT: &str = "driftless.dev/reconcile-requested-at";
/// How often the objects are looked at without a change (status, finalizers).
const TICK: Duration = Duration::from_secs(1);
/// Changes closer together than this are taken in one pass.
const SETTLE: Duration = Duration::from_millis(100);
/// Status changes in the engine closer together than this are written at once
/// (an App that starts and ends its sync within it is written once).
const STATUS_SETTLE: Duration = Duration::from_millis(300);
/// How often Clusters are probed for their status (and whenever the config changes).
const CLUSTER_PROBE: Duration = Duration::from_secs(30);
/// Wait before deleting an App's objects again after a failure.
const REMOVAL_RETRY: Duration = Duration::from_secs(10);
/// Finalizer patches in flight at once.
const PARALLEL_PATCHES: usize = 16;

/// Settings of one `driftless controller` run.
pub struct ControllerOptions {
    /// Client for the cluster holding the custom resources.
    pub client: Client,
    /// Which objects this instance reconciles.
    pub scope: Scope,
    /// Whether references may name objects of other namespaces.
    pub cross_namespace_refs: bool,
    /// Leader election on this Lease; `None` reconciles at once.
    pub leader_election: Option<LeaseSettings>,
    /// This instance's name in Events and the Lease.
    pub identity: String,
    /// Server settings (listen address, tokens, retention, render bounds).
    pub server: ServerSpec,
    /// State directory (`--data-dir`).
    pub data_dir: Option<PathBuf>,
    /// Listen address (`--listen`).
    pub listen: Option<SocketAddr>,
    /// The process that evaluates Jsonnet Apps within the render bounds.
    pub render_worker: Option<RenderWorker>,
    /// Called with the bound address once the server answers.
    pub on_ready: Box<dyn FnOnce(SocketAddr) + Send>,
}

/// Why the controller stopped.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The server or engine failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// Another instance holds the Lease now.
    #[error("lost the leadership of Lease {0}; stopping so that the new leader alone reconciles")]
    LostLeadership(String),
    /// The server stopped before the engine ran.
    #[error("the server stopped before the engine started")]
    NotStarted,
}

/// Runs until `shutdown` completes (or the leadership is lost).
pub async fn run(
    opts: ControllerOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ControllerError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let on_signal = stop_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = on_signal.send(true);
    });
    let (attached_tx, attached_rx) = oneshot::channel();
    let serve_opts = ServeOptions {
        desired: Desired::Given {
            config: Box::new(Config::from_documents(Vec::new()).expect("an empty config is valid")),
            spec: Box::new(opts.server.clone()),
            attach: Box::new(move |running| {
                let _ = attached_tx.send(running);
            }),
        },
        data_dir: opts.data_dir.clone(),
        listen: opts.listen,
        on_ready: opts.on_ready,
        render_worker: opts.render_worker.clone(),
        concurrency: None,
    };
    let mut server_stop = stop_rx.clone();
    let mut server = tokio::spawn(driftless_server::serve::run(serve_opts, async move {
        let _ = server_stop.wait_for(|stop| *stop).await;
    }));
    let running = tokio::select! {
        attached = attached_rx => attached.map_err(|_| ControllerError::NotStarted),
        served = &mut server => return served_result(served),
    };
    let running = match running {
        Ok(running) => running,
        Err(e) => return Err(served_result(server.await).err().unwrap_or(e)),
    };
    let leadership = opts.leader_election.clone().map(|settings| {
        (
            settings.clone(),
            driftless_kube::lease::elect(opts.client.clone(), settings),
        )
    });
    let changed = Arc::new(Notify::new());
    let cache = Cache::start(&opts.client, &opts.scope, changed.clone());
    let mut controller = Controller {
        status: StatusWriter::new(opts.client.clone(), &opts.identity),
        client: opts.client,
        cross_namespace: opts.cross_namespace_refs,
        running,
        cache,
        changed,
        removals: HashMap::new(),
        retry_removal: HashMap::new(),
        requested: HashMap::new(),
        desired: None,
        secrets: None,
        probed: None,
        probing: None,
        clusters: Arc::default(),
        receivers: None,
    };
    let outcome = controller.lead_and_run(leadership.as_ref(), stop_rx).await;
    controller.running.set_ready(false);
    // Deposed or stopped: the server and the engine stop too.
    let _ = stop_tx.send(true);
    if let Some((_, leadership)) = leadership {
        leadership.release().await;
    }
    let served = served_result(server.await);
    outcome.and(served)
}

fn served_result(
    served: Result<Result<(), ServeError>, tokio::task::JoinError>,
) -> Result<(), ControllerError> {
    match served {
        Ok(result) => Ok(result?),
        Err(_) => Err(ControllerError::NotStarted),
    }
}

/// The reconciling side of a running controller.
struct Controller {
    client: Client,
    cross_namespace: bool,
    running: Running,
    cache: Cache,
    changed: Arc<Notify>,
    status: StatusWriter,
    /// Apps whose removal runs, by object.
    removals: HashMap<ObjectKey, JoinHandle<Removed>>,
    /// Apps whose removal failed, and when to try again.
    retry_removal: HashMap<ObjectKey, Instant>,
    /// The `reconcile-requested-at` value last seen per object.
    requested: HashMap<ObjectKey, Option<String>>,
    /// The config made at the last pass, and the fingerprint of the objects it was made of.
    desired: Option<(u64, desired::Desired)>,
    /// Secret resourceVersions at the last pass.
    secrets: Option<SecretVersions>,
    /// When the Clusters were last probed, and what the probes found.
    probed: Option<Instant>,
    probing: Option<JoinHandle<()>>,
    clusters: Arc<std::sync::Mutex<BTreeMap<String, ClusterStatus>>>,
    /// The receivers loaded, and the secret versions they were loaded with.
    receivers: Option<(String, SecretVersions)>,
}

impl Controller {
    fn engine(&self) -> &Engine {
        &self.running.engine
    }

    /// Waits for the leadership, then reconciles until stopped or deposed.
    async fn lead_and_run(
        &mut self,
        leadership: Option<&(LeaseSettings, Leadership)>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), ControllerError> {
        let mut leading = match leadership {
            Some((settings, leadership)) => {
                tracing::info!(
                    "waiting for the leadership of Lease {}/{}",
                    settings.namespace,
                    settings.name
                );
                tokio::select! {
                    () = leadership.wait_until_leader() => {}
                    _ = stop.wait_for(|s| *s) => return Ok(()),
                }
                Some(leadership.subscribe())
            }
            None => None,
        };
        self.cache.wait_until_ready().await;
        self.running.set_ready(true);
        tracing::info!("reconciling custom resources");
        let mut news = self.engine().store().watch_app_changes();
        loop {
            self.pass().await;
            tokio::select! {
                () = self.changed.notified() => tokio::time::sleep(SETTLE).await,
                Ok(()) = news.changed() => tokio::time::sleep(STATUS_SETTLE).await,
                () = tokio::time::sleep(TICK) => {}
                _ = stop.wait_for(|s| *s) => return Ok(()),
                _ = deposed(leading.as_mut()) => {
                    let name = leadership.map(|(s, _)| format!("{}/{}", s.namespace, s.name));
                    return Err(ControllerError::LostLeadership(name.unwrap_or_default()));
                }
            }
        }
    }

    /// One look at every object: config, receivers, triggers, finalizers, status.
    async fn pass(&mut self) {
        let objects = self.cache.objects();
        // Status writes change no spec: the config is made again only when an
        // object's spec, labels, annotations or deletion changed.
        let fingerprint = desired::fingerprint(&objects);
        let desired = match self.desired.take() {
            Some((seen, desired)) if seen == fingerprint => desired,
            _ => desired::build(&objects, self.cross_namespace),
        };
        let secrets = self.cache.secret_versions();
        let changed_secrets = changed_keys(self.secrets.as_ref(), &secrets);
        self.secrets = Some(secrets.clone());
        let digest = desired.config.digest().to_owned();
        if self
            .receivers
            .as_ref()
            .is_none_or(|(d, v)| *d != digest || secret_refs_changed(&desired.config, v, &secrets))
        {
            self.load_receivers(&desired.config).await;
            self.load_notifiers(&desired.config).await;
            self.receivers = Some((digest.clone(), secrets));
        }
        let digest_changed = digest != self.engine().config().digest();
        if digest_changed {
            self.engine()
                .apply_config_with(desired.config.clone(), Absent::Stop);
        }
        self.trigger_on_secrets(&desired.config, &changed_secrets);
        self.requested_reconciles(&objects);
        self.finalize(&objects).await;
        self.probe_clusters(digest_changed);
        let clusters = self.clusters.lock().map(|c| c.clone()).unwrap_or_default();
        self.status
            .write_all(&objects, &desired, &self.running.engine, &clusters)
            .await;
        self.desired = Some((fingerprint, desired));
    }

    /// Probes the Clusters in the background when due (an unreachable one must not
    /// hold up the statuses of everything else).
    fn probe_clusters(&mut self, config_changed: bool) {
        let due = self
            .probed
            .is_none_or(|at| at.elapsed() >= CLUSTER_PROBE || config_changed);
        if !due || self.probing.as_ref().is_some_and(|p| !p.is_finished()) {
            return;
        }
        self.probed = Some(Instant::now());
        let (engine, clusters) = (self.engine().clone(), self.clusters.clone());
        self.probing = Some(tokio::spawn(async move {
            let probed: BTreeMap<String, ClusterStatus> = engine
                .clusters()
                .await
                .into_iter()
                .map(|n| (n.name, n.status))
                .collect();
            if let Ok(mut clusters) = clusters.lock() {
                *clusters = probed;
            }
        }));
    }

    /// Reads the secret of every Receiver and makes their webhooks answer.
    async fn load_receivers(&self, config: &Config) {
        let mut secrets = HashMap::new();
        for receiver in config.receivers() {
            let Some(secret_ref) = &receiver.spec.secret_ref else {
                continue;
            };
            let ns = receiver.metadata.namespace.clone().unwrap_or_default();
            match self.secret_value(&ns, &secret_ref.name, "token").await {
                Ok(token) => {
                    secrets.insert(receiver.name().to_owned(), token);
                }
                Err(e) => tracing::warn!("{}: {e}", receiver.key()),
            }
        }
        for problem in self.running.set_receivers(config, &secrets) {
            tracing::warn!("{problem}; its webhook answers 404");
        }
    }

    /// Reads the Secret of every Notifier with a `secretRef` (its `address` key
    /// for chat webhooks, else `token`) and hands them to the engine.
    async fn load_notifiers(&self, config: &Config) {
        let mut secrets = HashMap::new();
        for notifier in config.notifiers() {
            let Some(secret_ref) = &notifier.spec.secret_ref else {
                continue;
            };
            let ns = notifier.metadata.namespace.clone().unwrap_or_default();
            let key = if notifier.spec.type_.secret_is_url() {
                "address"
            } else {
                "token"
            };
            let value = self
                .secret_value(&ns, &secret_ref.name, key)
                .await
                .and_then(|v| {
                    String::from_utf8(v).map_err(|_| {
                        format!(
                            "key {key:?} of Secret {ns}/{} is not UTF-8",
                            secret_ref.name
                        )
                    })
                });
            if let Err(e) = &value {
                tracing::warn!("{}: {e}", notifier.key());
            }
            secrets.insert(notifier.name().to_owned(), value);
        }
        self.engine().set_notifier_secrets(secrets);
    }

    /// The value of `key` in Secret `ns/name`; the error names the Secret and
    /// key, never a value.
    async fn secret_value(&self, ns: &str, name: &str, key: &str) -> Result<Vec<u8>, String> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let secret = api
            .get(name)
            .await
            .map_err(|e| format!("reading Secret {ns}/{name}: {e}"))?;
        match secret.data.as_ref().and_then(|d| d.get(key)) {
            Some(value) if !value.0.is_empty() => Ok(value.0.clone()),
            _ => Err(format!("Secret {ns}/{name} has no key {key:?}")),
        }
    }

    /// Fetches the sources and reconciles the Apps whose Secrets changed.
    fn trigger_on_secrets(&self, config: &Config, changed: &BTreeSet<(String, String)>) {
        if changed.is_empty() {
            return;
        }
        let uses = |meta: &driftless_api::ObjectMeta, name: &str| {
            changed.contains(&(meta.namespace.clone().unwrap_or_default(), name.to_owned()))
        };
        let sources = config.git_sources().filter(|s| {
            let refs = s.spec.secret_ref.iter().map(|r| &r.name);
            let verify = s.spec.verify.iter().map(|v| &v.secret_ref.name);
            refs.chain(verify).any(|n| uses(&s.metadata, n))
        });
        let names: Vec<&str> = sources.map(|s| s.name()).collect();
        if !names.is_empty() {
            tracing::info!("Secrets changed: fetching {}", names.join(", "));
            self.engine().trigger_sources(names);
        }
        for app in config.apps() {
            let subs = app.spec.substitutions.iter().flat_map(|s| &s.from_secret);
            let keys = app.spec.decryption.iter().flat_map(|d| &d.secret_ref);
            if subs
                .chain(keys)
                .map(|r| &r.name)
                .any(|n| uses(&app.metadata, n))
            {
                tracing::info!(app = %app.name(), "a Secret it substitutes from or decrypts with changed");
                let _ = self
                    .engine()
                    .queue()
                    .trigger(app.name(), SyncTrigger::Config);
            }
            let hosts = config.hosts_of(app);
            let mut host_secrets = hosts
                .iter()
                .filter_map(|h| Some((&h.metadata, &h.spec.secret_ref.as_ref()?.name)));
            if host_secrets.any(|(meta, n)| uses(meta, n)) {
                tracing::info!(app = %app.name(), "the Secret of a Host it deploys to changed");
                let _ = self
                    .engine()
                    .queue()
                    .trigger(app.name(), SyncTrigger::Config);
            }
        }
    }

    /// Reconciles Apps and fetches GitSources whose `reconcile-requested-at` changed.
    fn requested_reconciles(&mut self, objects: &[CrObject]) {
        let control =
            EngineControl::new(self.engine().store().clone(), self.engine().queue().clone());
        for object in objects {
            let value = object.object.annotations().get(REQUESTED_AT).cloned();
            let seen = self.requested.insert(key_of(object), value.clone());
            // New objects (and all at the start) reconcile anyway.
            if seen.is_none_or(|before| before == value) || value.is_none() {
                continue;
            }
            let name = object.qualified();
            match object.kind {
                CrKind::App => {
                    if let Err(e) = control.sync(&name, REQUESTED_AT) {
                        tracing::warn!(app = %name, "requested reconcile refused: {e}");
                    }
                }
                CrKind::GitSource => {
                    self.engine().trigger_sources([name.as_str()]);
                }
                CrKind::Cluster
                | CrKind::Receiver
                | CrKind::Notifier
                | CrKind::Host
                | CrKind::SyncWindow
                | CrKind::HelmRepository
                | CrKind::OciSource => {}
            }
        }
        let live: BTreeSet<ObjectKey> = objects.iter().map(key_of).collect();
        self.requested.retain(|k, _| live.contains(k));
    }

    /// Puts the finalizer on every App and lets deleted Apps go once removed.
    async fn finalize(&mut self, objects: &[CrObject]) {
        let adds = objects
            .iter()
            .filter(|o| o.kind == CrKind::App && !o.deleting())
            .filter(|o| !o.object.finalizers().iter().any(|f| f == FINALIZER))
            .map(|object| {
                let mut finalizers = object.object.finalizers().to_vec();
                finalizers.push(FINALIZER.to_owned());
                set_finalizers(self.client.clone(), object, finalizers)
            });
        futures_util::stream::iter(adds)
            .buffer_unordered(PARALLEL_PATCHES)
            .collect::<Vec<()>>()
            .await;
        for object in objects.iter().filter(|o| o.kind == CrKind::App) {
            let has = object.object.finalizers().iter().any(|f| f == FINALIZER);
            let key = key_of(object);
            if !object.deleting() {
                continue;
            }
            if !has {
                continue;
            }
            if let Some(handle) = self.removals.get(&key) {
                if !handle.is_finished() {
                    continue;
                }
                let Some(handle) = self.removals.remove(&key) else {
                    continue;
                };
                let result = handle.await.unwrap_or_else(|e| Err(e.to_string()));
                self.removed(object, result).await;
                continue;
            }
            if self
                .retry_removal
                .get(&key)
                .is_some_and(|at| Instant::now() < *at)
            {
                continue;
            }
            match desired::app_of(object, self.cross_namespace) {
                Ok(app) => {
                    let removal = self.engine().remove_app(app);
                    self.removals.insert(key, tokio::spawn(removal));
                }
                Err(e) => {
                    tracing::warn!(
                        "App {}/{}: deleted with an invalid spec ({e}); its objects are left in place",
                        object.namespace(),
                        object.name()
                    );
                    self.removed(object, Ok(Removal::LeftInPlace)).await;
                }
            }
        }
    }

    /// Ends an App's deletion (drops the finalizer), or schedules another try.
    async fn removed(&mut self, object: &CrObject, result: Removed) {
        let key = key_of(object);
        match result {
            Ok(removal) => {
                self.retry_removal.remove(&key);
                let finalizers: Vec<String> = object
                    .object
                    .finalizers()
                    .iter()
                    .filter(|f| *f != FINALIZER)
                    .cloned()
                    .collect();
                let note = match removal {
                    Removal::Deleted(n) => format!("deleted; {n} objects it owned deleted"),
                    Removal::LeftInPlace => {
                        "deleted; the objects it owned are left in place".to_owned()
                    }
                };
                tracing::info!("App {}/{}: {note}", object.namespace(), object.name());
                set_finalizers(self.client.clone(), object, finalizers).await;
            }
            Err(e) => {
                tracing::warn!(
                    "App {}/{}: deleting its objects: {e}; trying again in {}s",
                    object.namespace(),
                    object.name(),
                    REMOVAL_RETRY.as_secs()
                );
                self.retry_removal
                    .insert(key, Instant::now() + REMOVAL_RETRY);
                let event = Event {
                    type_: EventType::Warning,
                    reason: "DeleteFailed".into(),
                    note: Some(e),
                    action: "Delete".into(),
                    secondary: None,
                };
                let reference = object.object.object_ref(&object.kind.resource());
                let recorder = self.status.recorder();
                if let Err(e) = recorder.publish(&event, &reference).await {
                    tracing::warn!("recording Event DeleteFailed: {e}");
                }
            }
        }
    }
}

/// Replaces an object's finalizers, if it did not change since it was read.
async fn set_finalizers(client: Client, object: &CrObject, finalizers: Vec<String>) {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client, &object.namespace(), &object.kind.resource());
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": object.object.resource_version(),
    }});
    let params = PatchParams::default();
    if let Err(e) = api
        .patch(&object.name(), &params, &Patch::Merge(&patch))
        .await
    {
        // A conflict means a newer version is on its way through the watch.
        tracing::debug!(
            "{}/{}/{}: updating finalizers: {e}",
            object.kind.plural(),
            object.namespace(),
            object.name()
        );
    }
}

/// Completes with `true` once the leadership is lost; never without election.
async fn deposed(leading: Option<&mut watch::Receiver<bool>>) -> bool {
    let Some(leading) = leading else {
        return std::future::pending().await;
    };
    // An error means the election ended, which is a loss as well.
    let _ = leading.wait_for(|l| !*l).await;
    true
}

/// Keys whose version differs between two looks (none on the first look).
fn changed_keys(
    before: Option<&SecretVersions>,
    now: &SecretVersions,
) -> BTreeSet<(String, String)> {
    let Some(before) = before else {
        return BTreeSet::new();
    };
    let mut out: BTreeSet<(String, String)> = now
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    out.extend(before.keys().filter(|k| !now.contains_key(*k)).cloned());
    out
}

/// Whether a Secret a Receiver or Notifier reads changed between two looks.
fn secret_refs_changed(config: &Config, before: &SecretVersions, now: &SecretVersions) -> bool {
    let receivers = config
        .receivers()
        .map(|r| (&r.metadata, &r.spec.secret_ref));
    let notifiers = config
        .notifiers()
        .map(|n| (&n.metadata, &n.spec.secret_ref));
    receivers.chain(notifiers).any(|(meta, secret_ref)| {
        secret_ref.as_ref().is_some_and(|s| {
            let key = (meta.namespace.clone().unwrap_or_default(), s.name.clone());
            before.get(&key) != now.get(&key)
        })
    })
}
