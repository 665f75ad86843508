//! driftless HTTP server: health probes, Prometheus metrics, webhook receivers and the
//! REST API over the engine's state store.
//!
//! - [`router`]: every route, the OpenAPI document generated from them (`openapi`),
//!   and [`router::serve`]; connections are bounded by `conn`.
//! - [`state`]: what the handlers share ([`ServerState`]) and the JSON error body.
//! - [`http`]: probes, metrics and webhook receivers.
//! - [`api`]: REST handlers for Apps, their history, sources and clusters.
//! - `apps`: the App list, paged and filtered.
//! - [`auth`]: named API tokens, their roles, and the check on every API call.
//! - [`webhook`]: signature checks and payload parsing per Git host.
//! - [`deliveries`]: replayed webhook deliveries are recognised by their id.
//! - [`datadir`], [`process`]: private data dir, open-file limit, umask.
//! - [`serve`]: `driftless serve`: config, engine, HTTP and config reload together.
//! - `ui`: the web UI at `/`, on the same listener.

pub mod api;
mod apps;
pub mod auth;
mod conn;
pub mod datadir;
pub mod deliveries;
pub mod http;
mod openapi;
pub mod process;
pub mod router;
pub mod serve;
pub mod state;
mod ui;
pub mod webhook;

pub use openapi::Method;
pub use state::{Receiver, ServerState};

/// Address the server binds by default: loopback only, so nothing is exposed by accident.
pub const DEFAULT_LISTEN: &str = driftless_api::DEFAULT_LISTEN;
