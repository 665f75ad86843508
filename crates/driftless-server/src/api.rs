//! REST API over the state store (`GET`) and [`AppControl`] (`POST`, bearer token
//! whose role allows the action; see [`crate::auth`]).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use driftless_api::Role;
use driftless_api::history::{AuditEvent, SyncRecord};
use driftless_api::status::{AppStatus, ClusterStatus, GitSourceStatus, Named};
use driftless_engine::control::ControlError;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::openapi::{Doc, Route};
use crate::state::{ServerState, error};

/// History entries returned when `?limit` is absent.
const DEFAULT_HISTORY: usize = 50;
/// Upper bound on `?limit`, so one request cannot read the whole store.
const MAX_HISTORY: usize = 1000;

/// The routes of this module with their descriptions.
pub(crate) fn routes() -> Vec<Route> {
    let app = |summary| Doc::new(summary).path_param("name", "App name");
    let act = |summary| {
        app(summary)
            .bearer()
            .json::<Named<AppStatus>>(200, "The App's status after the action")
            .error(401, "Missing or wrong bearer token")
            .error(403, "The token's role does not allow this (sync and resume need operate, suspend and rollback admin), or no token is configured")
            .error(404, "No such App")
            .error(
                409,
                "Suspended (sync), or no earlier successful revision (rollback)",
            )
            .error(503, "The engine is shutting down")
    };
    vec![
        Route::get(
            "/api/v1/sources",
            get(|State(state): State<ServerState>| async move { axum::Json((state.sources)()) }),
            Doc::new("Every GitSource with its latest revision and the result of its last fetch")
                .json::<Vec<Named<GitSourceStatus>>>(200, "Sources, in config order")
                .read(),
        ),
        Route::get(
            "/api/v1/clusters",
            get(|State(state): State<ServerState>| async move {
                axum::Json((state.clusters)().await)
            }),
            Doc::new("Every declared Cluster, probed now: Ready when its API server answers, and the version it reports")
                .json::<Vec<Named<ClusterStatus>>>(200, "Clusters, in config order")
                .read(),
        ),
        Route::get(
            "/api/v1/apps",
            get(list),
            Doc::new("Every App's status")
                .json::<Vec<Named<AppStatus>>>(200, "Apps ordered by name")
                .read()
                .error(500, "The state store failed"),
        ),
        Route::get(
            "/api/v1/apps/{name}",
            get(one),
            app("One App's status")
                .read()
                .json::<Named<AppStatus>>(200, "Status")
                .error(404, "No such App"),
        ),
        Route::get(
            "/api/v1/apps/{name}/history",
            get(history),
            app("Sync history, newest first")
                .read()
                .query::<HistoryQuery>()
                .json::<Vec<SyncRecord>>(200, "Syncs")
                .error(404, "No such App"),
        ),
        Route::get(
            "/api/v1/apps/{name}/events",
            get(events),
            app("Drift seen on the App's live objects and objects its syncs adopted, newest first")
                .read()
                .query::<HistoryQuery>()
                .json::<Vec<AuditEvent>>(200, "Audit events")
                .error(404, "No such App"),
        ),
        Route::post(
            "/api/v1/apps/{name}/sync",
            action(Action::Sync),
            act("Reconcile the App now"),
        ),
        Route::post(
            "/api/v1/apps/{name}/suspend",
            action(Action::Suspend),
            act("Stop reconciling the App"),
        ),
        Route::post(
            "/api/v1/apps/{name}/resume",
            action(Action::Resume),
            act("Reconcile the App again, following its source"),
        ),
        Route::post(
            "/api/v1/apps/{name}/rollback",
            action(Action::Rollback),
            act("Pin the App to an earlier successful revision").query::<ActionQuery>(),
        ),
    ]
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

/// Query of the history and events routes.
#[derive(Deserialize, JsonSchema)]
struct HistoryQuery {
    /// How many entries, newest first (default 50, at most 1000).
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

/// Query of the action routes.
#[derive(Deserialize, JsonSchema)]
struct ActionQuery {
    /// Rollback target, a SHA prefix; default: the newest successful revision before the live one.
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
