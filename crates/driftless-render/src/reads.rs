//! What a render read: every path below the repository root that a renderer
//! read, listed or probed, recorded while it runs, and a fingerprint of what
//! those paths hold in any checkout.
//!
//! A render is a function of its options and of what the file system answers
//! for the paths it touches, so two checkouts whose answers agree for every
//! recorded path render alike, whatever else differs between them. The
//! fingerprint is what makes answers comparable: for each path, where it
//! leads (symlinks and `..` followed, relative to the root), and a file's
//! content, a directory's listing, or that nothing is there. A tool that
//! reads a directory whole by itself (helm a chart) records it as a tree:
//! every file and listing below it.

use std::collections::{BTreeMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::objects::hex;
use crate::paths::MAX_TREE_DEPTH;

/// How a render used a path, from the least to the most it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    /// Only what is there: where the path leads, and whether it is a file,
    /// a directory or nothing (a library search path).
    Kind,
    /// The path itself: a file's content, a directory's listing, or whether
    /// anything is there.
    Entry,
    /// Everything below a directory, read by a tool that walks it by itself.
    Tree,
}

impl Access {
    fn as_str(self) -> &'static str {
        match self {
            Access::Kind => "kind",
            Access::Entry => "entry",
            Access::Tree => "tree",
        }
    }
}

/// The paths one render read, relative to the repository root (`/`
/// separators, `..` kept as written, `.` for the root itself).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadSet {
    paths: BTreeMap<String, Access>,
    /// Remote resources the render fetched: what it read outside the
    /// checkout, which no fingerprint of the checkout covers.
    remotes: Vec<crate::RemoteUse>,
    /// The validators the HTTP(S) files among them were served with.
    validators: crate::remote::FileValidators,
    /// Whether the render decrypted a generator source: its set holds
    /// plaintext and is not cached.
    decrypted: bool,
    /// Whether the render took chart dependencies from Helm repositories:
    /// what they hold is outside the checkout, so the set is not cached.
    fetched_charts: bool,
}

impl ReadSet {
    /// True when the render decrypted a sops-encrypted generator source.
    pub fn decrypted(&self) -> bool {
        self.decrypted
    }

    /// True when the render took chart dependencies from Helm repositories.
    pub fn fetched_charts(&self) -> bool {
        self.fetched_charts
    }

    /// Every path with how it was used, sorted by path.
    pub fn paths(&self) -> impl Iterator<Item = (&str, Access)> {
        self.paths.iter().map(|(p, a)| (p.as_str(), *a))
    }

    /// The remote resources (Git bases, HTTP(S) files) the render used, in
    /// the order it fetched them; they key the render cache's entry with
    /// the fingerprint.
    pub fn remotes(&self) -> &[crate::RemoteUse] {
        &self.remotes
    }

    /// The validators the HTTP(S) files among the remotes were served
    /// with, by URL, for asking again conditionally.
    pub(crate) fn validators(&self) -> &crate::remote::FileValidators {
        &self.validators
    }

    /// How the render used `rel`, if it did.
    pub fn access(&self, rel: &str) -> Option<Access> {
        self.paths.get(rel).copied()
    }

    /// Number of paths.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// True when nothing was read.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Adds `rel`; a read of an entry covers its kind, and a tree read the
    /// directory itself.
    pub(crate) fn insert(&mut self, rel: String, access: Access) {
        let kept = self.paths.entry(rel).or_insert(access);
        *kept = (*kept).max(access);
    }

    /// `sha256:<hex>` over what every path holds in the checkout at `root`
    /// (canonical): equal fingerprints of one read set in two checkouts
    /// mean the render reads the same from both.
    pub fn fingerprint(&self, root: &Path) -> String {
        let mut h = Sha256::new();
        for (rel, access) in &self.paths {
            put(&mut h, &[rel.as_bytes(), access.as_str().as_bytes()]);
            hash_path(root, rel, *access, &mut h);
        }
        format!("sha256:{}", hex(&h.finalize()))
    }

    /// The set as JSON: each path with its access, and the remotes used.
    pub(crate) fn to_json(&self) -> Value {
        let paths: Map<String, Value> = self
            .paths
            .iter()
            .map(|(p, a)| (p.clone(), Value::from(a.as_str())))
            .collect();
        let remotes: Vec<Value> = self
            .remotes
            .iter()
            .map(|r| serde_json::json!({"url": r.url, "revision": r.revision}))
            .collect();
        let validators: Map<String, Value> = self
            .validators
            .iter()
            .map(|(url, v)| {
                let v = serde_json::json!({"etag": v.etag, "lastModified": v.last_modified});
                (url.clone(), v)
            })
            .collect();
        serde_json::json!({"paths": paths, "remotes": remotes, "validators": validators})
    }

    /// The set written by [`ReadSet::to_json`]; `None` when it is not one.
    pub(crate) fn from_json(value: &Value) -> Option<ReadSet> {
        let mut set = ReadSet::default();
        for (path, access) in value.get("paths")?.as_object()? {
            let access = match access.as_str()? {
                "kind" => Access::Kind,
                "entry" => Access::Entry,
                "tree" => Access::Tree,
                _ => return None,
            };
            set.insert(path.clone(), access);
        }
        for used in value.get("remotes")?.as_array()? {
            let text = |k: &str| used.get(k)?.as_str().map(str::to_owned);
            set.remotes.push(crate::RemoteUse {
                url: text("url")?,
                revision: text("revision")?,
            });
        }
        // Sets written before validators were kept have none.
        for (url, v) in value
            .get("validators")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
            let validators = driftless_source::download::Validators {
                etag: text("etag"),
                last_modified: text("lastModified"),
            };
            set.validators.insert(url.clone(), validators);
        }
        Some(set)
    }
}

/// Records the paths one render reads below a canonical root. Shared with
/// the kustomize build, which reports its reads through
/// [`driftless_kustomize::ReadObserver`].
#[derive(Debug)]
pub(crate) struct ReadLog {
    root: PathBuf,
    set: Mutex<ReadSet>,
}

impl ReadLog {
    /// A log of reads below `root` (canonical).
    pub(crate) fn new(root: &Path) -> ReadLog {
        ReadLog {
            root: root.to_path_buf(),
            set: Mutex::new(ReadSet::default()),
        }
    }

    /// `path` (absolute) was read or probed; paths outside the root are
    /// not part of the checkout and are left out.
    pub(crate) fn entry(&self, path: &Path) {
        self.record(path, Access::Entry);
    }

    /// Only what is at `path` (absolute) was looked at, not its content.
    pub(crate) fn kind(&self, path: &Path) {
        self.record(path, Access::Kind);
    }

    /// The tree below `dir` (absolute) was read whole.
    pub(crate) fn tree(&self, dir: &Path) {
        self.record(dir, Access::Tree);
    }

    /// `rel`, relative to the root, was read or probed.
    pub(crate) fn entry_relative(&self, rel: String) {
        self.lock().insert(rel, Access::Entry);
    }

    /// The render used these remote resources, its files served with
    /// these validators.
    pub(crate) fn remotes(
        &self,
        used: Vec<crate::RemoteUse>,
        validators: crate::remote::FileValidators,
    ) {
        let mut set = self.lock();
        set.remotes.extend(used);
        set.validators.extend(validators);
    }

    /// The render decrypted a generator source.
    pub(crate) fn decrypted(&self) {
        self.lock().decrypted = true;
    }

    /// The render took chart dependencies from Helm repositories.
    pub(crate) fn fetched_charts(&self) {
        self.lock().fetched_charts = true;
    }

    /// What was recorded so far.
    pub(crate) fn take(&self) -> ReadSet {
        std::mem::take(&mut *self.lock())
    }

    fn record(&self, path: &Path, access: Access) {
        if let Some(rel) = relative(&self.root, path) {
            self.lock().insert(rel, access);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReadSet> {
        // A panic while holding the lock leaves a consistent set.
        self.set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl driftless_kustomize::ReadObserver for ReadLog {
    fn entry(&self, path: &Path) {
        ReadLog::entry(self, path);
    }

    fn tree(&self, path: &Path) {
        ReadLog::tree(self, path);
    }
}

/// `path` relative to `root` with `/` separators (`.` for the root), or
/// `None` when it is not below the root as written.
pub(crate) fn relative(root: &Path, path: &Path) -> Option<String> {
    let rest = path.strip_prefix(root).ok()?;
    let parts: Vec<String> = rest
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.is_empty() {
        Some(".".to_owned())
    } else {
        Some(parts.join("/"))
    }
}

/// Hashes length-prefixed parts, so that no two sequences collide.
fn put(h: &mut Sha256, parts: &[&[u8]]) {
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
}

/// What `rel` holds in the checkout at `root`: where it leads, then its
/// content or listing (or the whole tree), or why nothing can be read.
fn hash_path(root: &Path, rel: &str, access: Access, h: &mut Sha256) {
    let path = root.join(rel);
    let real = match path.canonicalize() {
        Ok(real) => real,
        Err(e) => {
            // Nothing there, a dangling link, or a file used as a directory.
            match std::fs::read_link(&path) {
                Ok(target) => put(h, &[b"dangling", target.as_os_str().as_encoded_bytes()]),
                Err(_) => put(h, &[b"missing", format!("{:?}", e.kind()).as_bytes()]),
            }
            return;
        }
    };
    let Some(at) = relative(root, &real) else {
        put(h, &[b"outside"]);
        return;
    };
    put(h, &[b"at", at.as_bytes()]);
    match access {
        Access::Kind => hash_kind(&real, h),
        Access::Entry => hash_entry(&real, h),
        Access::Tree => hash_tree(root, &real, 0, &mut HashSet::new(), h),
    }
}

/// Whether the path is a file, a directory or something else.
fn hash_kind(real: &Path, h: &mut Sha256) {
    match std::fs::metadata(real) {
        Ok(meta) if meta.is_dir() => put(h, &[b"dir"]),
        Ok(meta) if meta.is_file() => put(h, &[b"file"]),
        Ok(_) => put(h, &[b"special"]),
        Err(e) => put(h, &[b"unreadable", format!("{:?}", e.kind()).as_bytes()]),
    }
}

/// A file's content or a directory's listing (names, kinds, link targets).
fn hash_entry(real: &Path, h: &mut Sha256) {
    match std::fs::metadata(real) {
        Ok(meta) if meta.is_dir() => match listing(real) {
            Ok(entries) => {
                put(h, &[b"dir"]);
                for (name, kind, target) in entries {
                    put(h, &[name.as_encoded_bytes(), kind, &target]);
                }
            }
            Err(e) => put(h, &[b"unlistable", format!("{:?}", e.kind()).as_bytes()]),
        },
        Ok(meta) if meta.is_file() => hash_file(real, h),
        Ok(_) => put(h, &[b"special"]),
        Err(e) => put(h, &[b"unreadable", format!("{:?}", e.kind()).as_bytes()]),
    }
}

fn hash_file(real: &Path, h: &mut Sha256) {
    match std::fs::read(real) {
        Ok(content) => {
            let digest = Sha256::digest(&content);
            put(h, &[b"file", &digest]);
        }
        Err(e) => put(h, &[b"unreadable", format!("{:?}", e.kind()).as_bytes()]),
    }
}

/// One entry of a directory listing: name, kind tag, and a link's target.
type Listed = (std::ffi::OsString, &'static [u8], Vec<u8>);

/// The entries of `dir` sorted by name.
fn listing(dir: &Path) -> std::io::Result<Vec<Listed>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let (tag, target): (&'static [u8], Vec<u8>) = if kind.is_symlink() {
            let target = std::fs::read_link(entry.path())?;
            (b"l", target.into_os_string().into_encoded_bytes())
        } else if kind.is_dir() {
            (b"d", Vec::new())
        } else if kind.is_file() {
            (b"f", Vec::new())
        } else {
            (b"o", Vec::new())
        };
        out.push((entry.file_name(), tag, target));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Every name, link target, file content and listing below `dir` (real,
/// inside `root`), following links as the tools do; each directory once.
fn hash_tree(root: &Path, dir: &Path, depth: usize, seen: &mut HashSet<PathBuf>, h: &mut Sha256) {
    if depth > MAX_TREE_DEPTH {
        put(h, &[b"too deep"]);
        return;
    }
    if !seen.insert(dir.to_path_buf()) {
        put(h, &[b"seen"]);
        return;
    }
    let entries = match listing(dir) {
        Ok(entries) => entries,
        Err(e) => {
            put(h, &[b"unlistable", format!("{:?}", e.kind()).as_bytes()]);
            return;
        }
    };
    put(h, &[b"dir", &(entries.len() as u64).to_le_bytes()]);
    for (name, kind, target) in entries {
        put(h, &[name.as_encoded_bytes(), kind, &target]);
        let path = dir.join(&name);
        let real = if kind == b"l" {
            match path.canonicalize() {
                Ok(real) if real.starts_with(root) => real,
                Ok(_) => {
                    put(h, &[b"outside"]);
                    continue;
                }
                Err(e) => {
                    put(h, &[b"dangling", format!("{:?}", e.kind()).as_bytes()]);
                    continue;
                }
            }
        } else {
            path
        };
        if real.is_dir() {
            hash_tree(root, &real, depth + 1, seen, h);
        } else if real.is_file() {
            hash_file(&real, h);
        }
    }
    put(h, &[b"end"]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn paths_are_kept_relative_to_the_root_and_a_tree_wins() {
        let log = ReadLog::new(Path::new("/repo"));
        log.entry(Path::new("/repo/apps/web/../base/kustomization.yaml"));
        log.entry(Path::new("/repo/./apps/web"));
        log.entry(Path::new("/repo"));
        log.entry(Path::new("/elsewhere/values.yaml"));
        log.entry(Path::new("/repo/charts/demo"));
        log.tree(Path::new("/repo/charts/demo"));
        log.entry(Path::new("/repo/charts/demo"));
        log.kind(Path::new("/repo/vendor"));
        log.kind(Path::new("/repo/apps/web"));
        let set = log.take();
        let paths: Vec<(&str, Access)> = set.paths().collect();
        assert_eq!(
            paths,
            vec![
                (".", Access::Entry),
                ("apps/web", Access::Entry),
                ("apps/web/../base/kustomization.yaml", Access::Entry),
                ("charts/demo", Access::Tree),
                ("vendor", Access::Kind),
            ]
        );
        assert_eq!(ReadSet::from_json(&set.to_json()), Some(set));
        assert!(log.take().is_empty(), "taken");
    }

    #[test]
    fn remotes_and_file_validators_survive_json() {
        let log = ReadLog::new(Path::new("/repo"));
        log.entry(Path::new("/repo/app/kustomization.yaml"));
        let file = "https://files.example.com/cm.yaml";
        let used = |url: &str, revision: &str| crate::RemoteUse {
            url: url.to_owned(),
            revision: revision.to_owned(),
        };
        let validators = driftless_source::download::Validators {
            etag: Some("\"v1\"".to_owned()),
            last_modified: None,
        };
        log.remotes(
            vec![
                used(file, "sha256:ab"),
                used("https://git.example.com/r//b?ref=main", "c0"),
            ],
            [(file.to_owned(), validators)].into_iter().collect(),
        );
        let set = log.take();
        let json = set.to_json();
        assert_eq!(ReadSet::from_json(&json), Some(set.clone()));
        // A set written before validators were kept reads without them.
        let mut older = json;
        older.as_object_mut().expect("object").remove("validators");
        let read = ReadSet::from_json(&older).expect("reads");
        assert_eq!(read.remotes(), set.remotes());
        assert!(read.validators().is_empty());
    }

    #[test]
    fn the_fingerprint_follows_only_the_recorded_paths() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical");
        write(&root, "app/a.yaml", "a");
        write(&root, "other/b.yaml", "b");
        let log = ReadLog::new(&root);
        log.entry(&root.join("app/a.yaml"));
        log.entry(&root.join("app/missing.yaml"));
        let set = log.take();
        let one = set.fingerprint(&root);
        assert_eq!(one, set.fingerprint(&root), "stable");
        write(&root, "other/b.yaml", "changed");
        assert_eq!(one, set.fingerprint(&root), "an unread file changed");
        write(&root, "app/a.yaml", "changed");
        let two = set.fingerprint(&root);
        assert_ne!(one, two, "a read file changed");
        write(&root, "app/missing.yaml", "now here");
        assert_ne!(two, set.fingerprint(&root), "a probed file appeared");
    }

    #[test]
    fn listings_trees_and_links_are_part_of_the_fingerprint() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical");
        write(&root, "app/a.yaml", "a");
        write(&root, "v1/x.yaml", "same");
        write(&root, "v2/x.yaml", "same");
        write(&root, "chart/templates/t.yaml", "t");
        std::os::unix::fs::symlink("v1", root.join("current")).expect("link");
        let log = ReadLog::new(&root);
        log.entry(&root.join("app"));
        log.entry(&root.join("current/x.yaml"));
        log.tree(&root.join("chart"));
        log.kind(&root.join("lib"));
        std::fs::create_dir(root.join("lib")).expect("mkdir");
        let set = log.take();
        let mut last = set.fingerprint(&root);
        let mut changed = |what: &str| {
            let now = set.fingerprint(&root);
            assert_ne!(last, now, "{what}");
            last = now;
        };
        write(&root, "app/b.yaml", "b");
        changed("a file added to a listed directory");
        std::fs::remove_file(root.join("current")).expect("unlink");
        std::os::unix::fs::symlink("v2", root.join("current")).expect("link");
        changed("a link on the way leads elsewhere, to the same content");
        write(&root, "chart/templates/deep/t2.yaml", "t2");
        changed("a file added deep in a tree");
        write(&root, "chart/templates/t.yaml", "t changed");
        changed("a file of a tree changed");
        std::os::unix::fs::symlink("/etc", root.join("chart/escape")).expect("link");
        changed("a link in a tree that leaves the root");
        std::fs::remove_dir(root.join("lib")).expect("rmdir");
        write(&root, "lib", "now a file");
        changed("a directory looked at became a file");
        std::fs::remove_file(root.join("lib")).expect("rm");
        write(&root, "lib/x.libsonnet", "{}");
        changed("a directory again");
        let same = set.fingerprint(&root);
        write(&root, "lib/z.libsonnet", "{}");
        assert_eq!(
            same,
            set.fingerprint(&root),
            "the kind of a directory does not cover its listing"
        );
        write(&root, "app/a.yaml", "other content");
        assert_eq!(
            same,
            set.fingerprint(&root),
            "a listing does not cover the files' content"
        );
    }

    #[test]
    fn a_tree_follows_links_inside_the_root() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical");
        write(&root, "chart/Chart.yaml", "name: c");
        write(&root, "common/_helpers.tpl", "one");
        std::os::unix::fs::symlink("../common", root.join("chart/helpers")).expect("link");
        let log = ReadLog::new(&root);
        log.tree(&root.join("chart"));
        let set = log.take();
        let before = set.fingerprint(&root);
        write(&root, "common/_helpers.tpl", "two");
        assert_ne!(before, set.fingerprint(&root));
    }
}
