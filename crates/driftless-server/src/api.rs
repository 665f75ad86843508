//! REST API over the state store (`GET`) and [`AppControl`] (`POST`, bearer token
//! whose role allows the action; see [`crate::auth`]).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use driftless_api::Role;
use driftless_api::history::{AuditEvent, Operation, OperationKind, SyncRecord};
use driftless_api::inspect::{AppDiff, OwnedTree};
use driftless_api::list::AppList;
use driftless_api::status::{
    AppStatus, ClusterStatus, GitSourceStatus, HelmRepositoryStatus, Named, NotifierStatus,
};
use driftless_engine::control::ControlError;
use driftless_engine::runtime::InspectError;
use driftless_engine::store::{Store, StoreError};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::apps::AppsQuery;
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
            "/api/v1/ocisources",
            get(|State(state): State<ServerState>| async move { axum::Json((state.oci_sources)()) }),
            Doc::new("Every OCISource with the artifact in use (its tag and manifest digest, and the source revision it was made from) and the result of its last poll")
                .json::<Vec<Named<GitSourceStatus>>>(200, "OCISources, by name")
                .read(),
        ),
        Route::get(
            "/api/v1/helmrepositories",
            get(|State(state): State<ServerState>| async move {
                axum::Json((state.helm_repositories)())
            }),
            Doc::new("Every HelmRepository with the digest of its index in use, how many charts it lists, and the result of its last poll")
                .json::<Vec<Named<HelmRepositoryStatus>>>(200, "HelmRepositories, by name")
                .read(),
        ),
        Route::get(
            "/api/v1/notifiers",
            get(|State(state): State<ServerState>| async move {
                axum::Json((state.notifiers)())
            }),
            Doc::new("Every Notifier with its deliveries: delivered, given up on, dropped, not repeated, and the last error")
                .json::<Vec<Named<NotifierStatus>>>(200, "Notifiers, by name")
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
            get(crate::apps::list),
            Doc::new("The Apps' statuses a page at a time, selected by health, sync status, labels and name, with counts over every App selected")
                .read()
                .query::<AppsQuery>()
                .json::<AppList>(200, "One page of the selected Apps ordered by name, the token of the next page, and the counts")
                .error(400, "A query parameter is not valid (the message names it)")
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
        Route::get(
            "/api/v1/apps/{name}/operations",
            get(operations),
            app("The audit log of mutations: each sync, suspend, resume and rollback asked of the App, with the token that asked and what came of it, newest first")
                .read()
                .query::<HistoryQuery>()
                .json::<Vec<Operation>>(200, "Operations")
                .error(404, "No such App"),
        ),
        Route::get(
            "/api/v1/apps/{name}/tree",
            get(|State(state): State<ServerState>, Path(name): Path<String>| async move {
                inspected(state.inspector.owned_objects(&name).await)
            }),
            app("The objects the cluster created for the App's objects (a Deployment's ReplicaSets and their Pods, a CronJob's Jobs), read now with the App's identity, each right after its owner")
                .read()
                .json::<OwnedTree>(200, "Owned objects, depth first")
                .error(404, "No such App")
                .error(502, "The cluster could not be read (the message says why)"),
        ),
        Route::get(
            "/api/v1/apps/{name}/diff",
            get(|State(state): State<ServerState>, Path(name): Path<String>| async move {
                inspected(state.inspector.diff(&name).await)
            }),
            app("The App's objects in Git (at its pin, else its source's latest commit) against the cluster, compared now through a server-side dry run: what a sync would create, change and prune, with Secret values masked")
                .read()
                .json::<AppDiff>(200, "The objects that differ, with unified diffs")
                .error(404, "No such App")
                .error(409, "The App's source has not been fetched yet")
                .error(502, "The source, the render or the cluster failed (the message names the stage)"),
        ),
        Route::post(
            "/api/v1/apps/{name}/sync",
            action(OperationKind::Sync),
            act("Reconcile the App now (overrideWindow=true: even where a sync window holds it)")
                .query::<ActionQuery>(),
        ),
        Route::post(
            "/api/v1/apps/{name}/suspend",
            action(OperationKind::Suspend),
            act("Stop reconciling the App"),
        ),
        Route::post(
            "/api/v1/apps/{name}/resume",
            action(OperationKind::Resume),
            act("Reconcile the App again, following its source"),
        ),
        Route::post(
            "/api/v1/apps/{name}/rollback",
            action(OperationKind::Rollback),
            act("Pin the App to an earlier successful revision").query::<ActionQuery>(),
        ),
    ]
}

/// Runs store work off the async threads: redb commits wait for fsync.
pub(crate) async fn blocking<
    T: serde::Serialize + Send + 'static,
    E: std::fmt::Display + Send + 'static,
>(
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

async fn one(State(state): State<ServerState>, Path(name): Path<String>) -> Response {
    let work = move || match state.store.app(&name) {
        Ok(Some(status)) => Ok(Named::new(name, status)),
        Ok(None) => Err(ControlError::UnknownApp { app: name }),
        Err(e) => Err(e.into()),
    };
    blocking(work, control_status).await
}

/// The answer to an inspection: the value, or the error with its status.
pub(crate) fn inspected<T: serde::Serialize>(result: Result<T, InspectError>) -> Response {
    match result {
        Ok(value) => axum::Json(value).into_response(),
        Err(e) => error(inspect_status(&e), e),
    }
}

/// The HTTP status of an inspection error.
pub(crate) fn inspect_status(e: &InspectError) -> StatusCode {
    match e {
        InspectError::NoSuchApp(_) => StatusCode::NOT_FOUND,
        InspectError::NotYet(_) => StatusCode::CONFLICT,
        InspectError::Failed(_) => StatusCode::BAD_GATEWAY,
    }
}

/// Query of the history and events routes.
#[derive(Deserialize, JsonSchema)]
struct HistoryQuery {
    /// How many entries, newest first (default 50, at most 1000).
    limit: Option<usize>,
}

async fn history(
    state: State<ServerState>,
    name: Path<String>,
    q: Query<HistoryQuery>,
) -> Response {
    app_log(state, name, q, Store::history).await
}

async fn events(state: State<ServerState>, name: Path<String>, q: Query<HistoryQuery>) -> Response {
    app_log(state, name, q, |store, app, limit| {
        store.audit(Some(app), limit)
    })
    .await
}

async fn operations(
    state: State<ServerState>,
    name: Path<String>,
    q: Query<HistoryQuery>,
) -> Response {
    app_log(state, name, q, Store::operations).await
}

/// The newest `?limit` entries `read` finds for a known App; 404 for an unknown one.
async fn app_log<T: serde::Serialize + Send + 'static>(
    State(state): State<ServerState>,
    Path(name): Path<String>,
    Query(q): Query<HistoryQuery>,
    read: fn(&Store, &str, usize) -> Result<T, StoreError>,
) -> Response {
    let limit = q.limit.unwrap_or(DEFAULT_HISTORY).min(MAX_HISTORY);
    let work = move || {
        if state.store.app(&name)?.is_none() {
            return Err(ControlError::UnknownApp { app: name });
        }
        Ok(read(&state.store, &name, limit)?)
    };
    blocking(work, control_status).await
}

/// `operate` makes an App follow Git; holding it away from Git's head needs `admin`.
pub(crate) fn role(operation: OperationKind) -> Role {
    match operation {
        OperationKind::Sync | OperationKind::Resume => Role::Operate,
        OperationKind::Suspend | OperationKind::Rollback => Role::Admin,
    }
}

/// Query of the action routes.
#[derive(Deserialize, JsonSchema)]
struct ActionQuery {
    /// Rollback target, a SHA prefix; default: the newest successful revision before the live one.
    to: Option<String>,
    /// Sync even where a sync window holds the App (audited as an override).
    #[serde(rename = "overrideWindow")]
    override_window: Option<bool>,
}

fn action(action: OperationKind) -> MethodRouter<ServerState> {
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
    action: OperationKind,
) -> Response {
    let what = action.as_str();
    let caller = match state.access.authorize(&headers, role(action), what) {
        Ok(caller) => caller,
        Err(refusal) => {
            tracing::warn!(app = %name, operation = %what, "API refused: {refusal}");
            return refusal.into_response();
        }
    };
    let by = caller.name().to_owned();
    tracing::info!(app = %name, operation = %what, by = %by, "API operation");
    let control = state.control.clone();
    let work = move || {
        let status = match action {
            OperationKind::Sync if q.override_window == Some(true) => {
                control.sync_overriding_windows(&name, &by)
            }
            OperationKind::Sync => control.sync(&name, &by),
            OperationKind::Suspend => control.suspend(&name, &by),
            OperationKind::Resume => control.resume(&name, &by),
            OperationKind::Rollback => control.rollback(&name, q.to.as_deref(), &by),
        }?;
        Ok::<_, ControlError>(Named::new(name, status))
    };
    blocking(work, control_status).await
}

pub(crate) fn control_status(e: &ControlError) -> StatusCode {
    match e {
        ControlError::UnknownApp { .. } => StatusCode::NOT_FOUND,
        ControlError::Suspended { .. } | ControlError::NoRollbackTarget { .. } => {
            StatusCode::CONFLICT
        }
        ControlError::Queue(_) => StatusCode::SERVICE_UNAVAILABLE,
        ControlError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
