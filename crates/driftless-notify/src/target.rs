//! A Notifier made ready to send: its URL and token resolved from where the
//! config says they are. Neither is ever printed.

use driftless_api::{Notifier, NotifierSpec, NotifierType};

/// A secret value (a token, a key, or a URL that embeds one). Its `Debug`
/// shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for building a request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why a Notifier cannot send.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    /// `secretEnv` names a variable the process does not have.
    #[error("Notifier {notifier}: environment variable {var} (spec.secretEnv) is not set")]
    MissingEnv {
        /// The Notifier.
        notifier: String,
        /// The variable.
        var: String,
    },
    /// The secret of a chat type is not a URL.
    #[error("Notifier {notifier}: the webhook URL in its secret is not an http:// or https:// URL")]
    SecretNotUrl {
        /// The Notifier.
        notifier: String,
    },
    /// The Kubernetes Secret named by `secretRef` could not be used.
    #[error("Notifier {notifier}: {why}")]
    SecretUnavailable {
        /// The Notifier.
        notifier: String,
        /// What is wrong with the Secret (never its values).
        why: String,
    },
    /// The secret lives in a Kubernetes Secret, which a standalone server cannot read.
    #[error(
        "Notifier {notifier}: spec.secretRef needs the in-cluster controller; use spec.secretEnv with driftless serve"
    )]
    SecretRefStandalone {
        /// The Notifier.
        notifier: String,
    },
}

/// A Notifier with its URL and token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The Notifier's name.
    pub name: String,
    /// Its spec.
    pub spec: NotifierSpec,
    /// Where requests go: the webhook URL, or the API base URL.
    pub url: Secret,
    /// Token of Telegram, Alertmanager and Git hosts; HMAC key of `webhook`.
    pub token: Option<Secret>,
}

impl Target {
    /// Resolves `notifier` in a standalone server: its secret from the
    /// environment variable `spec.secretEnv`, read through `env`.
    pub fn from_env(
        notifier: &Notifier,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, TargetError> {
        let name = notifier.name().to_owned();
        let spec = &notifier.spec;
        if spec.secret_ref.is_some() {
            return Err(TargetError::SecretRefStandalone { notifier: name });
        }
        let secret =
            match &spec.secret_env {
                Some(var) => Some(env(var).filter(|v| !v.is_empty()).ok_or_else(|| {
                    TargetError::MissingEnv {
                        notifier: name.clone(),
                        var: var.clone(),
                    }
                })?),
                None => None,
            };
        Self::new(name, spec.clone(), secret)
    }

    /// A target of `spec` whose secret (a URL for chat types, else a token) is `secret`.
    pub fn new(
        name: String,
        spec: NotifierSpec,
        secret: Option<String>,
    ) -> Result<Self, TargetError> {
        let (url, token) = if spec.type_.secret_is_url() {
            match secret {
                Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                    (url, None)
                }
                Some(_) => return Err(TargetError::SecretNotUrl { notifier: name }),
                None => (spec.address.clone().unwrap_or_default(), None),
            }
        } else {
            let base = spec
                .address
                .clone()
                .unwrap_or_else(|| default_address(spec.type_).to_owned());
            (base, secret.map(Secret::new))
        };
        Ok(Self {
            name,
            spec,
            url: Secret::new(url.trim_end_matches('/').to_owned()),
            token,
        })
    }

    /// The Notifier's type.
    pub fn type_(&self) -> NotifierType {
        self.spec.type_
    }
}

/// The public API of services that have one.
fn default_address(type_: NotifierType) -> &'static str {
    match type_ {
        NotifierType::Telegram => "https://api.telegram.org",
        NotifierType::Github => "https://api.github.com",
        NotifierType::Gitlab => "https://gitlab.com",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notifier(spec: serde_json::Value) -> Notifier {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "driftless.dev/v1alpha1", "kind": "Notifier",
            "metadata": {"name": "chat"}, "spec": spec
        }))
        .expect("a notifier")
    }

    #[test]
    fn a_chat_secret_is_the_url_and_a_git_host_secret_the_token() {
        let env = |var: &str| (var == "HOOK").then(|| "https://hooks.example/T/abc".to_owned());
        let t = Target::from_env(
            &notifier(serde_json::json!({"type": "slack", "secretEnv": "HOOK"})),
            env,
        )
        .expect("resolves");
        assert_eq!(t.url.expose(), "https://hooks.example/T/abc");
        assert!(t.token.is_none());
        let t = Target::from_env(
            &notifier(serde_json::json!({"type": "github", "secretEnv": "HOOK"})),
            env,
        )
        .expect("resolves");
        assert_eq!(t.url.expose(), "https://api.github.com");
        assert_eq!(
            t.token.as_ref().map(Secret::expose),
            Some("https://hooks.example/T/abc")
        );
        assert!(!format!("{t:?}").contains("abc"), "{t:?}");
    }

    #[test]
    fn a_missing_variable_or_a_secret_that_is_no_url_is_named_without_its_value() {
        let n = notifier(serde_json::json!({"type": "discord", "secretEnv": "NOPE"}));
        assert_eq!(
            Target::from_env(&n, |_| None)
                .expect_err("missing")
                .to_string(),
            "Notifier chat: environment variable NOPE (spec.secretEnv) is not set"
        );
        let err = Target::from_env(&n, |_| Some("hunter2".into())).expect_err("not a URL");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
