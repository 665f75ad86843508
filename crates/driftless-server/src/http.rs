//! Probes, metrics and webhook receivers: the routes outside the REST API.

use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use driftless_api::HttpLimits;
use schemars::JsonSchema;
use serde::Serialize;

use crate::openapi::{Doc, Route};
use crate::state::{ServerState, error};
use crate::webhook::{self, Delivery, Provider};

/// The routes of this module with their descriptions.
pub(crate) fn routes() -> Vec<Route> {
    let text = |summary| Doc::new(summary).text(200, "OK");
    vec![
        Route::get(
            "/healthz",
            get(|| async { "ok\n" }),
            text("Liveness probe: `ok` while the process runs"),
        ),
        Route::get(
            "/readyz",
            get(readyz),
            text("Readiness probe: `ready` once the engine has opened its store and loaded its config")
                .text(503, "Not ready yet"),
        ),
        Route::get(
            "/metrics",
            get(metrics),
            text("Prometheus metrics (text format 0.0.4)"),
        ),
        Route::post(
            "/hooks/{receiver}",
            post(hook),
            Doc::new("Webhook receiver (GitHub, GitLab, Gitea, generic HMAC)")
                .path_param("receiver", "Receiver name")
                .body::<serde_json::Value>()
                .json::<HookReply>(200, "Delivery verified: triggered or ignored")
                .error(400, "Body is not JSON or names no repository")
                .error(401, "Missing or wrong signature or token")
                .error(404, "No such receiver")
                .error(408, "Body not received within bodyReadTimeout; the connection is closed")
                .error(413, "Body larger than maxBodyBytes"),
        ),
    ]
}

/// The answer to a verified delivery.
#[derive(Debug, Serialize, JsonSchema)]
pub struct HookReply {
    /// Event name from the provider's header (`push` when it sends none).
    pub event: String,
    /// The pushed ref, for a push.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// How many GitSources the push triggered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triggered: Option<usize>,
    /// True when nothing was triggered on purpose.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ignored: bool,
    /// Why an event was ignored: not listed in `spec.events`, or a replayed delivery id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl HookReply {
    fn ignored(event: &str, reason: String) -> Self {
        Self {
            event: event.to_owned(),
            git_ref: None,
            triggered: None,
            ignored: true,
            reason: Some(reason),
        }
    }
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
        Ok(Delivery::Ignored { event }) => axum::Json(HookReply::ignored(
            &event,
            "event not listed in the receiver's spec.events".to_owned(),
        ))
        .into_response(),
        Ok(Delivery::Push(push)) => {
            let event = event_name(receiver.provider, &headers);
            if let Some(id) = delivery_id(receiver.provider, &headers)
                && !state.deliveries.first_time(&name, id)
            {
                let reason = format!("delivery {id} was already received");
                return axum::Json(HookReply::ignored(event, reason)).into_response();
            }
            let triggered = (state.on_push)(&name, &push);
            axum::Json(HookReply {
                event: event.to_owned(),
                git_ref: push.git_ref,
                triggered: Some(triggered),
                ignored: false,
                reason: None,
            })
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
pub(crate) async fn read_body(
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
