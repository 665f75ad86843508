//! The host target of driftless: an App's file tree deployed to machines over
//! SSH as atomic releases.
//!
//! A release is `<appsRoot>/<app>/releases/<commit>/`. Only files whose digest
//! or mode changed are sent; the rest are hard-linked on the host from the
//! release that was current. Then `current` is switched by renaming a fresh
//! symlink over it, so it always names a whole release. Hooks and the health
//! check run on the host in the new release; a failed check switches back.
//! Each release's manifest stays on the host, and drift (files modified,
//! added, removed, a moved `current`) is measured against it.
//!
//! The crate takes a plain directory (already checked out or rendered) and its
//! commit; it knows nothing of sources. A typical engine call:
//!
//! ```no_run
//! # async fn run(hosts: Vec<driftless_api::Host>, app: driftless_api::App) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use driftless_host::{AppRelease, ConnectionPool, Endpoint, Timeouts, rollout};
//!
//! // Connections stay open between rollouts and drift checks; kept 15 minutes unused.
//! let pool = Arc::new(ConnectionPool::new(std::time::Duration::from_secs(900)));
//! let delivery = app.spec.host.clone().unwrap_or_default();
//! let release = AppRelease::new(app.name(), "4f2a9c1", "checkout/hosts/web".as_ref(), &delivery, app.spec.substitutions.as_ref())?;
//! let endpoints = hosts.iter().map(Endpoint::from_host).collect::<Result<Vec<_>, _>>()?;
//! for record in rollout(pool, Arc::new(release), &endpoints, Timeouts::default()).await {
//!     println!("{}: {:?} {}", record.host, record.result, record.message.unwrap_or_default());
//! }
//! # Ok(()) }
//! ```

mod deploy;
mod drift;
mod hooks;
mod known_hosts;
mod manifest;
mod pool;
mod release;
mod remote;
mod rollout;
mod shell;
mod ssh;
mod tree;

pub use deploy::{HostError, Plan, deploy, deploy_host, plan, record};
pub use drift::{DriftReport, FileDrift, Observed, check_drift, compare, restore};
pub use hooks::HookError;
pub use known_hosts::KnownHosts;
pub use manifest::{Manifest, ManifestEntry, UploadPlan};
pub use pool::{ConnectionPool, Lease};
pub use release::{AppRelease, HostRelease, ReleaseError};
pub use remote::{HostState, Layout, releases_to_remove};
pub use rollout::{SKIPPED, in_order, is_failure, rollout};
pub use ssh::{Connection, Endpoint, Identity, Output, SshError, Timeouts};
pub use tree::{EntryKind, Tree, TreeEntry, TreeError};
