//! Applying an object set to a cluster, pruning what left it, and deleting
//! everything an App owns.
//!
//! The modules depend one way: [`phases`] takes the hooks out of a set and
//! runs them ([`hooks`]) around [`waves`], which runs an apply and calls
//! [`write`] for each object and [`prune`] at the end; all of them share the options,
//! the report types and the errors, which depend on none of them.

mod adopt;
mod error;
mod hooks;
mod modes;
mod options;
mod phases;
mod prune;
mod report;
mod waves;
mod write;

pub use adopt::Adoption;
pub use error::ApplyError;
pub(crate) use error::api_error;
pub(crate) use modes::heal;
pub use options::ApplyOptions;
pub(crate) use options::{destination, tenant};
pub(crate) use phases::apply_with;
pub use prune::delete_app;
pub use report::{Action, ApplyEvent, ApplyReport, Skipped};
pub use waves::apply;
