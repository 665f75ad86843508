//! Reading config files from disk: the only I/O in this crate.

use std::path::{Path, PathBuf};

use crate::config::{Config, Document, Problem, Problems};

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file or directory could not be read.
    #[error("reading config {path}: {source}")]
    Read {
        /// The path that failed.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A directory held no YAML or JSON file.
    #[error("config directory {0} holds no .yaml, .yml or .json file")]
    Empty(PathBuf),
    /// The files were read but hold problems.
    #[error(transparent)]
    Invalid(#[from] Problems),
}

/// Loads a config from a YAML/JSON file (multi-document) or from every
/// `.yaml`, `.yml` and `.json` file under a directory, in path order. Hidden
/// files and directories are skipped. All problems are reported together.
pub fn load_config(path: &Path) -> Result<Config, LoadError> {
    let meta = std::fs::metadata(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let files = if meta.is_dir() {
        let mut files = Vec::new();
        collect_files(path, &mut files)?;
        if files.is_empty() {
            return Err(LoadError::Empty(path.to_path_buf()));
        }
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut documents = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| LoadError::Read {
            path: file.clone(),
            source,
        })?;
        match driftless_yaml::parse_documents(&text, &file.display().to_string()) {
            Ok(values) => {
                documents.extend(values.into_iter().enumerate().map(|(i, value)| Document {
                    file: file.clone(),
                    index: i + 1,
                    value,
                }))
            }
            Err(e) => {
                // The parser names the file itself; the problem line names it already.
                let message = e.to_string();
                let prefix = format!("{}:", file.display());
                let message = message
                    .strip_prefix(&prefix)
                    .map_or(message.clone(), |rest| rest.trim_start().to_owned());
                problems.push(Problem {
                    file: file.clone(),
                    document: None,
                    object: None,
                    field: None,
                    message,
                });
            }
        }
    }
    match Config::from_documents(documents) {
        Ok(config) if problems.is_empty() => Ok(config),
        Ok(_) => Err(Problems(problems).into()),
        Err(Problems(more)) => {
            problems.extend(more);
            Err(Problems(problems).into())
        }
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let read_err = |source| LoadError::Read {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry.file_type().map_err(read_err)?;
        if kind.is_dir() {
            collect_files(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(path);
        }
    }
    Ok(())
}
