//! The driftless engine: the parts of `driftless serve` that keep many Apps in sync.
//!
//! - [`runtime`]: the running engine: fetch, render, apply, record, drift, config reload.
//! - [`store`]: embedded state (app status, sync history, audit log) that survives restarts.
//! - [`queue`]: the work queue that decides when each App reconciles.
//! - [`control`]: user actions (sync, suspend, resume, rollback) for the API server.
//! - [`deps`]: `dependsOn` ordering between Apps.
//! - [`metrics`]: counters and histograms the server exposes in Prometheus format.
//! - [`timing`]: backoff and jitter arithmetic.

pub mod control;
pub mod deps;
pub mod metrics;
pub mod queue;
pub mod runtime;
pub mod store;
pub mod timing;

pub use tokio_util::sync::CancellationToken;
