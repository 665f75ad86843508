//! Chart archives: downloaded once (from an OCI registry, as the chart layer
//! blob), verified against the index's digest (the layer's) and kept on disk
//! under that digest, shared by every repository.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::{ChartRepository, ChartVersion, HelmRepoError, MAX_CHART_BYTES, hex, write_whole};
use crate::auth::{self, Auth};
use crate::download::{self, Download};

/// The cached archive of `chart`, downloaded and verified when missing.
pub(super) fn archive(
    repo: &ChartRepository,
    chart: &ChartVersion,
) -> Result<PathBuf, HelmRepoError> {
    let unverifiable = |missing| HelmRepoError::Unverifiable {
        name: chart.name.clone(),
        version: chart.version.clone(),
        url: repo.url(),
        missing,
    };
    let expected = chart
        .digest
        .as_deref()
        .map(|d| d.trim_start_matches("sha256:").to_ascii_lowercase())
        .ok_or_else(|| unverifiable("digest"))?;
    let name = format!("{expected}.tgz");
    let cached = repo.charts.join(&name);
    // A cached archive is checked again: a file changed on disk is fetched anew.
    if std::fs::read(&cached).is_ok_and(|body| hex(&Sha256::digest(&body)) == expected) {
        return Ok(cached);
    }
    let body = match &repo.registry {
        Some(registry) => registry.layer(&repo.spec, chart, &expected)?,
        None => download_from_index(repo, chart, &expected)?,
    };
    write_whole(&repo.charts, &name, &body)
}

/// The archive at the index's URL for `chart`, checked against the
/// index's digest, `expected` (hex).
fn download_from_index(
    repo: &ChartRepository,
    chart: &ChartVersion,
    expected: &str,
) -> Result<Vec<u8>, HelmRepoError> {
    let relative = chart
        .urls
        .first()
        .ok_or_else(|| HelmRepoError::Unverifiable {
            name: chart.name.clone(),
            version: chart.version.clone(),
            url: repo.url(),
            missing: "URL",
        })?;
    let url = absolute(&repo.spec.url, relative);
    let creds = if same_origin(&repo.spec.url, &url) {
        &repo.spec.auth
    } else {
        &Auth::None
    };
    let spec = &repo.spec;
    let body = match download::get(&url, creds, &spec.tls, spec.timeout, MAX_CHART_BYTES)? {
        Download::Body(body) => body,
        Download::Status(status) => {
            return Err(HelmRepoError::Status {
                url: auth::redact_url(&url),
                status,
            });
        }
    };
    let found = hex(&Sha256::digest(&body));
    if found != expected {
        return Err(HelmRepoError::Digest {
            name: chart.name.clone(),
            version: chart.version.clone(),
            url: auth::redact_url(&url),
            expected: expected.to_string(),
            found,
        });
    }
    Ok(body)
}

/// `url` as an absolute URL: index entries may name archives relative to
/// the repository.
fn absolute(base: &str, url: &str) -> String {
    if url.contains("://") {
        return url.to_string();
    }
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        url.trim_start_matches('/')
    )
}

/// Whether `a` and `b` share scheme, host and port: credentials of a
/// repository go to its own server only, as Helm does by default.
fn same_origin(a: &str, b: &str) -> bool {
    let origin = |u: &str| {
        let (scheme, rest) = u.split_once("://").unwrap_or(("", u));
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = host.rsplit('@').next().unwrap_or_default();
        (scheme.to_ascii_lowercase(), host.to_ascii_lowercase())
    };
    origin(a) == origin(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_archive_urls_are_under_the_repository() {
        assert_eq!(
            absolute("http://h/charts", "web-1.0.0.tgz"),
            "http://h/charts/web-1.0.0.tgz"
        );
        assert_eq!(
            absolute("http://h/charts/", "https://cdn/w.tgz"),
            "https://cdn/w.tgz"
        );
    }

    #[test]
    fn credentials_stay_with_the_repository_host() {
        assert!(same_origin(
            "https://u:p@h:8443/charts",
            "https://H:8443/x/w.tgz"
        ));
        assert!(!same_origin("https://h/charts", "https://cdn/w.tgz"));
        assert!(!same_origin("https://h:8443/charts", "https://h/w.tgz"));
        assert!(!same_origin("https://h/charts", "http://h/w.tgz"));
    }
}
