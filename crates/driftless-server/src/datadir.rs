//! The data directory is private to the user running driftless: it holds the state
//! store, Git caches and snapshots, whose files may carry secrets from Git.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Permission bits of group and others.
const SHARED_BITS: u32 = 0o077;

/// Why a data dir permission could not be set.
#[derive(Debug, thiserror::Error)]
#[error("making {path} private: {source}")]
pub struct PrivacyError {
    /// The file or directory at fault.
    pub path: PathBuf,
    /// Cause.
    pub source: std::io::Error,
}

/// Creates `dir` if needed and sets it to mode 0700, so nothing below it is
/// reachable by other users whatever the modes of the files inside. Returns
/// whether it existed with group or other access, that is whether what it
/// holds was written without this protection.
pub fn make_private(dir: &Path) -> Result<bool, PrivacyError> {
    let err = |source| PrivacyError {
        path: dir.to_path_buf(),
        source,
    };
    let was_shared = match fs::metadata(dir) {
        Ok(meta) => meta.permissions().mode() & SHARED_BITS != 0,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(err(e)),
    };
    fs::create_dir_all(dir).map_err(err)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)?;
    Ok(was_shared)
}

/// Removes group and other permissions from every file and directory below `dir`
/// (symbolic links are neither followed nor changed); returns how many changed.
/// Entries written by earlier versions, or before the umask was set, get here too.
pub fn tighten_tree(dir: &Path) -> Result<usize, PrivacyError> {
    let mut changed = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        // Entries can vanish while the engine runs (staging dirs renamed, caches
        // collected): those need no change.
        let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
        let err = |source| PrivacyError {
            path: path.clone(),
            source,
        };
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(err(e)),
        };
        if meta.file_type().is_symlink() {
            continue;
        }
        let mode = meta.permissions().mode();
        if mode & SHARED_BITS != 0 {
            let private = fs::Permissions::from_mode(mode & !SHARED_BITS & 0o7777);
            match fs::set_permissions(&path, private) {
                Ok(()) => changed += 1,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(err(e)),
            }
        }
        if meta.is_dir() {
            let entries = match fs::read_dir(&path) {
                Ok(entries) => entries,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(err(e)),
            };
            for entry in entries {
                pending.push(entry.map_err(err)?.path());
            }
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path)
            .expect("stat")
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn loose_modes_below_the_data_dir_lose_group_and_other_bits() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        let snap = data.join("cache/sources/snapshots/abc");
        fs::create_dir_all(&snap).expect("mkdir");
        fs::write(snap.join("secret.yaml"), "x").expect("write");
        fs::set_permissions(snap.join("secret.yaml"), fs::Permissions::from_mode(0o444))
            .expect("chmod");
        fs::set_permissions(&snap, fs::Permissions::from_mode(0o555)).expect("chmod");
        let outside = tmp.path().join("outside");
        fs::write(&outside, "y").expect("write");
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o644)).expect("chmod");
        symlink(&outside, data.join("link")).expect("symlink");
        fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).expect("chmod");

        assert!(make_private(&data).expect("private"), "it was shared");
        assert_eq!(mode(&data), 0o700);
        assert!(!make_private(&data).expect("again"), "private since");
        assert!(tighten_tree(&data).expect("tighten") >= 3);
        assert_eq!(mode(&snap), 0o500);
        assert_eq!(mode(&snap.join("secret.yaml")), 0o400);
        assert_eq!(mode(&outside), 0o644, "a link's target is left alone");
        assert_eq!(tighten_tree(&data).expect("again"), 0);
        // The temporary directory can only be removed with write permission back.
        fs::set_permissions(&snap, fs::Permissions::from_mode(0o700)).expect("chmod");
    }
}
