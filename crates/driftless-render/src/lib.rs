//! The render pipeline: turns a directory of a Git checkout into an ordered,
//! validated [`ObjectSet`] through Kustomize, Helm, Jsonnet or plain manifests,
//! with optional Flux-compatible `${VAR}` substitution afterwards.
//!
//! ```no_run
//! use driftless_render::{render, RenderOptions};
//! let opts = RenderOptions::new("/srv/checkout");
//! let set = render(std::path::Path::new("/srv/checkout/apps/web"), &opts)?;
//! println!("{} objects, {}", set.len(), set.digest());
//! # Ok::<(), driftless_render::Error>(())
//! ```

mod cache;
mod child;
pub mod decrypt;
mod helm;
mod helm_run;
mod jq_worker;
#[cfg(feature = "jsonnet")]
mod jsonnet;
mod limits;
mod objects;
mod options;
mod paths;
mod plain;
mod reads;
mod remote;
mod repo_chart;
mod substitute;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use cache::{CacheError, CacheStats, Cached, RenderCache, Served, tree_digest};
pub use helm::{HelmError, HelmOptions};
pub use jq_worker::{JQ_MAX_MEMORY, JQ_TIMEOUT, JqWorker};
#[cfg(feature = "jsonnet")]
pub use jsonnet::JsonnetError;
pub use limits::{
    DEFAULT_MAX_INPUT_BYTES, DEFAULT_MAX_MEMORY, DEFAULT_MAX_OBJECTS, DEFAULT_TIMEOUT, LimitError,
    RenderLimits,
};
pub use objects::{ObjectError, ObjectId, ObjectSet, Rendered};
pub use options::{JsonnetOptions, RenderKind, RenderOptions};
pub use paths::PathError;
pub use plain::{PlainError, PlainOptions};
pub use reads::{Access, ReadSet};
pub use remote::{DEFAULT_MAX_REMOTES, HostCredentials, RemoteSources, RemoteUse, url_host};
pub use repo_chart::{RepositoryChart, render_chart};
pub use substitute::{DISABLE_ANNOTATION, ExpandError, SubstituteError, Substitution};
pub use worker::{RenderWorker, run_worker};

/// Errors from rendering a directory.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The directory to render is not a directory.
    #[error("{0}: not a directory")]
    NotADirectory(PathBuf),
    /// A path is outside the repository root or unreadable.
    #[error(transparent)]
    Path(#[from] PathError),
    /// The native kustomize build failed.
    #[error("kustomize build {dir}: {source}")]
    Kustomize {
        /// The kustomization directory.
        dir: PathBuf,
        /// The cause.
        source: driftless_kustomize::Error,
    },
    /// Reading plain manifests failed.
    #[error(transparent)]
    Plain(#[from] PlainError),
    /// `helm template` failed.
    #[error(transparent)]
    Helm(#[from] HelmError),
    /// Jsonnet evaluation failed.
    #[cfg(feature = "jsonnet")]
    #[error(transparent)]
    Jsonnet(#[from] JsonnetError),
    /// Jsonnet was asked for but this build has no Jsonnet support.
    #[cfg(not(feature = "jsonnet"))]
    #[error("{0}: Jsonnet support is not compiled in (cargo feature `jsonnet`)")]
    JsonnetDisabled(PathBuf),
    /// Variable substitution failed.
    #[error(transparent)]
    Substitute(#[from] SubstituteError),
    /// A bound of the render was crossed.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// A rendered object is invalid or a duplicate.
    #[error(transparent)]
    Object(#[from] ObjectError),
}

/// Names of a kustomization file, in kustomize's order of preference.
const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Decides how `dir` renders: a kustomization file means Kustomize, a
/// `Chart.yaml` Helm, any `*.jsonnet` file Jsonnet, anything else plain manifests.
pub fn detect(dir: &Path) -> Result<RenderKind, Error> {
    if !dir.is_dir() {
        return Err(Error::NotADirectory(dir.to_path_buf()));
    }
    if KUSTOMIZATION_FILES.iter().any(|f| dir.join(f).is_file()) {
        return Ok(RenderKind::Kustomize);
    }
    if dir.join("Chart.yaml").is_file() {
        return Ok(RenderKind::Helm);
    }
    let io = |source| PathError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let name = entry.map_err(io)?.file_name();
        if name.to_string_lossy().ends_with(".jsonnet") {
            return Ok(RenderKind::Jsonnet);
        }
    }
    Ok(RenderKind::Plain)
}

/// Renders `dir` into a validated object set. `dir` must lie inside
/// `opts.root` (or is its own root when `opts.root` is empty).
pub fn render(dir: &Path, opts: &RenderOptions) -> Result<ObjectSet, Error> {
    Ok(render_with_reads(dir, opts)?.0)
}

/// Renders `dir` like [`render`], and says which paths below the root the
/// render read: every file, directory listing and probe, so that the same
/// answers for those paths in another checkout mean the same objects.
pub fn render_with_reads(dir: &Path, opts: &RenderOptions) -> Result<(ObjectSet, ReadSet), Error> {
    let (root, real_dir) = resolve_dirs(dir, &opts.root)?;
    let log = Arc::new(reads::ReadLog::new(&root));
    // The directory as asked for: a symlink on its way is part of the input.
    match relative_dir(dir, &opts.root, &root) {
        Some(rel) => log.entry_relative(rel),
        None => log.entry(&real_dir),
    }
    let dir = real_dir;
    let kind = match opts.kind {
        Some(kind) => kind,
        None => {
            // Detection looks at the directory's names.
            log.entry(&dir);
            detect(&dir)?
        }
    };
    let items = match kind {
        RenderKind::Kustomize => kustomize(&root, &dir, opts, &log)?,
        RenderKind::Plain => plain::render(&root, &dir, &opts.plain, &opts.limits, &log)?,
        RenderKind::Helm => {
            let worker = opts.worker.as_ref();
            let repos = opts.chart_repositories.as_deref();
            helm::render(&root, &dir, &opts.helm, &opts.limits, worker, &log, repos)?
        }
        #[cfg(feature = "jsonnet")]
        RenderKind::Jsonnet => {
            let worker = opts.worker.as_ref();
            jsonnet::render(&root, &dir, &opts.jsonnet, &opts.limits, worker, &log)?
        }
        #[cfg(not(feature = "jsonnet"))]
        RenderKind::Jsonnet => return Err(Error::JsonnetDisabled(dir)),
    };
    let shown = limits::shown_dir(&root, &dir);
    limits::check_objects(&shown, items.len(), opts.limits.max_objects)?;
    let items = match &opts.substitute {
        Some(subst) => subst.apply(items)?,
        None => items,
    };
    Ok((ObjectSet::new(items)?, log.take()))
}

/// `dir` relative to the canonical `root`, as a render reads it: against
/// the root as given (`given`, empty for `dir` itself), else against the
/// canonical root; `None` when neither holds it.
pub(crate) fn relative_dir(dir: &Path, given: &Path, root: &Path) -> Option<String> {
    let dir = std::path::absolute(dir).ok()?;
    if given.as_os_str().is_empty() {
        return Some(".".to_owned());
    }
    let given = std::path::absolute(given).ok()?;
    reads::relative(&given, &dir).or_else(|| reads::relative(root, &dir))
}

/// Canonical `(root, dir)`, refusing a `dir` outside the root.
fn resolve_dirs(dir: &Path, root: &Path) -> Result<(PathBuf, PathBuf), Error> {
    if !dir.is_dir() {
        return Err(Error::NotADirectory(dir.to_path_buf()));
    }
    let real_dir = paths::canonical(dir)?;
    let root = if root.as_os_str().is_empty() {
        real_dir.clone()
    } else {
        paths::canonical(root)?
    };
    if !real_dir.starts_with(&root) {
        return Err(PathError::OutsideRoot {
            path: dir.to_path_buf(),
            root,
        }
        .into());
    }
    Ok((root, real_dir))
}

/// Builds the kustomization in `dir`, reading nothing outside `root`, its
/// `helmCharts:` rendered by helm within the render's bounds.
fn kustomize(
    root: &Path,
    dir: &Path,
    opts: &RenderOptions,
    log: &Arc<reads::ReadLog>,
) -> Result<Vec<Rendered>, Error> {
    let helm = helm_run::BoundedHelm {
        worker: opts.worker.clone(),
        limits: opts.limits.clone(),
        dir: limits::shown_dir(root, dir),
    };
    let resolver = opts
        .remote
        .clone()
        .map(|sources| Arc::new(remote::Resolver::new(sources, opts.limits.max_input_bytes)));
    let sources = Arc::new(decrypt::GeneratorSources::new(opts.decryption_keys.clone()));
    let kustomize = driftless_kustomize::Options {
        repository_root: Some(root.to_path_buf()),
        max_input_bytes: Some(opts.limits.max_input_bytes),
        helm_runner: Some(Arc::new(helm)),
        read_observer: Some(log.clone()),
        remote: resolver
            .clone()
            .map(|r| r as Arc<dyn driftless_kustomize::RemoteResolver>),
        generator_decryptor: Some(sources.clone()),
        ..opts.kustomize.clone()
    };
    let built = driftless_kustomize::build(dir, &kustomize);
    if sources.decrypted() {
        log.decrypted();
    }
    if let Some(resolver) = &resolver {
        log.remotes(resolver.used(), resolver.validators());
    }
    let list = built.map_err(|source| Error::Kustomize {
        dir: dir.to_path_buf(),
        source,
    })?;
    Ok(list
        .iter()
        .map(|r| {
            let origin = format!("kustomize build {} ({})", dir.display(), r.cur_id());
            Rendered::new(r.to_json(), origin)
        })
        .collect())
}
