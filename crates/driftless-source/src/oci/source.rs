//! OCI artifacts followed as App sources: which manifest a tag, a version
//! range or a digest names now (one manifest request, or one tag listing
//! and one manifest request for a range), and that artifact unpacked once
//! per digest beside the Git snapshots.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::artifact::{CREATED_ANNOTATION, Limits, REVISION_ANNOTATION, SOURCE_ANNOTATION};
use super::{OciError, Reference, Registry};
use crate::{Revision, Signature, Snapshot};

/// Which artifact of a repository is followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Follow {
    /// A tag, as it moves.
    Tag(String),
    /// The highest tag a version range (Helm's syntax) accepts.
    Range(String),
    /// One manifest digest.
    Digest(String),
}

/// The artifact `follow` names in `repository` now, as a revision: its
/// `sha` is the manifest digest, its `reference` the tag (empty for a
/// digest), its `subject` the source revision the artifact was made from
/// (`org.opencontainers.image.revision`) and its `body` the source URL.
/// The manifest must be an artifact of one tar.gz layer.
pub fn resolve(
    registry: &Registry,
    repository: &Reference,
    follow: &Follow,
) -> Result<Revision, OciError> {
    let tag = match follow {
        Follow::Tag(tag) => Some(tag.clone()),
        Follow::Range(range) => Some(super::highest_tag(registry, repository, range)?),
        Follow::Digest(_) => None,
    };
    let wanted = match follow {
        Follow::Digest(digest) => digest.as_str(),
        _ => tag.as_deref().unwrap_or_default(),
    };
    let manifest = registry.manifest(&repository.repository, wanted)?;
    let at = Reference {
        tag: tag.clone(),
        digest: Some(manifest.digest.clone()),
        ..repository.clone()
    };
    let (_, annotations) = super::artifact::layer_of(&at, &manifest)?;
    let annotation = |key: &str| annotations.get(key).cloned().unwrap_or_default();
    let made = Signature {
        name: String::new(),
        email: String::new(),
        time: annotation(CREATED_ANNOTATION),
    };
    Ok(Revision {
        reference: tag.unwrap_or_default(),
        sha: manifest.digest,
        tag_object: None,
        author: made.clone(),
        committer: made,
        subject: annotation(REVISION_ANNOTATION),
        body: annotation(SOURCE_ANNOTATION),
    })
}

/// The artifact `digest` of `repository`, unpacked under `snapshots` (the
/// directory of Git snapshots, so the same housekeeping removes it when no
/// App uses it). Pulled once: a later call finds the directory.
pub fn snapshot(
    registry: &Registry,
    repository: &Reference,
    digest: &str,
    snapshots: &Path,
    limits: Limits,
) -> Result<Snapshot, OciError> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| OciError::Reference {
            url: format!("{}@{digest}", repository.repository_url()),
            detail: "the digest is not sha256: and 64 hex digits".into(),
        })?;
    let dir = snapshots.join(format!("oci-{hex}"));
    let done = Snapshot {
        dir: dir.clone(),
        tree: digest.to_owned(),
        commit: digest.to_owned(),
        subpath: String::new(),
    };
    if crate::snapshot::reuse(&dir) {
        return Ok(done);
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OciError::Io { path, source }
    };
    std::fs::create_dir_all(snapshots).map_err(io(snapshots))?;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let staging = snapshots.join(format!(
        ".incoming-oci-{hex}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let at = Reference {
        tag: None,
        digest: Some(digest.to_owned()),
        ..repository.clone()
    };
    let pulled = super::artifact::pull(registry, &at, &staging, limits);
    if let Err(e) = pulled {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&staging, &dir) {
        let _ = std::fs::remove_dir_all(&staging);
        // Another process or task unpacked the same digest first.
        if !dir.is_dir() {
            return Err(io(&dir)(e));
        }
    }
    Ok(done)
}
