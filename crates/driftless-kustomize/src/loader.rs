//! File access for one kustomization root, enforcing the load restrictor.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use crate::confine::{ConfineError, confine};
use crate::kustomization::Kustomization;
use crate::resource::Resource;
use crate::{Error, LoadRestrictor, yaml};

/// Bytes one build may read in all, shared by every loader of the build.
#[derive(Debug, Default)]
pub struct ReadBudget {
    limit: Option<u64>,
    used: AtomicU64,
}

impl ReadBudget {
    /// A budget of `limit` bytes; `None` reads without a total bound.
    pub fn new(limit: Option<u64>) -> ReadBudget {
        ReadBudget {
            limit,
            used: AtomicU64::new(0),
        }
    }

    /// Takes `size` bytes for reading `path`, or fails once the build's
    /// reads would pass the limit.
    pub fn take(&self, path: &Path, size: u64) -> Result<(), Error> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let total = self
            .used
            .fetch_add(size, Ordering::Relaxed)
            .saturating_add(size);
        if total > limit {
            return Err(Error::InputLimit {
                path: path.to_path_buf(),
                total,
                limit,
            });
        }
        Ok(())
    }
}

/// Told of every path a build reads, lists or probes, for callers that key
/// a cache by what a build read. Paths are absolute and as the build formed
/// them, before `..` and symlinks are resolved; they may not exist.
pub trait ReadObserver: std::fmt::Debug + Send + Sync {
    /// The build read the file at `path`, or probed whether anything is there.
    fn entry(&self, path: &Path);
    /// A tool read everything below the directory `path` (helm reads a chart whole).
    fn tree(&self, path: &Path);
}

/// Reads files relative to a kustomization root.
#[derive(Clone, Debug)]
pub struct Loader {
    /// The kustomization directory (canonical).
    pub root: PathBuf,
    /// The restrictor in force.
    pub restrictor: LoadRestrictor,
    /// The repository nothing may be read outside of (canonical), if any.
    pub repository: Option<PathBuf>,
    /// The kustomization file, named in errors (the directory until loaded).
    pub file: PathBuf,
    /// What the whole build may still read.
    pub budget: Arc<ReadBudget>,
    /// Who is told of every path the build reads, if anyone.
    pub observer: Option<Arc<dyn ReadObserver>>,
    /// Who fetches remote entries, if anyone.
    pub remote: Option<Arc<dyn crate::RemoteResolver>>,
    /// The remote Git base this directory is part of, if any.
    pub remote_base: Option<Arc<crate::origin::RemoteBase>>,
    /// Who decrypts generator source files, if anyone.
    pub decryptor: Option<Arc<dyn crate::GeneratorDecryptor>>,
}

impl Loader {
    /// The loader of the top directory of a build, confined to `repository`,
    /// telling `observer` of what it reads.
    pub fn new(
        dir: &Path,
        restrictor: LoadRestrictor,
        repository: Option<&Path>,
        budget: Arc<ReadBudget>,
        observer: Option<Arc<dyn ReadObserver>>,
    ) -> Result<Loader, Error> {
        if let Some(observer) = &observer
            && let Ok(absolute) = std::path::absolute(dir)
        {
            observer.entry(&absolute);
        }
        let repository = match repository {
            Some(repo) => Some(repo.canonicalize().map_err(|source| Error::Io {
                path: repo.to_path_buf(),
                source,
            })?),
            None => None,
        };
        let root = match &repository {
            Some(repo) => {
                let absolute = std::path::absolute(dir).map_err(|source| Error::Io {
                    path: dir.to_path_buf(),
                    source,
                })?;
                confine(repo, &absolute, Path::new("")).map_err(|e| refused(dir, dir, e))?
            }
            None => dir.canonicalize().map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?,
        };
        Ok(Loader {
            file: root.clone(),
            root,
            restrictor,
            repository,
            budget,
            observer,
            remote: None,
            remote_base: None,
            decryptor: None,
        })
    }

    /// The loader of another kustomization directory (`dir`, already
    /// resolved by [`Loader::resolve`]) with the same restrictions, and its
    /// kustomization.
    pub fn open(&self, dir: &Path) -> Result<(Loader, Kustomization), Error> {
        let mut sub = Loader {
            root: dir.to_path_buf(),
            restrictor: self.restrictor,
            repository: self.repository.clone(),
            file: dir.to_path_buf(),
            budget: self.budget.clone(),
            observer: self.observer.clone(),
            remote: self.remote.clone(),
            remote_base: self.remote_base.clone(),
            decryptor: self.decryptor.clone(),
        };
        let k = sub.kustomization()?;
        Ok((sub, k))
    }

    /// Reads this directory's kustomization file, which must itself resolve
    /// inside the repository (it may be a symlink).
    pub fn kustomization(&mut self) -> Result<Kustomization, Error> {
        // Which of the names exist decides the file (or an error), so each is read.
        for name in crate::kustomization::FILE_NAMES {
            self.observe(&self.root.join(name));
        }
        let found = Kustomization::locate(&self.root)?;
        // Only the repository bounds it: kustomize's restrictor does not
        // apply to the kustomization file itself.
        let real = match &self.repository {
            Some(repo) => {
                confine(repo, &self.root, &found).map_err(|e| refused(&found, &found, e))?
            }
            None => found.clone(),
        };
        self.budget.take(&found, file_size(&real)?)?;
        let k = Kustomization::read(&real, &found)?;
        self.file = found;
        Ok(k)
    }

    /// Resolves `rel` against the root, refusing escapes from the repository
    /// and, under the root-only restrictor, files outside the kustomization
    /// directory. The result may not exist; opening it then names it.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, Error> {
        // The path as written: where its symlinks lead is part of what is read.
        self.observe(&self.root.join(rel));
        let real = match &self.repository {
            Some(repo) => confine(repo, &self.root, Path::new(rel))
                .map_err(|e| refused(&self.file, rel, e))?,
            None => {
                let joined = self.root.join(rel);
                joined.canonicalize().map_err(|source| Error::Io {
                    path: joined.clone(),
                    source,
                })?
            }
        };
        // Directories are kustomizations of their own with their own root,
        // as in kustomize; only files must stay below this one.
        if self.restrictor == LoadRestrictor::RootOnly
            && real.is_file()
            && !real.starts_with(&self.root)
        {
            return Err(Error::Restricted {
                path: real,
                root: self.root.clone(),
            });
        }
        Ok(real)
    }

    /// Where objects read from `file` come from, for `originAnnotations`.
    pub fn origin(&self, file: &Path) -> crate::origin::Origin {
        match &self.remote_base {
            Some(base) => base.origin(file),
            None => crate::origin::Origin::File(file.to_path_buf()),
        }
    }

    /// Tells the observer, if any, that `path` was read or probed.
    pub fn observe(&self, path: &Path) {
        if let Some(observer) = &self.observer {
            observer.entry(path);
        }
    }

    /// Tells the observer, if any, that the tree below `dir` was read whole.
    pub fn observe_tree(&self, dir: &Path) {
        if let Some(observer) = &self.observer {
            observer.tree(dir);
        }
    }

    /// Reads a file named by `field` of the kustomization as text: below
    /// the root, or fetched when it is an HTTP(S) URL, as kustomize reads them.
    pub fn read(&self, field: &str, rel: &str) -> Result<(PathBuf, String), Error> {
        let (path, bytes) = self.read_bytes(field, rel)?;
        let text = utf8(&path, bytes)?;
        Ok((path, text))
    }

    /// Reads a file named by `field` as [`Loader::read`] does, as bytes; a
    /// URL is its own path.
    pub fn read_bytes(&self, field: &str, rel: &str) -> Result<(PathBuf, Vec<u8>), Error> {
        if crate::remote::is_http_url(rel) {
            return crate::remote::fetch_file(self, field, rel);
        }
        let path = self.resolve(rel)?;
        let meta = std::fs::metadata(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        if meta.len() > yaml::MAX_INPUT_BYTES as u64 {
            return Err(Error::invalid(&path, "file too large"));
        }
        self.budget.take(&path, meta.len())?;
        let bytes = std::fs::read(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        Ok((path, bytes))
    }

    /// Reads a generator source file named by `field` as
    /// [`Loader::read_bytes`] does, decrypted by the build's decryptor if any.
    pub fn read_source(&self, field: &str, rel: &str) -> Result<(PathBuf, Vec<u8>), Error> {
        let (path, bytes) = self.read_bytes(field, rel)?;
        let Some(decryptor) = &self.decryptor else {
            return Ok((path, bytes));
        };
        match decryptor.source(&path, bytes) {
            Ok(bytes) => Ok((path, bytes)),
            Err(reason) => Err(Error::Decrypt {
                file: self.file.clone(),
                field: field.into(),
                path,
                reason: reason.into(),
            }),
        }
    }
}

/// The text of `bytes` read from `path`.
pub(crate) fn utf8(path: &Path, bytes: Vec<u8>) -> Result<String, Error> {
    String::from_utf8(bytes).map_err(|_| Error::invalid(path, "file is not valid UTF-8"))
}

/// The size of the file at `path`.
pub(crate) fn file_size(path: &Path) -> Result<u64, Error> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// The error for `entry` of `file` refused by the repository confinement.
pub(crate) fn refused(file: &Path, entry: impl AsRef<Path>, e: ConfineError) -> Error {
    match e {
        ConfineError::Io { path, source } => Error::Io { path, source },
        refused => Error::OutsideRepository {
            file: file.to_path_buf(),
            entry: entry.as_ref().display().to_string(),
            reason: Box::new(refused),
        },
    }
}

/// Parses resource documents, expanding `List` kinds into their items.
pub fn parse_resources(text: &str, origin: &Path) -> Result<Vec<Resource>, Error> {
    let docs = yaml::parse_documents(text, &origin.display().to_string())?;
    let mut out = Vec::new();
    for doc in docs {
        expand(doc, origin, &mut out)?;
    }
    Ok(out)
}

fn expand(doc: Value, origin: &Path, out: &mut Vec<Resource>) -> Result<(), Error> {
    let Value::Object(map) = doc else {
        return Err(Error::invalid(origin, "resource document is not a mapping"));
    };
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind.ends_with("List") && map.contains_key("items") {
        if let Some(Value::Array(items)) = map.get("items") {
            for item in items.clone() {
                expand(item, origin, out)?;
            }
        }
        return Ok(());
    }
    if kind.is_empty() {
        return Err(Error::invalid(origin, "missing kind in resource"));
    }
    let mut obj = Value::Object(map);
    stringify_metadata_maps(&mut obj);
    out.push(Resource::new(obj));
    Ok(())
}

/// Label and annotation values are strings in Kubernetes; kustomize reads
/// `happy: true` as `"true"`.
fn stringify_metadata_maps(obj: &mut Value) {
    for field in ["labels", "annotations"] {
        if let Some(Value::Object(m)) = obj.pointer_mut(&format!("/metadata/{field}")) {
            for v in m.values_mut() {
                crate::resource::stringify_metadata_value(v);
            }
        }
    }
}
