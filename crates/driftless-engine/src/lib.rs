//! The driftless engine: the parts of `driftless serve` that keep many Apps in sync.
//!
//! - [`store`]: embedded state (app status, sync history, audit log) that survives restarts.
//! - [`queue`]: the work queue that decides when each App reconciles.
//! - [`timing`]: backoff and jitter arithmetic.

pub mod queue;
pub mod store;
pub mod timing;

pub use tokio_util::sync::CancellationToken;
