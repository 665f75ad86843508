//! The web UI: server-rendered pages over the same state as the REST API, served
//! on its listener, with a small script for live updates. Everything it needs is
//! compiled into the binary.
//!
//! - `list`: `/`, the App list; `detail`: `/apps/{name}`; `diff`: `/apps/{name}/diff`;
//!   `sources`: `/sources`.
//! - `actions`: Sync, Suspend, Resume and Rollback posted from the App page.
//! - `session`: signing in with an API token, the cookie and the form checks.
//! - `events`: the server-sent events that keep open pages current.
//! - `html`: escaping and the shared layout; `assets`: the stylesheet and script.

mod actions;
mod assets;
mod detail;
mod diff;
mod events;
mod html;
mod list;
mod session;
mod sources;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};

use crate::state::ServerState;

/// Header the script sends to get only a page's live region.
const FRAGMENT_HEADER: &str = "x-driftless-fragment";

/// The UI's routes, to merge into the server's router.
pub(crate) fn router() -> Router<ServerState> {
    Router::new()
        .route("/", get(list::show))
        .route("/apps/{name}", get(detail::show))
        .route("/apps/{name}/diff", get(diff::show))
        .route("/apps/{name}/{action}", post(actions::act))
        .route("/sources", get(sources::show))
        .route("/login", get(session::show_login).post(session::login))
        .route("/logout", post(session::logout))
        .route("/ui/events", get(events::stream))
        .route(assets::CSS_PATH, get(assets::css))
        .route(assets::JS_PATH, get(assets::js))
}

/// Whether the script asked for the live region only.
fn fragment_requested(headers: &HeaderMap) -> bool {
    headers.contains_key(FRAGMENT_HEADER)
}

/// A page saying the server failed, logging why.
fn internal_error(e: &dyn std::fmt::Display) -> Response {
    tracing::error!("web UI: {e}");
    session::html_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!(
            "<!doctype html><title>Error</title><h1>Server error</h1><p>{}</p>",
            html::Esc(&e.to_string())
        ),
    )
}
