//! The driftless engine: the parts of `driftless serve` that keep many Apps in sync.
//!
//! - [`store`]: embedded state (app status, sync history, audit log) that survives restarts.
//! - [`timing`]: backoff and jitter arithmetic.

pub mod store;
pub mod timing;
