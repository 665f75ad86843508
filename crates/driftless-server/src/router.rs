//! The router: every route of [`crate::http`] and [`crate::api`] plus the OpenAPI
//! document generated from them, and serving it.

use std::net::SocketAddr;
use std::sync::LazyLock;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use driftless_api::Role;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::openapi::{Doc, Method, Route};
use crate::state::{ServerState, error};

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// Every route with its description.
fn routes() -> Vec<Route> {
    let mut routes = crate::http::routes();
    routes.push(Route::get(
        OPENAPI_PATH,
        get(|| async { axum::Json(openapi()) }),
        Doc::new("This document").json::<Value>(200, "OpenAPI 3.1 document"),
    ));
    routes.extend(crate::api::routes());
    routes
}

/// The OpenAPI 3.1 document describing every route and the schema of every answer.
pub fn openapi() -> &'static Value {
    static DOCUMENT: LazyLock<Value> = LazyLock::new(|| crate::openapi::document(&routes()));
    &DOCUMENT
}

/// Every route the server answers, as (method, path).
pub fn served() -> Vec<(Method, &'static str)> {
    routes().iter().map(|r| (r.method, r.path)).collect()
}

/// The full router.
pub fn router(state: ServerState) -> Router {
    routes()
        .into_iter()
        .fold(Router::new(), |router, route| {
            let handler = if route.doc.is_read() {
                let check = axum::middleware::from_fn_with_state(state.clone(), require_read);
                route.handler.route_layer(check)
            } else {
                let check = axum::middleware::from_fn_with_state(state.clone(), require_ready);
                route.handler.route_layer(check)
            };
            router.route(route.path, handler)
        })
        .merge(crate::ui::router())
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route") })
        .with_state(state)
}

/// Lets a read through when the caller may read the API (anyone, with `anonymousRead`).
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

/// Lets a change (a mutating call or a webhook) through only once the engine runs:
/// a standby instance answers 503 so the caller retries against the leader.
async fn require_ready(
    State(state): State<ServerState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if state.ready.load(std::sync::atomic::Ordering::Acquire) {
        next.run(request).await
    } else {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: this instance does not reconcile (a standby, or still starting); try again",
        )
    }
}

/// Serves `state` on `listener` within its limits until `shutdown` completes;
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
