//! Plain YAML/JSON manifests: every `.yaml`, `.yml` and `.json` file of a
//! directory, in sorted path order so the output never depends on the file system.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use globset::{GlobSet, GlobSetBuilder};

use crate::limits::{InputBudget, LimitError, RenderLimits, shown_dir};
use crate::objects::{Rendered, expand_lists};
use crate::paths::{self, PathError};
use crate::reads::ReadLog;

/// Which files of a plain directory are read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PlainOptions {
    /// Descend into subdirectories (hidden ones, starting with `.`, are skipped).
    pub recursive: bool,
    /// Globs over the path relative to the directory (`*` stops at `/`, `**`
    /// crosses it); when non-empty a file must match one of them.
    pub include: Vec<String>,
    /// Globs that drop a file even when included.
    pub exclude: Vec<String>,
}

/// Errors from reading plain manifests.
#[derive(Debug, thiserror::Error)]
pub enum PlainError {
    /// A glob in the options does not parse.
    #[error("plain options: invalid glob {glob:?}: {source}")]
    Glob {
        /// The glob.
        glob: String,
        /// The cause.
        source: globset::Error,
    },
    /// A path is refused or unreadable.
    #[error(transparent)]
    Path(#[from] PathError),
    /// A file is larger than a render reads.
    #[error("{path}: file of {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// The files together are larger than a render reads.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// A file is not valid YAML or JSON.
    #[error(transparent)]
    Parse(#[from] driftless_kustomize::Error),
}

fn glob_set(globs: &[String]) -> Result<Option<GlobSet>, PlainError> {
    if globs.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        let compiled = globset::GlobBuilder::new(glob)
            .literal_separator(true)
            .build()
            .map_err(|source| PlainError::Glob {
                glob: glob.clone(),
                source,
            })?;
        builder.add(compiled);
    }
    let set = builder.build().map_err(|source| PlainError::Glob {
        glob: globs.join(", "),
        source,
    })?;
    Ok(Some(set))
}

/// Reads the manifests of `dir` (canonical, inside the canonical `root`),
/// refusing the file that takes the render over its byte limit before reading it.
pub fn render(
    root: &Path,
    dir: &Path,
    opts: &PlainOptions,
    limits: &RenderLimits,
    log: &ReadLog,
) -> Result<Vec<Rendered>, PlainError> {
    let include = glob_set(&opts.include)?;
    let exclude = glob_set(&opts.exclude)?;
    let mut files = Vec::new();
    let mut walk = Walk {
        root,
        top: dir,
        recursive: opts.recursive,
        seen: HashSet::new(),
        log,
    };
    walk.collect(dir, 0, &mut files)?;
    // Sorting by relative path gives one order on every machine.
    files.sort();
    let mut out = Vec::new();
    let mut budget = InputBudget::new(shown_dir(root, dir), limits.max_input_bytes);
    for (rel, path) in files {
        if include.as_ref().is_some_and(|s| !s.is_match(&rel))
            || exclude.as_ref().is_some_and(|s| s.is_match(&rel))
        {
            continue;
        }
        read_file(root, &path, &mut budget, &mut out)?;
    }
    Ok(out)
}

/// Parses one manifest file, checking its size against the per-file limit
/// and the render's budget before reading it.
pub(crate) fn read_file(
    root: &Path,
    path: &Path,
    budget: &mut InputBudget,
    out: &mut Vec<Rendered>,
) -> Result<(), PlainError> {
    let io = |source| PathError::Io {
        path: path.to_path_buf(),
        source,
    };
    let limit = driftless_kustomize::yaml::MAX_INPUT_BYTES;
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > limit as u64 {
        return Err(PlainError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit,
        });
    }
    let shown = paths::display_relative(root, path);
    budget.take(&shown, size)?;
    let text = std::fs::read_to_string(path).map_err(io)?;
    let docs = driftless_kustomize::parse_stream(&text, Path::new(&shown))?;
    for (i, doc) in docs.into_iter().enumerate() {
        expand_lists(doc, &format!("{shown}#{i}"), out);
    }
    Ok(())
}

fn is_manifest(name: &str) -> bool {
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| name.len() > ext.len() && name.ends_with(ext))
}

/// A walk of a plain directory: the files it finds and, in `log`, every
/// listing and link it looks at.
struct Walk<'a> {
    root: &'a Path,
    /// The rendered directory, which file paths are relative to.
    top: &'a Path,
    recursive: bool,
    seen: HashSet<PathBuf>,
    log: &'a ReadLog,
}

impl Walk<'_> {
    /// Gathers `(relative path, real path)` of manifest files below `dir`.
    fn collect(
        &mut self,
        dir: &Path,
        depth: usize,
        files: &mut Vec<(String, PathBuf)>,
    ) -> Result<(), PlainError> {
        let root = self.root;
        let Some(entries) = paths::enter_dir(dir, depth, Some(&mut self.seen))? else {
            return Ok(());
        };
        self.log.entry(dir);
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let kind = entry.file_type().map_err(paths::io_error(&path))?;
            let real = if kind.is_symlink() {
                // Whether a link leads to a file or a directory decides what is read.
                self.log.entry(&path);
                paths::resolve_inside(root, dir, Path::new(&name)).map_err(|e| match e {
                    PathError::OutsideRoot { root, .. } => PathError::OutsideRoot {
                        path: path.clone(),
                        root,
                    },
                    other => other,
                })?
            } else {
                path.clone()
            };
            if real.is_dir() {
                if self.recursive {
                    self.collect(&path, depth + 1, files)?;
                }
            } else if is_manifest(&name) {
                self.log.entry(&path);
                files.push((paths::display_relative(self.top, &path), real));
            }
        }
        Ok(())
    }
}
