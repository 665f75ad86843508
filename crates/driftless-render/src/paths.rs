//! Keeps every file a render reads inside the repository root.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use driftless_kustomize::confine::{self, ConfineError};

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
    /// A symlink inside the root leads outside it, or loops.
    #[error("symlink {link} leads outside the repository root {root} or loops")]
    Link {
        /// The link, relative to the root.
        link: PathBuf,
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
pub const MAX_TREE_DEPTH: usize = confine::MAX_TREE_DEPTH;

impl From<ConfineError> for PathError {
    fn from(e: ConfineError) -> PathError {
        match e {
            ConfineError::Outside { path, root } => PathError::OutsideRoot { path, root },
            ConfineError::Link { link, root } => PathError::Link { link, root },
            ConfineError::TooDeep { path, limit } => PathError::TooDeep { path, limit },
            ConfineError::Io { path, source } => PathError::Io { path, source },
        }
    }
}

/// Canonicalizes `path`, naming it in the error.
pub fn canonical(path: &Path) -> Result<PathBuf, PathError> {
    path.canonicalize().map_err(|source| PathError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Resolves `given` (relative to `base`) and refuses it unless it lies inside
/// `root` after `..` and symlinks are followed; a symlink that leads out is
/// named. `root` must be canonical, and the path must exist.
pub fn resolve_inside(root: &Path, base: &Path, given: &Path) -> Result<PathBuf, PathError> {
    // Options name paths in the repository; an absolute one is refused even
    // when it happens to point inside, so a configuration means the same in
    // every checkout.
    if given.is_absolute() {
        return Err(PathError::OutsideRoot {
            path: given.to_path_buf(),
            root: root.to_path_buf(),
        });
    }
    let real = confine::confine(root, base, given)?;
    std::fs::metadata(&real).map_err(io_error(&base.join(given)))?;
    Ok(real)
}

/// Refuses `dir` when any symlink below it resolves outside `root`, so tools
/// that follow links themselves (helm, jsonnet imports) cannot leave the root.
pub fn check_tree(root: &Path, dir: &Path) -> Result<(), PathError> {
    Ok(confine::check_tree(root, dir)?)
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
