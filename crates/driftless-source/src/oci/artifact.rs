//! Artifacts of manifests in a registry: a directory packed as one tar.gz
//! layer with the media types Flux uses, so artifacts pushed by either tool
//! can be pulled by the other.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use super::client::{Manifest, Registry};
use super::{OciError, Reference};

/// The config blob's media type.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.flux.config.v1+json";
/// The layer's media type.
pub const CONTENT_MEDIA_TYPE: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
/// A generic gzip-compressed tar layer, also accepted on pull.
const IMAGE_LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The manifest's media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The annotation holding the source revision.
pub const REVISION_ANNOTATION: &str = "org.opencontainers.image.revision";
/// The annotation holding the source URL.
pub const SOURCE_ANNOTATION: &str = "org.opencontainers.image.source";

/// Bounds on what a pull may unpack.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest compressed layer.
    pub layer_bytes: u64,
    /// The largest total of file contents once unpacked.
    pub unpacked_bytes: u64,
    /// The most entries in the archive.
    pub entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            layer_bytes: 256 << 20,
            unpacked_bytes: 1 << 30,
            entries: 100_000,
        }
    }
}

/// What a push stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The manifest digest.
    pub digest: String,
    /// The layer digest.
    pub layer: String,
}

/// What a pull fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The manifest digest.
    pub digest: String,
    /// The manifest's annotations (revision, source, ...).
    pub annotations: BTreeMap<String, String>,
}

/// The annotation holding when the artifact was made (RFC 3339).
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

/// A blob named in a manifest.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    pub(crate) media_type: String,
    pub(crate) digest: String,
    pub(crate) size: u64,
}

/// An OCI image manifest (also read from Docker's v2 schema 2).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImageManifest {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    artifact_type: Option<String>,
    pub(crate) config: Descriptor,
    pub(crate) layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

/// Packs `dir` and pushes it to `reference` (which needs a tag) with
/// `annotations` on the manifest.
pub fn push(
    registry: &Registry,
    reference: &Reference,
    dir: &Path,
    annotations: BTreeMap<String, String>,
) -> Result<Pushed, OciError> {
    let tag = reference
        .tag
        .as_deref()
        .ok_or_else(|| OciError::Reference {
            url: reference.to_string(),
            detail: "a push needs a tag".into(),
        })?;
    let layer = pack(dir)?;
    let config = b"{}".to_vec();
    let repository = &reference.repository;
    let layer_digest = registry.push_blob(repository, &layer)?;
    let config_digest = registry.push_blob(repository, &config)?;
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.into()),
        artifact_type: Some(CONFIG_MEDIA_TYPE.into()),
        config: Descriptor {
            media_type: CONFIG_MEDIA_TYPE.into(),
            digest: config_digest,
            size: config.len() as u64,
        },
        layers: vec![Descriptor {
            media_type: CONTENT_MEDIA_TYPE.into(),
            digest: layer_digest.clone(),
            size: layer.len() as u64,
        }],
        annotations,
    };
    let bytes = serde_json::to_vec(&manifest).map_err(|e| OciError::Answer {
        url: reference.to_string(),
        detail: format!("encoding the manifest: {e}"),
    })?;
    let digest = registry.push_manifest(repository, tag, MANIFEST_MEDIA_TYPE, &bytes)?;
    Ok(Pushed {
        digest,
        layer: layer_digest,
    })
}

/// Pulls the artifact `reference` (its digest when it has one, else its
/// tag) and unpacks its layer into `dest`, which must not exist yet.
pub fn pull(
    registry: &Registry,
    reference: &Reference,
    dest: &Path,
    limits: Limits,
) -> Result<Pulled, OciError> {
    let wanted = reference
        .digest
        .as_deref()
        .or(reference.tag.as_deref())
        .ok_or_else(|| OciError::Reference {
            url: reference.to_string(),
            detail: "a pull needs a tag, a digest or a version range".into(),
        })?;
    let manifest = registry.manifest(&reference.repository, wanted)?;
    let (layer, annotations) = layer_of(reference, &manifest)?;
    if layer.size > limits.layer_bytes {
        return Err(OciError::TooLarge {
            url: format!("{}@{}", reference.repository_url(), layer.digest),
            limit: limits.layer_bytes,
        });
    }
    let blob = registry.blob(&reference.repository, &layer.digest, limits.layer_bytes)?;
    unpack(&blob, dest, limits).map_err(|detail| OciError::Archive {
        reference: format!("{}@{}", reference.repository_url(), manifest.digest),
        detail,
    })?;
    Ok(Pulled {
        digest: manifest.digest,
        annotations,
    })
}

/// The one tar.gz layer of an artifact manifest, and its annotations.
pub(crate) fn layer_of(
    reference: &Reference,
    manifest: &Manifest,
) -> Result<(Descriptor, BTreeMap<String, String>), OciError> {
    let bad = |detail: String| OciError::Answer {
        url: format!("{}@{}", reference.repository_url(), manifest.digest),
        detail,
    };
    let parsed: ImageManifest = serde_json::from_slice(&manifest.bytes)
        .map_err(|e| bad(format!("the manifest is not an OCI image manifest: {e}")))?;
    let mut layers = parsed
        .layers
        .into_iter()
        .filter(|l| l.media_type == CONTENT_MEDIA_TYPE || l.media_type == IMAGE_LAYER_MEDIA_TYPE);
    let layer = layers
        .next()
        .ok_or_else(|| bad(format!("the manifest has no {CONTENT_MEDIA_TYPE} layer")))?;
    if layers.next().is_some() {
        return Err(bad("the manifest has more than one tar.gz layer".into()));
    }
    Ok((layer, parsed.annotations))
}

/// A reproducible tar.gz of the files under `dir` (`.git` left out): sorted,
/// no times, owners or modes besides the executable bit. Symbolic links are
/// refused, since what they point to would not travel with them.
pub fn pack(dir: &Path) -> Result<Vec<u8>, OciError> {
    let mut files = Vec::new();
    collect(dir, Path::new(""), &mut files)?;
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (relative, is_dir) in files {
        let path = dir.join(&relative);
        let io = |source| OciError::Io {
            path: path.clone(),
            source,
        };
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        if is_dir {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            tar.append_data(&mut header, &relative, std::io::empty())
                .map_err(io)?;
            continue;
        }
        let data = std::fs::read(&path).map_err(io)?;
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(if executable(&path) { 0o755 } else { 0o644 });
        header.set_size(data.len() as u64);
        tar.append_data(&mut header, &relative, data.as_slice())
            .map_err(io)?;
    }
    let gz = tar.into_inner().map_err(|source| OciError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    gz.finish().map_err(|source| OciError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// Relative paths under `root/relative`, directories before their contents,
/// each level sorted by name.
fn collect(root: &Path, relative: &Path, out: &mut Vec<(PathBuf, bool)>) -> Result<(), OciError> {
    let dir = root.join(relative);
    let io = |source| OciError::Io {
        path: dir.clone(),
        source,
    };
    let mut entries = std::fs::read_dir(&dir)
        .map_err(io)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        if entry.file_name() == ".git" {
            continue;
        }
        let path = relative.join(entry.file_name());
        let kind = entry.file_type().map_err(io)?;
        if kind.is_symlink() {
            return Err(OciError::Io {
                path: root.join(&path),
                source: std::io::Error::other("symbolic links are not packed"),
            });
        } else if kind.is_dir() {
            out.push((path.clone(), true));
            collect(root, &path, out)?;
        } else if kind.is_file() {
            out.push((path, false));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn executable(_: &Path) -> bool {
    false
}

/// Unpacks a tar.gz into `dest` (created here): regular files and
/// directories only, every path relative and inside `dest`, within `limits`.
fn unpack(blob: &[u8], dest: &Path, limits: Limits) -> Result<(), String> {
    std::fs::create_dir(dest).map_err(|e| format!("creating {}: {e}", dest.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(blob));
    let mut total = 0u64;
    let entries = archive
        .entries()
        .map_err(|e| format!("reading the layer: {e}"))?;
    for (count, entry) in entries.enumerate() {
        let mut entry = entry.map_err(|e| format!("reading the layer: {e}"))?;
        if count >= limits.entries {
            return Err(format!(
                "the layer has more than {} entries",
                limits.entries
            ));
        }
        let path = entry
            .path()
            .map_err(|e| format!("reading the layer: {e}"))?
            .into_owned();
        if path.as_os_str().is_empty()
            || !path
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(format!(
                "entry {} leaves the artifact's directory",
                path.display()
            ));
        }
        let target = dest.join(&path);
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", path.display()))?;
            continue;
        }
        if !kind.is_file() {
            return Err(format!(
                "entry {} is not a regular file or a directory",
                path.display()
            ));
        }
        total = total.saturating_add(entry.size());
        if total > limits.unpacked_bytes {
            return Err(format!(
                "the layer unpacks to more than {} bytes",
                limits.unpacked_bytes
            ));
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        let mut data = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
        entry
            .by_ref()
            .take(limits.unpacked_bytes)
            .read_to_end(&mut data)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut file =
            std::fs::File::create(&target).map_err(|e| format!("{}: {e}", path.display()))?;
        file.write_all(&data)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        set_mode(&file, entry.header().mode().unwrap_or(0o644));
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(file: &std::fs::File, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
    // Best effort: the contents are what matters to a render.
    let _ = file.set_permissions(std::fs::Permissions::from_mode(mode));
}

#[cfg(not(unix))]
fn set_mode(_: &std::fs::File, _: u32) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_is_reproducible_and_round_trips() {
        let src = tempfile::tempdir().expect("test step");
        std::fs::create_dir_all(src.path().join("app/sub")).expect("test step");
        std::fs::create_dir_all(src.path().join(".git")).expect("test step");
        std::fs::write(src.path().join(".git/HEAD"), "ref").expect("test step");
        std::fs::write(src.path().join("app/cm.yaml"), "kind: ConfigMap\n").expect("test step");
        std::fs::write(src.path().join("app/sub/b.yaml"), "b: 1\n").expect("test step");
        let first = pack(src.path()).expect("test step");
        std::thread::sleep(std::time::Duration::from_millis(1100));
        std::fs::write(src.path().join("app/cm.yaml"), "kind: ConfigMap\n").expect("test step");
        assert_eq!(
            first,
            pack(src.path()).expect("test step"),
            "same files, same bytes"
        );
        let out = tempfile::tempdir().expect("test step");
        let dest = out.path().join("x");
        unpack(&first, &dest, Limits::default()).expect("test step");
        assert_eq!(
            std::fs::read_to_string(dest.join("app/cm.yaml")).expect("test step"),
            "kind: ConfigMap\n"
        );
        assert_eq!(
            std::fs::read_to_string(dest.join("app/sub/b.yaml")).expect("test step"),
            "b: 1\n"
        );
        assert!(!dest.join(".git").exists());
    }

    #[test]
    fn unpacking_refuses_escapes_links_and_oversize() {
        let layer = |name: &str, kind: tar::EntryType, data: &[u8]| {
            let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let mut tar = tar::Builder::new(gz);
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            // Written raw so that the builder's own path checks do not stop it.
            header.as_gnu_mut().expect("test step").name[..name.len()]
                .copy_from_slice(name.as_bytes());
            header.set_cksum();
            tar.append(&header, data).expect("test step");
            tar.into_inner()
                .expect("test step")
                .finish()
                .expect("test step")
        };
        let out = tempfile::tempdir().expect("test step");
        let e = unpack(
            &layer("../evil", tar::EntryType::Regular, b"x"),
            &out.path().join("a"),
            Limits::default(),
        )
        .expect_err("must fail");
        assert!(e.contains("../evil") && e.contains("leaves"), "{e}");
        let e = unpack(
            &layer("/etc/x", tar::EntryType::Regular, b"x"),
            &out.path().join("b"),
            Limits::default(),
        )
        .expect_err("must fail");
        assert!(e.contains("leaves"), "{e}");
        let e = unpack(
            &layer("l", tar::EntryType::Symlink, b""),
            &out.path().join("c"),
            Limits::default(),
        )
        .expect_err("must fail");
        assert!(e.contains("not a regular file"), "{e}");
        let small = Limits {
            unpacked_bytes: 3,
            ..Limits::default()
        };
        let e = unpack(
            &layer("big", tar::EntryType::Regular, b"12345"),
            &out.path().join("d"),
            small,
        )
        .expect_err("must fail");
        assert!(e.contains("more than 3 bytes"), "{e}");
    }
}
