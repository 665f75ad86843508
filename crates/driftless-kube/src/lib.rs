//! Kubernetes target of driftless: object identity, health assessment, apply
//! ordering and diffs. This part does no I/O; the cluster client builds on it.

pub mod diff;
pub mod health;
pub mod object;
pub mod order;
mod secret;
mod yaml;

pub use health::{Health, HealthStatus, aggregate, assess, assess_live, is_terminal_failure};
pub use object::{ObjectError, ObjectKey, ObjectRef};
