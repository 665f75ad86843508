//! The running engine: GitSources are fetched and Apps reconciled by one work
//! queue, drift is recorded and healed, and config changes take effect live.
//!
//! Queue keys are App names and `source:<name>` for GitSources. A source job
//! fetches and, when the revision changed, triggers the source's Apps; an App
//! job renders the revision, applies it and records the result (see
//! [`reconcile`]).

mod charts;
mod clusters;
mod decrypt;
mod drift;
mod error;
mod host_access;
mod host_plan;
mod hosts;
mod inspect;
mod notices;
mod oci_sources;
mod outcome;
mod plan;
mod reconcile;
mod render;
mod sources;
mod spec;
mod sync_control;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use driftless_api::status::{ClusterStatus, GitSourceStatus};
use driftless_api::{Config, RenderBounds};
use driftless_render::RenderCache;
pub use driftless_render::RenderWorker;
use driftless_source::{Fetcher, Revision, Snapshot};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::queue::{Job, Outcome, QueueConfig, WorkQueue};
use crate::store::{Named, Store, StoreError, SyncTrigger};
use clusters::{Cluster, ClusterError, Clusters};
pub use inspect::InspectError;
pub use sources::SECRETS_NAMESPACE;
use sources::{SOURCE_PREFIX, source_key};

/// Rendered sets kept in memory (more are read back from disk).
const RENDER_CACHE_ENTRIES: usize = 256;
/// What the renders of this many Apps read, kept in memory.
const RENDER_READ_SETS: usize = 16_384;
/// How long an SSH connection to a host stays open unused: longer than the
/// usual interval of an App for hosts, so each drift check reuses it.
const HOST_CONNECTION_IDLE: Duration = Duration::from_secs(15 * 60);

/// Default period of cache housekeeping.
const HOUSEKEEPING: Duration = Duration::from_secs(600);

/// Settings of an [`Engine`].
#[derive(Clone)]
pub struct EngineOptions {
    /// Directory of the state store.
    pub data_dir: PathBuf,
    /// Directory of Git caches, snapshots and rendered sets.
    pub cache_dir: PathBuf,
    /// Tuning of the work queue.
    pub queue: QueueConfig,
    /// How often snapshots and rendered sets unused for that long are
    /// removed from the cache directory.
    pub housekeeping: Duration,
    /// Memory, input and object bounds of every render (time is the App's `timeout`).
    pub render_bounds: RenderBounds,
    /// The process that evaluates Jsonnet within those bounds; `None`
    /// evaluates in the engine's process, without memory or time bounds.
    pub render_worker: Option<RenderWorker>,
    /// The helm binary that renders charts and kustomize `helmCharts`;
    /// `None`: charts take `$DRIFTLESS_HELM`, else `helm` on PATH, and
    /// `helmCharts` take `helm` on PATH.
    pub helm_command: Option<PathBuf>,
    /// Tries, waits, pace and queue of notifications.
    pub notifications: driftless_api::NotificationDelivery,
    /// Ignored differences of every App (the Server's), before the App's own.
    pub ignore_differences: Vec<driftless_api::IgnoreDifference>,
}

impl EngineOptions {
    /// Defaults for `data_dir`: caches below it.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            cache_dir: data_dir.join("cache"),
            data_dir,
            queue: QueueConfig::default(),
            housekeeping: HOUSEKEEPING,
            render_bounds: RenderBounds::default(),
            render_worker: None,
            helm_command: None,
            notifications: driftless_api::NotificationDelivery::default(),
            ignore_differences: Vec::new(),
        }
    }
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The state store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the engine keeps about an App's last full apply, to skip re-applying
/// an unchanged set.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Applied {
    /// The commit, with the chart version for a chart from a repository
    /// (see [`revision_id`]).
    sha: String,
    digest: String,
}

impl Applied {
    fn new(sha: &str, chart: Option<&driftless_api::history::ChartRevision>, digest: &str) -> Self {
        Self {
            sha: revision_id(sha, chart),
            digest: digest.to_owned(),
        }
    }
}

/// What identifies a revision an App renders: its commit, and the chart
/// version (with its digest) when the chart comes from a repository.
fn revision_id(sha: &str, chart: Option<&driftless_api::history::ChartRevision>) -> String {
    match chart {
        Some(c) => format!("{sha} {}@{} {}", c.name, c.version, c.digest),
        None => sha.to_owned(),
    }
}

/// What becomes of an App a new config no longer has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absent {
    /// Removed: with `prune` (and not suspended) its objects are deleted.
    Remove,
    /// Stopped: its objects and status stay until [`Engine::remove_app`] (a config
    /// read from a cluster drops an App whose object is invalid or being deleted,
    /// and only its deletion may delete what it owns).
    Stop,
}

/// What became of a removed App's objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Deleted, this many.
    Deleted(usize),
    /// Left in place: prune is off, or the App was suspended.
    LeftInPlace,
}

/// A removal's result; the error says what could not be deleted.
pub type Removed = Result<Removal, String>;

/// State shared by the queue workers.
pub(crate) struct Inner {
    config: RwLock<Arc<Config>>,
    store: Store,
    queue: WorkQueue,
    fetcher: Arc<Fetcher>,
    renders: RenderCache,
    render_bounds: RenderBounds,
    render_worker: Option<RenderWorker>,
    helm_command: Option<PathBuf>,
    /// Chart repositories the dependencies of charts come from, with their
    /// indexes and downloaded archives cached.
    chart_repos: Arc<driftless_source::ChartRepositories>,
    /// Per namespace with HelmRepositories: the repositories chart
    /// dependencies come from, those declared with their credentials.
    dependency_repos: Mutex<HashMap<String, Arc<driftless_source::ChartRepositories>>>,
    /// Per HelmRepository: its repository, last poll and index.
    helm_repos: Mutex<HashMap<String, charts::RepoState>>,
    /// Where HelmRepositories keep their indexes and charts.
    helm_cache: PathBuf,
    /// The server's ignored differences, for every App.
    ignore_defaults: Vec<driftless_api::IgnoreDifference>,
    revisions: Mutex<HashMap<String, Revision>>,
    /// Per App: health looks since its last apply while it progresses.
    rechecks: Mutex<HashMap<String, u32>>,
    /// Per App: when its sync windows are looked at next.
    window_looks: Mutex<HashMap<String, driftless_api::Time>>,
    /// Per source: when the last fetch ended and its error.
    fetches: Mutex<HashMap<String, (crate::timing::UnixMillis, Option<String>)>>,
    applied: Mutex<HashMap<String, Applied>>,
    /// Per App: the snapshot it last rendered from, kept by housekeeping.
    snapshots: Mutex<HashMap<String, Snapshot>>,
    clusters: Clusters,
    metrics: Arc<Metrics>,
    /// Removals running, by App.
    removals: Mutex<HashMap<String, watch::Receiver<Option<Removed>>>>,
    /// Events and commit states for the Notifiers.
    notices: notices::Notices,
    /// Per App for hosts: how its last run on its hosts ended.
    host_runs: Mutex<HashMap<String, host_plan::LastRun>>,
    /// SSH connections to hosts, kept open between reconciles.
    host_connections: Arc<driftless_host::ConnectionPool>,
    /// Per Host: what the last attempt to reach it found.
    host_contacts: Mutex<std::collections::BTreeMap<String, host_access::Contact>>,
}

/// A running engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
    dispatcher: Arc<Mutex<Option<JoinHandle<()>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Engine {
    /// Opens the store and starts reconciling `config`. Must run inside a
    /// tokio runtime.
    pub fn start(config: Config, opts: EngineOptions) -> Result<Self, EngineError> {
        let store = Store::open(&opts.data_dir)?;
        let renders = RenderCache::new(RENDER_CACHE_ENTRIES)
            .with_read_sets(RENDER_READ_SETS)
            .with_disk(opts.cache_dir.join("renders"));
        let mut dispatcher = None;
        let metrics = Arc::new(Metrics::for_store(store.clone()));
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| {
            let worker_ref = weak.clone();
            let (queue, handle) = WorkQueue::start(opts.queue.clone(), move |job| {
                let inner = worker_ref.upgrade();
                async move {
                    match inner {
                        Some(inner) => inner.run(job).await,
                        None => Outcome::Cancelled,
                    }
                }
            });
            dispatcher = Some(handle);
            Inner {
                config: RwLock::new(Arc::new(empty_config())),
                store,
                queue,
                fetcher: Arc::new(Fetcher::new(opts.cache_dir.join("sources"))),
                renders,
                render_bounds: opts.render_bounds.clone(),
                render_worker: opts.render_worker.clone(),
                helm_command: opts.helm_command.clone(),
                chart_repos: Arc::new(driftless_source::ChartRepositories::new(
                    &opts.cache_dir.join("charts"),
                )),
                helm_repos: Mutex::default(),
                dependency_repos: Mutex::default(),
                helm_cache: opts.cache_dir.join("charts"),
                ignore_defaults: opts.ignore_differences.clone(),
                revisions: Mutex::default(),
                rechecks: Mutex::default(),
                window_looks: Mutex::default(),
                fetches: Mutex::default(),
                applied: Mutex::default(),
                snapshots: Mutex::default(),
                clusters: Clusters::default(),
                metrics,
                removals: Mutex::default(),
                notices: notices::Notices::new(notices::policy(&opts.notifications)),
                host_runs: Mutex::default(),
                host_connections: Arc::new(driftless_host::ConnectionPool::new(
                    HOST_CONNECTION_IDLE,
                )),
                host_contacts: Mutex::default(),
            }
        });
        inner
            .metrics
            .set_notifiers(inner.notices.dispatcher.clone());
        let observer = Arc::downgrade(&inner);
        inner.store.observe(Some(Arc::new(move |recorded| {
            if let Some(inner) = observer.upgrade() {
                inner.notice(recorded);
            }
        })));
        for record in inner.store.interrupted() {
            let why = record.error.as_deref().unwrap_or("interrupted");
            tracing::warn!(
                app = %record.app,
                revision = %record.start.revision.sha,
                "sync {} of {}: {why}; it runs again",
                record.id,
                record.start.revision.sha
            );
        }
        tokio::spawn(housekeeping(Arc::downgrade(&inner), opts.housekeeping));
        let engine = Self {
            inner,
            dispatcher: Arc::new(Mutex::new(dispatcher)),
        };
        engine.apply_config(config);
        Ok(engine)
    }

    /// The state store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The work queue (for user actions).
    pub fn queue(&self) -> &WorkQueue {
        &self.inner.queue
    }

    /// Counters and histograms for `/metrics`.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.inner.metrics.clone()
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.inner.config()
    }

    /// Makes `config` the one in force: new and changed objects are
    /// reconciled at once, removed Apps stop (and with `prune` their objects
    /// are deleted).
    pub fn apply_config(&self, config: Config) {
        self.apply_config_with(config, Absent::Remove);
    }

    /// [`Engine::apply_config`], saying what becomes of Apps the new config lacks.
    pub fn apply_config_with(&self, config: Config, absent: Absent) {
        let inner = &self.inner;
        let new = Arc::new(config);
        let old = std::mem::replace(&mut *write(&inner.config), new.clone());
        inner.notices.configure(&new);
        for source in new.git_sources() {
            let key = source_key(source.name());
            let before = old.git_source(source.name());
            if before.map(|b| &b.spec) == Some(&source.spec) {
                continue;
            }
            let every = (!source.spec.suspend).then(|| source.spec.interval.get());
            let _ = inner.queue.set_interval(&key, every);
            if every.is_some() {
                let _ = inner.queue.trigger(&key, SyncTrigger::Config);
            }
        }
        for source in old.git_sources() {
            if new.git_source(source.name()).is_none() {
                let _ = inner.queue.remove(&source_key(source.name()));
                lock(&inner.revisions).remove(source.name());
                lock(&inner.fetches).remove(source.name());
                inner.metrics.forget_source(source.name());
            }
        }
        for source in new.oci_sources() {
            let key = oci_sources::oci_source_key(source.name());
            let before = old.oci_source(source.name());
            if before.map(|b| (&b.metadata.namespace, &b.spec))
                == Some((&source.metadata.namespace, &source.spec))
            {
                continue;
            }
            let every = (!source.spec.suspend).then(|| source.spec.interval.get());
            let _ = inner.queue.set_interval(&key, every);
            if every.is_some() {
                let _ = inner.queue.trigger(&key, SyncTrigger::Config);
            }
        }
        for source in old.oci_sources() {
            if new.oci_source(source.name()).is_none() {
                let key = oci_sources::oci_source_key(source.name());
                let _ = inner.queue.remove(&key);
                lock(&inner.revisions).remove(&key);
                lock(&inner.fetches).remove(&key);
                inner.metrics.forget_source(&key);
            }
        }
        for repo in new.helm_repositories() {
            let key = charts::helm_repo_key(repo.name());
            let before = old.helm_repository(repo.name());
            if before.map(|b| (&b.metadata.namespace, &b.spec))
                == Some((&repo.metadata.namespace, &repo.spec))
            {
                continue;
            }
            // Dependencies take the new settings (or lose the credentials).
            lock(&inner.dependency_repos).clear();
            let every = (!repo.spec.suspend).then(|| repo.spec.interval.get());
            let _ = inner.queue.set_interval(&key, every);
            if every.is_some() {
                let _ = inner.queue.trigger(&key, SyncTrigger::Config);
            }
        }
        for repo in old.helm_repositories() {
            if new.helm_repository(repo.name()).is_none() {
                let _ = inner.queue.remove(&charts::helm_repo_key(repo.name()));
                inner.forget_helm_repo(repo.name());
                lock(&inner.dependency_repos).clear();
            }
        }
        // Every new App has a status from the start, recorded in one go.
        if let Err(e) = inner.store.ensure_apps(new.apps().map(|app| app.name())) {
            tracing::error!("recording the status of new Apps: {e}");
        }
        for app in new.apps() {
            let name = app.name();
            let before = old.app(name);
            if before.map(|b| &b.spec) == Some(&app.spec) {
                continue;
            }
            let _ = inner
                .queue
                .set_interval(name, Some(app.spec.interval.get()));
            let backoff = &app.spec.retry.backoff;
            let backoff = crate::timing::Backoff {
                base: backoff.duration.get(),
                max: backoff.max_duration.get(),
                factor: backoff.factor,
            };
            let _ = inner.queue.set_backoff(name, Some(backoff));
            // A new App waits for its source's first fetch, which triggers it.
            if before.is_some() || inner.source_revision(&app.spec.source_ref).is_some() {
                let _ = inner.queue.trigger(name, SyncTrigger::Config);
            }
        }
        // A window that appears, changes or goes may hold or free Apps at once.
        for app in sync_control::window_changes(&old, &new) {
            if inner.source_revision(&app.spec.source_ref).is_some() {
                let _ = inner.queue.trigger(app.name(), SyncTrigger::Config);
            }
        }
        for app in old.apps() {
            if new.app(app.name()).is_none() {
                match absent {
                    Absent::Remove => {
                        inner.start_removal(app.clone());
                    }
                    Absent::Stop => {
                        let inner = inner.clone();
                        let name = app.name().to_owned();
                        tokio::spawn(async move { inner.stop_app(&name).await });
                    }
                }
            }
        }
    }

    /// Removes `app` (gone from the config, or being deleted): its work stops and,
    /// with `prune` and not suspended, its objects are deleted. Joins a removal
    /// that runs already; an `Err` names what could not be deleted (try again).
    pub fn remove_app(
        &self,
        app: driftless_api::App,
    ) -> impl std::future::Future<Output = Removed> + Send + 'static {
        let mut rx = self.inner.start_removal(app);
        async move {
            loop {
                if let Some(result) = rx.borrow_and_update().clone() {
                    return result;
                }
                if rx.changed().await.is_err() {
                    return Err("the engine stopped".to_owned());
                }
            }
        }
    }

    /// Takes the values read from the Notifiers' `secretRef` Secrets (by
    /// Notifier name; an `Err` says why one could not be read) and puts them
    /// in force.
    pub fn set_notifier_secrets(&self, secrets: HashMap<String, Result<String, String>>) {
        self.inner.notices.set_secrets(secrets);
        self.inner.notices.configure(&self.inner.config());
    }

    /// Every declared Notifier with its delivery counts and last error.
    pub fn notifiers(&self) -> Vec<Named<driftless_api::status::NotifierStatus>> {
        self.inner
            .notices
            .dispatcher
            .statuses()
            .into_iter()
            .map(|(name, status)| Named::new(name, status))
            .collect()
    }

    /// Every declared Host with a `Ready` condition from the last attempt to reach it.
    pub fn hosts(&self) -> Vec<Named<driftless_api::HostStatus>> {
        self.inner.host_statuses()
    }

    /// Every declared GitSource with its latest revision and fetch result.
    pub fn sources(&self) -> Vec<Named<GitSourceStatus>> {
        self.inner.source_statuses()
    }

    /// Every declared OCISource with its artifact in use and last poll.
    pub fn oci_sources(&self) -> Vec<Named<GitSourceStatus>> {
        self.inner.oci_source_statuses()
    }

    /// Every declared HelmRepository with its index in use and last poll.
    pub fn helm_repositories(&self) -> Vec<Named<driftless_api::status::HelmRepositoryStatus>> {
        self.inner.helm_repo_statuses()
    }

    /// Every declared Cluster, probed now: `Ready` when its API server
    /// answers (connecting first when no App has used it yet).
    pub async fn clusters(&self) -> Vec<Named<ClusterStatus>> {
        let config = self.inner.config();
        let mut out = Vec::new();
        for cluster in config.clusters() {
            let name = cluster.name();
            let probed = match self.inner.cluster(&config, Some(name)).await {
                Ok(connected) => clusters::probe(&connected.target).await,
                Err(e) => Err(e),
            };
            out.push(self.inner.clusters.record(name, probed));
        }
        out
    }

    /// Queues a fetch of each named source; returns how many were queued.
    pub fn trigger_sources<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> usize {
        self.inner.trigger_sources(names)
    }

    /// Stops the queue: running work is cancelled and waited for, then the
    /// store records the clean stop.
    pub async fn shutdown(&self) {
        self.inner.queue.shutdown().await;
        self.inner.host_connections.close_all().await;
        let handle = lock(&self.dispatcher).take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
        if let Err(e) = self.inner.store.mark_stopped() {
            tracing::error!("recording the stop: {e}");
        }
    }
}

/// The config before the first one applies: nothing declared.
fn empty_config() -> Config {
    Config::from_documents(Vec::new()).expect("an empty config is valid")
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Inner {
    /// Apply options of `app`, with the server's ignored differences.
    pub(crate) fn apply_options(&self, app: &driftless_api::App) -> driftless_kube::ApplyOptions {
        spec::apply_options(app, &self.ignore_defaults)
    }

    pub(crate) fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn lock_revisions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Revision>> {
        lock(&self.revisions)
    }

    async fn run(self: Arc<Self>, job: Job) -> Outcome {
        if let Some(name) = job.key.strip_prefix(SOURCE_PREFIX) {
            let name = name.to_owned();
            return self.fetch_job(&job, &name).await;
        }
        if let Some(name) = job.key.strip_prefix(oci_sources::OCI_SOURCE_PREFIX) {
            let name = name.to_owned();
            return self.oci_source_job(&job, &name).await;
        }
        if let Some(name) = job.key.strip_prefix(charts::HELM_REPO_PREFIX) {
            let name = name.to_owned();
            return self.helm_repo_job(&job, &name).await;
        }
        let start = std::time::Instant::now();
        let outcome = self.reconcile(&job).await;
        self.metrics.observe_reconcile(&job.key, start.elapsed());
        outcome
    }

    /// Removes snapshots no App rendered from last and that were unused for
    /// `min_age`, and rendered sets on disk older than that.
    fn collect_garbage(&self, min_age: Duration) {
        let keep: Vec<Snapshot> = lock(&self.snapshots).values().cloned().collect();
        let keep: Vec<&Snapshot> = keep.iter().collect();
        match self.fetcher.gc_snapshots(&keep, min_age) {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!("cache: removed {} unused snapshots", removed.len());
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("cache: removing unused snapshots: {e}"),
        }
        let renders = self.renders.gc_disk(min_age);
        if renders > 0 {
            tracing::info!("cache: removed {renders} old rendered sets");
        }
    }

    /// The cluster an App deploys to, connected (and drift-watched) on first use.
    pub(crate) async fn cluster(
        self: &Arc<Self>,
        config: &Config,
        name: Option<&str>,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let weak = Arc::downgrade(self);
        self.clusters
            .get(config, name, move |watch, label| {
                tokio::spawn(drift::listen(weak.clone(), watch.subscribe()));
                tokio::spawn(drift::listen_health(weak.clone(), watch.subscribe_health()));
                let failures = watch.subscribe_failures();
                tokio::spawn(drift::listen_failures(weak, label.to_owned(), failures));
            })
            .await
    }

    /// Starts removing `app` unless its removal runs already; the receiver gets the result.
    fn start_removal(
        self: &Arc<Self>,
        app: driftless_api::App,
    ) -> watch::Receiver<Option<Removed>> {
        let name = app.name().to_owned();
        let mut removals = lock(&self.removals);
        if let Some(running) = removals.get(&name)
            && running.borrow().is_none()
        {
            return running.clone();
        }
        let (tx, rx) = watch::channel(None);
        removals.insert(name.clone(), rx.clone());
        let inner = self.clone();
        let ours = rx.clone();
        tokio::spawn(async move {
            let result = inner.clone().remove_app(app).await;
            let _ = tx.send(Some(result));
            let mut removals = lock(&inner.removals);
            if removals.get(&name).is_some_and(|r| r.same_channel(&ours)) {
                removals.remove(&name);
            }
        });
        rx
    }

    /// Stops reconciling an App and watching its objects; they stay as they are.
    async fn stop_app(&self, name: &str) {
        let _ = self.queue.remove(name);
        self.clusters.untrack(name).await;
        lock(&self.applied).remove(name);
        lock(&self.rechecks).remove(name);
        lock(&self.window_looks).remove(name);
        lock(&self.snapshots).remove(name);
        lock(&self.host_runs).remove(name);
    }

    /// Stops an App removed from the config; with `prune` deletes its objects,
    /// unless it is suspended.
    async fn remove_app(self: Arc<Self>, app: driftless_api::App) -> Removed {
        let name = app.name();
        self.stop_app(name).await;
        let result = if app.spec.destination.hosts.is_some() {
            // Its releases are on hosts, never on a cluster: they stay as they are.
            tracing::info!(
                app = %name,
                "removed; its releases stay on its hosts"
            );
            Ok(Removal::LeftInPlace)
        } else if !app.spec.prune {
            tracing::info!(
                app = %name,
                "removed; its objects are left as they are (prune is off)"
            );
            Ok(Removal::LeftInPlace)
        } else if app.spec.suspend {
            tracing::info!(
                app = %name,
                "removed while suspended; its objects are left as they are"
            );
            Ok(Removal::LeftInPlace)
        } else {
            self.delete_objects(&app).await
        };
        if let Err(e) = &result {
            tracing::warn!(app = %name, "removed, deleting its objects: {e}");
        }
        if let Err(e) = self.store.remove_app(name) {
            tracing::error!(app = %name, "{e}");
        }
        self.metrics.forget_app(name);
        result
    }

    /// Deletes every object in the inventory of a removed App.
    async fn delete_objects(self: &Arc<Self>, app: &driftless_api::App) -> Removed {
        let config = self.config();
        let opts = self.apply_options(app);
        let cluster = self
            .cluster(&config, app.spec.destination.cluster.as_deref())
            .await
            .map_err(|e| e.to_string())?;
        let report = driftless_kube::delete_app(&cluster.target, &opts, &|_| {})
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(
            app = %app.name(),
            "removed; {} objects deleted",
            report.deleted.len()
        );
        Ok(Removal::Deleted(report.deleted.len()))
    }
}

/// Every `every`, removes cached snapshots and rendered sets that were not
/// used for that long; ends with the engine.
async fn housekeeping(inner: Weak<Inner>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.host_connections.close_idle().await;
        // Directory walks and removals block.
        let _ = tokio::task::spawn_blocking(move || inner.collect_garbage(every)).await;
    }
}
