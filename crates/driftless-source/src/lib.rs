//! Sources for driftless: fetch a Git repository at a ref, verify it, and
//! export immutable snapshots of its tree; Helm chart repositories over HTTP(S)
//! ([`helm_repo`]).
//!
//! Objects are fetched and trees read in process with gix (gitoxide) where it
//! can serve the remote, and with the system `git` binary otherwise (SSH,
//! dumb HTTP, anything gix fails at) and for signature checks (see
//! `docs/sources.md`); this crate adds ref resolution, caching, credentials,
//! snapshot safety checks and de-duplication on top.

pub mod advertise;
pub mod auth;
mod blobs;
mod connection;
pub mod download;
pub mod fetch;
pub mod git;
mod gix_transfer;
pub mod helm_repo;
mod ignore_rules;
mod objects;
pub mod oci;
pub mod poll;
pub mod refspec;
pub mod remote;
pub mod revision;
pub mod snapshot;
pub mod submodules;
mod symlinks;
pub mod verify;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// Snapshot requests remembered by a [`Fetcher`] before old ones are dropped.
const EXPORTS_REMEMBERED: usize = 64;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub use auth::{Auth, Tls};
pub use fetch::{FetchError, Fetcher, SourceSpec};
pub use helm_repo::{
    ChartRepositories, ChartRepository, ChartVersion, HelmRepoError, HelmRepoSpec, IndexChange,
};
pub use objects::{Backend, BackendCounts};
pub use poll::{PollCommand, PollEvent, Poller};
pub use refspec::{RefSpec, RefSpecError};
pub use revision::{Revision, Signature};
pub use snapshot::{Limits, Snapshot, SnapshotError};
pub use verify::{TrustedKey, Verify, VerifyMode};

/// Any failure of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ref specification is invalid.
    #[error(transparent)]
    RefSpec(#[from] RefSpecError),
    /// Fetching failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Exporting a snapshot failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Copying a snapshot to the output directory failed.
    #[error("writing {path}: {source}")]
    Output {
        /// Path at fault.
        path: std::path::PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
}

impl Fetcher {
    /// Exports the tree of `rev` (or of `subpath` in it) as a read-only
    /// snapshot, with the content of its submodules fetched (same
    /// credentials, TLS settings and timeout) at the commits it records.
    ///
    /// Concurrent calls for the same commit share one export, and a repeated
    /// call costs no git command while the export is still on disk.
    pub fn snapshot(
        &self,
        spec: &SourceSpec,
        rev: &Revision,
        subpath: &str,
    ) -> Result<Snapshot, SnapshotError> {
        self.snapshot_of(spec, rev, subpath, true)
    }

    /// Exports as [`Fetcher::snapshot`] does, leaving submodules' directories
    /// out (kustomize's `?submodules=false`).
    pub fn snapshot_without_submodules(
        &self,
        spec: &SourceSpec,
        rev: &Revision,
        subpath: &str,
    ) -> Result<Snapshot, SnapshotError> {
        self.snapshot_of(spec, rev, subpath, false)
    }

    fn snapshot_of(
        &self,
        spec: &SourceSpec,
        rev: &Revision,
        subpath: &str,
        with_submodules: bool,
    ) -> Result<Snapshot, SnapshotError> {
        // The cache repository is the one `fetch` used: keyed by the URL
        // without its password.
        let spec = &*spec.without_url_password();
        let key = format!(
            "{}\0{}\0{}\0{}\0{:?}\0{with_submodules}",
            spec.url,
            rev.sha,
            subpath.trim_matches('/'),
            spec.ignore.join("\n"),
            spec.limits
        );
        let slot = {
            let mut exports = lock(&self.exports);
            if exports.len() >= EXPORTS_REMEMBERED && !exports.contains_key(&key) {
                // Entries in use by a waiting caller stay shared with it.
                exports.retain(|_, slot| Arc::strong_count(slot) > 1);
            }
            exports.entry(key).or_default().clone()
        };
        let mut slot = lock(&slot);
        if let Some(snapshot) = slot.as_ref()
            && snapshot::reuse(&snapshot.dir)
        {
            return Ok(snapshot.clone());
        }
        let snapshot = self.export(spec, rev, subpath, with_submodules)?;
        *slot = Some(snapshot.clone());
        Ok(snapshot)
    }

    fn export(
        &self,
        spec: &SourceSpec,
        rev: &Revision,
        subpath: &str,
        with_submodules: bool,
    ) -> Result<Snapshot, SnapshotError> {
        let repo = self.repo_dir(&spec.url);
        let fetch = |url: &str, commit: &str| {
            let sub = SourceSpec {
                url: url.to_string(),
                reference: RefSpec::Commit(commit.to_string()),
                auth: spec.auth.clone(),
                tls: spec.tls.clone(),
                timeout: spec.timeout,
                ..SourceSpec::default()
            };
            self.fetch(&sub)
                .map(|_| self.repo_dir(url))
                .map_err(|e| e.to_string())
        };
        let submodules = submodules::Submodules {
            url: &spec.url,
            fetch: &fetch,
        };
        snapshot::export(
            &repo,
            &rev.sha,
            subpath,
            &spec.ignore,
            &spec.limits,
            &self.cache_dir().join("snapshots"),
            with_submodules.then_some(&submodules),
            (self.backend, &self.counters),
        )
    }

    /// Removes snapshots not in `keep` that were unused for at least `min_age`.
    pub fn gc_snapshots(
        &self,
        keep: &[&Snapshot],
        min_age: std::time::Duration,
    ) -> Result<Vec<std::path::PathBuf>, SnapshotError> {
        snapshot::gc(&self.cache_dir().join("snapshots"), keep, min_age)
    }
}

/// What `driftless source fetch` does: fetch `url` at `reference`
/// (default `branch:main`), optionally export the tree into `out`, and return
/// the revision whose display form the CLI prints as `revision: <rev>`.
pub fn fetch_to_dir(
    cache_dir: &Path,
    url: &str,
    reference: Option<&str>,
    out: Option<&Path>,
) -> Result<Revision, Error> {
    let reference = match reference {
        Some(text) => RefSpec::parse(text)?,
        None => RefSpec::default(),
    };
    let spec = SourceSpec::new(url, reference);
    let fetcher = Fetcher::new(cache_dir);
    let rev = fetcher.fetch(&spec);
    // A one-shot command leaves no shared SSH connection running behind it.
    fetcher.close_ssh_connections();
    let rev = rev?;
    if let Some(out) = out {
        let snap = fetcher.snapshot(&spec, &rev, "")?;
        copy_tree(&snap.dir, out)?;
    }
    Ok(rev)
}

/// Copies a snapshot (or a chart) into a writable directory.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Output { path, source }
    };
    std::fs::create_dir_all(to).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let kind = entry.file_type().map_err(io(&src))?;
        if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&src).map_err(io(&src))?;
            std::os::unix::fs::symlink(target, &dst).map_err(io(&dst))?;
        } else {
            std::fs::copy(&src, &dst).map_err(io(&dst))?;
            let mode = std::fs::metadata(&src).map_err(io(&src))?.permissions();
            // Output files are the user's to edit: keep only the exec bit.
            let writable = std::os::unix::fs::PermissionsExt::mode(&mode) | 0o200;
            std::fs::set_permissions(&dst, std::os::unix::fs::PermissionsExt::from_mode(writable))
                .map_err(io(&dst))?;
        }
    }
    Ok(())
}
