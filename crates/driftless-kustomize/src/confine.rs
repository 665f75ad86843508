//! Keeping every path a build opens inside one directory tree (the
//! repository), after `..` and symlinks are resolved.
//!
//! A kustomization names files with arbitrary strings: absolute paths, `..`
//! sequences, or paths through symlinks. [`confine`] is the one place that
//! turns such a string into a real path and refuses it unless it lies inside
//! the repository root; every file or directory a build opens goes through it.

use std::collections::HashSet;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

/// Why a path was refused or could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// The path lies outside the root.
    #[error("'{}' is outside the repository root {}", path.display(), root.display())]
    Outside {
        /// The path as written, joined to its base.
        path: PathBuf,
        /// The repository root.
        root: PathBuf,
    },
    /// A symlink inside the root leads outside it, or loops.
    #[error(
        "symlink '{}' leads outside the repository root {} or loops",
        link.display(),
        root.display()
    )]
    Link {
        /// The link, relative to the root.
        link: PathBuf,
        /// The repository root.
        root: PathBuf,
    },
    /// A directory tree is nested deeper than [`MAX_TREE_DEPTH`].
    #[error("{}: directories nested deeper than {limit} levels", path.display())]
    TooDeep {
        /// The directory where the limit was hit.
        path: PathBuf,
        /// The limit.
        limit: usize,
    },
    /// The path could not be resolved for another reason (a dangling link,
    /// a file used as a directory, no permission).
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Directory nesting accepted by [`check_tree`]; real repositories stay far below.
pub const MAX_TREE_DEPTH: usize = 64;

/// Resolves `rel` against `base` (an absolute `rel` replaces `base`) and
/// returns the real path, refusing it unless it lies inside `root`.
///
/// `root` must be canonical. A path that climbs out with `..` is refused
/// before the file system is touched, so nothing outside can even be probed.
/// A path whose last components do not exist yet resolves to the real path of
/// its deepest existing ancestor joined with those names. Whenever a symlink
/// on the way leads outside the root (or loops), the error names that link,
/// relative to the root, so the message is the same on every run.
pub fn confine(root: &Path, base: &Path, rel: &Path) -> Result<PathBuf, ConfineError> {
    let joined = base.join(rel);
    if !lexically_inside(root, &joined) {
        return Err(ConfineError::Outside {
            path: joined,
            root: root.to_path_buf(),
        });
    }
    let real = match real_path(&joined) {
        Ok(real) => real,
        Err(source) => {
            return Err(escaping_link(root, &joined)
                .map(|link| link_error(root, link))
                .unwrap_or(ConfineError::Io {
                    path: joined,
                    source,
                }));
        }
    };
    if real.starts_with(root) {
        return Ok(real);
    }
    Err(escaping_link(root, &joined)
        .map(|link| link_error(root, link))
        .unwrap_or(ConfineError::Outside {
            path: joined,
            root: root.to_path_buf(),
        }))
}

fn link_error(root: &Path, link: PathBuf) -> ConfineError {
    ConfineError::Link {
        link,
        root: root.to_path_buf(),
    }
}

/// True when `path` stays below (or at) `root` once `.` and `..` are applied
/// textually.
pub fn lexically_inside(root: &Path, path: &Path) -> bool {
    normalize(path).starts_with(root)
}

/// `path` with `.` and `..` applied textually (`..` at the top stays at the top).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                // Popping the file system root leaves it in place, like the kernel.
                if out.file_name().is_some() {
                    out.pop();
                } else if !out.has_root() {
                    out.push("..");
                }
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The canonical form of `path`, or, when its last components do not exist,
/// the canonical form of the deepest existing ancestor joined with them.
fn real_path(path: &Path) -> std::io::Result<PathBuf> {
    match path.canonicalize() {
        Ok(real) => Ok(real),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            // Something that exists but cannot be followed (a dangling link)
            // must not be replaced by its name: the link decides where it goes.
            if std::fs::symlink_metadata(path).is_ok() {
                return Err(e);
            }
            match (path.parent(), path.file_name()) {
                (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => {
                    Ok(real_path(parent)?.join(name))
                }
                _ => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// The first symlink along `path` (inside `root`) that resolves outside
/// `root` or cannot be resolved for any reason but a missing target, as a path
/// relative to `root`.
pub fn escaping_link(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut prefix = PathBuf::new();
    for part in path.components() {
        prefix.push(part.as_os_str());
        if !matches!(part, Component::Normal(_)) || !lexically_inside(root, &prefix) {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(&prefix) else {
            return None;
        };
        if !meta.file_type().is_symlink() {
            continue;
        }
        let escapes = match prefix.canonicalize() {
            Ok(real) => !real.starts_with(root),
            Err(e) => e.kind() != ErrorKind::NotFound,
        };
        if escapes {
            let shown = normalize(&prefix);
            return Some(shown.strip_prefix(root).unwrap_or(&shown).to_path_buf());
        }
    }
    None
}

/// Refuses `dir` when a symlink anywhere below it leads outside `root` or
/// loops, for tools that follow links by themselves (helm reading a chart).
/// Directory links inside the root are followed, each directory once.
pub fn check_tree(root: &Path, dir: &Path) -> Result<(), ConfineError> {
    let mut seen = HashSet::new();
    walk_links(root, dir, 0, &mut seen)
}

fn walk_links(
    root: &Path,
    dir: &Path,
    depth: usize,
    seen: &mut HashSet<PathBuf>,
) -> Result<(), ConfineError> {
    if depth > MAX_TREE_DEPTH {
        return Err(ConfineError::TooDeep {
            path: dir.to_path_buf(),
            limit: MAX_TREE_DEPTH,
        });
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ConfineError::Io { path, source }
    };
    if !seen.insert(dir.canonicalize().map_err(io(dir))?) {
        return Ok(());
    }
    let mut entries = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io(dir))?;
    // Sorted, so the link named in an error is the same on every run.
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type().map_err(io(&path))?;
        if kind.is_symlink() {
            let real = match path.canonicalize() {
                Ok(real) if real.starts_with(root) => real,
                Ok(_) => return Err(tree_link_error(root, &path)),
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(_) => return Err(tree_link_error(root, &path)),
            };
            if real.is_dir() {
                walk_links(root, &real, depth + 1, seen)?;
            }
        } else if kind.is_dir() {
            walk_links(root, &path, depth + 1, seen)?;
        }
    }
    Ok(())
}

fn tree_link_error(root: &Path, path: &Path) -> ConfineError {
    let link = path.strip_prefix(root).unwrap_or(path).to_path_buf();
    link_error(root, link)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{lexically_inside, normalize};

    #[test]
    fn parent_components_may_not_climb_above_the_root() {
        let root = Path::new("/repo");
        assert!(lexically_inside(root, Path::new("/repo/a/../b")));
        assert!(lexically_inside(root, Path::new("/repo/./a")));
        assert!(lexically_inside(root, Path::new("/repo")));
        assert!(!lexically_inside(root, Path::new("/repo/../etc")));
        assert!(!lexically_inside(root, Path::new("/repo/a/../../etc")));
        assert!(!lexically_inside(root, Path::new("/elsewhere/a")));
        assert!(!lexically_inside(root, Path::new("/repo-other/a")));
        assert!(!lexically_inside(root, Path::new("/../../repo/../x")));
        assert_eq!(normalize(Path::new("/../../repo/a/..")), Path::new("/repo"));
    }
}
