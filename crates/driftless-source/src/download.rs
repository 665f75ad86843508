//! Single files over HTTP(S) (kustomize's remote file resources, Helm
//! repository indexes and charts), with the TLS settings and credentials of a
//! source, bounded in time and size, and conditional on a cached copy.

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

/// What a cached copy of a file was served with, sent back so that an
/// unchanged file is answered without its body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Validators {
    /// The `ETag` header, sent as `If-None-Match`.
    pub etag: Option<String>,
    /// The `Last-Modified` header, sent as `If-Modified-Since`.
    pub last_modified: Option<String>,
}

/// The answer to a conditional GET.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conditional {
    /// A 2xx status: the body and its validators.
    Modified(Vec<u8>, Validators),
    /// 304: the cached copy is current.
    NotModified,
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
    Ok(
        match get_if_changed(url, auth, tls, timeout, max_bytes, &Validators::default())? {
            Conditional::Modified(body, _) => Download::Body(body),
            Conditional::NotModified => Download::Status(304),
            Conditional::Status(code) => Download::Status(code),
        },
    )
}

/// GETs `url` as [`get`] does, unless it still matches `cached`: one request,
/// whose answer has no body when the file is unchanged.
pub fn get_if_changed(
    url: &str,
    auth: &Auth,
    tls: &Tls,
    timeout: Duration,
    max_bytes: u64,
    cached: &Validators,
) -> Result<Conditional, DownloadError> {
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
    if let Some(etag) = &cached.etag {
        request = request.header(reqwest::header::IF_NONE_MATCH, etag);
    }
    if let Some(date) = &cached.last_modified {
        request = request.header(reqwest::header::IF_MODIFIED_SINCE, date);
    }
    let response = request.send().map_err(|e| failed(&e))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(Conditional::NotModified);
    }
    if !status.is_success() {
        return Ok(Conditional::Status(status.as_u16()));
    }
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let validators = Validators {
        etag: header(reqwest::header::ETAG),
        last_modified: header(reqwest::header::LAST_MODIFIED),
    };
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
    Ok(Conditional::Modified(body, validators))
}

/// An error and its causes on one line.
pub(crate) fn causes(e: &dyn std::error::Error) -> String {
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
