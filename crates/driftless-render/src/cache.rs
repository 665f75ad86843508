//! A render cache keyed by (tree digest of the input, render options): an
//! unchanged input never renders twice. Entries live in a small in-memory LRU
//! and, optionally, in a directory on disk that survives restarts.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::objects::{ObjectSet, Rendered, hex};
use crate::options::RenderOptions;
use crate::paths::{self, PathError};
use crate::{Error, render};

/// Errors from the render cache itself (render errors pass through as [`Error`]).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The input tree could not be hashed.
    #[error(transparent)]
    Path(#[from] PathError),
    /// An on-disk entry could not be written.
    #[error("writing render cache entry {path}: {source}")]
    Write {
        /// The entry file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Counters of cache use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Served from memory.
    pub memory_hits: u64,
    /// Served from disk.
    pub disk_hits: u64,
    /// Rendered.
    pub misses: u64,
}

/// Caches rendered object sets by input tree and options.
#[derive(Debug)]
pub struct RenderCache {
    capacity: usize,
    memory: Mutex<Lru>,
    disk: Option<PathBuf>,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Debug, Default)]
struct Lru {
    order: VecDeque<String>,
    entries: HashMap<String, Arc<ObjectSet>>,
}

impl Lru {
    fn get(&mut self, key: &str) -> Option<Arc<ObjectSet>> {
        let found = self.entries.get(key).cloned()?;
        self.order.retain(|k| k != key);
        self.order.push_back(key.to_string());
        Some(found)
    }

    fn put(&mut self, key: String, set: Arc<ObjectSet>, capacity: usize) {
        self.order.retain(|k| *k != key);
        self.order.push_back(key.clone());
        self.entries.insert(key, set);
        while self.order.len() > capacity {
            if let Some(old) = self.order.pop_front() {
                self.entries.remove(&old);
            }
        }
    }
}

impl RenderCache {
    /// An in-memory cache holding up to `capacity` object sets (at least one).
    pub fn new(capacity: usize) -> RenderCache {
        RenderCache {
            capacity: capacity.max(1),
            memory: Mutex::new(Lru::default()),
            disk: None,
            memory_hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Also keeps entries as files in `dir` (created on first write).
    pub fn with_disk(mut self, dir: impl Into<PathBuf>) -> RenderCache {
        self.disk = Some(dir.into());
        self
    }

    /// Hit and miss counters so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// Renders `dir`, or returns the cached set when neither the repository
    /// root's content nor the options changed. The whole root is hashed
    /// because an overlay may read any file below the root (`../base`).
    pub fn render(&self, dir: &Path, opts: &RenderOptions) -> Result<Arc<ObjectSet>, Error> {
        let root = if opts.root.as_os_str().is_empty() {
            dir
        } else {
            opts.root.as_path()
        };
        let tree = tree_digest(root).map_err(|e| match e {
            CacheError::Path(p) => Error::Path(p),
            CacheError::Write { path, source } => Error::Path(PathError::Io { path, source }),
        })?;
        self.render_keyed(&tree, dir, opts)
    }

    /// Like [`RenderCache::render`] with a digest the caller already has for
    /// the root's content (for example the Git tree id of a commit).
    pub fn render_keyed(
        &self,
        tree: &str,
        dir: &Path,
        opts: &RenderOptions,
    ) -> Result<Arc<ObjectSet>, Error> {
        let key = entry_key(tree, dir, opts);
        if let Some(set) = self.lock().get(&key) {
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(set);
        }
        if let Some(set) = self.load(&key) {
            self.disk_hits.fetch_add(1, Ordering::Relaxed);
            let set = Arc::new(set);
            self.lock().put(key, Arc::clone(&set), self.capacity);
            return Ok(set);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let set = Arc::new(render(dir, opts)?);
        // A failed disk write costs a later re-render only, so it is not an error.
        let _ = self.store(&key, &set);
        self.lock().put(key, Arc::clone(&set), self.capacity);
        Ok(set)
    }

    /// Removes on-disk entries written more than `min_age` ago (entries in
    /// memory stay); returns how many files were removed. A removed entry
    /// costs a render after the next restart, nothing more.
    pub fn gc_disk(&self, min_age: std::time::Duration) -> usize {
        let Some(dir) = &self.disk else {
            return 0;
        };
        let Ok(listing) = std::fs::read_dir(dir) else {
            return 0;
        };
        let now = std::time::SystemTime::now();
        let mut removed = 0;
        for entry in listing.flatten() {
            let path = entry.path();
            let ours = path.extension().is_some_and(|e| e == "json" || e == "tmp");
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age >= min_age);
            if ours && old && std::fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        // A panic while holding the lock leaves a consistent map; keep using it.
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn entry_path(&self, key: &str) -> Option<PathBuf> {
        self.disk.as_ref().map(|d| d.join(format!("{key}.json")))
    }

    /// Reads an on-disk entry; anything unreadable or not matching its digest is a miss.
    fn load(&self, key: &str) -> Option<ObjectSet> {
        let text = std::fs::read_to_string(self.entry_path(key)?).ok()?;
        let entry: Value = serde_json::from_str(&text).ok()?;
        let items = entry
            .get("items")?
            .as_array()?
            .iter()
            .map(|i| {
                Some(Rendered::new(
                    i.get("object")?.clone(),
                    i.get("origin")?.as_str()?,
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        let set = ObjectSet::new(items).ok()?;
        (Some(set.digest()) == entry.get("digest").and_then(Value::as_str)).then_some(set)
    }

    /// Writes an entry atomically (temp file, then rename), readable by the owner only
    /// because substituted objects may carry secrets.
    pub(crate) fn store(&self, key: &str, set: &ObjectSet) -> Result<(), CacheError> {
        let Some(path) = self.entry_path(key) else {
            return Ok(());
        };
        let items: Vec<Value> = set
            .items()
            .iter()
            .map(|r| json!({"origin": r.origin, "object": r.object}))
            .collect();
        let body = json!({"digest": set.digest(), "items": items}).to_string();
        let tmp = path.with_extension("json.tmp");
        let write = |p: &Path| -> std::io::Result<()> {
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut open = std::fs::OpenOptions::new();
            open.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
            std::io::Write::write_all(&mut open.open(p)?, body.as_bytes())?;
            std::fs::rename(p, &path)
        };
        write(&tmp).map_err(|source| CacheError::Write { path, source })
    }
}

/// The cache key: a hash of the tree digest, the directory and the options.
fn entry_key(tree: &str, dir: &Path, opts: &RenderOptions) -> String {
    let mut h = Sha256::new();
    for part in [tree, &dir.display().to_string(), &opts.cache_key()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex(&h.finalize())
}

/// `sha256:<hex>` over the names, kinds and contents of every entry below
/// `dir` (sorted; `.git` skipped; symlinks hashed by their target text).
pub fn tree_digest(dir: &Path) -> Result<String, CacheError> {
    let mut h = Sha256::new();
    hash_dir(dir, dir, 0, &mut h)?;
    Ok(format!("sha256:{}", hex(&h.finalize())))
}

fn hash_dir(top: &Path, dir: &Path, depth: usize, h: &mut Sha256) -> Result<(), CacheError> {
    let io = paths::io_error;
    let Some(entries) = paths::enter_dir(dir, depth, None)? else {
        return Ok(());
    };
    for entry in entries {
        if entry.file_name() == ".git" {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(io(&path))?;
        let rel = paths::display_relative(top, &path);
        let (tag, body) = if kind.is_symlink() {
            let target = std::fs::read_link(&path).map_err(io(&path))?;
            ("l", target.display().to_string().into_bytes())
        } else if kind.is_dir() {
            h.update(format!("d {rel}\n").as_bytes());
            hash_dir(top, &path, depth + 1, h)?;
            continue;
        } else {
            ("f", std::fs::read(&path).map_err(io(&path))?)
        };
        h.update(format!("{tag} {rel} {}\n", body.len()).as_bytes());
        h.update(&body);
    }
    Ok(())
}
