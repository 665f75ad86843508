//! OCI registries: references, a distribution API client, and artifacts of
//! manifests pushed and pulled as one tar.gz layer.

pub mod artifact;
pub mod client;
pub mod reference;
pub mod source;

use std::path::PathBuf;

pub use artifact::{Limits, Pulled, Pushed};
pub use client::{Options, Registry};
pub use reference::Reference;

/// Failure to reach a registry or to use what it holds.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// A malformed `oci://` reference.
    #[error("{url}: {detail}")]
    Reference {
        /// The reference as given.
        url: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The request could not be made or its answer read.
    #[error("{url}: {detail}")]
    Request {
        /// The URL, without any password.
        url: String,
        /// What failed, with its causes.
        detail: String,
    },
    /// The registry answered with an unexpected status.
    #[error("{method} {url}: status {status}{}", if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
    Status {
        /// The HTTP method.
        method: String,
        /// The URL, without any password.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The registry's own error code and message, when it sent one.
        detail: String,
    },
    /// The registry (or its token service) refused access.
    #[error("{url}: access denied: {detail}")]
    Unauthorized {
        /// The URL, without any password.
        url: String,
        /// Why.
        detail: String,
    },
    /// Content whose digest is not the one asked for.
    #[error("{url}: digest mismatch: expected {expected}, received content with {actual}")]
    Digest {
        /// Where it came from.
        url: String,
        /// The digest asked for.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// An answer larger than allowed.
    #[error("{url}: larger than {limit} bytes")]
    TooLarge {
        /// Where it came from.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// An answer that is not what the API promises.
    #[error("{url}: {detail}")]
    Answer {
        /// Where it came from.
        url: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A version range that does not parse.
    #[error("version range {range:?}: {detail}")]
    Range {
        /// The range as given.
        range: String,
        /// What is wrong with it.
        detail: String,
    },
    /// No tag of the repository satisfies a version range.
    #[error("{repository}: no tag matches the version range {range:?} (tags seen: {seen})")]
    NoVersion {
        /// The repository, `oci://registry/path`.
        repository: String,
        /// The range as given.
        range: String,
        /// How many tags the repository has.
        seen: usize,
    },
    /// A layer that does not unpack safely.
    #[error("artifact {reference}: {detail}")]
    Archive {
        /// The artifact, `oci://registry/path@digest`.
        reference: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

pub(crate) use crate::download::causes;

/// The highest tag of `repository` that the version range `range` (Helm's
/// syntax: `>=1.0.0 <2.0.0`, `~1.2`, `^1`, `1.x`, `||`) accepts, tags read
/// as versions with an optional leading `v`.
pub fn highest_tag(
    registry: &Registry,
    reference: &Reference,
    range: &str,
) -> Result<String, OciError> {
    let constraint = crate::helm_repo::Constraint::parse(range).map_err(|e| OciError::Range {
        range: range.to_owned(),
        detail: e.reason,
    })?;
    let tags = registry.tags(&reference.repository)?;
    constraint
        .highest(tags.iter().map(String::as_str))
        .map(str::to_owned)
        .ok_or_else(|| OciError::NoVersion {
            repository: reference.repository_url(),
            range: range.to_owned(),
            seen: tags.len(),
        })
}
