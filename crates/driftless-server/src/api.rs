//! REST API over the state store (`GET`) and [`AppControl`] (`POST`, bearer token
//! whose role allows the action; see [`crate::auth`]).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use driftless_api::Role;
use driftless_api::status::Named;
use driftless_engine::control::ControlError;
use serde::Deserialize;

use crate::http::{ServerState, error};

/// History entries returned when `?limit` is absent.
const DEFAULT_HISTORY: usize = 50;
/// Upper bound on `?limit`, so one request cannot read the whole store.
const MAX_HISTORY: usize = 1000;

/// Routes that read; the caller puts them behind the read check.
pub(crate) fn reads() -> Router<ServerState> {
    Router::new()
        .route("/api/v1/apps", get(list))
        .route("/api/v1/apps/{name}", get(one))
        .route("/api/v1/apps/{name}/history", get(history))
        .route("/api/v1/apps/{name}/events", get(events))
}

/// Routes that act on an App; each checks its own role.
pub(crate) fn actions() -> Router<ServerState> {
    Router::new()
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
        Ok(Some(status)) => Ok(Named::new(name, status)),
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

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Suspend => "suspend",
            Self::Resume => "resume",
            Self::Rollback => "rollback",
        }
    }

    /// `operate` makes an App follow Git; holding it away from Git's head needs `admin`.
    fn role(self) -> Role {
        match self {
            Self::Sync | Self::Resume => Role::Operate,
            Self::Suspend | Self::Rollback => Role::Admin,
        }
    }
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
    let what = action.name();
    if let Err(refusal) = state.access.authorize(&headers, action.role(), what) {
        return refusal.into_response();
    }
    let control = state.control.clone();
    let work = move || {
        let status = match action {
            Action::Sync => control.sync(&name),
            Action::Suspend => control.suspend(&name),
            Action::Resume => control.resume(&name),
            Action::Rollback => control.rollback(&name, q.to.as_deref()),
        }?;
        Ok::<_, ControlError>(Named::new(name, status))
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
