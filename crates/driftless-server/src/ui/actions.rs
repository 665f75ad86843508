//! `POST /apps/{name}/{action}`: Sync, Suspend, Resume and Rollback from the
//! App page, under the same roles as the REST API and recorded the same way.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use driftless_api::history::OperationKind;

use super::html::app_href;
use super::session::{actor, field, form, refused};
use crate::api::{control_status, role};
use crate::state::ServerState;

/// The operation an action path names.
fn operation(action: &str) -> Option<OperationKind> {
    [
        OperationKind::Sync,
        OperationKind::Suspend,
        OperationKind::Resume,
        OperationKind::Rollback,
    ]
    .into_iter()
    .find(|op| op.as_str() == action)
}

/// Runs the action a form posted, then shows the App page again.
pub(crate) async fn act(
    State(state): State<ServerState>,
    Path((name, action)): Path<(String, String)>,
    request: Request,
) -> Response {
    let Some(kind) = operation(&action) else {
        return refused(StatusCode::NOT_FOUND, &action, "there is no such action");
    };
    let what = format!("{} App {name}", kind.as_str());
    let (headers, fields) = match form(&state, request).await {
        Ok(form) => form,
        Err(refusal) => return refusal,
    };
    let caller = match actor(&state, &headers, &fields, role(kind), &what) {
        Ok(caller) => caller,
        Err((status, why)) => {
            tracing::warn!(app = %name, operation = %kind.as_str(), "web UI action refused: {why}");
            return refused(status, &what, &why);
        }
    };
    // As the API: a standby instance does not act.
    if !state.ready.load(std::sync::atomic::Ordering::Acquire) {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            &what,
            "this instance does not reconcile (a standby, or still starting); try again",
        );
    }
    let to = field(&fields, "to")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let by = caller.name().to_owned();
    tracing::info!(app = %name, operation = %kind.as_str(), by = %by, "web UI operation");
    let control = state.control.clone();
    let app = name.clone();
    let work = move || match kind {
        OperationKind::Sync => control.sync(&app, &by),
        OperationKind::Suspend => control.suspend(&app, &by),
        OperationKind::Resume => control.resume(&app, &by),
        OperationKind::Rollback => control.rollback(&app, to.as_deref(), &by),
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(_)) => {
            let to = format!("{}?done={}", app_href(&name), kind.as_str());
            Redirect::to(&to).into_response()
        }
        Ok(Err(e)) => refused(control_status(&e), &what, &e.to_string()),
        Err(e) => super::internal_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_its_path() {
        for op in [
            OperationKind::Sync,
            OperationKind::Suspend,
            OperationKind::Resume,
            OperationKind::Rollback,
        ] {
            assert_eq!(operation(op.as_str()), Some(op));
        }
        assert_eq!(operation("delete"), None);
    }
}
