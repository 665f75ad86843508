//! The local file tree of a release: read once, checked before any host is
//! touched. Files keep their permission bits; symlinks are deployed as links
//! and must stay inside the tree.

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

/// Why a tree cannot be released.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// A file or directory could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The path that failed.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A symlink points outside the release root.
    #[error("symlink {path} -> {target} leads outside the release")]
    EscapingLink {
        /// The link, relative to the tree.
        path: String,
        /// Its target as written.
        target: String,
    },
    /// A name the remote file lists cannot carry (newline, tab, backslash, not UTF-8).
    #[error(
        "{path}: file names with newlines, tabs, backslashes or invalid UTF-8 are not deployed"
    )]
    UnsupportedName {
        /// The path, lossily converted.
        path: String,
    },
    /// Something other than a file, directory or symlink (a socket, a device).
    #[error("{path}: only regular files, directories and symlinks are deployed")]
    UnsupportedKind {
        /// The path, relative to the tree.
        path: String,
    },
}

/// What one entry of a tree is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file with the SHA-256 of its content.
    File {
        /// Hex SHA-256.
        digest: String,
        /// Size in bytes.
        size: u64,
    },
    /// A symlink and its target as written.
    Symlink {
        /// Target, relative to the link's directory or absolute inside the tree.
        target: String,
    },
}

/// One entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// Path relative to the tree root, `/`-separated.
    pub path: String,
    /// Permission bits (`0o755`).
    pub mode: u32,
    /// What it is.
    pub kind: EntryKind,
}

/// A checked directory tree: entries in path order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    root: PathBuf,
    entries: Vec<TreeEntry>,
}

impl Tree {
    /// Reads and checks the tree under `root`. A `.git` directory is skipped.
    pub fn read(root: &Path) -> Result<Self, TreeError> {
        let mut entries = Vec::new();
        walk(root, "", &mut entries)?;
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Self {
            root: root.to_path_buf(),
            entries,
        })
    }

    /// The directory the tree was read from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Entries in path order.
    pub fn entries(&self) -> &[TreeEntry] {
        &self.entries
    }

    /// Local path of an entry.
    pub fn local_path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

fn walk(root: &Path, prefix: &str, out: &mut Vec<TreeEntry>) -> Result<(), TreeError> {
    let dir = root.join(prefix);
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TreeError::Read { path, source }
    };
    for entry in std::fs::read_dir(&dir).map_err(read_err(&dir))? {
        let entry = entry.map_err(read_err(&dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| supported_name(n)) else {
            return Err(TreeError::UnsupportedName {
                path: format!("{prefix}{}", name.to_string_lossy()),
            });
        };
        if prefix.is_empty() && name == ".git" {
            continue;
        }
        let rel = format!("{prefix}{name}");
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).map_err(read_err(&path))?;
        let mode = meta.permissions().mode() & 0o7777;
        let kind = if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).map_err(read_err(&path))?;
            let target = target
                .to_str()
                .filter(|t| supported_name(t))
                .ok_or_else(|| TreeError::UnsupportedName { path: rel.clone() })?;
            check_link(&rel, target)?;
            EntryKind::Symlink {
                target: target.to_owned(),
            }
        } else if meta.is_dir() {
            out.push(TreeEntry {
                path: rel.clone(),
                mode,
                kind: EntryKind::Dir,
            });
            walk(root, &format!("{rel}/"), out)?;
            continue;
        } else if meta.is_file() {
            let content = std::fs::read(&path).map_err(read_err(&path))?;
            EntryKind::File {
                digest: digest(&content),
                size: content.len() as u64,
            }
        } else {
            return Err(TreeError::UnsupportedKind { path: rel });
        };
        out.push(TreeEntry {
            path: rel,
            mode,
            kind,
        });
    }
    Ok(())
}

/// Hex SHA-256 of `content`, as `sha256sum` prints it.
pub fn digest(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

fn supported_name(name: &str) -> bool {
    !name.contains(['\n', '\t', '\\', '\r'])
}

/// Refuses a link at `link` (relative to the root) whose target leaves the
/// root, judged on the text: the host resolves it, not this machine.
pub(crate) fn check_link(link: &str, target: &str) -> Result<(), TreeError> {
    let escaping = || TreeError::EscapingLink {
        path: link.to_owned(),
        target: target.to_owned(),
    };
    if Path::new(target).is_absolute() {
        return Err(escaping());
    }
    let mut depth = Path::new(link).components().count() as i64 - 1;
    for part in Path::new(target).components() {
        match part {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err(escaping()),
        }
        if depth < 0 {
            return Err(escaping());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_inside_the_tree_pass_and_escaping_ones_are_refused() {
        assert!(check_link("a", "b").is_ok());
        assert!(check_link("dir/a", "../b").is_ok());
        assert!(check_link("dir/sub/a", "../../b").is_ok());
        for (link, target) in [("a", "../b"), ("dir/a", "../../b"), ("a", "/etc/passwd")] {
            let err = check_link(link, target)
                .expect_err("this must be refused")
                .to_string();
            assert!(err.contains(link) && err.contains("outside"), "{err}");
        }
    }

    #[test]
    fn reads_files_modes_and_links_in_order() {
        let dir = tempfile::tempdir().expect("test step succeeds");
        std::fs::create_dir_all(dir.path().join("bin")).expect("test step succeeds");
        std::fs::write(dir.path().join("bin/run"), "#!/bin/sh\n").expect("test step succeeds");
        std::fs::set_permissions(
            dir.path().join("bin/run"),
            std::fs::Permissions::from_mode(0o750),
        )
        .expect("test step succeeds");
        std::fs::write(dir.path().join("a.conf"), "x").expect("test step succeeds");
        std::os::unix::fs::symlink("a.conf", dir.path().join("link")).expect("test step succeeds");
        std::fs::create_dir_all(dir.path().join(".git")).expect("test step succeeds");
        let tree = Tree::read(dir.path()).expect("test step succeeds");
        let paths: Vec<&str> = tree.entries().iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a.conf", "bin", "bin/run", "link"]);
        assert_eq!(tree.entries()[2].mode, 0o750);
        assert_eq!(
            tree.entries()[0].kind,
            EntryKind::File {
                digest: digest(b"x"),
                size: 1
            }
        );
    }

    #[test]
    fn an_escaping_symlink_fails_the_read() {
        let dir = tempfile::tempdir().expect("test step succeeds");
        std::fs::create_dir(dir.path().join("etc")).expect("test step succeeds");
        std::os::unix::fs::symlink("../../secret", dir.path().join("etc/key"))
            .expect("test step succeeds");
        let err = Tree::read(dir.path()).expect_err("this must be refused");
        assert!(matches!(err, TreeError::EscapingLink { ref path, .. } if path == "etc/key"));
    }
}
