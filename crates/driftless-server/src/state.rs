//! What every handler shares: the [`ServerState`] and the JSON error body.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use driftless_api::inspect::{AppDiff, OwnedTree};
use driftless_api::status::{
    ClusterStatus, GitSourceStatus, HelmRepositoryStatus, Named, NotifierStatus,
};
use driftless_api::{Config, HttpLimits};
use driftless_engine::control::AppControl;
use driftless_engine::metrics::Metrics;
use driftless_engine::runtime::InspectError;
use driftless_engine::store::Store;
use schemars::JsonSchema;
use serde::Serialize;

use crate::auth::{Access, Token};
use crate::deliveries::RecentDeliveries;
use crate::webhook::{Provider, Push};

/// A configured webhook receiver.
#[derive(Clone)]
pub struct Receiver {
    /// Which Git host signs the requests.
    pub provider: Provider,
    /// Shared secret (HMAC key or token).
    pub secret: Vec<u8>,
    /// Events that trigger (`spec.events`); empty means [`crate::webhook::default_events`].
    pub events: Vec<String>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("Receiver")
            .field("provider", &self.provider)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// Called with the receiver name and a verified push; returns how many sources it triggered.
pub type OnPush = dyn Fn(&str, &Push) -> usize + Send + Sync;

/// Produces `GET /api/v1/clusters` (it probes each cluster).
pub type ClusterProbe =
    dyn Fn() -> Pin<Box<dyn Future<Output = Vec<Named<ClusterStatus>>> + Send>> + Send + Sync;

/// Produces `GET /api/v1/sources`.
pub type SourceList = dyn Fn() -> Vec<Named<GitSourceStatus>> + Send + Sync;

/// Produces `GET /api/v1/helmrepositories`.
pub type HelmRepositoryList = dyn Fn() -> Vec<Named<HelmRepositoryStatus>> + Send + Sync;

/// Produces `GET /api/v1/notifiers`.
pub type NotifierList = dyn Fn() -> Vec<Named<NotifierStatus>> + Send + Sync;

/// A future an [`Inspector`] answers with.
pub type Inspection<T> = Pin<Box<dyn Future<Output = Result<T, InspectError>> + Send>>;

/// Reads about an App's live objects in its cluster, for the API and the UI.
pub trait Inspector: Send + Sync {
    /// The objects the cluster created for the App's objects.
    fn owned_objects(&self, app: &str) -> Inspection<OwnedTree>;
    /// The App's objects in Git against the cluster.
    fn diff(&self, app: &str) -> Inspection<AppDiff>;
}

/// The inspector of a server that reaches no cluster.
struct NoCluster;

impl Inspector for NoCluster {
    fn owned_objects(&self, _: &str) -> Inspection<OwnedTree> {
        Box::pin(async { Err(InspectError::Failed("this server reads no cluster".into())) })
    }

    fn diff(&self, _: &str) -> Inspection<AppDiff> {
        Box::pin(async { Err(InspectError::Failed("this server reads no cluster".into())) })
    }
}

/// The config in force, for what the store does not hold (the Apps' labels).
pub type ConfigInForce = dyn Fn() -> Arc<Config> + Send + Sync;

/// Everything the handlers share.
#[derive(Clone)]
pub struct ServerState {
    pub(crate) store: Store,
    pub(crate) control: Arc<dyn AppControl>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) receivers: Arc<RwLock<HashMap<String, Receiver>>>,
    pub(crate) access: Arc<Access>,
    pub(crate) on_push: Arc<OnPush>,
    pub(crate) queue_depth: Option<Arc<dyn Fn() -> usize + Send + Sync>>,
    pub(crate) sources: Arc<SourceList>,
    pub(crate) helm_repositories: Arc<HelmRepositoryList>,
    pub(crate) oci_sources: Arc<SourceList>,
    pub(crate) notifiers: Arc<NotifierList>,
    pub(crate) clusters: Arc<ClusterProbe>,
    pub(crate) config: Arc<ConfigInForce>,
    pub(crate) ready: Arc<AtomicBool>,
    pub(crate) limits: Arc<HttpLimits>,
    pub(crate) deliveries: Arc<RecentDeliveries>,
    pub(crate) inspector: Arc<dyn Inspector>,
}

impl ServerState {
    /// State serving `store`, acting through `control`, exposing `metrics`.
    /// Starts not ready, with no receivers and no API token (mutations refused).
    pub fn new(store: Store, control: Arc<dyn AppControl>, metrics: Arc<Metrics>) -> Self {
        let empty = Arc::new(
            Config::from_documents(Vec::new()).expect("a config without objects is valid"),
        );
        Self {
            store,
            control,
            metrics,
            receivers: Arc::default(),
            access: Arc::default(),
            on_push: Arc::new(|_, _| 0),
            queue_depth: None,
            sources: Arc::new(Vec::new),
            helm_repositories: Arc::new(Vec::new),
            oci_sources: Arc::new(Vec::new),
            notifiers: Arc::new(Vec::new),
            clusters: Arc::new(|| Box::pin(async { Vec::new() })),
            config: Arc::new(move || empty.clone()),
            ready: Arc::default(),
            limits: Arc::default(),
            deliveries: Arc::default(),
            inspector: Arc::new(NoCluster),
        }
    }

    /// Serves within `limits` (timeouts, connection cap, body size) instead of the defaults.
    pub fn limits(mut self, limits: HttpLimits) -> Self {
        self.limits = Arc::new(limits);
        self
    }

    /// Accepts webhooks at `/hooks/{name}`.
    pub fn receiver(self, name: &str, receiver: Receiver) -> Self {
        write(&self.receivers).insert(name.to_owned(), receiver);
        self
    }

    /// Replaces every receiver at once (a config reload); requests in flight
    /// finish with the receiver they started with.
    pub fn set_receivers(&self, receivers: HashMap<String, Receiver>) {
        *write(&self.receivers) = receivers;
    }

    /// Accepts `token` as the one `admin` token (the `Server.spec.apiToken` setting).
    pub fn api_token(self, token: &str) -> Self {
        let access = Access::new(true, vec![Token::legacy(token)])
            .expect("one token cannot share its value");
        self.access(access)
    }

    /// Checks every API call against `access`: its tokens and their roles.
    pub fn access(mut self, access: Access) -> Self {
        self.access = Arc::new(access);
        self
    }

    /// Calls `f` for every verified push.
    pub fn on_push(mut self, f: impl Fn(&str, &Push) -> usize + Send + Sync + 'static) -> Self {
        self.on_push = Arc::new(f);
        self
    }

    /// Lists the Notifiers and their deliveries at `GET /api/v1/notifiers`.
    pub fn notifiers(
        mut self,
        f: impl Fn() -> Vec<Named<NotifierStatus>> + Send + Sync + 'static,
    ) -> Self {
        self.notifiers = Arc::new(f);
        self
    }

    /// Lists the GitSources at `GET /api/v1/sources`.
    pub fn sources(
        mut self,
        f: impl Fn() -> Vec<Named<GitSourceStatus>> + Send + Sync + 'static,
    ) -> Self {
        self.sources = Arc::new(f);
        self
    }

    /// Lists the OCISources at `GET /api/v1/ocisources`.
    pub fn oci_sources(
        mut self,
        f: impl Fn() -> Vec<Named<GitSourceStatus>> + Send + Sync + 'static,
    ) -> Self {
        self.oci_sources = Arc::new(f);
        self
    }

    /// Lists the HelmRepositories at `GET /api/v1/helmrepositories`.
    pub fn helm_repositories(
        mut self,
        f: impl Fn() -> Vec<Named<HelmRepositoryStatus>> + Send + Sync + 'static,
    ) -> Self {
        self.helm_repositories = Arc::new(f);
        self
    }

    /// Lists the Clusters at `GET /api/v1/clusters`; `f` probes them.
    pub fn clusters<F>(mut self, f: impl Fn() -> F + Send + Sync + 'static) -> Self
    where
        F: Future<Output = Vec<Named<ClusterStatus>>> + Send + 'static,
    {
        self.clusters = Arc::new(move || Box::pin(f()));
        self
    }

    /// Reads owned objects and diffs through `inspector`.
    pub fn inspector(mut self, inspector: Arc<dyn Inspector>) -> Self {
        self.inspector = inspector;
        self
    }

    /// Reads the config in force when a request needs it (App labels for `?label=`).
    pub fn config(mut self, f: impl Fn() -> Arc<Config> + Send + Sync + 'static) -> Self {
        self.config = Arc::new(f);
        self
    }

    /// Reads the work queue depth when `/metrics` is scraped.
    pub fn queue_depth(mut self, f: impl Fn() -> usize + Send + Sync + 'static) -> Self {
        self.queue_depth = Some(Arc::new(f));
        self
    }

    /// Flag behind `/readyz`; the engine sets it once the store is open and sources loaded.
    pub fn readiness(&self) -> Arc<AtomicBool> {
        self.ready.clone()
    }
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The body of every error answer.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Error")]
pub struct ErrorBody {
    /// What went wrong, naming the App, receiver or field at fault.
    pub error: String,
}

/// A JSON error body `{"error": message}` with `status`.
pub(crate) fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    let body = ErrorBody {
        error: message.to_string(),
    };
    (status, axum::Json(body)).into_response()
}
