//! Keeps every file a render reads inside the repository root.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

/// Errors from resolving paths against the repository root.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// A path (or the target of a symlink) lies outside the root.
    #[error("{path}: outside the repository root {root}")]
    OutsideRoot {
        /// The refused path, as given or as found in the tree.
        path: PathBuf,
        /// The repository root.
        root: PathBuf,
    },
    /// A path names nothing, or could not be resolved.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A directory tree is nested deeper than a render accepts.
    #[error("{path}: directories nested deeper than {limit} levels")]
    TooDeep {
        /// The directory where the limit was hit.
        path: PathBuf,
        /// The limit.
        limit: usize,
    },
}

/// Directory nesting accepted when walking a tree; real repositories stay far below.
pub const MAX_TREE_DEPTH: usize = 64;

/// Canonicalizes `path`, naming it in the error.
pub fn canonical(path: &Path) -> Result<PathBuf, PathError> {
    path.canonicalize().map_err(|source| PathError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Resolves `given` (relative to `base`, or absolute) and refuses it unless it
/// lies inside `root` after symlinks are followed. `root` must be canonical.
pub fn resolve_inside(root: &Path, base: &Path, given: &Path) -> Result<PathBuf, PathError> {
    let refused = || PathError::OutsideRoot {
        path: given.to_path_buf(),
        root: root.to_path_buf(),
    };
    // Absolute paths and `..` are refused before touching the file system, so a
    // configuration cannot even probe for files outside the repository.
    if given.is_absolute() {
        return Err(refused());
    }
    let joined = base.join(given);
    if !lexically_inside(root, &joined) {
        return Err(refused());
    }
    let real = canonical(&joined)?;
    if !real.starts_with(root) {
        return Err(refused());
    }
    Ok(real)
}

/// True when `path` stays below `root` once `.` and `..` are applied textually.
fn lexically_inside(root: &Path, path: &Path) -> bool {
    let Ok(rest) = path.strip_prefix(root) else {
        return false;
    };
    let mut depth: usize = 0;
    for part in rest.components() {
        match part {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Refuses `dir` when any symlink below it resolves outside `root`, so tools
/// that follow links themselves (helm, jsonnet imports) cannot leave the root.
pub fn check_tree(root: &Path, dir: &Path) -> Result<(), PathError> {
    let mut seen = HashSet::new();
    walk_links(root, dir, 0, &mut seen)
}

fn walk_links(
    root: &Path,
    dir: &Path,
    depth: usize,
    seen: &mut HashSet<PathBuf>,
) -> Result<(), PathError> {
    let Some(entries) = enter_dir(dir, depth, Some(seen))? else {
        return Ok(());
    };
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type().map_err(io_error(&path))?;
        if kind.is_symlink() {
            let real = canonical(&path)?;
            if !real.starts_with(root) {
                return Err(PathError::OutsideRoot {
                    path,
                    root: root.to_path_buf(),
                });
            }
            if real.is_dir() {
                walk_links(root, &real, depth + 1, seen)?;
            }
        } else if kind.is_dir() {
            walk_links(root, &path, depth + 1, seen)?;
        }
    }
    Ok(())
}

/// Maps an I/O error to one naming `path`.
pub fn io_error(path: &Path) -> impl Fn(std::io::Error) -> PathError + use<> {
    let path = path.to_path_buf();
    move |source| PathError::Io {
        path: path.clone(),
        source,
    }
}

/// Lists `dir` for a tree walk at `depth`, sorted by name. Refuses trees
/// nested too deep, and gives `None` for a directory already visited (with
/// `seen`), which ends symlink loops.
pub fn enter_dir(
    dir: &Path,
    depth: usize,
    seen: Option<&mut HashSet<PathBuf>>,
) -> Result<Option<Vec<std::fs::DirEntry>>, PathError> {
    if depth > MAX_TREE_DEPTH {
        return Err(PathError::TooDeep {
            path: dir.to_path_buf(),
            limit: MAX_TREE_DEPTH,
        });
    }
    if let Some(seen) = seen
        && !seen.insert(canonical(dir)?)
    {
        return Ok(None);
    }
    let io = io_error(dir);
    let mut entries = std::fs::read_dir(dir)
        .map_err(&io)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(&io)?;
    entries.sort_by_key(|e| e.file_name());
    Ok(Some(entries))
}

/// Writes `path` relative to `root` with `/` separators, for messages and globs.
pub fn display_relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::lexically_inside;

    #[test]
    fn parent_components_may_not_climb_above_the_root() {
        let root = Path::new("/repo");
        assert!(lexically_inside(root, Path::new("/repo/a/../b")));
        assert!(lexically_inside(root, Path::new("/repo/./a")));
        assert!(!lexically_inside(root, Path::new("/repo/../etc")));
        assert!(!lexically_inside(root, Path::new("/repo/a/../../etc")));
        assert!(!lexically_inside(root, Path::new("/elsewhere/a")));
    }
}
