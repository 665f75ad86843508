//! Charts in OCI registries as Helm 3 stores them (`helm push`): chart
//! `NAME` of the repository `oci://host/path` is the OCI repository
//! `path/NAME`, its versions are that repository's tags (Helm writes a
//! version's `+` as `_`), and its archive is the manifest's one layer of
//! the chart media type.
//!
//! A registry has no index and no conditional request for tags: a poll
//! lists the tags of each chart asked for so far. The tag lists and the
//! digests of the manifests read are kept on disk, so a registry that is
//! down, even after a restart, still resolves the charts already cached.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::{
    ChartVersion, Constraint, HelmRepoError, HelmRepoSpec, Index, IndexChange, MAX_CHART_BYTES,
    hex, write_whole,
};
use crate::auth;
use crate::oci::artifact::ImageManifest;
use crate::oci::client::Manifest;
use crate::oci::reference::check_digest;
use crate::oci::{OciError, Options, Reference, Registry};

/// The config media type of a Helm chart's manifest.
const CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
/// The media type of the layer that is the chart archive.
const CHART_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// The manifest media type a chart is read from.
const MANIFEST_MEDIA_TYPE: &str = crate::oci::artifact::MANIFEST_MEDIA_TYPE;
/// The file in a repository's cache directory holding what was listed.
const LISTED_FILE: &str = "oci-tags.json";

/// Checks an `oci://host[:port][/path]` repository URL; true when its host
/// is loopback, where plain HTTP crosses no network.
pub(super) fn check_url(url: &str) -> Result<bool, HelmRepoError> {
    // A chart name completes the URL into a reference of one chart.
    let reference = Reference::parse(&format!("{url}/chart")).map_err(|e| {
        let detail = match e {
            OciError::Reference { detail, .. } => detail,
            other => other.to_string(),
        };
        HelmRepoError::OciUrl {
            url: auth::redact_url(url),
            detail,
        }
    })?;
    Ok(loopback(&reference.registry))
}

/// Whether the registry `host[:port]` is this machine.
fn loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => registry.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The manifest read for one tag of a chart.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct ChartManifest {
    /// The manifest's digest, `sha256:...`.
    manifest: String,
    /// The chart layer's digest, `sha256:...`.
    layer: String,
}

/// What the registry last listed and served, as kept on disk.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Listed {
    /// The tags of each chart listed so far, sorted.
    charts: BTreeMap<String, Vec<String>>,
    /// The manifest last read for each tag of each chart.
    manifests: BTreeMap<String, BTreeMap<String, ChartManifest>>,
}

/// The charts of one `oci://` repository: their tags, manifests read, and
/// the registry client (made on first use, keeping its token).
pub(super) struct RegistryCharts {
    dir: PathBuf,
    listed: Mutex<Listed>,
    /// `(chart, tag)` whose manifest was read since the chart's tags were
    /// last listed: a tag pushed again is read anew after the next poll.
    fresh: Mutex<BTreeSet<(String, String)>>,
    client: Mutex<Option<Arc<Registry>>>,
}

impl std::fmt::Debug for RegistryCharts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryCharts")
            .field("dir", &self.dir)
            .field("listed", &self.listed)
            .finish_non_exhaustive()
    }
}

impl RegistryCharts {
    /// The charts of the repository cached in `dir`, with what was listed
    /// there last.
    pub(super) fn new(dir: &Path) -> RegistryCharts {
        let listed = std::fs::read(dir.join(LISTED_FILE))
            .ok()
            .and_then(|body| serde_json::from_slice(&body).ok())
            .unwrap_or_default();
        RegistryCharts {
            dir: dir.to_path_buf(),
            listed: Mutex::new(listed),
            fresh: Mutex::default(),
            client: Mutex::default(),
        }
    }

    /// Lists the tags of every chart listed before (one request each);
    /// `Changed` when a list differs. A failure keeps the last good lists.
    pub(super) fn refresh(&self, spec: &HelmRepoSpec) -> Result<IndexChange, HelmRepoError> {
        let (names, before) = {
            let listed = crate::lock(&self.listed);
            (
                listed.charts.keys().cloned().collect::<Vec<_>>(),
                digest(&listed),
            )
        };
        for name in &names {
            self.list(spec, name)?;
        }
        let after = digest(&crate::lock(&self.listed));
        Ok(if after == before {
            IndexChange::Unchanged
        } else {
            IndexChange::Changed(after)
        })
    }

    /// The charts listed so far, their tags as versions; `None` before any.
    pub(super) fn index(&self, spec: &HelmRepoSpec) -> Option<Arc<Index>> {
        let listed = crate::lock(&self.listed);
        if listed.charts.is_empty() {
            return None;
        }
        let entries = listed
            .charts
            .iter()
            .map(|(name, tags)| {
                let read = listed.manifests.get(name);
                let versions = tags
                    .iter()
                    .map(|tag| chart_version(spec, name, tag, read.and_then(|m| m.get(tag))))
                    .collect();
                (name.clone(), versions)
            })
            .collect();
        Some(Arc::new(Index { entries }))
    }

    /// The highest tag of chart `name` that `constraint` allows, with the
    /// digests of its manifest and chart layer.
    pub(super) fn resolve(
        &self,
        spec: &HelmRepoSpec,
        name: &str,
        text: &str,
        constraint: &Constraint,
    ) -> Result<ChartVersion, HelmRepoError> {
        let known = crate::lock(&self.listed).charts.get(name).cloned();
        let tags = match known {
            Some(tags) => tags,
            None => self.list(spec, name)?,
        };
        let versions: Vec<String> = tags.iter().map(|t| version_of(t)).collect();
        let chosen = constraint
            .highest(versions.iter().map(String::as_str))
            .ok_or_else(|| HelmRepoError::NoMatch {
                url: auth::redact_url(&spec.url),
                name: name.to_string(),
                constraint: text.to_string(),
                count: tags.len(),
            })?;
        let at = versions
            .iter()
            .position(|v| v == chosen)
            .expect("the version chosen is one of the tags'");
        let tag = &tags[at];
        let read = self.manifest(spec, name, tag)?;
        Ok(chart_version(spec, name, tag, Some(&read)))
    }

    /// The chart layer `expected` (hex) of `chart`, checked against that
    /// digest as it is read.
    pub(super) fn layer(
        &self,
        spec: &HelmRepoSpec,
        chart: &ChartVersion,
        expected: &str,
    ) -> Result<Vec<u8>, HelmRepoError> {
        let reference = reference(spec, &chart.name)?;
        let registry = self.client(spec, &chart.name, &reference)?;
        let digest = format!("sha256:{expected}");
        registry
            .blob(&reference.repository, &digest, MAX_CHART_BYTES)
            .map_err(|e| match e {
                OciError::Digest {
                    url,
                    expected,
                    actual,
                } => HelmRepoError::Digest {
                    name: chart.name.clone(),
                    version: chart.version.clone(),
                    url,
                    expected: expected.trim_start_matches("sha256:").to_string(),
                    found: actual.trim_start_matches("sha256:").to_string(),
                },
                other => failed(spec, &chart.name, other),
            })
    }

    /// Lists the tags of chart `name`, keeps them (on disk too when they
    /// changed) and returns them.
    fn list(&self, spec: &HelmRepoSpec, name: &str) -> Result<Vec<String>, HelmRepoError> {
        let reference = reference(spec, name)?;
        let registry = self.client(spec, name, &reference)?;
        let mut tags = registry
            .tags(&reference.repository)
            .map_err(|e| failed(spec, name, e))?;
        tags.sort();
        tags.dedup();
        let mut listed = crate::lock(&self.listed);
        crate::lock(&self.fresh).retain(|(chart, _)| chart != name);
        if listed.charts.get(name) == Some(&tags) {
            return Ok(tags);
        }
        if let Some(read) = listed.manifests.get_mut(name) {
            read.retain(|tag, _| tags.contains(tag));
        }
        listed.charts.insert(name.to_string(), tags.clone());
        self.store(&listed)?;
        Ok(tags)
    }

    /// The manifest of `name:tag`: read once after each listing of the
    /// chart's tags; while the registry does not answer, the last one read.
    fn manifest(
        &self,
        spec: &HelmRepoSpec,
        name: &str,
        tag: &str,
    ) -> Result<ChartManifest, HelmRepoError> {
        let key = (name.to_string(), tag.to_string());
        let recorded = crate::lock(&self.listed)
            .manifests
            .get(name)
            .and_then(|m| m.get(tag))
            .cloned();
        if let Some(read) = &recorded
            && crate::lock(&self.fresh).contains(&key)
        {
            return Ok(read.clone());
        }
        let reference = reference(spec, name)?.with_tag(tag);
        let registry = self.client(spec, name, &reference)?;
        let manifest = match registry.manifest(&reference.repository, tag) {
            Ok(manifest) => manifest,
            // A registry that does not answer leaves the last manifest read in use.
            Err(e) => {
                return recorded
                    .filter(|_| unreachable(&e))
                    .ok_or_else(|| failed(spec, name, e));
            }
        };
        let read = chart_layer(&reference, &manifest)?;
        // The digest names the archive's file in the cache.
        check_digest(&read.layer).map_err(|detail| {
            let url = format!("{reference}@{}", read.manifest);
            let detail = format!("the chart layer's {detail}");
            failed(spec, name, OciError::Answer { url, detail })
        })?;
        let mut listed = crate::lock(&self.listed);
        if recorded.as_ref() != Some(&read) {
            listed
                .manifests
                .entry(name.to_string())
                .or_default()
                .insert(tag.to_string(), read.clone());
            self.store(&listed)?;
        }
        crate::lock(&self.fresh).insert(key);
        Ok(read)
    }

    /// The registry client, made on first use with the spec's credentials,
    /// CA bundle and plain-HTTP choice.
    fn client(
        &self,
        spec: &HelmRepoSpec,
        name: &str,
        reference: &Reference,
    ) -> Result<Arc<Registry>, HelmRepoError> {
        let mut client = crate::lock(&self.client);
        if let Some(registry) = &*client {
            return Ok(registry.clone());
        }
        let options = Options {
            auth: spec.auth.clone(),
            tls: spec.tls.clone(),
            insecure: spec.plain_http,
            timeout: spec.timeout,
        };
        let registry =
            Arc::new(Registry::new(reference, &options).map_err(|e| failed(spec, name, e))?);
        *client = Some(registry.clone());
        Ok(registry)
    }

    fn store(&self, listed: &Listed) -> Result<(), HelmRepoError> {
        let body = serde_json::to_vec_pretty(listed).expect("maps of strings serialize");
        write_whole(&self.dir, LISTED_FILE, &body).map(drop)
    }
}

/// The reference of chart `name` in the repository of `spec`, no tag.
fn reference(spec: &HelmRepoSpec, name: &str) -> Result<Reference, HelmRepoError> {
    Reference::parse(&format!("{}/{name}", spec.url)).map_err(|e| failed(spec, name, e))
}

/// `name:tag` of the repository as a chart version, with what its manifest
/// gave when it was read.
fn chart_version(
    spec: &HelmRepoSpec,
    name: &str,
    tag: &str,
    read: Option<&ChartManifest>,
) -> ChartVersion {
    let at = read.map_or_else(String::new, |r| format!("@{}", r.manifest));
    ChartVersion {
        name: name.to_string(),
        version: version_of(tag),
        digest: read.map(|r| r.layer.trim_start_matches("sha256:").to_string()),
        urls: vec![format!("{}/{name}:{tag}{at}", auth::redact_url(&spec.url))],
        manifest: read.map(|r| r.manifest.clone()),
    }
}

/// The chart version a tag stands for: Helm writes `+` as `_` in tags,
/// where `+` is not allowed.
fn version_of(tag: &str) -> String {
    tag.replace('_', "+")
}

/// The chart layer of a Helm chart's manifest; any other manifest is
/// refused naming the media type it has.
fn chart_layer(reference: &Reference, manifest: &Manifest) -> Result<ChartManifest, HelmRepoError> {
    let shown = format!("{reference}@{}", manifest.digest);
    let not_a_chart = |part, found: String, expected| HelmRepoError::NotAChart {
        reference: shown.clone(),
        part,
        found,
        expected,
    };
    let parsed: ImageManifest = serde_json::from_slice(&manifest.bytes).map_err(|_| {
        let value: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap_or_default();
        let found = value.get("mediaType").and_then(|t| t.as_str());
        not_a_chart(
            "manifest",
            found.unwrap_or("unknown").to_string(),
            MANIFEST_MEDIA_TYPE,
        )
    })?;
    if parsed.config.media_type != CONFIG_MEDIA_TYPE {
        return Err(not_a_chart(
            "config",
            parsed.config.media_type,
            CONFIG_MEDIA_TYPE,
        ));
    }
    let charts: Vec<_> = parsed
        .layers
        .iter()
        .filter(|l| l.media_type == CHART_MEDIA_TYPE)
        .collect();
    let [layer] = charts.as_slice() else {
        let types: Vec<_> = parsed
            .layers
            .iter()
            .map(|l| l.media_type.as_str())
            .collect();
        let found = if types.is_empty() {
            "none".to_string()
        } else {
            types.join("`, `")
        };
        return Err(not_a_chart("layer", found, CHART_MEDIA_TYPE));
    };
    Ok(ChartManifest {
        manifest: manifest.digest.clone(),
        layer: layer.digest.clone(),
    })
}

/// Whether `e` says the registry did not answer (rather than refused).
fn unreachable(e: &OciError) -> bool {
    match e {
        OciError::Request { .. } => true,
        OciError::Status { status, .. } => *status >= 500,
        _ => false,
    }
}

fn failed(spec: &HelmRepoSpec, name: &str, e: OciError) -> HelmRepoError {
    HelmRepoError::Registry {
        url: auth::redact_url(&spec.url),
        name: name.to_string(),
        source: Box::new(e),
    }
}

/// The SHA-256 of the tag lists, which [`IndexChange::Changed`] reports.
fn digest(listed: &Listed) -> String {
    let text = serde_json::to_vec(&listed.charts).expect("maps of strings serialize");
    hex(&Sha256::digest(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_recognised() {
        for host in [
            "127.0.0.1:5000",
            "localhost",
            "LOCALHOST:80",
            "[::1]:5000",
            "127.3.4.5",
        ] {
            assert!(loopback(host), "{host}");
        }
        for host in [
            "ghcr.io",
            "10.0.0.1:5000",
            "[fe80::1]:5000",
            "localhost.example",
        ] {
            assert!(!loopback(host), "{host}");
        }
    }

    #[test]
    fn a_tag_with_an_underscore_is_a_version_with_build_metadata() {
        assert_eq!(version_of("1.2.3_build.7"), "1.2.3+build.7");
        assert_eq!(version_of("1.2.3"), "1.2.3");
    }

    #[test]
    fn repository_urls_are_checked_and_name_what_is_wrong() {
        assert_eq!(check_url("oci://127.0.0.1:5000/charts").ok(), Some(true));
        assert_eq!(check_url("oci://ghcr.io").ok(), Some(false));
        let e = check_url("oci://ghcr.io/Org/charts").expect_err("uppercase");
        let text = e.to_string();
        assert!(
            text.starts_with("url `oci://ghcr.io/Org/charts`: the repository must be lowercase"),
            "{text}"
        );
    }

    fn manifest(config: &str, layers: &[&str]) -> Manifest {
        let d = format!("sha256:{}", "a".repeat(64));
        let layers: Vec<_> = layers
            .iter()
            .map(|t| serde_json::json!({"mediaType": t, "digest": d, "size": 1}))
            .collect();
        let body = serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": config, "digest": d, "size": 2},
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&body).expect("json");
        Manifest {
            digest: crate::oci::client::sha256(&bytes),
            bytes,
        }
    }

    #[test]
    fn only_a_helm_chart_manifest_gives_a_layer() {
        let r = Reference::parse("oci://h/charts/web:1.0.0").expect("reference");
        let ok = manifest(
            CONFIG_MEDIA_TYPE,
            &[
                CHART_MEDIA_TYPE,
                "application/vnd.cncf.helm.chart.provenance.v1.prov",
            ],
        );
        let read = chart_layer(&r, &ok).expect("a chart");
        assert_eq!(read.manifest, ok.digest);
        assert_eq!(read.layer, format!("sha256:{}", "a".repeat(64)));
        let flux = manifest(
            "application/vnd.cncf.flux.config.v1+json",
            &[CHART_MEDIA_TYPE],
        );
        let text = chart_layer(&r, &flux).expect_err("flux").to_string();
        assert!(
            text.starts_with("oci://h/charts/web:1.0.0@sha256:"),
            "{text}"
        );
        assert!(
            text.contains(
                "not a Helm chart: config media type `application/vnd.cncf.flux.config.v1+json`"
            ),
            "{text}"
        );
        let no_layer = manifest(CONFIG_MEDIA_TYPE, &["application/x-other"]);
        let text = chart_layer(&r, &no_layer).expect_err("layer").to_string();
        assert!(
            text.contains("layer media type `application/x-other`"),
            "{text}"
        );
    }
}
