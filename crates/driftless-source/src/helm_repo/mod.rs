//! Helm chart repositories: over HTTP(S), the `index.yaml`, polled with one
//! conditional request, and chart archives downloaded once, verified by the
//! digest the index gives and cached on disk by that digest; in OCI
//! registries (`oci://`), each chart's tags as its versions and the chart
//! layer of its manifest, cached by the same digest.
//!
//! A repository's last good index (or tag lists) is kept on disk with the
//! validators it was served with (`ETag`, `Last-Modified`), so a repository
//! that is down, even after a restart, still resolves charts from what was
//! last fetched.

mod charts;
mod dependencies;
mod index;
mod lock;
mod oci;
mod registry_logins;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub use dependencies::{ChartFile, ChartRepositories, Dependency, DependencyError, read_chart};
pub use index::{ChartVersion, Constraint, ConstraintError, Index, IndexError};
pub use lock::{Lock, hash_req, read_lock};
pub use registry_logins::{RegistryLoginsError, helm_registry_config, registry_login};

use crate::auth::{self, Auth, Tls};
use crate::download::{self, Conditional, DownloadError, Validators};

/// Largest `index.yaml` read (the YAML reader's own limit).
const MAX_INDEX_BYTES: u64 = driftless_yaml::MAX_INPUT_BYTES as u64;
/// Largest chart archive read.
const MAX_CHART_BYTES: u64 = 64 * 1024 * 1024;

/// Failure to reach a repository or to use what it served.
#[derive(Debug, thiserror::Error)]
pub enum HelmRepoError {
    /// A URL that is neither HTTP(S) nor `oci://`.
    #[error("url `{url}`: a Helm repository URL must start with http://, https:// or oci://")]
    Scheme {
        /// The URL given, without any password.
        url: String,
    },
    /// An `oci://` URL that is not a registry with a repository path.
    #[error("url `{url}`: {detail}")]
    OciUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The OCI registry could not be reached or refused a request.
    #[error("Helm repository {url}: chart {name}: {source}")]
    Registry {
        /// The repository URL.
        url: String,
        /// The chart.
        name: String,
        /// What failed, with the request's URL.
        source: Box<crate::oci::OciError>,
    },
    /// An OCI manifest that is not a Helm chart's.
    #[error(
        "{reference}: not a Helm chart: {part} media type `{found}`, a chart's is `{expected}`"
    )]
    NotAChart {
        /// The manifest, `oci://registry/repository:tag@digest`.
        reference: String,
        /// `config` or `layer`.
        part: &'static str,
        /// The media type found (layers: all of them, or `none`).
        found: String,
        /// The media type of a Helm chart's.
        expected: &'static str,
    },
    /// The request failed (refused, timed out, TLS).
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// The server answered with an error status.
    #[error("GET {url}: HTTP {status}")]
    Status {
        /// The URL, without any password.
        url: String,
        /// The status.
        status: u16,
    },
    /// The index is not usable.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The version constraint is not valid.
    #[error(transparent)]
    Constraint(#[from] ConstraintError),
    /// No index was ever fetched, so no chart can be chosen.
    #[error("Helm repository {url}: no index fetched yet")]
    NoIndex {
        /// The repository URL, without any password.
        url: String,
    },
    /// The repository has no such chart, or no version the constraint allows.
    #[error(
        "Helm repository {url}: no version of chart {name} matches `{constraint}` ({count} versions listed)"
    )]
    NoMatch {
        /// The repository URL, without any password.
        url: String,
        /// The chart.
        name: String,
        /// The constraint.
        constraint: String,
        /// How many versions of the chart the index lists.
        count: usize,
    },
    /// The archive is not the one the index describes.
    #[error(
        "chart {name} {version} from {url}: its digest sha256:{found} does not match sha256:{expected} in the index; refused"
    )]
    Digest {
        /// The chart.
        name: String,
        /// Its version.
        version: String,
        /// Where it was downloaded from, without any password.
        url: String,
        /// The digest in the index.
        expected: String,
        /// The digest of what was served.
        found: String,
    },
    /// The index gives no digest or no URL for the chart.
    #[error(
        "chart {name} {version} in {url}: the index gives no {missing}; an unverifiable chart is refused"
    )]
    Unverifiable {
        /// The chart.
        name: String,
        /// Its version.
        version: String,
        /// The repository URL, without any password.
        url: String,
        /// `digest` or `URL`.
        missing: &'static str,
    },
    /// The `helm registry login` credentials could not be read.
    #[error(transparent)]
    RegistryLogins(#[from] RegistryLoginsError),
    /// The on-disk cache could not be written.
    #[error("writing {path}: {source}")]
    Cache {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Where a repository is and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelmRepoSpec {
    /// The repository's base URL: HTTP(S), whose index is `URL/index.yaml`,
    /// or `oci://host[:port]/path`, whose chart `NAME` is the OCI repository
    /// `path/NAME`.
    pub url: String,
    /// Credentials, sent to the repository's own host only.
    pub auth: Auth,
    /// TLS settings (a CA bundle).
    pub tls: Tls,
    /// Bound on each request, body included.
    pub timeout: Duration,
    /// Plain HTTP to an `oci://` registry (Helm's `--plain-http`); set by
    /// [`HelmRepoSpec::new`] for a loopback host, where nothing crosses a
    /// network. HTTP(S) repositories follow their URL's scheme.
    pub plain_http: bool,
}

impl HelmRepoSpec {
    /// A spec for `url` (`http://`, `https://` or `oci://`) without
    /// credentials; refuses other schemes and malformed `oci://` URLs.
    pub fn new(url: &str) -> Result<HelmRepoSpec, HelmRepoError> {
        let lower = url.to_ascii_lowercase();
        let mut spec = HelmRepoSpec {
            url: url.trim_end_matches('/').to_string(),
            auth: Auth::None,
            tls: Tls::default(),
            timeout: Duration::from_secs(60),
            plain_http: false,
        };
        if lower.starts_with("oci://") {
            // The scheme in lower case; `lower` shows these bytes are ASCII.
            spec.url = format!("oci://{}", url[6..].trim_end_matches('/'));
            spec.plain_http = oci::check_url(&spec.url)?;
            return Ok(spec);
        }
        if !lower.starts_with("http://") && !lower.starts_with("https://") {
            return Err(HelmRepoError::Scheme {
                url: auth::redact_url(url),
            });
        }
        Ok(spec)
    }

    /// Whether the repository is an OCI registry (`oci://`).
    pub fn is_oci(&self) -> bool {
        self.url.starts_with("oci://")
    }

    /// The registry `host[:port]` of an `oci://` repository.
    pub fn oci_host(&self) -> Option<&str> {
        let rest = self.url.strip_prefix("oci://")?;
        rest.split('/').next()
    }

    fn index_url(&self) -> String {
        format!("{}/index.yaml", self.url)
    }
}

/// Outcome of one poll of a repository's index (or of an OCI registry's
/// tag lists).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexChange {
    /// A new index (or the first): the SHA-256 of its text (of the tag
    /// lists, for an OCI registry).
    Changed(String),
    /// The index is as before.
    Unchanged,
}

/// The last good index of a repository and what it was served with.
#[derive(Clone, Debug)]
struct Fetched {
    index: Arc<Index>,
    digest: String,
    validators: Validators,
}

/// One chart repository with its on-disk cache.
#[derive(Debug)]
pub struct ChartRepository {
    spec: HelmRepoSpec,
    dir: PathBuf,
    charts: PathBuf,
    last: Mutex<Option<Fetched>>,
    /// When the index was last polled, successfully or not.
    polled: Mutex<Option<Instant>>,
    /// The charts' tags when the repository is an OCI registry.
    registry: Option<oci::RegistryCharts>,
}

impl ChartRepository {
    /// The repository of `spec`, cached under `cache_dir` (shared by all
    /// repositories: charts are kept by digest); the index last stored there
    /// is the last good one until a poll brings another.
    pub fn new(cache_dir: &Path, spec: HelmRepoSpec) -> ChartRepository {
        let key = hex(&Sha256::digest(auth::redact_url(&spec.url).as_bytes()));
        let dir = cache_dir.join("helm").join("repos").join(&key[..32]);
        let (last, registry) = if spec.is_oci() {
            (None, Some(oci::RegistryCharts::new(&dir)))
        } else {
            (load(&dir, &spec), None)
        };
        ChartRepository {
            spec,
            charts: cache_dir.join("helm").join("charts"),
            dir,
            last: Mutex::new(last),
            polled: Mutex::default(),
            registry,
        }
    }

    /// Where the repository is and how it is reached.
    pub fn spec(&self) -> &HelmRepoSpec {
        &self.spec
    }

    /// The repository URL, without any password.
    pub fn url(&self) -> String {
        auth::redact_url(&self.spec.url)
    }

    /// Fetches the index unless it is unchanged: one request, conditional on
    /// the last good index. On failure the last good index stays in use.
    ///
    /// An OCI registry has no index: this lists the tags of each chart
    /// already resolved from it (one request a chart); a failure keeps the
    /// last good tags.
    pub fn refresh(&self) -> Result<IndexChange, HelmRepoError> {
        *crate::lock(&self.polled) = Some(Instant::now());
        if let Some(registry) = &self.registry {
            return registry.refresh(&self.spec);
        }
        let cached = crate::lock(&self.last)
            .as_ref()
            .map(|f| f.validators.clone());
        let url = self.spec.index_url();
        let answer = download::get_if_changed(
            &url,
            &self.spec.auth,
            &self.spec.tls,
            self.spec.timeout,
            MAX_INDEX_BYTES,
            &cached.unwrap_or_default(),
        )?;
        let (body, validators) = match answer {
            Conditional::NotModified => return Ok(IndexChange::Unchanged),
            Conditional::Status(status) => {
                return Err(HelmRepoError::Status {
                    url: auth::redact_url(&url),
                    status,
                });
            }
            Conditional::Modified(body, validators) => (body, validators),
        };
        let digest = hex(&Sha256::digest(&body));
        let mut last = crate::lock(&self.last);
        if let Some(known) = last.as_mut().filter(|f| f.digest == digest) {
            known.validators = validators;
            return Ok(IndexChange::Unchanged);
        }
        let text = String::from_utf8_lossy(&body);
        let index = Index::parse(&text, &auth::redact_url(&url))?;
        store(&self.dir, &body, &validators)?;
        *last = Some(Fetched {
            index: Arc::new(index),
            digest: digest.clone(),
            validators,
        });
        Ok(IndexChange::Changed(digest))
    }

    /// Polls as [`ChartRepository::refresh`] does unless the last poll
    /// (failed or not) is less than `max_age` old; `None` when it did not poll.
    pub fn refresh_if_older(
        &self,
        max_age: Duration,
    ) -> Result<Option<IndexChange>, HelmRepoError> {
        let recent = crate::lock(&self.polled).is_some_and(|at| at.elapsed() < max_age);
        if recent {
            return Ok(None);
        }
        self.refresh().map(Some)
    }

    /// The last good index, if any was ever fetched; for an OCI registry,
    /// the tags of the charts listed so far as their versions.
    pub fn index(&self) -> Option<Arc<Index>> {
        if let Some(registry) = &self.registry {
            return registry.index(&self.spec);
        }
        crate::lock(&self.last).as_ref().map(|f| f.index.clone())
    }

    /// The highest version of chart `name` that `constraint` allows in the
    /// last good index.
    ///
    /// From an OCI registry, the chart's tags are listed first when they
    /// never were, and the chosen tag's manifest is read (once after each
    /// listing; the last one read while the registry is down) to give the
    /// chart layer's digest and the manifest's.
    pub fn resolve(&self, name: &str, constraint: &str) -> Result<ChartVersion, HelmRepoError> {
        if let Some(registry) = &self.registry {
            let parsed = Constraint::parse(constraint)?;
            return registry.resolve(&self.spec, name, constraint, &parsed);
        }
        let index = self
            .index()
            .ok_or_else(|| HelmRepoError::NoIndex { url: self.url() })?;
        let parsed = Constraint::parse(constraint)?;
        index
            .select(name, &parsed)
            .cloned()
            .ok_or_else(|| HelmRepoError::NoMatch {
                url: self.url(),
                name: name.to_string(),
                constraint: constraint.to_string(),
                count: index.entries.get(name).map_or(0, Vec::len),
            })
    }

    /// The archive of `chart` on disk: downloaded the first time, verified
    /// against the index's digest, then served from the cache.
    pub fn chart(&self, chart: &ChartVersion) -> Result<PathBuf, HelmRepoError> {
        charts::archive(self, chart)
    }
}

/// Reads the index and validators stored in `dir`, if any.
fn load(dir: &Path, spec: &HelmRepoSpec) -> Option<Fetched> {
    let body = std::fs::read(dir.join("index.yaml")).ok()?;
    let meta = std::fs::read_to_string(dir.join("validators")).unwrap_or_default();
    let mut lines = meta
        .lines()
        .map(|l| Some(l.to_string()).filter(|l| !l.is_empty()));
    let validators = Validators {
        etag: lines.next().flatten(),
        last_modified: lines.next().flatten(),
    };
    let index = Index::parse(
        &String::from_utf8_lossy(&body),
        &auth::redact_url(&spec.index_url()),
    )
    .ok()?;
    Some(Fetched {
        index: Arc::new(index),
        digest: hex(&Sha256::digest(&body)),
        validators,
    })
}

/// Stores an index and its validators in `dir`, each file replaced whole.
fn store(dir: &Path, body: &[u8], validators: &Validators) -> Result<(), HelmRepoError> {
    let meta = format!(
        "{}\n{}\n",
        validators.etag.as_deref().unwrap_or_default(),
        validators.last_modified.as_deref().unwrap_or_default()
    );
    // The index first: validators beside an older index would hide a change.
    let _ = std::fs::remove_file(dir.join("validators"));
    write_whole(dir, "index.yaml", body)?;
    write_whole(dir, "validators", meta.as_bytes()).map(drop)
}

/// Writes `name` in `dir` through a temporary file renamed over it.
pub(crate) fn write_whole(dir: &Path, name: &str, body: &[u8]) -> Result<PathBuf, HelmRepoError> {
    use std::io::Write;
    let cache = |path: &Path| {
        let path = path.to_path_buf();
        move |source| HelmRepoError::Cache { path, source }
    };
    std::fs::create_dir_all(dir).map_err(cache(dir))?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(cache(dir))?;
    file.write_all(body).map_err(cache(file.path()))?;
    let path = dir.join(name);
    file.persist(&path).map_err(|e| HelmRepoError::Cache {
        path: path.clone(),
        source: e.error,
    })?;
    Ok(path)
}

/// Lower-case hexadecimal of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
