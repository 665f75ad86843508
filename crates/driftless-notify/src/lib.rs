//! Notifications: what happened to an App, told to people and to Git.
//!
//! The engine hands [`Delivery`]s to a [`Dispatcher`]; each `Notifier` of the
//! config gets its own bounded queue and worker, which formats the delivery as
//! its service documents it ([`format`]), sends it, retries with backoff,
//! paces itself and does not repeat a failure it has already told. Nothing
//! here ever blocks the caller: a full queue drops and counts.

mod deliver;
mod event;
pub mod format;
mod target;

pub use deliver::{Dispatcher, RetryPolicy};
pub use event::{
    Commit, CommitState, CommitUpdate, Delivery, Drift, ERROR_EXCERPT, Event, excerpt,
};
pub use target::{Secret, Target, TargetError};
