//! Immutable, content-addressed exports of a tree at a commit.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::blobs::{Blobs, read_blobs};
use crate::git::GitError;
use crate::ignore_rules::IgnoreRules;
use crate::objects::{Backend, Counters, Listed, Objects, ReadError};
use crate::submodules::{self, Gitlink, Parent, Submodules};
use crate::symlinks::resolves_outside;

/// Name of the ignore files read from every directory of a snapshot.
pub const IGNORE_FILE: &str = ".driftlessignore";

/// Failure to export a snapshot; the previous snapshot is left untouched.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The sub-path does not exist at the commit or is not a directory.
    #[error("commit {commit}: path `{path}` is not a directory in the tree")]
    PathNotFound {
        /// Commit id.
        commit: String,
        /// Requested sub-path.
        path: String,
    },
    /// The commit is not in the cache repository (fetch it first).
    #[error("commit {commit} is not in cache repository {repo}; fetch the source first")]
    CommitNotCached {
        /// Commit id.
        commit: String,
        /// Cache repository searched.
        repo: PathBuf,
    },
    /// A file is larger than the configured limit.
    #[error("commit {commit}: file `{path}` is {size} bytes, over the limit of {limit} bytes")]
    FileTooLarge {
        /// Commit id.
        commit: String,
        /// Path of the file in the snapshot.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The snapshot would hold more files than allowed.
    #[error("commit {commit}: snapshot has {count} files, over the limit of {limit}")]
    TooManyFiles {
        /// Commit id.
        commit: String,
        /// Number of files.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// All files together are larger than allowed.
    #[error("commit {commit}: snapshot totals {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Commit id.
        commit: String,
        /// Total size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A tree entry has a name that cannot be written safely.
    #[error("commit {commit}: unsafe path `{path}` in tree")]
    UnsafePath {
        /// Commit id.
        commit: String,
        /// The entry path.
        path: String,
    },
    /// A submodule could not be exported.
    #[error("commit {commit}: submodule `{path}`: {reason}")]
    Submodule {
        /// Commit id of the snapshot.
        commit: String,
        /// Path of the submodule in the snapshot.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// An ignore pattern is invalid.
    #[error("ignore pattern `{pattern}`: {reason}")]
    Ignore {
        /// The pattern.
        pattern: String,
        /// Why it is invalid.
        reason: String,
    },
    /// Reading the tree from the cache failed.
    #[error("reading tree of {commit}: {source}")]
    Git {
        /// Commit id.
        commit: String,
        /// What git said.
        source: GitError,
    },
    /// `git cat-file` output did not match the requested objects.
    #[error("reading blobs of {commit}: unexpected object stream")]
    Stream {
        /// Commit id.
        commit: String,
    },
    /// Writing or removing snapshot files failed.
    #[error("snapshot directory {path}: {source}")]
    Io {
        /// Path at fault.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
}

/// Limits that keep a hostile or mistaken repository from filling the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest single file, in bytes.
    pub max_file_size: u64,
    /// Most files (symlinks included) in one snapshot.
    pub max_files: usize,
    /// Largest total of all file sizes, in bytes.
    pub max_total_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_size: 64 << 20,
            max_files: 100_000,
            max_total_size: 1 << 30,
        }
    }
}

/// A read-only directory holding the tree of a commit (or of a path in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Directory with the exported files.
    pub dir: PathBuf,
    /// Git tree id of the exported tree.
    pub tree: String,
    /// Commit the tree was taken from.
    pub commit: String,
    /// Sub-path of the commit that was exported, empty for the root.
    pub subpath: String,
}

pub(crate) enum Kind {
    File {
        executable: bool,
    },
    Symlink,
    /// A symlink that leaves the snapshot: written as a link to itself, so
    /// whatever follows it fails without reading anything outside.
    RefusedLink,
}

/// One file or symlink of a snapshot.
pub(crate) struct Entry {
    pub(crate) path: String,
    kind: Kind,
    pub(crate) blob: String,
    size: u64,
    /// Which repository holds the blob: 0 the source, others submodules.
    pub(crate) source: usize,
}

/// Exports `commit[:subpath]` from `repo` into `root/<tree-key>`, reusing an
/// existing export of the same tree and ignore patterns. Submodules are
/// exported in place when `submodules` says how to fetch them, else skipped.
#[allow(clippy::too_many_arguments)]
pub(crate) fn export(
    repo: &Path,
    commit: &str,
    subpath: &str,
    extra_ignore: &[String],
    limits: &Limits,
    root: &Path,
    submodules: Option<&Submodules<'_>>,
    reader: (Backend, &Counters),
) -> Result<Snapshot, SnapshotError> {
    let objects = Objects::open(repo, reader.0, reader.1);
    let subpath = subpath.trim_matches('/').to_string();
    let Some(tree) = objects.tree(commit, &subpath) else {
        if subpath.is_empty() {
            return Err(SnapshotError::CommitNotCached {
                commit: commit.to_string(),
                repo: repo.to_path_buf(),
            });
        }
        return Err(SnapshotError::PathNotFound {
            commit: commit.to_string(),
            path: subpath,
        });
    };
    let mut key = if extra_ignore.is_empty() {
        tree.clone()
    } else {
        format!("{tree}-{}", crate::fetch::key_of(&extra_ignore.join("\n")))
    };
    // A tree exported without its submodules is another snapshot.
    if submodules.is_none() {
        key.push_str("-nosub");
    }
    let dir = root.join(&key);
    let snapshot = Snapshot {
        dir: dir.clone(),
        tree: tree.clone(),
        commit: commit.to_string(),
        subpath,
    };
    if reuse(&dir) {
        return Ok(snapshot);
    }
    let listing = objects.list(&tree).map_err(read_err(commit))?;
    let (mut entries, gitlinks) = entries_from(commit, listing)?;
    let mut repos = vec![objects];
    if let Some(submodules) = submodules {
        let parent = Parent {
            source: 0,
            url: submodules.url,
            commit,
            tree_prefix: &snapshot.subpath,
            place_prefix: "",
        };
        submodules::expand(
            commit,
            &mut repos,
            &mut entries,
            &parent,
            gitlinks,
            submodules,
            0,
        )?;
    }
    let files = entries
        .iter()
        .map(|e| (e.path.as_str(), e.blob.as_str(), &repos[e.source]));
    let rules = IgnoreRules::load(commit, files, extra_ignore)?;
    entries.retain(|e| !rules.is_ignored(&e.path));
    check_limits(commit, &entries, limits)?;
    // Files unchanged since an earlier export are hard-linked from it rather
    // than read and written again: a commit touching one App's directory
    // costs little more than that directory.
    let base = earlier_export(root, &key, &repos[0]);
    let (mut fresh, linked): (Vec<Entry>, Vec<Entry>) = match &base {
        Some(base) => entries.into_iter().partition(|e| !base.has_same(e)),
        None => (entries, Vec::new()),
    };
    // Blobs are read one repository at a time.
    fresh.sort_by_key(|e| e.source);
    let blobs = read_blobs(&repos, commit, &fresh)?;
    refuse_escaping_links(&mut fresh, &blobs);
    let files = Files {
        fresh: &fresh,
        blobs: &blobs,
        linked: &linked,
        base: base.as_ref().map(|b| b.dir.as_path()),
    };
    match write_tree(root, &dir, &files) {
        Ok(()) => {}
        // The earlier export went away (garbage-collected) while linking:
        // write everything from the repository instead.
        Err(_) if !linked.is_empty() => {
            let mut all: Vec<Entry> = fresh.into_iter().chain(linked).collect();
            all.sort_by_key(|e| e.source);
            let blobs = read_blobs(&repos, commit, &all)?;
            let files = Files {
                fresh: &all,
                blobs: &blobs,
                linked: &[],
                base: None,
            };
            write_tree(root, &dir, &files)?;
        }
        Err(e) => return Err(e),
    }
    Ok(snapshot)
}

/// An earlier export of the same repository, and its files' blobs by path.
struct Base {
    dir: PathBuf,
    /// Path → (executable, blob id) of every regular file.
    files: HashMap<String, (bool, String)>,
}

impl Base {
    /// Whether `e` is a regular file of the source repository that the
    /// earlier export holds with the same mode and content.
    fn has_same(&self, e: &Entry) -> bool {
        let Kind::File { executable } = e.kind else {
            return false;
        };
        e.source == 0
            && self
                .files
                .get(&e.path)
                .is_some_and(|(x, blob)| *x == executable && *blob == e.blob)
    }
}

/// The most recently used export under `root` with the same ignore patterns
/// as `key` whose tree `git` holds (snapshots of all sources share `root`).
fn earlier_export(root: &Path, key: &str, objects: &Objects<'_>) -> Option<Base> {
    let suffix = key.split_once('-').map(|(_, s)| s);
    let mut candidates: Vec<(SystemTime, String)> = fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_owned();
            let (tree, ignore) = match name.split_once('-') {
                Some((tree, ignore)) => (tree, Some(ignore)),
                None => (name.as_str(), None),
            };
            let usable = !name.starts_with('.')
                && name != key
                && ignore == suffix
                && tree.bytes().all(|b| b.is_ascii_hexdigit());
            let modified = entry.metadata().ok()?.modified().ok()?;
            usable.then_some((modified, name))
        })
        .collect();
    candidates.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
    // A few tries: the newest exports may be of other sources.
    for (_, name) in candidates.into_iter().take(4) {
        let tree = name.split('-').next().unwrap_or(&name);
        let Ok(listing) = objects.list(tree) else {
            continue;
        };
        let Ok((entries, _)) = entries_from(tree, listing) else {
            continue;
        };
        let files = entries
            .into_iter()
            .filter_map(|e| match e.kind {
                Kind::File { executable } => Some((e.path, (executable, e.blob))),
                Kind::Symlink | Kind::RefusedLink => None,
            })
            .collect();
        return Some(Base {
            dir: root.join(&name),
            files,
        });
    }
    None
}

/// Maps a storage failure while listing `commit`'s tree to a snapshot error.
pub(crate) fn read_err(commit: &str) -> impl Fn(ReadError) -> SnapshotError + '_ {
    move |e| match e {
        ReadError::Git(source) => SnapshotError::Git {
            commit: commit.to_string(),
            source,
        },
        ReadError::Stream => SnapshotError::Stream {
            commit: commit.to_string(),
        },
    }
}

/// Files and symlinks of a recursive tree listing, and its submodules.
pub(crate) fn entries_from(
    commit: &str,
    listing: Vec<Listed>,
) -> Result<(Vec<Entry>, Vec<Gitlink>), SnapshotError> {
    let mut entries = Vec::new();
    let mut gitlinks = Vec::new();
    for Listed {
        mode,
        id: blob,
        size,
        path,
    } in listing
    {
        // git refuses to check these out too: they could escape the directory
        // or plant a `.git` that tools reading the snapshot would obey.
        let unsafe_path = path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c.eq_ignore_ascii_case(".git"));
        if unsafe_path || path.contains('\\') {
            return Err(SnapshotError::UnsafePath {
                commit: commit.to_string(),
                path,
            });
        }
        let kind = match mode.as_str() {
            "100755" => Kind::File { executable: true },
            "100644" | "100664" => Kind::File { executable: false },
            "120000" => Kind::Symlink,
            // Submodule content lives in another repository.
            "160000" => {
                gitlinks.push(Gitlink { path, commit: blob });
                continue;
            }
            _ => continue,
        };
        entries.push(Entry {
            path,
            kind,
            blob,
            size,
            source: 0,
        });
    }
    Ok((entries, gitlinks))
}

fn check_limits(commit: &str, entries: &[Entry], limits: &Limits) -> Result<(), SnapshotError> {
    if entries.len() > limits.max_files {
        return Err(SnapshotError::TooManyFiles {
            commit: commit.to_string(),
            count: entries.len(),
            limit: limits.max_files,
        });
    }
    let mut total = 0u64;
    for e in entries {
        if e.size > limits.max_file_size {
            return Err(SnapshotError::FileTooLarge {
                commit: commit.to_string(),
                path: e.path.clone(),
                size: e.size,
                limit: limits.max_file_size,
            });
        }
        total += e.size;
    }
    if total > limits.max_total_size {
        return Err(SnapshotError::TooLarge {
            commit: commit.to_string(),
            size: total,
            limit: limits.max_total_size,
        });
    }
    Ok(())
}

/// Marks the symlinks that, resolved inside the snapshot, leave it. They do
/// not fail the export: only a render that reads through one fails, and it
/// names the link, so one bad link does not block every App of the source.
fn refuse_escaping_links(entries: &mut [Entry], blobs: &Blobs) {
    let links: HashMap<&str, String> = entries
        .iter()
        .zip(blobs.iter())
        .filter(|(e, _)| matches!(e.kind, Kind::Symlink))
        .map(|(e, b)| (e.path.as_str(), String::from_utf8_lossy(b).into_owned()))
        .collect();
    let escaping: Vec<bool> = entries
        .iter()
        .map(|e| {
            links
                .get(e.path.as_str())
                .is_some_and(|target| resolves_outside(&e.path, target, &links))
        })
        .collect();
    for (e, escapes) in entries.iter_mut().zip(escaping) {
        if escapes {
            e.kind = Kind::RefusedLink;
        }
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a new export consists of: files written from blobs, and files
/// hard-linked from an earlier export.
struct Files<'a> {
    fresh: &'a [Entry],
    blobs: &'a Blobs,
    linked: &'a [Entry],
    base: Option<&'a Path>,
}

fn write_tree(root: &Path, dir: &Path, files: &Files<'_>) -> Result<(), SnapshotError> {
    fs::create_dir_all(root).map_err(io_err(root))?;
    let staging = root.join(format!(
        ".incoming-{}-{}",
        std::process::id(),
        crate::fetch::key_of(&format!("{dir:?}{:?}", SystemTime::now()))
    ));
    fs::create_dir(&staging).map_err(io_err(&staging))?;
    let result = write_files(&staging, files).and_then(|()| seal(&staging));
    if let Err(e) = result {
        let _ = remove_tree(&staging);
        return Err(e);
    }
    if let Err(e) = fs::rename(&staging, dir) {
        let _ = remove_tree(&staging);
        // Another writer exported the same tree first; theirs is identical.
        if !dir.is_dir() {
            return Err(io_err(dir)(e));
        }
    }
    Ok(())
}

fn write_files(staging: &Path, files: &Files<'_>) -> Result<(), SnapshotError> {
    // Directories first, once each, so file writes can run in parallel.
    let mut dirs: Vec<&str> = files
        .fresh
        .iter()
        .chain(files.linked)
        .filter_map(|e| e.path.rsplit_once('/').map(|(d, _)| d))
        .collect();
    dirs.sort_unstable();
    dirs.dedup();
    for d in dirs {
        let path = staging.join(d);
        fs::create_dir_all(&path).map_err(io_err(&path))?;
    }
    if let Some(base) = files.base {
        for e in files.linked {
            let path = staging.join(&e.path);
            fs::hard_link(base.join(&e.path), &path).map_err(io_err(&path))?;
        }
    }
    let items: Vec<(&Entry, &[u8])> = files.fresh.iter().zip(files.blobs.iter()).collect();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let chunk = items.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || write_part(staging, part)))
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    })
}

fn write_part(staging: &Path, items: &[(&Entry, &[u8])]) -> Result<(), SnapshotError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    for (e, blob) in items {
        let path = staging.join(&e.path);
        match e.kind {
            Kind::Symlink => {
                let target = String::from_utf8_lossy(blob).into_owned();
                std::os::unix::fs::symlink(&target, &path).map_err(io_err(&path))?;
            }
            Kind::RefusedLink => {
                let own_name = e.path.rsplit('/').next().unwrap_or(&e.path);
                std::os::unix::fs::symlink(own_name, &path).map_err(io_err(&path))?;
            }
            Kind::File { executable } => {
                // Created read-only: the open descriptor may still write.
                let mode = if executable { 0o555 } else { 0o444 };
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(&path)
                    .map_err(io_err(&path))?;
                file.write_all(blob).map_err(io_err(&path))?;
            }
        }
    }
    Ok(())
}

/// Makes every directory read-only, deepest first.
fn seal(dir: &Path) -> Result<(), SnapshotError> {
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        if entry.file_type().map_err(io_err(dir))?.is_dir() {
            seal(&entry.path())?;
        }
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o555)).map_err(io_err(dir))
}

/// Whether an earlier export at `dir` is still there; marks it as used.
pub(crate) fn reuse(dir: &Path) -> bool {
    let there = dir.is_dir();
    if there {
        touch(dir);
    }
    there
}

fn touch(dir: &Path) {
    // Refreshing the time keeps a snapshot in use out of age-based GC; failure
    // only makes it eligible earlier, and it is re-exported on demand.
    if let Ok(f) = fs::File::open(dir) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// Deletes a snapshot tree, restoring write permission first.
pub fn remove_tree(dir: &Path) -> Result<(), SnapshotError> {
    let meta = fs::symlink_metadata(dir).map_err(io_err(dir))?;
    if meta.is_dir() {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(io_err(dir))?;
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            if entry.file_type().map_err(io_err(dir))?.is_dir() {
                remove_tree(&entry.path())?;
            }
        }
    }
    fs::remove_dir_all(dir).map_err(io_err(dir))
}

/// Removes snapshots under `root` that are not in `keep` and were not used for `min_age`.
pub fn gc(
    root: &Path,
    keep: &[&Snapshot],
    min_age: Duration,
) -> Result<Vec<PathBuf>, SnapshotError> {
    let mut removed = Vec::new();
    let Ok(listing) = fs::read_dir(root) else {
        return Ok(removed);
    };
    let now = SystemTime::now();
    for entry in listing {
        let entry = entry.map_err(io_err(root))?;
        let path = entry.path();
        if keep.iter().any(|s| s.dir == path) {
            continue;
        }
        let modified = entry.metadata().and_then(|m| m.modified()).unwrap_or(now);
        let age = now.duration_since(modified).unwrap_or_default();
        // A staging directory may belong to an export still running.
        let staging = entry
            .file_name()
            .to_string_lossy()
            .starts_with(".incoming-");
        let min = if staging {
            min_age.max(Duration::from_secs(3600))
        } else {
            min_age
        };
        if age >= min {
            remove_tree(&path)?;
            removed.push(path);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dangerous_tree_paths_are_refused() {
        let listed = |path: &str| {
            vec![Listed {
                mode: "100644".into(),
                id: "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391".into(),
                size: 0,
                path: path.into(),
            }]
        };
        for path in ["a/../b", ".git/config", "x/.GIT/hooks/pre-commit", "a//b"] {
            let err = entries_from("c0ffee", listed(path)).err();
            assert!(
                matches!(err, Some(SnapshotError::UnsafePath { .. })),
                "{path} was accepted"
            );
        }
        assert_eq!(
            entries_from("c0ffee", listed("dir/.gitignore"))
                .map(|(e, _)| e.len())
                .ok(),
            Some(1)
        );
    }
}
