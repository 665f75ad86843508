//! A client of the OCI distribution API (`/v2/`): tags, manifests and blobs,
//! pulled and pushed, with basic credentials or the bearer-token exchange
//! registries ask for in their `WWW-Authenticate` challenge.

use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, LOCATION, WWW_AUTHENTICATE};
use sha2::{Digest as _, Sha256};

use super::{OciError, Reference};
use crate::auth::{self, Auth, Tls};

/// Media types of a manifest this client reads.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, \
                              application/vnd.docker.distribution.manifest.v2+json";
/// The largest manifest read.
const MAX_MANIFEST: u64 = 4 << 20;
/// The largest registry answer read besides manifests and blobs (tags, errors, tokens).
const MAX_SMALL: u64 = 4 << 20;

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct Options {
    /// Credentials: basic (also used to ask for a token) or a bearer token.
    pub auth: Auth,
    /// CA bundle for HTTPS.
    pub tls: Tls,
    /// Plain HTTP instead of HTTPS (a registry on a trusted network).
    pub insecure: bool,
    /// Time allowed for each request, its body included.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            auth: Auth::None,
            tls: Tls::default(),
            insecure: false,
            timeout: Duration::from_secs(60),
        }
    }
}

/// A manifest as the registry sent it.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The exact bytes, which the digest covers.
    pub bytes: Vec<u8>,
    /// `sha256:` of the bytes.
    pub digest: String,
}

/// One registry, with the token it handed out last.
pub struct Registry {
    base: String,
    auth: Auth,
    client: Client,
    token: Mutex<Option<String>>,
}

impl Registry {
    /// A client for the registry of `reference`.
    pub fn new(reference: &Reference, options: &Options) -> Result<Self, OciError> {
        let scheme = if options.insecure { "http" } else { "https" };
        let base = format!("{scheme}://{}", reference.registry);
        let config = if options.insecure {
            crate::connection::plain_config()
        } else {
            crate::connection::client_config(&options.tls)
        }
        .ok_or_else(|| OciError::Request {
            url: base.clone(),
            detail: "no usable CA certificates".into(),
        })?;
        let client = Client::builder()
            .use_preconfigured_tls(rustls::ClientConfig::clone(&config))
            .timeout(options.timeout)
            .build()
            .map_err(|e| OciError::Request {
                url: base.clone(),
                detail: super::causes(&e),
            })?;
        Ok(Registry {
            base,
            auth: options.auth.clone(),
            client,
            token: Mutex::new(None),
        })
    }

    /// Every tag of `repository`, following the registry's pages.
    pub fn tags(&self, repository: &str) -> Result<Vec<String>, OciError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut tags = Vec::new();
        let mut path = format!("/v2/{repository}/tags/list?n=1000");
        for _ in 0..1000 {
            let url = format!("{}{path}", self.base);
            let response = self.send(repository, false, |c| c.get(&url))?;
            let response = expect(response, "GET", &url, &[200])?;
            let next = next_page(response.headers());
            let body = read_body(response, &url, MAX_SMALL)?;
            let page: Page = serde_json::from_slice(&body).map_err(|e| OciError::Answer {
                url: url.clone(),
                detail: format!("the tag list is not JSON of the expected shape: {e}"),
            })?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(next) => path = next,
                None => return Ok(tags),
            }
        }
        Err(OciError::Answer {
            url: format!("{}/v2/{repository}/tags/list", self.base),
            detail: "more than 1000 pages of tags".into(),
        })
    }

    /// The manifest `reference` (a tag or a digest) of `repository`; a
    /// digest reference must match the bytes received.
    pub fn manifest(&self, repository: &str, reference: &str) -> Result<Manifest, OciError> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let response = self.send(repository, false, |c| {
            c.get(&url).header(ACCEPT, MANIFEST_TYPES)
        })?;
        let response = expect(response, "GET", &url, &[200])?;
        let bytes = read_body(response, &url, MAX_MANIFEST)?;
        let digest = sha256(&bytes);
        if reference.starts_with("sha256:") && reference != digest {
            return Err(OciError::Digest {
                url,
                expected: reference.to_owned(),
                actual: digest,
            });
        }
        Ok(Manifest { bytes, digest })
    }

    /// The blob `digest` of `repository`, at most `limit` bytes, checked
    /// against its digest.
    pub fn blob(&self, repository: &str, digest: &str, limit: u64) -> Result<Vec<u8>, OciError> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let response = self.send(repository, false, |c| c.get(&url))?;
        let response = expect(response, "GET", &url, &[200])?;
        let bytes = read_body(response, &url, limit)?;
        let actual = sha256(&bytes);
        if actual != digest {
            return Err(OciError::Digest {
                url,
                expected: digest.to_owned(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Uploads `bytes` as a blob of `repository` unless the registry has it;
    /// returns its digest.
    pub fn push_blob(&self, repository: &str, bytes: &[u8]) -> Result<String, OciError> {
        let digest = sha256(bytes);
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let head = self.send(repository, true, |c| c.head(&url))?;
        if head.status().is_success() {
            return Ok(digest);
        }
        let start = format!("{}/v2/{repository}/blobs/uploads/", self.base);
        let response = self.send(repository, true, |c| c.post(&start))?;
        let response = expect(response, "POST", &start, &[202])?;
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| OciError::Answer {
                url: start.clone(),
                detail: "the upload was accepted without a Location".into(),
            })?;
        let location = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location.to_owned()
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{separator}digest={digest}");
        let shown = auth::redact_url(&location);
        let response = self.send(repository, true, |c| {
            c.put(&put)
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(bytes.to_vec())
        })?;
        expect(response, "PUT", &shown, &[201])?;
        Ok(digest)
    }

    /// Stores `bytes` as the manifest tagged `tag` in `repository`; returns
    /// its digest.
    pub fn push_manifest(
        &self,
        repository: &str,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String, OciError> {
        let url = format!("{}/v2/{repository}/manifests/{tag}", self.base);
        let response = self.send(repository, true, |c| {
            c.put(&url)
                .header(CONTENT_TYPE, media_type)
                .body(bytes.to_vec())
        })?;
        expect(response, "PUT", &url, &[201])?;
        Ok(sha256(bytes))
    }

    /// Sends a request with the best credentials known, and once more after
    /// the challenge of a 401 when it can answer it.
    fn send(
        &self,
        repository: &str,
        push: bool,
        build: impl Fn(&Client) -> RequestBuilder,
    ) -> Result<Response, OciError> {
        let response = self.attempt(&build)?;
        if response.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let url = response.url().to_string();
        match challenge.as_deref().map(parse_challenge) {
            Some(Challenge::Bearer { realm, service }) => {
                let action = if push { "pull,push" } else { "pull" };
                let scope = format!("repository:{repository}:{action}");
                let token = self.fetch_token(&realm, service.as_deref(), &scope)?;
                *crate::lock(&self.token) = Some(token);
                self.attempt(&build)
            }
            _ => Err(OciError::Unauthorized {
                url: auth::redact_url(&url),
                detail: match self.auth {
                    Auth::None => "the registry asks for credentials and none are configured",
                    _ => "the registry refused the credentials",
                }
                .into(),
            }),
        }
    }

    fn attempt(&self, build: &impl Fn(&Client) -> RequestBuilder) -> Result<Response, OciError> {
        let mut request = build(&self.client);
        let token = crate::lock(&self.token).clone();
        let header = match token {
            Some(token) => Some(format!("Bearer {token}")),
            None => auth::http_authorization(&self.auth),
        };
        if let Some(value) = header {
            request = request.header(AUTHORIZATION, value);
        }
        request.send().map_err(|e| OciError::Request {
            url: e
                .url()
                .map_or_else(|| self.base.clone(), |u| auth::redact_url(u.as_str())),
            detail: super::causes(&e),
        })
    }

    /// Asks the registry's token service for a token of `scope`, with the
    /// basic credentials when there are some.
    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String, OciError> {
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(OciError::Answer {
                url: self.base.clone(),
                detail: format!("the token realm {realm:?} is not an HTTP(S) URL"),
            });
        }
        let mut url = reqwest::Url::parse(realm).map_err(|e| OciError::Answer {
            url: self.base.clone(),
            detail: format!("the token realm {realm:?} is not a URL: {e}"),
        })?;
        url.query_pairs_mut().append_pair("scope", scope);
        if let Some(service) = service {
            url.query_pairs_mut().append_pair("service", service);
        }
        let mut request = self.client.get(url);
        if let (Auth::Basic { .. }, Some(value)) =
            (&self.auth, auth::http_authorization(&self.auth))
        {
            request = request.header(AUTHORIZATION, value);
        }
        let shown = auth::redact_url(realm);
        let response = request.send().map_err(|e| OciError::Request {
            url: shown.clone(),
            detail: super::causes(&e),
        })?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(OciError::Unauthorized {
                url: shown,
                detail: "the token service refused the credentials".into(),
            });
        }
        let response = expect(response, "GET", &shown, &[200])?;
        let body = read_body(response, &shown, MAX_SMALL)?;
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| OciError::Answer {
            url: shown.clone(),
            detail: format!("the token answer is not JSON of the expected shape: {e}"),
        })?;
        answer
            .token
            .or(answer.access_token)
            .ok_or(OciError::Answer {
                url: shown,
                detail: "the token answer holds no token".into(),
            })
    }
}

/// What a 401 asked for.
#[derive(Debug, PartialEq, Eq)]
enum Challenge {
    Bearer {
        realm: String,
        service: Option<String>,
    },
    Other,
}

/// Reads `Bearer realm="...",service="...",scope="..."`.
fn parse_challenge(header: &str) -> Challenge {
    let Some(params) = header
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("bearer "))
        .map(|_| &header[7..])
    else {
        return Challenge::Other;
    };
    let mut realm = None;
    let mut service = None;
    let mut rest = params.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim();
        let (value, remaining) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.split_once('"') {
                Some((value, remaining)) => (value, remaining),
                None => (quoted, ""),
            },
            None => after.split_once(',').unwrap_or((after, "")),
        };
        match key.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value.to_owned()),
            "service" => service = Some(value.to_owned()),
            _ => {}
        }
        rest = remaining.trim_start_matches(',').trim();
    }
    match realm {
        Some(realm) => Challenge::Bearer { realm, service },
        None => Challenge::Other,
    }
}

/// The path of the `rel="next"` page in a `Link` header.
fn next_page(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    let (target, params) = link.split_once(';')?;
    if !params.contains("rel=\"next\"") {
        return None;
    }
    let target = target.trim().trim_start_matches('<').trim_end_matches('>');
    target.starts_with('/').then(|| target.to_owned())
}

/// The response when its status is one of `wanted`, else the registry's
/// error, with the first message of its error list.
fn expect(
    response: Response,
    method: &str,
    url: &str,
    wanted: &[u16],
) -> Result<Response, OciError> {
    let status = response.status().as_u16();
    if wanted.contains(&status) {
        return Ok(response);
    }
    let body = read_body(response, url, MAX_SMALL).unwrap_or_default();
    Err(OciError::Status {
        method: method.to_owned(),
        url: auth::redact_url(url),
        status,
        detail: registry_message(&body),
    })
}

/// `code: message` of the first entry of a registry's `{"errors": [...]}`.
fn registry_message(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let Some(first) = value.get("errors").and_then(|e| e.get(0)) else {
        return String::new();
    };
    let text = |k: &str| first.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    let mut message = format!("{}: {}", text("code"), text("message"));
    message.truncate(300);
    message
}

fn read_body(response: Response, url: &str, limit: u64) -> Result<Vec<u8>, OciError> {
    let mut body = Vec::new();
    response
        .take(limit.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|e| OciError::Request {
            url: auth::redact_url(url),
            detail: super::causes(&e),
        })?;
    if body.len() as u64 > limit {
        return Err(OciError::TooLarge {
            url: auth::redact_url(url),
            limit,
        });
    }
    Ok(body)
}

/// `sha256:<hex>` of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_challenge_gives_its_realm_and_service() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#,
        );
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into())
            }
        );
        assert_eq!(parse_challenge(r#"Basic realm="x""#), Challenge::Other);
        assert_eq!(parse_challenge("Bearer service=x"), Challenge::Other);
    }

    #[test]
    fn the_registry_error_list_gives_the_message() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(registry_message(body), "MANIFEST_UNKNOWN: manifest unknown");
        assert_eq!(registry_message(b"not json"), "");
    }
}
