//! REST API over the state store (`GET`) and [`AppControl`] (`POST`, bearer token).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use driftless_engine::control::ControlError;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::http::{ServerState, error};

/// History entries returned when `?limit` is absent.
const DEFAULT_HISTORY: usize = 50;
/// Upper bound on `?limit`, so one request cannot read the whole store.
const MAX_HISTORY: usize = 1000;

pub(crate) fn routes() -> Router<ServerState> {
    Router::new()
        .route("/api/v1/apps", get(list))
        .route("/api/v1/apps/{name}", get(one))
        .route("/api/v1/apps/{name}/history", get(history))
        .route("/api/v1/apps/{name}/events", get(events))
        .route("/api/v1/apps/{name}/sync", action(Action::Sync))
        .route("/api/v1/apps/{name}/suspend", action(Action::Suspend))
        .route("/api/v1/apps/{name}/resume", action(Action::Resume))
        .route("/api/v1/apps/{name}/rollback", action(Action::Rollback))
}

/// Runs store work off the async threads: redb commits wait for fsync.
async fn blocking<T: serde::Serialize + Send + 'static, E: std::fmt::Display + Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
    status_of: impl FnOnce(&E) -> StatusCode,
) -> Response {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => axum::Json(value).into_response(),
        Ok(Err(e)) => error(status_of(&e), e),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("request task failed: {e}"),
        ),
    }
}

async fn list(State(state): State<ServerState>) -> Response {
    blocking(
        move || state.store.apps(),
        |_| StatusCode::INTERNAL_SERVER_ERROR,
    )
    .await
}

async fn one(State(state): State<ServerState>, Path(name): Path<String>) -> Response {
    let work = move || match state.store.app(&name) {
        Ok(Some(status)) => Ok(status),
        Ok(None) => Err(ControlError::UnknownApp { app: name }),
        Err(e) => Err(e.into()),
    };
    blocking(work, control_status).await
}

#[derive(Deserialize)]
struct HistoryQuery {
    limit: Option<usize>,
}

async fn history(
    State(state): State<ServerState>,
    Path(name): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(DEFAULT_HISTORY).min(MAX_HISTORY);
    let work = move || {
        if state.store.app(&name)?.is_none() {
            return Err(ControlError::UnknownApp { app: name });
        }
        Ok(state.store.history(&name, limit)?)
    };
    blocking(work, control_status).await
}

async fn events(
    State(state): State<ServerState>,
    Path(name): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(DEFAULT_HISTORY).min(MAX_HISTORY);
    let work = move || {
        if state.store.app(&name)?.is_none() {
            return Err(ControlError::UnknownApp { app: name });
        }
        Ok(state.store.audit(Some(&name), limit)?)
    };
    blocking(work, control_status).await
}

#[derive(Clone, Copy)]
enum Action {
    Sync,
    Suspend,
    Resume,
    Rollback,
}

#[derive(Deserialize)]
struct ActionQuery {
    /// Rollback target (SHA prefix).
    to: Option<String>,
}

fn action(action: Action) -> MethodRouter<ServerState> {
    post(
        move |state: State<ServerState>,
              headers: HeaderMap,
              name: Path<String>,
              q: Query<ActionQuery>| { act(state, headers, name, q, action) },
    )
}

async fn act(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<ActionQuery>,
    action: Action,
) -> Response {
    if let Some(denied) = denial(&state, &headers) {
        return denied;
    }
    let control = state.control.clone();
    let work = move || match action {
        Action::Sync => control.sync(&name),
        Action::Suspend => control.suspend(&name),
        Action::Resume => control.resume(&name),
        Action::Rollback => control.rollback(&name, q.to.as_deref()),
    };
    blocking(work, control_status).await
}

fn control_status(e: &ControlError) -> StatusCode {
    match e {
        ControlError::UnknownApp { .. } => StatusCode::NOT_FOUND,
        ControlError::Suspended { .. } | ControlError::NoRollbackTarget { .. } => {
            StatusCode::CONFLICT
        }
        ControlError::Queue(_) => StatusCode::SERVICE_UNAVAILABLE,
        ControlError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Checks `Authorization: Bearer <token>` in constant time; `Some` is the refusal to send.
fn denial(state: &ServerState, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &state.api_token else {
        return Some(error(
            StatusCode::FORBIDDEN,
            "mutating API calls are disabled: no API token configured",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        None
    } else {
        let challenge = [(header::WWW_AUTHENTICATE, "Bearer")];
        Some(
            (
                challenge,
                error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token"),
            )
                .into_response(),
        )
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme name is
/// case-insensitive (RFC 7235 section 2.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_matches(' '))
}
