//! Remote kustomize resources fetched through `driftless-source`: Git bases
//! shallow-fetched at their ref into the shared source cache and read from
//! a read-only snapshot of that commit, HTTP(S) files downloaded within the
//! render's byte limit. Each render counts and records what it fetched.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use driftless_kustomize::RepoSpec;
use driftless_kustomize::remote::{FetchFailure, HttpAnswer, RemoteResolver, RemoteTree};
use driftless_source::download::{self, Conditional, Validators};
use driftless_source::fetch::FetchError;
use driftless_source::remote::RemoteError;
use driftless_source::{Auth, Fetcher, RefSpec, Revision, SourceSpec, Tls};
use sha2::{Digest, Sha256};

use crate::objects::hex;

/// Remote resources one render may fetch by default (Git bases and files,
/// nested ones included).
pub const DEFAULT_MAX_REMOTES: usize = 16;

/// How renders fetch remote kustomize resources; without it
/// (`RenderOptions::remote` is `None`) they are refused.
#[derive(Clone)]
pub struct RemoteSources {
    /// The source cache Git bases are fetched into.
    pub fetcher: Arc<Fetcher>,
    /// Credentials offered to remotes on a matching host.
    pub credentials: Vec<HostCredentials>,
    /// Remote resources one render may fetch.
    pub max_remotes: usize,
}

impl RemoteSources {
    /// Remote resources fetched into `fetcher`'s cache, without credentials.
    pub fn new(fetcher: Arc<Fetcher>) -> RemoteSources {
        RemoteSources {
            fetcher,
            credentials: Vec::new(),
            max_remotes: DEFAULT_MAX_REMOTES,
        }
    }
}

impl std::fmt::Debug for RemoteSources {
    // Credentials stay out of logs and cache keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSources")
            .field("cache", &self.fetcher.cache_dir())
            .field("credential_hosts", &self.hosts())
            .field("max_remotes", &self.max_remotes)
            .finish()
    }
}

impl RemoteSources {
    fn hosts(&self) -> Vec<&str> {
        self.credentials.iter().map(|c| c.host.as_str()).collect()
    }
}

/// Credentials for one host (an App's GitSource: its URL's host, secret and CA bundle).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostCredentials {
    /// The host name, without scheme, user or port.
    pub host: String,
    /// The credentials; SSH keys go only to SSH URLs, tokens only to HTTP(S).
    pub auth: Auth,
    /// TLS settings for HTTPS.
    pub tls: Tls,
}

/// A remote resource a render used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteUse {
    /// The entry as written in the kustomization.
    pub url: String,
    /// The commit of a Git base; `sha256:<hex>` of an HTTP(S) file's body.
    pub revision: String,
}

/// The resolver of one render: fetches, counts and records.
#[derive(Debug)]
pub(crate) struct Resolver {
    sources: RemoteSources,
    max_file_bytes: u64,
    fetched: AtomicUsize,
    used: Mutex<Vec<RemoteUse>>,
    /// Bodies of the HTTP(S) files fetched so far: a file a build reads
    /// twice (a CRD file, an OpenAPI schema) is fetched and counted once.
    bodies: Mutex<std::collections::HashMap<String, Vec<u8>>>,
    /// What the servers of those files said to ask again conditionally.
    validators: Mutex<FileValidators>,
}

/// The validators (`ETag`, `Last-Modified`) HTTP(S) files were served
/// with, by URL: asking again with them costs one request without a body
/// while a file is unchanged.
pub(crate) type FileValidators = std::collections::BTreeMap<String, Validators>;

impl Resolver {
    pub(crate) fn new(sources: RemoteSources, max_file_bytes: u64) -> Resolver {
        Resolver {
            sources,
            max_file_bytes,
            fetched: AtomicUsize::new(0),
            used: Mutex::new(Vec::new()),
            bodies: Mutex::default(),
            validators: Mutex::default(),
        }
    }

    /// The validators of the files fetched so far.
    pub(crate) fn validators(&self) -> FileValidators {
        self.validators
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// What the render used so far, in the order it was fetched.
    pub(crate) fn used(&self) -> Vec<RemoteUse> {
        self.used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn count(&self) -> Result<(), FetchFailure> {
        let n = self.fetched.fetch_add(1, Ordering::Relaxed) + 1;
        let limit = self.sources.max_remotes;
        if n > limit {
            return Err(format!("more than {limit} remote resources in one render").into());
        }
        Ok(())
    }

    fn record(&self, url: &str, revision: String) {
        self.used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(RemoteUse {
                url: url.to_owned(),
                revision,
            });
    }

    /// The credentials offered to `url` on `host`.
    fn credentials(&self, host: &str, ssh: bool) -> (Auth, Tls) {
        let found = self
            .sources
            .credentials
            .iter()
            .find(|c| !host.is_empty() && c.host.eq_ignore_ascii_case(host));
        let Some(c) = found else {
            return (Auth::None, Tls::default());
        };
        let auth = match (&c.auth, ssh) {
            (Auth::Ssh { .. }, true) | (Auth::Basic { .. } | Auth::Bearer { .. }, false) => {
                c.auth.clone()
            }
            _ => Auth::None,
        };
        (auth, c.tls.clone())
    }
}

impl Resolver {
    /// Fetches the ref of `spec` (a ref listing when the cache has it) and
    /// returns the source and the commit it points at now.
    fn resolve(&self, spec: &RepoSpec) -> Result<(SourceSpec, Revision), FetchFailure> {
        self.count()?;
        let url = spec.clone_url();
        let (auth, tls) = self.credentials(url_host(&url), is_ssh(&url));
        let mut source = SourceSpec {
            url,
            auth,
            tls,
            timeout: spec.timeout,
            ..SourceSpec::default()
        };
        let mut not_found = None;
        for reference in ref_candidates(spec.reference.as_deref()) {
            source.reference = reference;
            match self.sources.fetcher.fetch(&source) {
                Ok(found) => return Ok((source, found)),
                Err(e) if ref_not_found(&e) => not_found = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        Err(not_found.map_or_else(|| "no ref to fetch".into(), Into::into))
    }

    /// Whether `used` still names what it named: a pinned commit always
    /// does; a branch or tag is fetched again (a ref listing while the
    /// source cache has its commit); a file is asked for again, conditional
    /// on the validators it was served with when there are some (one
    /// request answered without a body while unchanged).
    fn unchanged(&self, used: &RemoteUse, validators: Option<&Validators>) -> bool {
        if let Some(digest) = used.revision.strip_prefix("sha256:") {
            let Some(validators) = validators else {
                return match self.http(&used.url) {
                    Ok(HttpAnswer::Body(body)) => hex(&Sha256::digest(&body)) == digest,
                    _ => false,
                };
            };
            if self.count().is_err() {
                return false;
            }
            let (auth, tls) = self.credentials(url_host(&used.url), false);
            let timeout = driftless_kustomize::remote::DEFAULT_TIMEOUT;
            return match download::get_if_changed(
                &used.url,
                &auth,
                &tls,
                timeout,
                self.max_file_bytes,
                validators,
            ) {
                Ok(Conditional::NotModified) => true,
                // A server that ignores the condition sends the file again.
                Ok(Conditional::Modified(body, _)) => hex(&Sha256::digest(&body)) == digest,
                Ok(Conditional::Status(_)) | Err(_) => false,
            };
        }
        if pinned(used) {
            return true;
        }
        let Ok(spec) = RepoSpec::parse(&used.url) else {
            return false;
        };
        self.resolve(&spec)
            .is_ok_and(|(_, found)| found.sha == used.revision)
    }
}

/// Whether every remote a render used still names what it named then (see
/// [`Resolver`]), its files asked for again with `validators`; a remote
/// that cannot be reached counts as changed.
pub(crate) fn unchanged(
    sources: &RemoteSources,
    max_file_bytes: u64,
    used: &[RemoteUse],
    validators: &FileValidators,
) -> bool {
    let resolver = Resolver::new(sources.clone(), max_file_bytes);
    used.iter()
        .all(|u| resolver.unchanged(u, validators.get(&u.url)))
}

/// Whether `used` is a Git base whose URL names the very commit it used:
/// what it reads can never change, so nothing needs fetching to know it.
pub(crate) fn pinned(used: &RemoteUse) -> bool {
    RepoSpec::parse(&used.url).is_ok_and(|spec| {
        spec.reference
            .as_deref()
            .is_some_and(|r| r.eq_ignore_ascii_case(&used.revision))
    })
}

impl RemoteResolver for Resolver {
    fn git(&self, spec: &RepoSpec) -> Result<RemoteTree, FetchFailure> {
        let (source, revision) = self.resolve(spec)?;
        let fetcher = &self.sources.fetcher;
        // kustomize clones submodules unless the URL says `submodules=false`.
        let snapshot = match spec.submodules {
            true => fetcher.snapshot(&source, &revision, "")?,
            false => fetcher.snapshot_without_submodules(&source, &revision, "")?,
        };
        self.record(&spec.raw, revision.sha.clone());
        Ok(RemoteTree {
            dir: snapshot.dir,
            commit: revision.sha,
        })
    }

    fn http(&self, url: &str) -> Result<HttpAnswer, FetchFailure> {
        let bodies = || self.bodies.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(body) = bodies().get(url) {
            return Ok(HttpAnswer::Body(body.clone()));
        }
        self.count()?;
        let (auth, tls) = self.credentials(url_host(url), false);
        let timeout = driftless_kustomize::remote::DEFAULT_TIMEOUT;
        let unconditional = Validators::default();
        match download::get_if_changed(
            url,
            &auth,
            &tls,
            timeout,
            self.max_file_bytes,
            &unconditional,
        )? {
            Conditional::Modified(body, validators) => {
                self.record(url, format!("sha256:{}", hex(&Sha256::digest(&body))));
                bodies().insert(url.to_owned(), body.clone());
                if validators.etag.is_some() || validators.last_modified.is_some() {
                    self.validators
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(url.to_owned(), validators);
                }
                Ok(HttpAnswer::Body(body))
            }
            // Not asked conditionally: a 304 is a status like any other.
            Conditional::NotModified => Ok(HttpAnswer::Status(304)),
            Conditional::Status(code) => Ok(HttpAnswer::Status(code)),
        }
    }
}

/// The refs tried for a kustomize `ref`, in git's order of preference: a
/// full commit id, a full ref name, else a tag, then a branch of that name;
/// no ref is the remote's HEAD.
fn ref_candidates(reference: Option<&str>) -> Vec<RefSpec> {
    match reference {
        None => vec![RefSpec::Name("HEAD".into())],
        Some(r) if r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit()) => {
            vec![RefSpec::Commit(r.to_ascii_lowercase())]
        }
        Some(r) if r.starts_with("refs/") => vec![RefSpec::Name(r.into())],
        Some(r) => vec![RefSpec::Tag(r.into()), RefSpec::Branch(r.into())],
    }
}

fn ref_not_found(e: &FetchError) -> bool {
    match e {
        FetchError::Remote {
            source: RemoteError::RefNotFound { .. },
            ..
        } => true,
        FetchError::Shared { message } => message.ends_with("not found"),
        _ => false,
    }
}

/// Whether git reaches `url` over SSH (`ssh://` or scp-like `user@host:path`).
fn is_ssh(url: &str) -> bool {
    match url.split_once("://") {
        Some((scheme, _)) => scheme.eq_ignore_ascii_case("ssh"),
        None => url.contains(':'),
    }
}

/// The host name of a remote URL (`scheme://[user@]host[:port]/…` or
/// scp-like `[user@]host:path`), without user or port; empty for a local path.
pub fn url_host(url: &str) -> &str {
    let authority = match url.split_once("://") {
        Some((_, rest)) => rest.split(['/', '?', '#']).next().unwrap_or(""),
        None => match url.split_once(':') {
            Some((before, _)) if !before.contains('/') => before,
            _ => return "",
        },
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    }
}

impl HostCredentials {
    /// The credentials of a source at `url`, offered to remotes on its host.
    pub fn for_url(url: &str, auth: Auth, tls: Tls) -> HostCredentials {
        HostCredentials {
            host: url_host(url).to_owned(),
            auth,
            tls,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{RefSpec, is_ssh, ref_candidates, url_host};

    #[test]
    fn kustomize_refs_become_source_refs() {
        assert_eq!(ref_candidates(None), [RefSpec::Name("HEAD".into())]);
        let sha = "A".repeat(40);
        assert_eq!(
            ref_candidates(Some(&sha)),
            [RefSpec::Commit("a".repeat(40))]
        );
        assert_eq!(
            ref_candidates(Some("refs/pull/7/head")),
            [RefSpec::Name("refs/pull/7/head".into())]
        );
        assert_eq!(
            ref_candidates(Some("v1")),
            [RefSpec::Tag("v1".into()), RefSpec::Branch("v1".into())]
        );
    }

    #[test]
    fn ssh_urls_and_hosts() {
        assert!(is_ssh("git@example.com:org/repo"));
        assert!(is_ssh("ssh://git@example.com/org/repo"));
        assert!(!is_ssh("https://example.com/org/repo"));
        assert!(!is_ssh("file:///srv/repo"));
        assert_eq!(
            url_host("https://u:p@Files.example.com:8443/a.yaml?x"),
            "Files.example.com"
        );
        assert_eq!(url_host("http://127.0.0.1/a.yaml"), "127.0.0.1");
        assert_eq!(url_host("git@github.com:org/repo"), "github.com");
        assert_eq!(url_host("ssh://git@[::1]:2222/r"), "::1");
        assert_eq!(url_host("file:///srv/r"), "");
        assert_eq!(url_host("/srv/repo"), "");
        assert_eq!(url_host("./a:b/c"), "");
    }
}
