//! Remote resources: Git bases and HTTP(S) files named by URL in
//! `resources:` and `components:`, and HTTP(S) files wherever else a
//! kustomization names a file (patches, generator files, configurations).
//!
//! This crate parses the URL ([`RepoSpec`]) and builds what it names; a
//! [`RemoteResolver`] given by the caller does the fetching, so the library
//! decides nothing about caches, credentials or the network. Without one, a
//! remote entry fails naming the kustomization and the URL.

mod spec;

use std::path::PathBuf;

pub use spec::{DEFAULT_TIMEOUT, RepoSpec, RepoSpecError, is_http_url};

use crate::kustomization::Kustomization;
use crate::loader::Loader;
use crate::{Error, yaml};

/// What a resolver failed at, in its own words (the URL is added by the build).
pub type FetchFailure = Box<dyn std::error::Error + Send + Sync>;

/// A checkout of a remote Git base.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteTree {
    /// A directory holding the whole tree of the commit (the repository
    /// root, whatever [`RepoSpec::kust_root`] says). The build reads nothing
    /// outside it and never writes to it.
    pub dir: PathBuf,
    /// The commit checked out.
    pub commit: String,
}

/// The answer to an HTTP(S) GET of a remote file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpAnswer {
    /// A 2xx answer and its body.
    Body(Vec<u8>),
    /// Any other status.
    Status(u16),
}

/// Fetches what remote entries name; provided by the caller.
pub trait RemoteResolver: std::fmt::Debug + Send + Sync {
    /// Clones (or finds in a cache) the repository of `spec` at its ref.
    fn git(&self, spec: &RepoSpec) -> Result<RemoteTree, FetchFailure>;
    /// GETs the single file at `url`.
    fn http(&self, url: &str) -> Result<HttpAnswer, FetchFailure>;
}

/// Why a remote entry could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// No resolver was given: remote entries are not fetched.
    #[error("remote resources are turned off; vendor it into the repository")]
    NotEnabled,
    /// The URL is not one kustomize accepts.
    #[error(transparent)]
    Spec(RepoSpecError),
    /// The resolver could not fetch it.
    #[error("{0}")]
    Fetch(FetchFailure),
    /// An HTTP(S) file answered with an error status.
    #[error("HTTP status code {0}")]
    Status(u16),
    /// A file entry answered with an error status and reads as a Git URL:
    /// only `resources:` and `components:` may name a repository.
    #[error(
        "HTTP status code {0}, and the URL names a Git repository, which only resources and components may name"
    )]
    GitNotFile(u16),
    /// The directory named in the URL is not a directory of the repository.
    #[error("'{0}' is not a directory of the repository")]
    NoDirectory(String),
}

/// How a `resources:` or `components:` entry is read.
pub(crate) enum Target {
    /// A local file or directory.
    Local,
    /// A single file over HTTP(S), possibly also readable as a Git base.
    Http(Option<RepoSpec>),
    /// A Git base.
    Git(RepoSpec),
    /// A URL refused before anything is fetched.
    Refused(RepoSpecError),
}

/// Classifies `entry` of the kustomization at `loader`: as in kustomize, a
/// local file of that name wins over a URL-like reading.
pub(crate) fn target(loader: &Loader, entry: &str) -> Target {
    if is_http_url(entry) {
        // kustomize GETs every http(s) URL first and clones when that fails;
        // a URL that says it is a repository is cloned without the GET.
        return match RepoSpec::parse(entry) {
            Ok(spec) if spec.is_explicit() => Target::Git(spec),
            // Never fetched: its directory would lie outside the repository.
            Err(e @ RepoSpecError::ExitsRepo(_)) => Target::Refused(e),
            parsed => Target::Http(parsed.ok()),
        };
    }
    match RepoSpec::parse(entry) {
        // Only URL-like entries pay for this probe.
        Ok(spec) if !loader.root.join(entry).is_file() => Target::Git(spec),
        Err(e @ RepoSpecError::ExitsRepo(_)) => Target::Refused(e),
        _ => Target::Local,
    }
}

/// Whatever a remote entry resolved to.
pub(crate) enum Fetched {
    /// The text of an HTTP(S) file, and the URL as its origin.
    File(PathBuf, String),
    /// The kustomization directory in a checkout, with its loader and kustomization.
    Dir(Box<(Loader, Kustomization)>),
}

/// Fetches a remote entry of `k` through the build's resolver.
pub(crate) fn fetch(
    loader: &Loader,
    k: &Kustomization,
    entry: &str,
    target: Target,
) -> Result<Fetched, Error> {
    let fail = |reason: RemoteError| Error::Remote {
        file: k.path.clone(),
        url: entry.to_string(),
        reason,
    };
    let resolver = loader
        .remote
        .clone()
        .ok_or_else(|| fail(RemoteError::NotEnabled))?;
    let spec = match target {
        Target::Local => return Err(fail(RemoteError::NotEnabled)),
        Target::Refused(e) => return Err(fail(RemoteError::Spec(e))),
        Target::Git(spec) => spec,
        Target::Http(spec) => {
            match (resolver.http(entry), spec) {
                (Ok(HttpAnswer::Body(body)), _) => {
                    let origin = taken(loader, entry, &body)?;
                    let text = String::from_utf8(body)
                        .map_err(|_| Error::invalid(&origin, "file is not valid UTF-8"))?;
                    return Ok(Fetched::File(origin, text));
                }
                // kustomize then tries the URL as a Git base.
                (_, Some(spec)) => spec,
                (Ok(HttpAnswer::Status(code)), None) => {
                    return Err(fail(RemoteError::Status(code)));
                }
                (Err(e), None) => return Err(fail(RemoteError::Fetch(e))),
            }
        }
    };
    let tree = resolver
        .git(&spec)
        .map_err(|e| fail(RemoteError::Fetch(e)))?;
    let dir = tree.dir.join(&spec.kust_root);
    // The checkout is the repository of everything below: nothing outside it is read.
    let opened = Loader::new(
        &dir,
        loader.restrictor,
        Some(&tree.dir),
        loader.budget.clone(),
        loader.observer.clone(),
    );
    let mut sub = match opened {
        Ok(sub) if sub.root.is_dir() => sub,
        Ok(_) => return Err(fail(RemoteError::NoDirectory(spec.kust_root))),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(fail(RemoteError::NoDirectory(spec.kust_root)));
        }
        Err(e) => return Err(e),
    };
    sub.remote = loader.remote.clone();
    sub.remote_base = Some(std::sync::Arc::new(crate::origin::RemoteBase {
        repo: spec.clone_url(),
        reference: spec.reference.clone(),
        checkout: sub.repository.clone().unwrap_or_else(|| tree.dir.clone()),
        at_root: spec.kust_root.is_empty(),
    }));
    let k = sub.kustomization()?;
    Ok(Fetched::Dir(Box::new((sub, k))))
}

/// Fetches the HTTP(S) file `url` named by `field` of the kustomization at
/// `loader` (a patch, generator or configuration file): kustomize GETs such
/// entries and never clones them.
pub(crate) fn fetch_file(
    loader: &Loader,
    field: &str,
    url: &str,
) -> Result<(PathBuf, Vec<u8>), Error> {
    let fail = |reason: RemoteError| Error::RemoteFile {
        file: loader.file.clone(),
        field: field.to_string(),
        url: url.to_string(),
        reason: Box::new(reason),
    };
    let resolver = loader
        .remote
        .clone()
        .ok_or_else(|| fail(RemoteError::NotEnabled))?;
    match resolver.http(url) {
        Ok(HttpAnswer::Body(body)) => Ok((taken(loader, url, &body)?, body)),
        // kustomize's reason for a file entry that names a repository.
        Ok(HttpAnswer::Status(code)) if RepoSpec::parse(url).is_ok() => {
            Err(fail(RemoteError::GitNotFile(code)))
        }
        Ok(HttpAnswer::Status(code)) => Err(fail(RemoteError::Status(code))),
        Err(e) => Err(fail(RemoteError::Fetch(e))),
    }
}

/// Counts a fetched body against the build's limits; the URL is its origin.
fn taken(loader: &Loader, url: &str, body: &[u8]) -> Result<PathBuf, Error> {
    let origin = PathBuf::from(url);
    let size = body.len() as u64;
    if size > yaml::MAX_INPUT_BYTES as u64 {
        return Err(Error::invalid(&origin, "file too large"));
    }
    loader.budget.take(&origin, size)?;
    Ok(origin)
}
