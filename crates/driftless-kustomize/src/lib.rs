//! Native `kustomize build`, producing output byte-identical to kustomize v5.5.0.
//!
//! ```no_run
//! let list = driftless_kustomize::build(
//!     std::path::Path::new("overlays/prod"),
//!     &driftless_kustomize::Options::default(),
//! )?;
//! print!("{}", list.to_yaml()?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod build;
mod config;
pub mod confine;
mod crds;
mod fieldspec;
mod generator;
mod helm;
mod json6902;
mod kustomization;
mod loader;
mod nameref;
mod openapi;
mod order;
mod origin;
mod patch;
pub mod remote;
mod replacements;
mod resource;
mod scope;
mod shared;
mod smp;
mod transform;
mod vars;

/// YAML reading and kustomize-identical writing (the `driftless-yaml` crate).
pub use driftless_yaml as yaml;

use std::path::{Path, PathBuf};

pub use helm::HelmRunner;
pub use kustomization::KustomizationError;
pub use loader::ReadObserver;
pub use remote::{RemoteResolver, RepoSpec};
pub use resource::{Gvk, ResId, Resource, ResourceList};
pub use yaml::{LoadRestrictor, YamlError};

/// Output order of resources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reorder {
    /// kustomize's legacy kind-based order (the default).
    #[default]
    Legacy,
    /// Keep input order.
    None,
}

/// Build options, mirroring `kustomize build` flags.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--reorder`
    pub reorder: Reorder,
    /// `--load-restrictor`
    pub load_restrictor: LoadRestrictor,
    /// `--enable-helm`
    pub enable_helm: bool,
    /// `--helm-command` (defaults to `helm` on PATH).
    pub helm_command: Option<PathBuf>,
    /// The repository the build reads from: no file or directory outside it
    /// (after `..` and symlinks are resolved) is opened, whatever the load
    /// restrictor. `None` (the default) leaves only the restrictor, as kustomize.
    pub repository_root: Option<PathBuf>,
    /// Bytes the whole build may read (kustomization files, resources,
    /// patches, generator sources, ...); `None` (the default) bounds only
    /// each file, at [`yaml::MAX_INPUT_BYTES`].
    pub max_input_bytes: Option<u64>,
    /// Runs the `helm` commands of `helmCharts:` (to bound their time and
    /// memory); `None` (the default) runs them directly, as kustomize does.
    pub helm_runner: Option<std::sync::Arc<dyn HelmRunner>>,
    /// Told of every path the build reads or probes (for a cache keyed by
    /// what a build read); `None` (the default) tells no one.
    pub read_observer: Option<std::sync::Arc<dyn ReadObserver>>,
    /// Fetches remote entries (Git bases, HTTP(S) files) of `resources:`
    /// and `components:`; `None` (the default) refuses them, naming the URL.
    pub remote: Option<std::sync::Arc<dyn RemoteResolver>>,
    /// Decrypts the `envs:` and `files:` of generators before they are
    /// read (files encrypted by sops); `None` (the default) reads them as
    /// they are, as kustomize does.
    pub generator_decryptor: Option<std::sync::Arc<dyn GeneratorDecryptor>>,
}

/// Turns the bytes of a generator's source file into what the generator
/// reads: encrypted files decrypted, the others as they are.
pub trait GeneratorDecryptor: std::fmt::Debug + Send + Sync {
    /// The content of the generator source `path`, whose bytes are `bytes`;
    /// an error says why it cannot be read and never holds a decrypted value.
    fn source(&self, path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>, String>;
}

/// Errors from a build.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A kustomization file is missing or malformed.
    #[error(transparent)]
    Kustomization(#[from] KustomizationError),
    /// YAML could not be read or written.
    #[error(transparent)]
    Yaml(#[from] YamlError),
    /// A file or directory could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file outside the kustomization root under the root-only restrictor.
    #[error(
        "security; file '{path}' is not in or below '{root}' (use LoadRestrictionsNone to allow it)"
    )]
    Restricted {
        /// The refused file.
        path: PathBuf,
        /// The kustomization root.
        root: PathBuf,
    },
    /// A path named by a kustomization leads outside the repository root.
    #[error("{}: '{entry}': {reason}", file.display())]
    OutsideRepository {
        /// The kustomization file (or directory) naming the path.
        file: PathBuf,
        /// The entry as written.
        entry: String,
        /// Where it leads, or which symlink leaves the repository (boxed:
        /// errors travel by value and this is the rare one).
        reason: Box<confine::ConfineError>,
    },
    /// The build read more than [`Options::max_input_bytes`].
    #[error("reading {path} brings the build to {total} bytes, over the limit of {limit} bytes")]
    InputLimit {
        /// The file whose read crossed the limit.
        path: PathBuf,
        /// Bytes read including it.
        total: u64,
        /// The limit.
        limit: u64,
    },
    /// A remote entry (Git base or HTTP(S) file) could not be built.
    #[error("{}: remote resource '{url}': {reason}", file.display())]
    Remote {
        /// The kustomization naming it.
        file: PathBuf,
        /// The entry as written.
        url: String,
        /// What failed.
        reason: remote::RemoteError,
    },
    /// An HTTP(S) file named by another field (a patch, generator file,
    /// configuration) could not be read.
    #[error("{}: {field}: remote file '{url}': {reason}", file.display())]
    RemoteFile {
        /// The kustomization naming it.
        file: PathBuf,
        /// The kustomization field naming it (`patches`, `configMapGenerator`, ...).
        field: String,
        /// The URL as written.
        url: String,
        /// What failed (boxed: errors travel by value and this is a rare one).
        reason: Box<remote::RemoteError>,
    },
    /// A generator source file could not be decrypted.
    #[error("{}: {field}: {}: {reason}", file.display(), path.display())]
    Decrypt {
        /// The kustomization naming it.
        file: PathBuf,
        /// The kustomization field naming it (`secretGenerator`, ...).
        field: Box<str>,
        /// The source file.
        path: PathBuf,
        /// Why, never holding a decrypted value (boxed, as `field`: errors
        /// travel by value and this is a rare one).
        reason: Box<str>,
    },
    /// A kustomization includes itself, directly or through others.
    #[error("cycle detected: {0} includes itself")]
    Cycle(PathBuf),
    /// Anything else that makes the build invalid, with the file at fault.
    #[error("{path}: {message}")]
    Invalid {
        /// The kustomization (or other file) at fault.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    pub(crate) fn invalid(path: &Path, message: impl Into<String>) -> Error {
        Error::Invalid {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// Runs `kustomize build` on `dir`.
pub fn build(dir: &Path, opts: &Options) -> Result<ResourceList, Error> {
    build::run(dir, opts)
}

/// Parses a plain multi-document YAML or JSON stream into objects (empty
/// documents dropped, `List` kinds left as they are).
pub fn parse_stream(text: &str, origin: &Path) -> Result<Vec<serde_json::Value>, Error> {
    Ok(yaml::parse_documents(text, &origin.display().to_string())?)
}

/// Renders objects as a YAML stream formatted exactly as kustomize prints.
pub fn to_yaml_stream(objects: &[serde_json::Value]) -> Result<String, Error> {
    Ok(yaml::emit_stream(objects.iter())?)
}
