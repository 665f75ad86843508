//! The registry credentials `helm registry login` stores, for `oci://`
//! chart repositories reached from the command line as helm reaches them.
//!
//! The file is `$HELM_REGISTRY_CONFIG`, else `registry/config.json` under
//! Helm's config home (`$HELM_CONFIG_HOME`, `$XDG_CONFIG_HOME/helm`,
//! `~/.config/helm`), in Docker's `config.json` format: `auths.<host>.auth`
//! is base64 of `user:password` (or `username` and `password` are given).
//! Keys written with a scheme or a path (`https://host/v1/`) match their
//! host, as Docker's and Helm's lookups do.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::Value;

use crate::auth::Auth;

/// A registry credentials file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistryLoginsError {
    /// The file exists but could not be read.
    #[error("reading Helm registry credentials {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a Docker `config.json`, or an entry is malformed.
    /// The detail never quotes a credential.
    #[error("Helm registry credentials {path}: {detail}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// Where helm keeps its registry logins, from the environment: `None`
/// when no home directory is known.
pub fn helm_registry_config() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(file) = var("HELM_REGISTRY_CONFIG") {
        return Some(PathBuf::from(file));
    }
    let config_home = var("HELM_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var("XDG_CONFIG_HOME").map(|x| PathBuf::from(x).join("helm")))
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config").join("helm")))?;
    Some(config_home.join("registry").join("config.json"))
}

/// The credentials for registry `host` (`host[:port]`) in the file at
/// `path`: `None` when the file does not exist or has none for the host.
pub fn registry_login(path: &Path, host: &str) -> Result<Option<Auth>, RegistryLoginsError> {
    let body = match std::fs::read(path) {
        Ok(body) => body,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(RegistryLoginsError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let bad = |detail: String| RegistryLoginsError::Format {
        path: path.to_path_buf(),
        detail,
    };
    // serde_json's messages quote no input, only a line and column.
    let config: Value = serde_json::from_slice(&body).map_err(|e| bad(e.to_string()))?;
    let Some(auths) = config.get("auths").and_then(Value::as_object) else {
        return Ok(None);
    };
    let entry = auths
        .get(host)
        .or_else(|| {
            auths
                .iter()
                .find(|(key, _)| key_host(key) == host)
                .map(|(_, v)| v)
        })
        .filter(|entry| !entry.is_null());
    let Some(entry) = entry else {
        return Ok(None);
    };
    let text = |key: &str| entry.get(key).and_then(Value::as_str).unwrap_or_default();
    if !text("auth").is_empty() {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(text("auth").trim())
            .map_err(|_| bad(format!("auths.{host}.auth is not base64")))?;
        let pair = String::from_utf8(decoded)
            .map_err(|_| bad(format!("auths.{host}.auth is not UTF-8 text")))?;
        let Some((username, password)) = pair.split_once(':') else {
            return Err(bad(format!(
                "auths.{host}.auth is not base64 of `user:password`"
            )));
        };
        return Ok(Some(Auth::Basic {
            username: username.to_string(),
            password: password.to_string(),
        }));
    }
    if !text("username").is_empty() || !text("password").is_empty() {
        return Ok(Some(Auth::Basic {
            username: text("username").to_string(),
            password: text("password").to_string(),
        }));
    }
    Ok(None)
}

/// The `host[:port]` of a key of `auths`, which may carry a scheme and a
/// path.
fn key_host(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), text).expect("write");
        file
    }

    #[test]
    fn a_login_is_found_by_host_with_or_without_scheme() {
        // "alice:s3cret:x", a password may hold a colon.
        let f =
            file(r#"{"auths":{"https://reg.example:5000/v1/":{"auth":"YWxpY2U6czNjcmV0Ong="}}}"#);
        let auth = registry_login(f.path(), "reg.example:5000").expect("read");
        assert_eq!(
            auth,
            Some(Auth::Basic {
                username: "alice".into(),
                password: "s3cret:x".into()
            })
        );
        assert_eq!(registry_login(f.path(), "other:5000").expect("read"), None);
    }

    #[test]
    fn a_missing_file_has_no_logins_and_a_bad_one_is_named_without_secrets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let none = registry_login(&dir.path().join("config.json"), "h").expect("missing");
        assert_eq!(none, None);
        let f = file(r#"{"auths":{"h":{"auth":"not base64 s3cret!"}}}"#);
        let err = registry_login(f.path(), "h").expect_err("bad").to_string();
        assert!(err.contains("auths.h.auth is not base64"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let f = file("{\"auths\": s3cret");
        let err = registry_login(f.path(), "h").expect_err("bad").to_string();
        assert!(err.contains(&f.path().display().to_string()), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
