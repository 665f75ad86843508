//! Kubernetes target of driftless: object identity, health assessment, apply
//! ordering and diffs (no I/O), and the cluster side built on them:
//! discovery, server-side apply, dry-run diff, inventory and prune, health
//! waits and drift watch.
//!
//! An apply resolves each kind through discovery, fills in the destination
//! namespace for namespaced objects, stamps the owner label and a digest of
//! the intent, and server-side applies in sync-wave and kind order (CRDs
//! established before their resources, each wave healthy before the next).
//! Objects whose live state already matches the intent are not written.
//! The inventory records the objects about to be applied before the first
//! write. After a successful apply, prune deletes what the inventory lists
//! and the set no longer has, if its live labels still name the App. A live
//! object no App owns is adopted (and reported) unless adoption is refused.

mod apply;
pub mod compare;
mod drift;
pub mod health;
pub mod hooks;
pub mod ignore;
mod intent;
pub mod inventory;
pub mod lease;
pub mod object;
pub mod order;
mod plan;
mod quantity;
pub mod requests;
mod secret;
pub mod sync_options;
mod target;
mod tree;
mod wait;

pub use apply::{
    Action, Adoption, ApplyError, ApplyEvent, ApplyOptions, ApplyReport, Skipped, apply, delete_app,
};
pub use drift::{DriftError, DriftEvent, DriftKind, DriftWatch, WatchFailure};
pub use health::{Health, HealthStatus, aggregate, assess, assess_live, is_terminal_failure};
pub use intent::{DIGEST_ANNOTATION, drifted_fields};
pub use object::{ADOPT_ANNOTATION, OWNER_LABEL, ObjectError, ObjectKey, ObjectRef};
pub use plan::diff;
pub use target::{Resource, SERVICE_ACCOUNT_DIR, Target, TargetError, error_chain, is_unreachable};
pub use tree::{TREE_LIMIT, owned_tree, owned_tree_paged};
pub use wait::{ObjectHealth, WaitError, assess_objects, wait_healthy, wait_healthy_with};

/// Field manager name of every write driftless makes.
pub const FIELD_MANAGER: &str = "driftless";
