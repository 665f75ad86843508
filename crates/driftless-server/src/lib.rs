//! driftless HTTP server: health probes, Prometheus metrics, webhook receivers and the
//! REST API over the engine's state store.
//!
//! - [`webhook`]: signature checks and payload parsing per Git host.
//! - [`http`]: the axum router and [`http::serve`]; connections are bounded by `conn`.
//! - [`deliveries`]: replayed webhook deliveries are recognised by their id.
//! - [`api`]: REST handlers for Apps and their history.
//! - [`auth`]: named API tokens, their roles, and the check on every API call.
//! - [`datadir`], [`process`]: private data dir, open-file limit, umask.
//! - [`serve`]: `driftless serve`: config, engine, HTTP and config reload together.

pub mod api;
pub mod auth;
mod conn;
pub mod datadir;
pub mod deliveries;
pub mod http;
pub mod process;
pub mod serve;
pub mod webhook;

/// Address the server binds by default: loopback only, so nothing is exposed by accident.
pub const DEFAULT_LISTEN: &str = driftless_api::DEFAULT_LISTEN;

/// The OpenAPI 3 document describing every route, served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");
