//! Webhook verification: checks that a push notification really comes from the Git host
//! (shared secret), then extracts the pushed repository URLs and ref.
//!
//! Every comparison with a secret is constant-time, so response timing reveals nothing.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Git hosts whose webhooks driftless understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
    Github,
    /// `X-Gitlab-Token: <secret>`.
    Gitlab,
    /// `X-Gitea-Signature: <hex HMAC-SHA256 of the body>`.
    Gitea,
    /// `X-Signature: sha256=<hex HMAC-SHA256 of the body>`, for scripts and other hosts.
    GenericHmac,
}

/// Errors of webhook verification; each names the header or field at fault.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The signature or token header is absent.
    #[error("missing header {header}")]
    MissingHeader {
        /// Header name.
        header: &'static str,
    },
    /// The signature or token does not match the receiver's secret.
    #[error("header {header} does not match the receiver secret")]
    BadSignature {
        /// Header name.
        header: &'static str,
    },
    /// The body is not JSON.
    #[error("webhook body is not JSON: {0}")]
    BadPayload(#[from] serde_json::Error),
    /// A push without any repository URL cannot be matched to a GitSource.
    #[error("push payload names no repository URL (looked at repository.*, project.*, url)")]
    NoRepository,
}

impl WebhookError {
    /// True for failures of authenticity (answered 401), false for malformed requests.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Self::MissingHeader { .. } | Self::BadSignature { .. })
    }
}

/// A verified push: which repositories changed and at which ref.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Push {
    /// Repository URLs from the payload, normalised with [`normalize_url`], deduplicated.
    pub repo_urls: Vec<String>,
    /// Pushed ref, e.g. `refs/heads/main`, when the payload names one.
    pub git_ref: Option<String>,
}

impl Push {
    /// True if `url` (any form: https, ssh, scp-like) names a pushed repository.
    pub fn matches(&self, url: &str) -> bool {
        let wanted = normalize_url(url);
        self.repo_urls.contains(&wanted)
    }
}

/// What a verified webhook asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// An event the receiver acts on: its repositories are fetched now.
    Push(Push),
    /// An event the receiver does not list (a GitHub `ping`, issues, ...): nothing to do.
    Ignored {
        /// The event name from the provider's header.
        event: String,
    },
}

/// Events a receiver acts on when its `spec.events` is empty.
pub fn default_events(provider: Provider) -> &'static [&'static str] {
    match provider {
        Provider::Github | Provider::Gitea => &["push"],
        Provider::Gitlab => &["Push Hook", "Tag Push Hook", "System Hook"],
        // The generic format has no event header: every signed request is a push.
        Provider::GenericHmac => &[],
    }
}

/// Header naming the event, per provider; the generic format has none.
pub fn event_header(provider: Provider) -> Option<&'static str> {
    match provider {
        Provider::Github => Some("X-GitHub-Event"),
        Provider::Gitlab => Some("X-Gitlab-Event"),
        Provider::Gitea => Some("X-Gitea-Event"),
        Provider::GenericHmac => None,
    }
}

/// Header carrying the provider's unique id of one delivery (kept on redelivery).
pub fn delivery_header(provider: Provider) -> Option<&'static str> {
    match provider {
        Provider::Github => Some("X-GitHub-Delivery"),
        Provider::Gitlab => Some("X-Gitlab-Event-UUID"),
        Provider::Gitea => Some("X-Gitea-Delivery"),
        Provider::GenericHmac => None,
    }
}

/// Whether `event` (as the provider's header spells it) is one of `listed`, or of the
/// provider's defaults when `listed` is empty. Case is ignored, and GitLab events also
/// match their short names (`Tag Push Hook` is `tag_push`).
pub fn acts_on(provider: Provider, listed: &[String], event: &str) -> bool {
    let short = event
        .strip_suffix(" Hook")
        .map(|e| e.to_ascii_lowercase().replace(' ', "_"));
    let matches = |name: &str| {
        name.eq_ignore_ascii_case(event)
            || short
                .as_deref()
                .is_some_and(|s| name.eq_ignore_ascii_case(s))
    };
    if listed.is_empty() {
        default_events(provider).iter().any(|name| matches(name))
    } else {
        listed.iter().any(|name| matches(name))
    }
}

/// Checks that a request comes from the Git host holding `secret`.
fn authenticate(
    provider: Provider,
    secret: &[u8],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), WebhookError> {
    match provider {
        Provider::Github => {
            let sig = header(headers, "X-Hub-Signature-256")?;
            check_hmac(
                secret,
                body,
                sig.strip_prefix("sha256="),
                "X-Hub-Signature-256",
            )
        }
        Provider::Gitlab => {
            let token = header(headers, "X-Gitlab-Token")?;
            if bool::from(token.as_bytes().ct_eq(secret)) {
                Ok(())
            } else {
                Err(WebhookError::BadSignature {
                    header: "X-Gitlab-Token",
                })
            }
        }
        Provider::Gitea => {
            let sig = header(headers, "X-Gitea-Signature")?;
            check_hmac(secret, body, Some(sig), "X-Gitea-Signature")
        }
        Provider::GenericHmac => {
            let sig = header(headers, "X-Signature")?;
            check_hmac(secret, body, sig.strip_prefix("sha256="), "X-Signature")
        }
    }
}

/// Verifies a webhook request and classifies it by `events` (the receiver's
/// `spec.events`; empty means [`default_events`]). Nothing in the body is trusted
/// before the signature checks out.
pub fn verify(
    provider: Provider,
    secret: &[u8],
    events: &[String],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Delivery, WebhookError> {
    authenticate(provider, secret, headers, body)?;
    if let Some(name) = event_header(provider) {
        let event = headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !acts_on(provider, events, event) {
            return Ok(Delivery::Ignored {
                event: event.to_owned(),
            });
        }
    }
    parse_push(body).map(Delivery::Push)
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, WebhookError> {
    let missing = || WebhookError::MissingHeader { header: name };
    headers
        .get(name)
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| missing())
}

fn check_hmac(
    secret: &[u8],
    body: &[u8],
    hex_sig: Option<&str>,
    header: &'static str,
) -> Result<(), WebhookError> {
    let bad = || WebhookError::BadSignature { header };
    let expected = hex::decode(hex_sig.ok_or_else(bad)?.trim()).map_err(|_| bad())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected).map_err(|_| bad())
}

/// Fields that carry repository URLs in GitHub, GitLab, Gitea and generic payloads.
const URL_FIELDS: [&str; 9] = [
    "clone_url",
    "ssh_url",
    "html_url",
    "git_url",
    "git_http_url",
    "git_ssh_url",
    "web_url",
    "homepage",
    "url",
];

fn parse_push(body: &[u8]) -> Result<Push, WebhookError> {
    let payload: Value = serde_json::from_slice(body)?;
    let mut repo_urls: Vec<String> = Vec::new();
    let objects = ["repository", "project"]
        .into_iter()
        .filter_map(|k| payload.get(k));
    for object in std::iter::once(&payload).chain(objects) {
        // GitHub's repository.url is an API URL, not a Git one: it never matches a source,
        // so collecting it costs nothing and keeps one rule for every provider.
        for field in URL_FIELDS {
            if let Some(url) = object.get(field).and_then(Value::as_str) {
                let url = normalize_url(url);
                if !url.is_empty() && !repo_urls.contains(&url) {
                    repo_urls.push(url);
                }
            }
        }
    }
    if repo_urls.is_empty() {
        return Err(WebhookError::NoRepository);
    }
    let git_ref = payload
        .get("ref")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Push { repo_urls, git_ref })
}

/// Reduces a Git URL to `host/path` so that every spelling of one repository compares
/// equal: scheme, user info and port dropped, host lower-cased, `.git` and trailing
/// slashes stripped. `https://User@GitHub.com/org/app.git/` and `git@github.com:org/app`
/// both become `github.com/org/app`.
pub fn normalize_url(url: &str) -> String {
    let url = url.trim();
    let (authority, path) = match url.split_once("://") {
        Some((_, rest)) => rest.split_once('/').unwrap_or((rest, "")),
        // scp-like `user@host:path`; a bare path has no authority.
        None => match url.split_once(':') {
            Some((host, path)) if !host.contains('/') => (host, path),
            _ => ("", url),
        },
    };
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host_port,
    };
    let mut path = path.trim_matches('/');
    path = path
        .strip_suffix(".git")
        .unwrap_or(path)
        .trim_end_matches('/');
    if host.is_empty() {
        return path.to_owned();
    }
    format!("{}/{path}", host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::normalize_url;

    #[test]
    fn url_spellings_of_one_repository_agree() {
        for url in [
            "https://github.com/org/app.git",
            "https://github.com/org/app",
            "HTTPS://GitHub.COM/org/app/",
            "https://user:token@github.com/org/app.git",
            "git@github.com:org/app.git",
            "ssh://git@github.com:22/org/app.git",
            "git://github.com/org/app.git/",
        ] {
            assert_eq!(normalize_url(url), "github.com/org/app", "{url}");
        }
        assert_eq!(
            normalize_url("https://gitlab.example.com/group/sub/app"),
            "gitlab.example.com/group/sub/app"
        );
        assert_ne!(
            normalize_url("https://github.com/org/App"),
            normalize_url("https://github.com/org/app")
        );
    }
}
