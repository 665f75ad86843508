//! Single files over HTTP(S) (kustomize's remote file resources), with the
//! TLS settings and credentials of a source and bounded in time and size.

use std::io::Read;
use std::time::Duration;

use crate::auth::{self, Auth, Tls};

/// Failure to download a file.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// No usable CA certificates for an `https://` URL.
    #[error("GET {url}: no usable CA certificates")]
    Certificates {
        /// The URL, without any password.
        url: String,
    },
    /// The request could not be made or its answer read (refused, timed
    /// out, TLS failure).
    #[error("GET {url}: {detail}")]
    Request {
        /// The URL, without any password.
        url: String,
        /// What failed, with its causes.
        detail: String,
    },
    /// The body is larger than allowed.
    #[error("GET {url}: the body is larger than {limit} bytes")]
    TooLarge {
        /// The URL, without any password.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
}

/// The answer to a GET.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Download {
    /// A 2xx status and the body.
    Body(Vec<u8>),
    /// Any other final status (redirects are followed).
    Status(u16),
}

/// GETs `url` within `timeout` (body included), reading at most `max_bytes`.
pub fn get(
    url: &str,
    auth: &Auth,
    tls: &Tls,
    timeout: Duration,
    max_bytes: u64,
) -> Result<Download, DownloadError> {
    let shown = auth::redact_url(url);
    let https = url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
    let config = crate::connection::client_config(tls)
        .or_else(|| (!https).then(crate::connection::plain_config).flatten())
        .ok_or_else(|| DownloadError::Certificates { url: shown.clone() })?;
    let failed = |e: &dyn std::error::Error| DownloadError::Request {
        url: shown.clone(),
        detail: causes(e),
    };
    let client = reqwest::blocking::Client::builder()
        .use_preconfigured_tls(rustls::ClientConfig::clone(&config))
        .timeout(timeout)
        .build()
        .map_err(|e| failed(&e))?;
    let mut request = client.get(url);
    if let Some(value) = auth::http_authorization(auth) {
        request = request.header(reqwest::header::AUTHORIZATION, value);
    }
    let response = request.send().map_err(|e| failed(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Ok(Download::Status(status.as_u16()));
    }
    let mut body = Vec::new();
    response
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|e| failed(&e))?;
    if body.len() as u64 > max_bytes {
        return Err(DownloadError::TooLarge {
            url: shown,
            limit: max_bytes,
        });
    }
    Ok(Download::Body(body))
}

/// An error and its causes on one line.
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}
