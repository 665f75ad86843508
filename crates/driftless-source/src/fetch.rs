//! Fetching sources into a local cache of bare repositories keyed by URL.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::auth::{self, Auth, AuthError, Tls};
use crate::git::{Git, GitError};
use crate::gix_transfer::{self, Failure};
use crate::objects::{self, Backend, BackendCounts, Counters};
use crate::refspec::RefSpec;
use crate::remote::{self, RemoteError, Resolved};
use crate::revision::{Revision, RevisionError};
use crate::snapshot::Limits;
use crate::verify::{self, Verify, VerifyError};

/// Failure to fetch a source.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Listing or resolving refs failed.
    #[error("fetching {source}")]
    Remote {
        /// The remote URL.
        url: String,
        /// What went wrong.
        source: RemoteError,
    },
    /// Transferring objects failed (network drop, server error, missing commit).
    #[error("fetching {want} from {url}: {detail}")]
    Transfer {
        /// The remote URL.
        url: String,
        /// Ref or commit that was requested.
        want: String,
        /// What git reported.
        detail: String,
    },
    /// Credentials could not be prepared.
    #[error("fetching {url}: {source}")]
    Auth {
        /// The remote URL.
        url: String,
        /// What went wrong.
        source: AuthError,
    },
    /// The cache directory could not be prepared.
    #[error("cache directory {path}: {source}")]
    Cache {
        /// Path at fault.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// A local git operation on the cache failed.
    #[error("cache repository {path}: {source}")]
    Git {
        /// Cache repository.
        path: PathBuf,
        /// What git reported.
        source: GitError,
    },
    /// Reading commit metadata failed.
    #[error("fetching {url}: {source}")]
    Revision {
        /// The remote URL.
        url: String,
        /// What went wrong.
        source: RevisionError,
    },
    /// The revision failed signature verification and was not accepted.
    #[error("fetching {url}: {source}")]
    Verify {
        /// The remote URL.
        url: String,
        /// What went wrong.
        source: VerifyError,
    },
    /// A concurrent fetch of the same source failed; this caller shared its result.
    #[error("{message}")]
    Shared {
        /// The failure message of the fetch that ran.
        message: String,
    },
}

/// Default for [`SourceSpec::timeout`], as for the `timeout` of a GitSource.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Everything needed to fetch and export one Git source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    /// Remote URL: a local path, `file://`, `git://`, `http(s)://` or SSH.
    pub url: String,
    /// Which revision to follow.
    pub reference: RefSpec,
    /// Credentials for the remote.
    pub auth: Auth,
    /// TLS settings for HTTPS.
    pub tls: Tls,
    /// Signature policy; `None` accepts unsigned revisions.
    pub verify: Option<Verify>,
    /// Extra ignore patterns (gitignore syntax) applied to snapshots.
    pub ignore: Vec<String>,
    /// Size limits enforced when exporting snapshots.
    pub limits: Limits,
    /// Longest one remote operation (ref listing, one git transfer) may take.
    pub timeout: Duration,
}

impl Default for SourceSpec {
    fn default() -> Self {
        SourceSpec {
            url: String::new(),
            reference: RefSpec::default(),
            auth: Auth::default(),
            tls: Tls::default(),
            verify: None,
            ignore: Vec::new(),
            limits: Limits::default(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl SourceSpec {
    /// A spec following `reference` of `url` with no credentials.
    pub fn new(url: impl Into<String>, reference: RefSpec) -> Self {
        SourceSpec {
            url: url.into(),
            reference,
            ..SourceSpec::default()
        }
    }
}

impl SourceSpec {
    /// The spec with a password in the URL's user-info taken out of the URL
    /// (see [`auth::split_url_credentials`]); credentials given in `auth`
    /// win over the URL's. Every git run and cache key uses this form.
    pub fn without_url_password(&self) -> std::borrow::Cow<'_, SourceSpec> {
        let (url, from_url) = auth::split_url_credentials(&self.url);
        if url == self.url {
            return std::borrow::Cow::Borrowed(self);
        }
        let auth = match (&self.auth, from_url) {
            (Auth::None, Some(found)) => found,
            (given, _) => given.clone(),
        };
        std::borrow::Cow::Owned(SourceSpec {
            url,
            auth,
            ..self.clone()
        })
    }
}

type SharedResult = Result<Revision, String>;

/// Last result of a (url, ref) fetch, used to de-duplicate concurrent callers.
#[derive(Default)]
struct Flight {
    finished: Option<(Instant, SharedResult)>,
}

/// Fetches sources into a cache directory and exports snapshots from it.
pub struct Fetcher {
    cache_dir: PathBuf,
    flights: Mutex<HashMap<String, Arc<Mutex<Flight>>>>,
    /// Snapshots exported lately, by what was asked for; one export at a
    /// time per key, so that many Apps on a new commit share one export.
    pub(crate) exports: Mutex<HashMap<String, Arc<Mutex<Option<crate::Snapshot>>>>>,
    /// Which implementation fetches objects and reads trees.
    pub(crate) backend: Backend,
    /// What each implementation did.
    pub(crate) counters: Counters,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("cache_dir", &self.cache_dir)
            .finish()
    }
}

/// Short, stable, filesystem-safe key for a string (hex of SHA-256 prefix).
pub(crate) fn key_of(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

impl Fetcher {
    /// A fetcher keeping its repositories and snapshots under `cache_dir`,
    /// with gix preferred unless `DRIFTLESS_GIT_BACKEND=git` is set.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Fetcher::with_backend(cache_dir, Backend::from_env())
    }

    /// A fetcher using `backend` to fetch objects and read trees.
    pub fn with_backend(cache_dir: impl Into<PathBuf>, backend: Backend) -> Self {
        Fetcher {
            cache_dir: cache_dir.into(),
            flights: Mutex::new(HashMap::new()),
            exports: Mutex::new(HashMap::new()),
            backend,
            counters: Counters::default(),
        }
    }

    /// The implementation this fetcher prefers.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// How many transfers and reads each implementation did so far.
    pub fn backend_counts(&self) -> BackendCounts {
        self.counters.get()
    }

    /// The cache directory.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// Bare repository caching objects fetched from `url`.
    pub fn repo_dir(&self, url: &str) -> PathBuf {
        let url = auth::split_url_credentials(url).0;
        self.cache_dir.join("repos").join(key_of(&url))
    }

    pub(crate) fn scratch_dir(&self) -> Result<PathBuf, FetchError> {
        let dir = self.cache_dir.join("tmp");
        mkdir(&dir)?;
        Ok(dir)
    }

    /// Resolves `spec.reference`, fetches what is missing and returns the revision.
    ///
    /// A poll where nothing changed costs one ref advertisement. Concurrent
    /// calls for the same URL and ref share one fetch: a caller that had to
    /// wait for a fetch which finished after it arrived takes that result.
    pub fn fetch(&self, spec: &SourceSpec) -> Result<Revision, FetchError> {
        let arrived = Instant::now();
        let spec = &*spec.without_url_password();
        // Policy and credentials are part of the key: a remembered revision
        // was accepted under that policy, and a caller must not share a result
        // obtained with credentials other than its own.
        let key = format!(
            "{}\n{}\n{:?}\n{}",
            spec.url,
            spec.reference,
            spec.verify,
            key_of(&format!("{:?}{:?}", spec.auth, spec.tls))
        );
        let flight = {
            let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
            flights.entry(key).or_default().clone()
        };
        let mut slot = flight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((done, result)) = &slot.finished
            && *done >= arrived
        {
            return result
                .clone()
                .map_err(|message| FetchError::Shared { message });
        }
        let previous = match &slot.finished {
            Some((_, Ok(rev))) => Some(rev.clone()),
            _ => None,
        };
        let result = self.fetch_uncached(spec, previous.as_ref());
        let shared = match &result {
            Ok(rev) => Ok(rev.clone()),
            Err(e) => Err(e.to_string()),
        };
        slot.finished = Some((Instant::now(), shared));
        result
    }

    fn fetch_uncached(
        &self,
        spec: &SourceSpec,
        previous: Option<&Revision>,
    ) -> Result<Revision, FetchError> {
        let url = spec.url.as_str();
        // Errors and the cache show the URL without any password in it.
        let shown = auth::redact_url(url);
        let repo = self.ensure_repo(url, &shown)?;
        let scratch = self.scratch_dir()?;
        let remote_git = Git::in_dir(&repo).timeout(spec.timeout);
        let (git, _creds) =
            auth::apply(remote_git, url, &spec.auth, &spec.tls, &scratch).map_err(|source| {
                FetchError::Auth {
                    url: shown.clone(),
                    source,
                }
            })?;
        if let (RefSpec::Commit(sha), Some(prev)) = (&spec.reference, previous)
            && *sha == prev.sha
        {
            return Ok(prev.clone());
        }
        let resolved = self.resolve(&git, &repo, spec, &shown)?;
        // Unchanged since the last accepted fetch: the advertisement was the
        // only cost, no local git process runs. The pin ref (a loose file, as
        // the cache is never packed) shows the cache was not wiped meanwhile.
        if let Some(prev) = previous
            && resolved.commit.as_ref() == Some(&prev.sha)
            && resolved.tag_object == prev.tag_object
            && resolved.label == prev.reference
            && repo.join(pin_ref(&spec.reference)).is_file()
        {
            return Ok(prev.clone());
        }
        // One process at a time writes into a cache repository. A process
        // that waited here finds the objects the other one fetched and skips
        // the transfer.
        let lock = lock_repo(&repo)?;
        let rev = self.accept(&git, &repo, spec, &resolved, &shown, &scratch)?;
        drop(lock);
        Ok(rev)
    }

    /// Resolves the spec: from the cache for a known exact commit, else from
    /// the remote's ref advertisement.
    fn resolve(
        &self,
        git: &Git,
        repo: &Path,
        spec: &SourceSpec,
        shown: &str,
    ) -> Result<Resolved, FetchError> {
        if let RefSpec::Commit(sha) = &spec.reference
            && sha.len() == 40
            && self.has_commit(repo, sha)?
        {
            return Ok(Resolved {
                label: String::new(),
                want: sha.clone(),
                commit: Some(sha.clone()),
                tag_object: None,
            });
        }
        let remote_err = |source: RemoteError| FetchError::Remote {
            url: shown.to_string(),
            source: source.with_url(shown),
        };
        // A local repository's refs are read in process, without starting
        // `git ls-remote`.
        if self.backend == Backend::Gix
            && let Some(refs) = objects::local_refs(&spec.url, &spec.reference)
        {
            Counters::bump(&self.counters.gix_reads);
            return remote::resolve(shown, &spec.reference, &refs).map_err(remote_err);
        }
        let authorization = auth::http_authorization(&spec.auth);
        let refs = remote::list(
            git,
            &spec.url,
            &spec.reference,
            authorization.as_deref(),
            &spec.tls,
            spec.timeout,
        )
        .map_err(remote_err)?;
        remote::resolve(shown, &spec.reference, &refs).map_err(remote_err)
    }

    /// Fetches what is missing, reads and verifies the revision, and pins it.
    fn accept(
        &self,
        git: &Git,
        repo: &Path,
        spec: &SourceSpec,
        resolved: &Resolved,
        shown: &str,
        scratch: &Path,
    ) -> Result<Revision, FetchError> {
        let local_ref = pin_ref(&spec.reference);
        let have = match (&resolved.commit, &resolved.tag_object) {
            (Some(c), Some(t)) => self.has_commit(repo, c)? && self.has_object(repo, t, "tag")?,
            (Some(c), None) => self.has_commit(repo, c)?,
            _ => false,
        };
        if !have {
            self.transfer(git, repo, spec, shown, resolved, &local_ref)?;
        }
        let commit = resolved
            .commit
            .clone()
            .unwrap_or_else(|| resolved.want.clone());
        if !self.has_object(repo, &commit, "commit")? {
            return Err(FetchError::Transfer {
                url: shown.to_string(),
                want: resolved.want.clone(),
                detail: format!("commit {commit} is not in what the server sent"),
            });
        }
        let mut rev = Revision::read(repo, &resolved.label, &commit).map_err(|source| {
            FetchError::Revision {
                url: shown.to_string(),
                source,
            }
        })?;
        rev.tag_object = resolved.tag_object.clone();
        if let Some(policy) = &spec.verify {
            verify::verify(repo, &rev, policy, scratch).map_err(|source| FetchError::Verify {
                url: shown.to_string(),
                source,
            })?;
        }
        // Keep the accepted objects reachable from a ref so a later prune keeps them.
        let pin = resolved.tag_object.as_deref().unwrap_or(&commit);
        git_local(repo, &["update-ref", &local_ref, pin])?;
        Ok(rev)
    }

    fn transfer(
        &self,
        git: &Git,
        repo: &Path,
        spec: &SourceSpec,
        shown: &str,
        resolved: &Resolved,
        local_ref: &str,
    ) -> Result<(), FetchError> {
        let url = spec.url.as_str();
        let staging = format!("{local_ref}-incoming");
        let refspec = format!("+{}:{staging}", resolved.want);
        // This process holds the repository's lock: lock files and
        // temporary packs in it are leftovers of a process that died
        // mid-transfer, and would fail every later transfer.
        clear_leftovers(repo);
        let deadline = Instant::now() + spec.timeout;
        let timed_out = || FetchError::Transfer {
            url: shown.to_string(),
            want: resolved.want.clone(),
            detail: format!(
                "the transfer did not finish within {}s and was stopped",
                spec.timeout.as_secs_f64()
            ),
        };
        if self.backend == Backend::Gix {
            let authorization = auth::http_authorization(&spec.auth);
            let request = gix_transfer::Request {
                repo,
                url,
                refspec: &refspec,
                authorization: authorization.as_deref(),
                tls: &spec.tls,
                deadline,
            };
            match gix_transfer::fetch(&request) {
                // git checks that a pack brought everything the commit
                // needs; gix does not, and a tip without its tree would
                // look present to every later poll.
                Ok(())
                    if resolved
                        .commit
                        .as_deref()
                        .and_then(|c| objects::complete(repo, c))
                        == Some(false) =>
                {
                    let _ = git_local(repo, &["update-ref", "-d", &staging]);
                    self.counters
                        .fell_back("the pack lacked objects of the commit".into());
                }
                Ok(()) => {
                    Counters::bump(&self.counters.gix_transfers);
                    consolidate_packs(repo);
                    return Ok(());
                }
                Err(Failure::TimedOut) => return Err(timed_out()),
                // git serves what gix does not, and retries what gix failed at.
                Err(Failure::Unsupported) => {}
                Err(Failure::Failed(reason)) => {
                    self.counters.fell_back(reason.replace(url, shown));
                    clear_leftovers(repo);
                }
            }
        }
        Counters::bump(&self.counters.git_transfers);
        // Each git run gets what is left of the one limit, not a fresh one.
        let run = |args: &[&str]| {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(None);
            }
            git.clone().timeout(left).run(args).map_err(Some)
        };
        let fetch = |depth: &[&str]| {
            let mut args = vec!["fetch", "--no-tags", "--no-write-fetch-head", "--quiet"];
            args.extend_from_slice(depth);
            args.extend(["--", url, &refspec]);
            run(&args)
        };
        let mut shallow = fetch(&["--depth=1"]);
        if shallow.as_ref().is_err_and(|e| {
            e.as_ref()
                .is_some_and(|e| e.stderr().contains("does not support shallow"))
        }) {
            // Dumb HTTP servers cannot cut history; take it whole.
            shallow = fetch(&[]);
        }
        let err = match shallow {
            Ok(_) => return Ok(()),
            // Out of time: nothing else is tried.
            Err(None | Some(GitError::TimedOut { .. })) => return Err(timed_out()),
            Err(Some(e)) => e,
        };
        let detail = err.stderr().to_string();
        let by_commit = resolved.want.len() == 40 && !resolved.want.starts_with("refs/");
        if !by_commit || detail.to_ascii_lowercase().contains("authentication") {
            return Err(transfer_error(shown, &resolved.want, &err));
        }
        // Servers that refuse unadvertised commits: fetch full history of
        // branches and tags and look for the commit there.
        let mut args = vec!["fetch", "--no-write-fetch-head", "--quiet"];
        let is_shallow = Git::in_dir(repo)
            .run(&["rev-parse", "--is-shallow-repository"])
            .map(|s| s.trim() == "true")
            .unwrap_or(false);
        if is_shallow {
            args.push("--unshallow");
        }
        args.extend([
            "--",
            url,
            "+refs/heads/*:refs/driftless/all/heads/*",
            "+refs/tags/*:refs/driftless/all/tags/*",
        ]);
        match run(&args) {
            Ok(_) => Ok(()),
            Err(None | Some(GitError::TimedOut { .. })) => Err(timed_out()),
            Err(Some(e)) => Err(transfer_error(shown, &resolved.want, &e)),
        }
    }

    /// Closes the shared SSH connections that polls keep open for a while
    /// (call on shutdown); returns how many were closed.
    pub fn close_ssh_connections(&self) -> usize {
        let Ok(listing) = fs::read_dir(self.cache_dir.join("ssh")) else {
            return 0;
        };
        let mut closed = 0;
        for entry in listing.flatten() {
            let socket = entry.path();
            let status = std::process::Command::new("ssh")
                .arg("-o")
                .arg(format!("ControlPath={}", socket.display()))
                .args(["-O", "exit", "driftless-cache"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            if status.is_ok_and(|s| s.success()) {
                closed += 1;
            }
            // A socket whose master is gone is stale; ssh would recreate it.
            let _ = fs::remove_file(&socket);
        }
        closed
    }

    /// Removes cached repositories of URLs not in `keep` (sources that were
    /// deleted or changed URL) and leftovers of interrupted runs; returns what was removed.
    pub fn gc_repos(&self, keep: &[&str]) -> Result<Vec<PathBuf>, FetchError> {
        // Caches and remembered fetches are keyed by the URL without its password.
        let keep: Vec<String> = keep
            .iter()
            .map(|u| auth::split_url_credentials(u).0)
            .collect();
        let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
        {
            // Remembered revisions of dropped URLs would point into deleted caches.
            let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
            flights.retain(|key, _| keep.iter().any(|u| key.split('\n').next() == Some(u)));
        }
        let keep: Vec<String> = keep.iter().map(|u| key_of(u)).collect();
        let mut removed = Vec::new();
        for area in ["repos", "tmp"] {
            let dir = self.cache_dir.join(area);
            let Ok(listing) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in listing {
                let entry = entry.map_err(|source| FetchError::Cache {
                    path: dir.clone(),
                    source,
                })?;
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                let stem = name.strip_suffix(".lock").unwrap_or(&name);
                // Credential and key directories are named `<kind>-<pid>-<n>`;
                // those of live processes may be in use by a running fetch.
                let stale = match area {
                    "repos" => !keep.iter().any(|k| k == stem),
                    _ => name
                        .split('-')
                        .nth(1)
                        .and_then(|pid| pid.parse::<u32>().ok())
                        .is_none_or(|pid| !Path::new(&format!("/proc/{pid}")).exists()),
                };
                if !stale {
                    continue;
                }
                let result = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                result.map_err(|source| FetchError::Cache {
                    path: path.clone(),
                    source,
                })?;
                removed.push(path);
            }
        }
        Ok(removed)
    }

    fn ensure_repo(&self, url: &str, shown: &str) -> Result<PathBuf, FetchError> {
        let repo = self.repo_dir(url);
        if repo.join("HEAD").is_file() {
            return Ok(repo);
        }
        mkdir(&repo)?;
        // Another process may be creating the same repository right now.
        let _lock = lock_repo(&repo)?;
        if repo.join("HEAD").is_file() {
            return Ok(repo);
        }
        git_local(&repo, &["init", "--bare", "--quiet"])?;
        // Record the URL so a person looking into the cache knows what it is.
        fs::write(repo.join("description"), format!("{shown}\n")).map_err(|source| {
            FetchError::Cache {
                path: repo.join("description"),
                source,
            }
        })?;
        Ok(repo)
    }
}

/// Takes the advisory lock serialising writes into the cache repository
/// `repo`, across processes too; it is released when the file is dropped.
fn lock_repo(repo: &Path) -> Result<fs::File, FetchError> {
    let path = repo.with_extension("lock");
    let cache_err = |source| FetchError::Cache {
        path: path.clone(),
        source,
    };
    let file = fs::File::create(&path).map_err(cache_err)?;
    file.lock().map_err(cache_err)?;
    Ok(file)
}

/// Packs a cache repository may hold before they are merged into one, as
/// git's `gc.autoPackLimit`.
const PACK_LIMIT: usize = 50;

/// Merges the packs of `repo` into one once there are more than
/// [`PACK_LIMIT`]: every gix transfer adds a pack (git unpacks small ones
/// into loose objects instead), and each object lookup searches every pack.
/// Nothing is dropped, not even objects no ref reaches any more.
/// Best effort: a failed merge leaves the packs as they are, all usable.
fn consolidate_packs(repo: &Path) {
    let Ok(listing) = fs::read_dir(repo.join("objects/pack")) else {
        return;
    };
    let packs = listing
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
        .count();
    if packs > PACK_LIMIT {
        let _ = Git::in_dir(repo).timeout(REPACK_TIMEOUT).run(&[
            "repack",
            "-a",
            "-d",
            "-q",
            "--keep-unreachable",
        ]);
    }
}

/// Longest a pack merge may hold a cache repository's lock.
const REPACK_TIMEOUT: Duration = Duration::from_secs(300);

/// Removes lock files and temporary packs a process killed mid-transfer left
/// in `repo` (call with the repository's lock held). Best effort.
fn clear_leftovers(repo: &Path) {
    for name in [
        "shallow.lock",
        "packed-refs.lock",
        "HEAD.lock",
        "config.lock",
    ] {
        let _ = fs::remove_file(repo.join(name));
    }
    remove_lock_files(&repo.join("refs"));
    if let Ok(listing) = fs::read_dir(repo.join("objects/pack")) {
        for entry in listing.filter_map(Result::ok) {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // `.keep` marks a pack still being moved into place; both
            // tools name packs being written `tmp_…` (git) or `.tmp…` (gix).
            if name.ends_with(".keep") || name.starts_with("tmp_") || name.starts_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

fn remove_lock_files(dir: &Path) {
    let Ok(listing) = fs::read_dir(dir) else {
        return;
    };
    for entry in listing.filter_map(Result::ok) {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_lock_files(&path);
        } else if path.extension().is_some_and(|x| x == "lock") {
            let _ = fs::remove_file(&path);
        }
    }
}

/// The ref in the cache repository that keeps the accepted revision of `reference`.
fn pin_ref(reference: &RefSpec) -> String {
    format!("refs/driftless/{}", key_of(&reference.to_string()))
}

fn transfer_error(url: &str, want: &str, err: &GitError) -> FetchError {
    let detail = match err.stderr() {
        "" => err.to_string(),
        s => remote::condense(s),
    };
    FetchError::Transfer {
        url: url.to_string(),
        want: want.to_string(),
        detail,
    }
}

fn mkdir(dir: &Path) -> Result<(), FetchError> {
    fs::create_dir_all(dir).map_err(|source| FetchError::Cache {
        path: dir.to_path_buf(),
        source,
    })
}

fn git_local(repo: &Path, args: &[&str]) -> Result<String, FetchError> {
    Git::in_dir(repo).run(args).map_err(cache_error(repo))
}

/// A git failure on the cache repository `repo`.
fn cache_error(repo: &Path) -> impl FnOnce(GitError) -> FetchError + '_ {
    move |source| FetchError::Git {
        path: repo.to_path_buf(),
        source,
    }
}

impl Fetcher {
    /// Whether `repo` holds commit `id` with its whole tree.
    fn has_commit(&self, repo: &Path, id: &str) -> Result<bool, FetchError> {
        objects::has_commit(repo, self.backend, id).map_err(cache_error(repo))
    }

    fn has_object(&self, repo: &Path, id: &str, kind: &str) -> Result<bool, FetchError> {
        objects::has_object(repo, self.backend, id, kind).map_err(cache_error(repo))
    }
}
