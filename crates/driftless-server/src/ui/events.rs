//! `GET /ui/events`: server-sent events telling open pages that App statuses
//! changed, so they fetch their live region again.
//!
//! Every stream follows the store's one change counter (a `watch` channel), so
//! an open page costs a receiver and a few words, however many Apps change.
//! Changes within [`BATCH`] make one event.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use driftless_engine::store::Store;
use serde::Deserialize;

use super::session::{login_required, reader};
use crate::state::ServerState;

/// How long changes are gathered into one event.
const BATCH: Duration = Duration::from_millis(150);
/// Above this many changed Apps an event names none of them (`*`).
const MAX_NAMES: usize = 100;

/// Query of the event stream.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct EventsQuery {
    /// Only changes of this App.
    app: String,
    /// The store's change number when the page was rendered: later changes are
    /// announced at once, so none falls between rendering and connecting.
    since: Option<u64>,
}

/// The store's latest change number, for a page to pass as `since`.
pub(crate) fn latest(store: &Store) -> u64 {
    store.app_changes_since(u64::MAX).0
}

/// The event stream URL of a page rendered at change `since`, following `app` (all when empty).
pub(crate) fn url(app: &str, since: u64) -> String {
    if app.is_empty() {
        format!("/ui/events?since={since}")
    } else {
        format!(
            "/ui/events?app={}&since={since}",
            super::html::path_segment(app)
        )
    }
}

/// What one stream has seen.
struct Follower {
    store: Store,
    changes: tokio::sync::watch::Receiver<u64>,
    seen: u64,
    app: String,
    /// Look for changes before waiting for the next one (just connected).
    look_now: bool,
}

impl Follower {
    /// The next change this stream reports; `None` when the store goes away.
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if !self.look_now {
                self.changes.changed().await.ok()?;
                tokio::time::sleep(BATCH).await;
            }
            self.look_now = false;
            self.changes.borrow_and_update();
            let (latest, names) = self.store.app_changes_since(self.seen);
            self.seen = latest;
            let names: Vec<String> = if self.app.is_empty() {
                names
            } else {
                names.into_iter().filter(|n| *n == self.app).collect()
            };
            if names.is_empty() {
                continue;
            }
            let data = if names.len() > MAX_NAMES {
                "*".to_owned()
            } else {
                names.join(",")
            };
            // The id comes back as `Last-Event-ID` when the browser reconnects.
            let event = Event::default()
                .event("change")
                .id(latest.to_string())
                .data(data);
            return Some((Ok(event), self));
        }
    }
}

/// The event stream of App changes (all Apps, or `?app=NAME`).
pub(crate) async fn stream(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Response {
    if let Err(refusal) = reader(&state, &headers) {
        return login_required(&refusal);
    }
    let mut changes = state.store.watch_app_changes();
    changes.borrow_and_update();
    let reconnected = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let seen = reconnected
        .or(q.since)
        .unwrap_or_else(|| latest(&state.store));
    let follower = Follower {
        store: state.store.clone(),
        changes,
        seen,
        app: q.app,
        look_now: true,
    };
    let events = futures_util::stream::unfold(follower, Follower::next);
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
