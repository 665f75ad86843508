//! Reading trees and blobs of a cache repository: in process with gix, or
//! with the `git` binary when gix cannot open the repository or read an
//! object. Both give the same answers; gix saves a process per read and the
//! copying of every blob through a pipe.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use gix::objs::tree::EntryKind;

use crate::git::{Git, GitError};
use crate::refspec::RefSpec;
use crate::remote::RemoteRef;

/// Which implementation a [`crate::Fetcher`] prefers for fetching objects
/// and reading trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// gix (gitoxide) in process for smart HTTP(S), `git://` and local
    /// remotes and for reading trees; the `git` binary for SSH, for dumb
    /// HTTP servers and whenever gix fails.
    #[default]
    Gix,
    /// The `git` binary for everything.
    Git,
}

impl Backend {
    /// The backend the environment asks for: `DRIFTLESS_GIT_BACKEND=git`
    /// turns gix off, anything else (or nothing) keeps the default.
    pub fn from_env() -> Backend {
        match std::env::var("DRIFTLESS_GIT_BACKEND").as_deref() {
            Ok("git") => Backend::Git,
            _ => Backend::Gix,
        }
    }
}

/// What each backend did for a [`crate::Fetcher`] so far.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackendCounts {
    /// Object transfers done by gix.
    pub gix_transfers: u64,
    /// Object transfers done by `git fetch` (by choice or after gix failed).
    pub git_transfers: u64,
    /// Transfers gix attempted and handed over to git.
    pub gix_fallbacks: u64,
    /// Why gix handed the last of them over.
    pub last_fallback: Option<String>,
    /// Tree listings, blob reads and local ref listings done by gix.
    pub gix_reads: u64,
    /// Tree listings and blob reads done by git.
    pub git_reads: u64,
}

/// Counters behind [`BackendCounts`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) gix_transfers: AtomicU64,
    pub(crate) git_transfers: AtomicU64,
    pub(crate) gix_fallbacks: AtomicU64,
    last_fallback: std::sync::Mutex<Option<String>>,
    pub(crate) gix_reads: AtomicU64,
    pub(crate) git_reads: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Notes a transfer gix failed at and git takes over.
    pub(crate) fn fell_back(&self, reason: String) {
        Counters::bump(&self.gix_fallbacks);
        *crate::lock(&self.last_fallback) = Some(reason);
    }

    pub(crate) fn get(&self) -> BackendCounts {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BackendCounts {
            gix_transfers: read(&self.gix_transfers),
            git_transfers: read(&self.git_transfers),
            gix_fallbacks: read(&self.gix_fallbacks),
            last_fallback: crate::lock(&self.last_fallback).clone(),
            gix_reads: read(&self.gix_reads),
            git_reads: read(&self.git_reads),
        }
    }
}

/// One record of a recursive tree listing, as `git ls-tree -r --long` gives it.
pub(crate) struct Listed {
    /// Octal mode, e.g. `100644`, `120000`, `160000`.
    pub(crate) mode: String,
    /// Object id (a commit for gitlinks).
    pub(crate) id: String,
    /// Blob size in bytes, 0 for gitlinks.
    pub(crate) size: u64,
    /// Path from the listed tree.
    pub(crate) path: String,
}

/// Failure to list a tree.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// git failed.
    Git(GitError),
    /// git's listing could not be parsed.
    Stream,
}

/// The objects of one cache repository.
pub(crate) struct Objects<'a> {
    backend: Backend,
    git: Git,
    gix: Option<gix::Repository>,
    counters: &'a Counters,
}

impl<'a> Objects<'a> {
    /// Opens `repo`; with [`Backend::Git`], or when gix cannot open it, every
    /// read runs git.
    pub(crate) fn open(repo: &Path, backend: Backend, counters: &'a Counters) -> Objects<'a> {
        let gix = match backend {
            Backend::Git => None,
            Backend::Gix => open_gix(repo),
        };
        Objects {
            backend,
            git: Git::in_dir(repo),
            gix,
            counters,
        }
    }

    /// Another repository (a submodule's), read the same way.
    pub(crate) fn open_other(&self, repo: &Path) -> Objects<'a> {
        Objects::open(repo, self.backend, self.counters)
    }

    /// The git runner for this repository (for what only git reads).
    pub(crate) fn git(&self) -> &Git {
        &self.git
    }

    fn served_by_gix<T>(&self, value: Option<T>) -> Option<T> {
        if value.is_some() {
            Counters::bump(&self.counters.gix_reads);
        }
        value
    }

    pub(crate) fn served_by_git(&self) {
        Counters::bump(&self.counters.git_reads);
    }

    /// Id of the tree at `subpath` of `commit` (the root tree when empty),
    /// `None` when the commit is missing or the path is not a directory.
    pub(crate) fn tree(&self, commit: &str, subpath: &str) -> Option<String> {
        // Spelled as git spells paths in trees, or not found (gix would
        // normalise `a//b` and `a/./b`, git does not).
        if !subpath.is_empty()
            && subpath
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return None;
        }
        if let Some(found) = self.served_by_gix(self.gix.as_ref().and_then(|r| {
            let tree = gix_tree(r, commit, subpath);
            // A definite "no such path" needs no second opinion.
            tree.ok()
        })) {
            return found;
        }
        self.served_by_git();
        // `rev:path^{tree}` would read `^{tree}` as part of the path, so the
        // object type is checked separately.
        let spec = if subpath.is_empty() {
            format!("{commit}^{{tree}}")
        } else {
            format!("{commit}:{subpath}")
        };
        let git = &self.git;
        git.run(&["rev-parse", "--verify", "--quiet", &spec])
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| {
                git.run(&["cat-file", "-t", t])
                    .is_ok_and(|kind| kind.trim() == "tree")
            })
    }

    /// Every file, symlink and gitlink below `tree` (a tree id or
    /// `<commit>^{tree}`), in git's order.
    pub(crate) fn list(&self, tree: &str) -> Result<Vec<Listed>, ReadError> {
        if let Some(listed) =
            self.served_by_gix(self.gix.as_ref().and_then(|r| gix_list(r, tree).ok()))
        {
            return Ok(listed);
        }
        self.served_by_git();
        let listing = self
            .git
            .run_bytes(&["ls-tree", "-r", "-z", "--long", tree], None)
            .map_err(ReadError::Git)?;
        parse_ls_tree(&listing).ok_or(ReadError::Stream)
    }

    /// Contents of the blob `id`.
    pub(crate) fn blob(&self, id: &str) -> Result<Vec<u8>, GitError> {
        if let Some(data) = self.served_by_gix(self.gix.as_ref().and_then(|r| gix_blob(r, id))) {
            return Ok(data);
        }
        self.served_by_git();
        self.git.run_bytes(&["cat-file", "blob", id], None)
    }

    /// Contents of the blobs `ids`, in order, in one buffer with their ranges.
    pub(crate) fn blobs(&self, ids: &[&str]) -> Option<(Vec<u8>, Vec<std::ops::Range<usize>>)> {
        let repo = self.gix.as_ref()?;
        let mut data = Vec::new();
        let mut ranges = Vec::with_capacity(ids.len());
        let mut buf = Vec::new();
        for id in ids {
            let oid = gix::ObjectId::from_hex(id.as_bytes()).ok()?;
            let object = gix::prelude::FindExt::find_blob(&repo.objects, &oid, &mut buf).ok()?;
            let start = data.len();
            data.extend_from_slice(object.data);
            ranges.push(start..data.len());
        }
        Counters::bump(&self.counters.gix_reads);
        Some((data, ranges))
    }
}

/// Whether `repo` holds `id` as an object of `kind` (`commit`, `tag`),
/// answered by gix when it can.
pub(crate) fn has_object(
    repo: &Path,
    backend: Backend,
    id: &str,
    kind: &str,
) -> Result<bool, GitError> {
    if backend == Backend::Gix
        && let Some(r) = open_gix(repo)
        && let Ok(oid) = gix::ObjectId::from_hex(id.as_bytes())
    {
        match r.try_find_header(oid) {
            Ok(None) => return Ok(false),
            Ok(Some(header)) if header.kind().as_bytes() == kind.as_bytes() => return Ok(true),
            // Another kind may still peel to `kind` (a tag to its commit): git decides.
            _ => {}
        }
    }
    let spec = format!("{id}^{{{kind}}}");
    Git::in_dir(repo).succeeds(&["cat-file", "-e", &spec])
}

/// The refs `spec` asks about in the local repository `url` (a path or a
/// `file://` URL), read in process: what `git ls-remote` would list, with
/// annotated tags peeled. `None` when gix cannot read them; the caller then
/// runs `git ls-remote`, which also words the errors.
pub(crate) fn local_refs(url: &str, spec: &RefSpec) -> Option<Vec<RemoteRef>> {
    let path = url.strip_prefix("file://").unwrap_or(url);
    if !path.starts_with('/') {
        return None;
    }
    let repo = gix::open_opts(path, gix::open::Options::isolated()).ok()?;
    let listed = |name: String, target: gix::ObjectId| -> Option<RemoteRef> {
        let object = repo.find_object(target).ok()?;
        let peeled = match object.kind {
            gix::object::Kind::Tag => Some(object.peel_tags_to_end().ok()?.id.to_string()),
            _ => None,
        };
        Some(RemoteRef {
            name,
            target: target.to_string(),
            peeled,
        })
    };
    let of = |mut r: gix::Reference<'_>| -> Option<RemoteRef> {
        let name = r.name().as_bstr().to_string();
        let target = r.follow_to_object().ok()?.detach();
        listed(name, target)
    };
    let one = |name: String| -> Option<Vec<RemoteRef>> {
        match repo.try_find_reference(name.as_str()).ok()? {
            Some(r) if r.name().as_bstr() == name.as_str() => Some(vec![of(r)?]),
            _ => Some(Vec::new()),
        }
    };
    match spec {
        RefSpec::Branch(b) => one(format!("refs/heads/{b}")),
        RefSpec::Tag(t) => one(format!("refs/tags/{t}")),
        RefSpec::Name(n) => one(n.clone()),
        RefSpec::Semver(_) => repo
            .references()
            .ok()?
            .tags()
            .ok()?
            .map(|r| of(r.ok()?))
            .collect(),
        RefSpec::Commit(_) => {
            let mut refs: Vec<RemoteRef> = repo
                .references()
                .ok()?
                .all()
                .ok()?
                .map(|r| of(r.ok()?))
                .collect::<Option<_>>()?;
            if let Ok(head) = repo.head_id() {
                refs.insert(0, listed("HEAD".into(), head.detach())?);
            }
            Some(refs)
        }
    }
}

/// Whether every tree and blob of `commit` is in `repo` (what a shallow
/// transfer of it must have brought), checked in process with gix; `None`
/// when gix cannot tell or the commit itself is not there.
pub(crate) fn complete(repo: &Path, commit: &str) -> Option<bool> {
    let repo = open_gix(repo)?;
    tree_complete(&repo, gix::ObjectId::from_hex(commit.as_bytes()).ok()?)
}

/// Whether `repo` holds commit `id` with its whole tree: a transfer cut
/// short may have left the commit alone, which must not pass for fetched.
/// git (for [`Backend::Git`], or when gix cannot tell) checks the commit only.
pub(crate) fn has_commit(repo: &Path, backend: Backend, id: &str) -> Result<bool, GitError> {
    if backend == Backend::Gix
        && let Some(r) = open_gix(repo)
        && let Ok(oid) = gix::ObjectId::from_hex(id.as_bytes())
    {
        match r.try_find_header(oid) {
            Ok(None) => return Ok(false),
            Ok(Some(header)) if header.kind() == gix::object::Kind::Commit => {
                return Ok(tree_complete(&r, oid) != Some(false));
            }
            _ => {}
        }
    }
    has_object(repo, Backend::Git, id, "commit")
}

fn tree_complete(repo: &gix::Repository, commit: gix::ObjectId) -> Option<bool> {
    let commit = repo.find_object(commit).ok()?;
    let Ok(tree) = commit.peel_to_tree() else {
        return Some(false);
    };
    let mut recorder = gix::traverse::tree::Recorder::default();
    // A missing subtree fails the walk.
    if tree.traverse().breadthfirst(&mut recorder).is_err() {
        return Some(false);
    }
    Some(
        recorder
            .records
            .iter()
            .filter(|r| !r.mode.is_commit())
            .all(|r| repo.has_object(r.oid)),
    )
}

fn open_gix(repo: &Path) -> Option<gix::Repository> {
    // Isolated: no user or system configuration, as for the git runs.
    let mut repo = gix::open_opts(repo, gix::open::Options::isolated()).ok()?;
    // Blobs of a fetched pack are mostly deltas against each other.
    repo.object_cache_size_if_unset(16 * 1024 * 1024);
    Some(repo)
}

type GixResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn oid_of(spec: &str) -> GixResult<gix::ObjectId> {
    let hex = spec.strip_suffix("^{tree}").unwrap_or(spec);
    Ok(gix::ObjectId::from_hex(hex.as_bytes())?)
}

fn gix_tree(repo: &gix::Repository, commit: &str, subpath: &str) -> GixResult<Option<String>> {
    let root = repo.find_object(oid_of(commit)?)?.peel_to_tree()?;
    if subpath.is_empty() {
        return Ok(Some(root.id.to_string()));
    }
    Ok(root
        .lookup_entry_by_path(subpath)?
        .filter(|e| e.mode().is_tree())
        .map(|e| e.object_id().to_string()))
}

fn gix_list(repo: &gix::Repository, tree: &str) -> GixResult<Vec<Listed>> {
    let tree = repo.find_object(oid_of(tree)?)?.peel_to_tree()?;
    let mut recorder = gix::traverse::tree::Recorder::default();
    tree.traverse().breadthfirst(&mut recorder)?;
    let mut listed = Vec::with_capacity(recorder.records.len());
    for record in recorder.records {
        if record.mode.is_tree() {
            continue;
        }
        // The kind, not the raw mode: trees written by old or odd tools
        // hold modes like 100664 or 100775, which git reads as 100644/100755.
        let (mode, size) = match record.mode.kind() {
            EntryKind::Commit => ("160000", 0),
            kind => {
                let mode = match kind {
                    EntryKind::BlobExecutable => "100755",
                    EntryKind::Link => "120000",
                    _ => "100644",
                };
                (mode, repo.find_header(record.oid)?.size())
            }
        };
        listed.push(Listed {
            mode: mode.to_string(),
            id: record.oid.to_string(),
            size,
            path: String::from_utf8_lossy(&record.filepath).into_owned(),
        });
    }
    // Full paths in byte order are git's order for a recursive listing.
    listed.sort_unstable_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(listed)
}

fn gix_blob(repo: &gix::Repository, id: &str) -> Option<Vec<u8>> {
    let oid = gix::ObjectId::from_hex(id.as_bytes()).ok()?;
    Some(repo.find_blob(oid).ok()?.detach().data)
}

/// Records of a `git ls-tree -r -z --long` listing, `None` if it is garbled.
fn parse_ls_tree(listing: &[u8]) -> Option<Vec<Listed>> {
    let mut out = Vec::new();
    for record in listing.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let text = String::from_utf8_lossy(record);
        let (meta, path) = text.split_once('\t')?;
        let fields: Vec<&str> = meta.split_whitespace().collect();
        let [mode, _kind, id, size] = fields[..] else {
            return None;
        };
        out.push(Listed {
            mode: mode.to_string(),
            id: id.to_string(),
            size: size.parse().unwrap_or(0),
            path: path.to_string(),
        });
    }
    Some(out)
}
