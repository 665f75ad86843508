//! The HTTP router: probes, metrics, webhook receivers, and the REST API from [`crate::api`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use driftless_api::{HttpLimits, Role};
use driftless_engine::control::AppControl;
use driftless_engine::metrics::Metrics;
use driftless_engine::store::Store;
use serde_json::json;
use tokio::net::TcpListener;

use crate::api;
use crate::auth::{Access, Token};
use crate::deliveries::RecentDeliveries;
use crate::webhook::{self, Delivery, Provider, Push};

/// Every route the server answers, as (method, path); the OpenAPI test checks each is documented.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("post", "/hooks/{receiver}"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/sources"),
    ("get", "/api/v1/clusters"),
    ("get", "/api/v1/apps"),
    ("get", "/api/v1/apps/{name}"),
    ("get", "/api/v1/apps/{name}/history"),
    ("get", "/api/v1/apps/{name}/events"),
    ("post", "/api/v1/apps/{name}/sync"),
    ("post", "/api/v1/apps/{name}/suspend"),
    ("post", "/api/v1/apps/{name}/resume"),
    ("post", "/api/v1/apps/{name}/rollback"),
];

/// A configured webhook receiver.
#[derive(Clone)]
pub struct Receiver {
    /// Which Git host signs the requests.
    pub provider: Provider,
    /// Shared secret (HMAC key or token).
    pub secret: Vec<u8>,
    /// Events that trigger (`spec.events`); empty means [`webhook::default_events`].
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

/// Produces the JSON of `GET /api/v1/clusters` (it probes each cluster).
pub type ClusterProbe = dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = serde_json::Value> + Send>>
    + Send
    + Sync;

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
    pub(crate) sources: Arc<dyn Fn() -> serde_json::Value + Send + Sync>,
    pub(crate) clusters: Arc<ClusterProbe>,
    pub(crate) ready: Arc<AtomicBool>,
    pub(crate) limits: Arc<HttpLimits>,
    pub(crate) deliveries: Arc<RecentDeliveries>,
}

impl ServerState {
    /// State serving `store`, acting through `control`, exposing `metrics`.
    /// Starts not ready, with no receivers and no API token (mutations refused).
    pub fn new(store: Store, control: Arc<dyn AppControl>, metrics: Arc<Metrics>) -> Self {
        Self {
            store,
            control,
            metrics,
            receivers: Arc::default(),
            access: Arc::default(),
            on_push: Arc::new(|_, _| 0),
            queue_depth: None,
            sources: Arc::new(|| json!([])),
            clusters: Arc::new(|| Box::pin(async { json!([]) })),
            ready: Arc::default(),
            limits: Arc::default(),
            deliveries: Arc::default(),
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

    /// Lists the GitSources at `GET /api/v1/sources`.
    pub fn sources(mut self, f: impl Fn() -> serde_json::Value + Send + Sync + 'static) -> Self {
        self.sources = Arc::new(f);
        self
    }

    /// Lists the Clusters at `GET /api/v1/clusters`; `f` probes them.
    pub fn clusters<F>(mut self, f: impl Fn() -> F + Send + Sync + 'static) -> Self
    where
        F: std::future::Future<Output = serde_json::Value> + Send + 'static,
    {
        self.clusters = Arc::new(move || Box::pin(f()));
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

/// The full router.
pub fn router(state: ServerState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/hooks/{receiver}", post(hook))
        .route("/api/v1/openapi.json", get(openapi))
        .merge(reads(state.clone()))
        .merge(api::actions())
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route") })
        .with_state(state)
}

/// The read routes, behind the read check (open when `anonymousRead`).
fn reads(state: ServerState) -> Router<ServerState> {
    Router::new()
        .route(
            "/api/v1/sources",
            get(|State(state): State<ServerState>| async move { axum::Json((state.sources)()) }),
        )
        .route(
            "/api/v1/clusters",
            get(|State(state): State<ServerState>| async move { axum::Json((state.clusters)().await) }),
        )
        .merge(api::reads())
        .route_layer(axum::middleware::from_fn_with_state(state, require_read))
}

async fn require_read(
    State(state): State<ServerState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match state
        .access
        .authorize(request.headers(), Role::Read, "reading the API")
    {
        Ok(_) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    }
}

/// Serves `state` on `listener` within its [`HttpLimits`] until `shutdown` completes;
/// in-flight requests finish first.
pub async fn serve(
    listener: TcpListener,
    state: ServerState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.limits.clone();
    crate::conn::serve(listener, router(state), &limits, shutdown).await;
    Ok(())
}

/// Binds `addr`, naming it in the error.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("binding {addr}: {e}")))
}

/// A JSON error body `{"error": message}` with `status`.
pub(crate) fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, axum::Json(json!({ "error": message.to_string() }))).into_response()
}

async fn readyz(State(state): State<ServerState>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        "ready\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn metrics(State(state): State<ServerState>) -> Response {
    if let Some(depth) = &state.queue_depth {
        state.metrics.set_queue_depth(depth());
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], crate::OPENAPI).into_response()
}

async fn hook(
    State(state): State<ServerState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let receiver = state
        .receivers
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&name)
        .cloned();
    let Some(receiver) = receiver else {
        return error(StatusCode::NOT_FOUND, format!("receiver {name} not found"));
    };
    let body = match read_body(body, &headers, &state.limits).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let verified = webhook::verify(
        receiver.provider,
        &receiver.secret,
        &receiver.events,
        &headers,
        &body,
    );
    match verified {
        Ok(Delivery::Ignored { event }) => axum::Json(json!({
            "event": event,
            "ignored": true,
            "reason": "event not listed in the receiver's spec.events",
        }))
        .into_response(),
        Ok(Delivery::Push(push)) => {
            let event = event_name(receiver.provider, &headers);
            if let Some(id) = delivery_id(receiver.provider, &headers)
                && !state.deliveries.first_time(&name, id)
            {
                return axum::Json(json!({
                    "event": event,
                    "ignored": true,
                    "reason": format!("delivery {id} was already received"),
                }))
                .into_response();
            }
            let triggered = (state.on_push)(&name, &push);
            axum::Json(json!({ "event": event, "ref": push.git_ref, "triggered": triggered }))
                .into_response()
        }
        Err(e) if e.is_unauthorized() => {
            error(StatusCode::UNAUTHORIZED, format!("receiver {name}: {e}"))
        }
        Err(e) => error(StatusCode::BAD_REQUEST, format!("receiver {name}: {e}")),
    }
}

fn event_name(provider: Provider, headers: &HeaderMap) -> &str {
    webhook::event_header(provider)
        .and_then(|h| headers.get(h))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("push")
}

fn delivery_id(provider: Provider, headers: &HeaderMap) -> Option<&str> {
    let id = headers
        .get(webhook::delivery_header(provider)?)?
        .to_str()
        .ok()?;
    Some(id.trim()).filter(|id| !id.is_empty())
}

/// Reads a request body within the size and time limits; the refusal is a JSON
/// 413 or 408, and a 408 closes the connection since the rest of the body is unread.
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limits: &HttpLimits,
) -> Result<Bytes, Response> {
    use http_body_util::BodyExt;
    let max = limits.max_body_bytes;
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body is larger than the limit of {max} bytes (Server spec.http.maxBodyBytes)"
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let timeout = limits.body_read_timeout.get();
    match tokio::time::timeout(timeout, http_body_util::Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(error(
            StatusCode::BAD_REQUEST,
            format!("reading the request body: {e}"),
        )),
        Err(_) => {
            let mut refusal = error(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "request body not received within {} (Server spec.http.bodyReadTimeout)",
                    limits.body_read_timeout
                ),
            );
            refusal.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            Err(refusal)
        }
    }
}
