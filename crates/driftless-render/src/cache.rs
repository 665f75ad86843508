//! A render cache keyed by what a render read: the directory, the render
//! options, and what every path the render read below the repository root
//! holds (see [`crate::reads`]). A commit that changes nothing an App's
//! render read reuses the rendered set without rendering, however much else
//! of the tree it changed; a change to any file it read (`../base`
//! included) renders again.
//!
//! Two kinds of entries, each in a small in-memory LRU and, optionally, as
//! files in a directory that survives restarts: per (directory, options) the
//! read sets of its last renders, and per (directory, options, fingerprint
//! of a read set) the rendered set. A lookup fingerprints each known read
//! set in the checkout at hand and takes the set of the first that matches.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::objects::{ObjectSet, Rendered, hex};
use crate::options::RenderOptions;
use crate::paths::{self, PathError};
use crate::reads::ReadSet;
use crate::{Error, relative_dir, render_with_reads};

/// Read sets kept per (directory, options): a few, so that going back and
/// forth between revisions that read different files still finds each.
const READ_SETS_PER_INPUT: usize = 4;
/// Names the layout of keys and entries, so that entries of another layout
/// on disk are never read as this one.
const LAYOUT: &str = "reads-v2";

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

/// Where a rendered set came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// Reused from memory.
    Memory,
    /// Reused from disk.
    Disk,
    /// Rendered now.
    Rendered,
}

/// A rendered set and where it came from.
#[derive(Clone, Debug)]
pub struct Cached {
    /// The objects.
    pub set: Arc<ObjectSet>,
    /// Whether they were reused or rendered.
    pub served: Served,
    /// The remote resources the render used (a reused set's remotes were
    /// checked to name the same commits and file contents now).
    pub remotes: Vec<crate::RemoteUse>,
}

impl Cached {
    /// True when the set was reused without rendering.
    pub fn reused(&self) -> bool {
        self.served != Served::Rendered
    }
}

/// Caches rendered object sets by what their renders read.
#[derive(Debug)]
pub struct RenderCache {
    capacity: usize,
    read_capacity: usize,
    sets: Mutex<Lru<Arc<ObjectSet>>>,
    reads: Mutex<Lru<Arc<Vec<ReadSet>>>>,
    disk: Option<PathBuf>,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    misses: AtomicU64,
}

/// A least-recently-used map; each use takes a new tick.
#[derive(Debug)]
struct Lru<V> {
    tick: u64,
    order: BTreeMap<u64, String>,
    entries: HashMap<String, (u64, V)>,
}

impl<V> Default for Lru<V> {
    fn default() -> Lru<V> {
        Lru {
            tick: 0,
            order: BTreeMap::new(),
            entries: HashMap::new(),
        }
    }
}

impl<V: Clone> Lru<V> {
    fn get(&mut self, key: &str) -> Option<V> {
        self.tick += 1;
        let tick = self.tick;
        let (used, value) = self.entries.get_mut(key)?;
        self.order.remove(used);
        self.order.insert(tick, key.to_owned());
        *used = tick;
        Some(value.clone())
    }

    fn put(&mut self, key: String, value: V, capacity: usize) {
        self.tick += 1;
        if let Some((used, _)) = self.entries.remove(&key) {
            self.order.remove(&used);
        }
        self.order.insert(self.tick, key.clone());
        self.entries.insert(key, (self.tick, value));
        while self.entries.len() > capacity {
            let Some((_, old)) = self.order.pop_first() else {
                break;
            };
            self.entries.remove(&old);
        }
    }

    fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves a consistent map; keep using it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl RenderCache {
    /// An in-memory cache holding up to `capacity` object sets (at least
    /// one) and sixteen times as many read sets (they are small).
    pub fn new(capacity: usize) -> RenderCache {
        let capacity = capacity.max(1);
        RenderCache {
            capacity,
            read_capacity: capacity.saturating_mul(16),
            sets: Mutex::new(Lru::default()),
            reads: Mutex::new(Lru::default()),
            disk: None,
            memory_hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Keeps the read sets of up to `capacity` (directory, options) pairs in
    /// memory, e.g. one per App (at least one).
    pub fn with_read_sets(mut self, capacity: usize) -> RenderCache {
        self.read_capacity = capacity.max(1);
        self
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

    /// Renders `dir`, or returns the cached set when nothing the last
    /// renders of `dir` with these options read has changed.
    pub fn render(&self, dir: &Path, opts: &RenderOptions) -> Result<Arc<ObjectSet>, Error> {
        Ok(self.get_or_render(dir, opts)?.set)
    }

    /// Like [`RenderCache::render`], saying whether the set was reused.
    pub fn get_or_render(&self, dir: &Path, opts: &RenderOptions) -> Result<Cached, Error> {
        let Some((root, rel)) = scope(dir, opts) else {
            // Not a directory inside the root: the render says why.
            self.misses.fetch_add(1, Ordering::Relaxed);
            let (set, reads) = render_with_reads(dir, opts)?;
            return Ok(Cached {
                set: Arc::new(set),
                served: Served::Rendered,
                remotes: reads.remotes().to_vec(),
            });
        };
        let input = input_key(&rel, opts);
        for reads in self.read_sets(&input).iter() {
            if !reads.remotes().is_empty() && !remotes_unchanged(opts, reads) {
                continue;
            }
            let key = entry_key(&input, &reads_key(reads, &root));
            if let Some(found) = self.lookup(&key) {
                return Ok(Cached {
                    remotes: reads.remotes().to_vec(),
                    ..found
                });
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let (set, reads) = render_with_reads(dir, opts)?;
        let set = Arc::new(set);
        if reads.decrypted() || reads.fetched_charts() {
            // Decrypted generator sources: the set holds plaintext, which
            // no cache keeps, in memory or on disk. Chart dependencies from
            // repositories: no fingerprint of the checkout covers them.
            return Ok(Cached {
                set,
                served: Served::Rendered,
                remotes: reads.remotes().to_vec(),
            });
        }
        let key = entry_key(&input, &reads_key(&reads, &root));
        // A failed disk write costs a later re-render only, so it is not an error.
        let _ = self.store(&key, &set);
        lock(&self.sets).put(key, Arc::clone(&set), self.capacity);
        let remotes = reads.remotes().to_vec();
        self.remember(&input, reads);
        Ok(Cached {
            set,
            served: Served::Rendered,
            remotes,
        })
    }

    /// Removes on-disk entries not used for `min_age` (their files were
    /// written or last read from disk longer ago) that are not in memory
    /// either; returns how many files were removed. A removed entry costs a
    /// render after the next restart, nothing more.
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
            if ours && old && !self.in_memory(&path) && std::fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// Whether the entry stored at `path` is in memory, so in use.
    fn in_memory(&self, path: &Path) -> bool {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return false;
        };
        if let Some(key) = name.strip_suffix(".reads.json") {
            return lock(&self.reads).contains(key);
        }
        name.strip_suffix(".json")
            .is_some_and(|key| lock(&self.sets).contains(key))
    }

    /// The set stored under `key`, from memory or disk.
    fn lookup(&self, key: &str) -> Option<Cached> {
        if let Some(set) = lock(&self.sets).get(key) {
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Some(Cached {
                set,
                served: Served::Memory,
                remotes: Vec::new(),
            });
        }
        let set = Arc::new(self.load(key)?);
        self.disk_hits.fetch_add(1, Ordering::Relaxed);
        lock(&self.sets).put(key.to_owned(), Arc::clone(&set), self.capacity);
        Some(Cached {
            set,
            served: Served::Disk,
            remotes: Vec::new(),
        })
    }

    /// The read sets of the last renders of `input`, newest first.
    fn read_sets(&self, input: &str) -> Arc<Vec<ReadSet>> {
        if let Some(found) = lock(&self.reads).get(input) {
            return found;
        }
        let Some(found) = self.load_reads(input) else {
            return Arc::new(Vec::new());
        };
        let found = Arc::new(found);
        lock(&self.reads).put(input.to_owned(), Arc::clone(&found), self.read_capacity);
        found
    }

    /// Makes `reads` the newest read set of `input`.
    fn remember(&self, input: &str, reads: ReadSet) {
        let mut list: Vec<ReadSet> = self.read_sets(input).iter().cloned().collect();
        list.retain(|r| *r != reads);
        list.insert(0, reads);
        list.truncate(READ_SETS_PER_INPUT);
        if let Some(path) = self.reads_path(input) {
            // Read sets go to disk with the remotes they used: after a
            // restart a pinned commit is reused without reaching its remote,
            // a branch or tag with one ref listing, and a file with one
            // conditional request, as in memory.
            let body = list.iter().map(ReadSet::to_json).collect();
            let _ = write_atomic(&path, &Value::Array(body).to_string());
        }
        lock(&self.reads).put(input.to_owned(), Arc::new(list), self.read_capacity);
    }

    fn entry_path(&self, key: &str) -> Option<PathBuf> {
        self.disk.as_ref().map(|d| d.join(format!("{key}.json")))
    }

    fn reads_path(&self, input: &str) -> Option<PathBuf> {
        self.disk
            .as_ref()
            .map(|d| d.join(format!("{input}.reads.json")))
    }

    /// Reads an on-disk entry; anything unreadable or not matching its digest is a miss.
    fn load(&self, key: &str) -> Option<ObjectSet> {
        let path = self.entry_path(key)?;
        let text = std::fs::read_to_string(&path).ok()?;
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
        if Some(set.digest()) != entry.get("digest").and_then(Value::as_str) {
            return None;
        }
        // Used now: housekeeping measures age from the last use.
        touch(&path);
        Some(set)
    }

    /// Reads the read sets of `input` from disk; anything unreadable is none.
    fn load_reads(&self, input: &str) -> Option<Vec<ReadSet>> {
        let path = self.reads_path(input)?;
        let text = std::fs::read_to_string(&path).ok()?;
        let list: Value = serde_json::from_str(&text).ok()?;
        let list = list
            .as_array()?
            .iter()
            .map(ReadSet::from_json)
            .collect::<Option<Vec<_>>>()?;
        touch(&path);
        Some(list)
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
        write_atomic(&path, &body)
    }
}

/// Writes `body` to `path` through a temp file and a rename, mode 0600.
fn write_atomic(path: &Path, body: &str) -> Result<(), CacheError> {
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
        std::fs::rename(p, path)
    };
    write(&tmp).map_err(|source| CacheError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Marks the file at `path` as used now; a failure only makes it older.
fn touch(path: &Path) {
    let _ = std::fs::File::options()
        .append(true)
        .open(path)
        .and_then(|f| f.set_modified(std::time::SystemTime::now()));
}

/// The canonical root and `dir` relative to it, or `None` when `dir` is
/// not a directory inside the root.
fn scope(dir: &Path, opts: &RenderOptions) -> Option<(PathBuf, String)> {
    let given = if opts.root.as_os_str().is_empty() {
        dir
    } else {
        opts.root.as_path()
    };
    let root = paths::canonical(given).ok()?;
    if !dir.is_dir() || !paths::canonical(dir).ok()?.starts_with(&root) {
        return None;
    }
    let rel = relative_dir(dir, &opts.root, &root)?;
    Some((root, rel))
}

/// Names a sequence of parts unambiguously.
fn key_of(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex(&h.finalize())
}

/// The key of a render's input apart from files: the directory (relative
/// to the root) and the options.
fn input_key(rel: &str, opts: &RenderOptions) -> String {
    key_of(&[LAYOUT, rel, &opts.cache_key()])
}

/// The fingerprint of what a render read in the checkout at `root`, and the
/// remote resources it used at the revisions it used.
fn reads_key(reads: &ReadSet, root: &Path) -> String {
    let mut key = reads.fingerprint(root);
    for used in reads.remotes() {
        key.push_str(&format!("\0{}\0{}", used.url, used.revision));
    }
    key
}

/// Whether the remotes a render used still name what they named then.
fn remotes_unchanged(opts: &RenderOptions, reads: &ReadSet) -> bool {
    opts.remote.as_ref().is_some_and(|sources| {
        let max = opts.limits.max_input_bytes;
        crate::remote::unchanged(sources, max, reads.remotes(), reads.validators())
    })
}

/// The key of a rendered set: its input and the fingerprint of what it read.
fn entry_key(input: &str, fingerprint: &str) -> String {
    key_of(&[LAYOUT, input, fingerprint])
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
