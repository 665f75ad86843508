//! The stylesheet and script, compiled into the binary and served with a
//! version in their path so browsers may cache them for long.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// Path of the stylesheet.
pub(crate) const CSS_PATH: &str = concat!("/ui/assets/", env!("CARGO_PKG_VERSION"), "/ui.css");
/// Path of the script.
pub(crate) const JS_PATH: &str = concat!("/ui/assets/", env!("CARGO_PKG_VERSION"), "/ui.js");

const CSS: &str = include_str!("assets/ui.css");
const JS: &str = include_str!("assets/ui.js");

/// The stylesheet.
pub(crate) async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

/// The script.
pub(crate) async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &'static str, text: &'static str) -> Response {
    let mut response = text.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The path changes with every release, so a cached copy is never stale.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400, immutable"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
