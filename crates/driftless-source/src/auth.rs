//! Credentials for Git remotes: HTTPS basic/bearer, custom CA bundle, SSH keys.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;

use crate::git::Git;

/// Failure to prepare credentials for a git run.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A private credential file could not be written.
    #[error("writing credential file {path}: {source}")]
    Write {
        /// File that failed.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// SSH credentials were given for a non-SSH URL or vice versa.
    #[error("{url}: {what} credentials cannot be used with this URL scheme")]
    SchemeMismatch {
        /// The remote URL.
        url: String,
        /// Kind of credentials given.
        what: &'static str,
    },
}

/// Credentials used to reach a remote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// No credentials (public repository or local path).
    #[default]
    None,
    /// HTTP basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password or access token.
        password: String,
    },
    /// HTTP `Authorization: Bearer` token.
    Bearer {
        /// The token.
        token: String,
    },
    /// SSH private key with known_hosts; host keys are always checked strictly.
    Ssh {
        /// Private key in OpenSSH PEM form.
        private_key: String,
        /// Passphrase for an encrypted key.
        passphrase: Option<String>,
        /// known_hosts lines for the server.
        known_hosts: String,
    },
}

/// TLS settings for HTTPS remotes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// PEM bundle of CA certificates trusted instead of the system roots.
    pub ca_bundle: Option<String>,
}

/// Credential files that live for one git run, in a private (0700) directory
/// with a fresh random name that is removed on drop.
#[derive(Debug)]
pub struct CredentialFiles {
    dir: tempfile::TempDir,
}

impl CredentialFiles {
    fn new(parent: &Path) -> Result<Self, AuthError> {
        let dir = tempfile::Builder::new()
            .prefix("cred-")
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir_in(parent)
            .map_err(|source| AuthError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        Ok(CredentialFiles { dir })
    }

    fn write(&self, name: &str, contents: &str, mode: u32) -> Result<PathBuf, AuthError> {
        let path = self.dir.path().join(name);
        let err = |source| AuthError::Write {
            path: path.clone(),
            source,
        };
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&path)
            .map_err(err)?;
        file.write_all(contents.as_bytes()).map_err(err)?;
        Ok(path)
    }
}

/// True when `url` is reached over SSH (`ssh://` or scp-like `user@host:path`).
pub fn is_ssh_url(url: &str) -> bool {
    if url.starts_with("ssh://") || url.starts_with("git+ssh://") {
        return true;
    }
    if url.contains("://") {
        return false;
    }
    // scp-like syntax: a colon before the first slash, e.g. git@host:org/repo.
    match (url.find(':'), url.find('/')) {
        (Some(colon), Some(slash)) => colon < slash,
        (Some(_), None) => true,
        _ => false,
    }
}

fn is_http_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// Control socket shared by SSH connections to the same host with the same
/// credentials, or `None` when its path would be too long for a Unix socket.
fn multiplex_socket(url: &str, auth: &Auth, scratch: &Path) -> Option<PathBuf> {
    // Sockets live beside the scratch directory, in a private `ssh` directory.
    let dir = scratch.parent()?.join("ssh");
    let host = match url.split_once("://") {
        Some((_, rest)) => rest.split('/').next().unwrap_or(rest),
        None => url.split(':').next().unwrap_or(url),
    };
    let socket = dir.join(crate::fetch::key_of(&format!("{host}\n{auth:?}")));
    // sun_path holds 108 bytes; ssh appends a temporary suffix while binding.
    if socket.as_os_str().len() > 80 {
        return None;
    }
    fs::create_dir_all(&dir).ok()?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).ok()?;
    Some(socket)
}

/// `url` with any password in its user-info replaced by `***`, for messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{path}")
        }
        None => url.to_string(),
    }
}

/// `url` without the password of its user-info, and the credentials that
/// password was for: `https://user:pass@host/r` gives `https://user@host/r`
/// and Basic credentials of `user` and `pass` (percent-decoded). A URL
/// handed to `git` is on its command line, which every local user can read
/// in a process listing; credentials travel in the environment instead.
/// Only HTTP(S) can use them; for other schemes the password is dropped.
pub fn split_url_credentials(url: &str) -> (String, Option<Auth>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_string(), None);
    };
    let Some((user, password)) = userinfo.split_once(':') else {
        return (url.to_string(), None);
    };
    let bare = if user.is_empty() {
        format!("{scheme}://{host}{path}")
    } else {
        format!("{scheme}://{user}@{host}{path}")
    };
    let auth = is_http_url(url).then(|| Auth::Basic {
        username: percent_decode(user),
        password: percent_decode(password),
    });
    (bare, auth)
}

/// Decodes `%XX` escapes as a URL's user-info may hold them; anything else
/// is kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Value of the HTTP `Authorization` header for `auth`, if it uses one.
pub fn http_authorization(auth: &Auth) -> Option<String> {
    match auth {
        Auth::Basic { username, password } => {
            let raw = format!("{username}:{password}");
            let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
            Some(format!("Basic {encoded}"))
        }
        Auth::Bearer { token } => Some(format!("Bearer {token}")),
        Auth::None | Auth::Ssh { .. } => None,
    }
}

/// Applies `auth` and `tls` to a git runner for `url`.
///
/// Returns the runner and the credential files it refers to; keep the files
/// alive until git has finished.
pub fn apply(
    git: Git,
    url: &str,
    auth: &Auth,
    tls: &Tls,
    scratch: &Path,
) -> Result<(Git, Option<CredentialFiles>), AuthError> {
    let mut git = git;
    let mut files = None;
    if let Some(bundle) = &tls.ca_bundle {
        let f = CredentialFiles::new(scratch)?;
        let path = f.write("ca.pem", bundle, 0o600)?;
        // The environment variable outranks `http.sslCAInfo`, and may already
        // be set for the whole process, so set both.
        git = git
            .config("http.sslCAInfo", &path.to_string_lossy())
            .env("GIT_SSL_CAINFO", path.as_os_str());
        files = Some(f);
    }
    match auth {
        Auth::None => {}
        Auth::Basic { .. } | Auth::Bearer { .. } => {
            if !is_http_url(url) {
                let what = if matches!(auth, Auth::Basic { .. }) {
                    "basic"
                } else {
                    "bearer"
                };
                return Err(AuthError::SchemeMismatch {
                    url: url.into(),
                    what,
                });
            }
            if let Some(value) = http_authorization(auth) {
                git = git.config("http.extraHeader", &format!("Authorization: {value}"));
            }
        }
        Auth::Ssh {
            private_key,
            passphrase,
            known_hosts,
        } => {
            if !is_ssh_url(url) {
                return Err(AuthError::SchemeMismatch {
                    url: url.into(),
                    what: "ssh",
                });
            }
            let f = match files.take() {
                Some(f) => f,
                None => CredentialFiles::new(scratch)?,
            };
            let mut key = private_key.clone();
            if !key.ends_with('\n') {
                // ssh-keygen and ssh reject keys without the final newline.
                key.push('\n');
            }
            let key_path = f.write("identity", &key, 0o600)?;
            let hosts_path = f.write("known_hosts", known_hosts, 0o600)?;
            let command = format!(
                "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o IdentityAgent=none \
                 -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null \
                 -o StrictHostKeyChecking=yes -o PasswordAuthentication=no \
                 -o KbdInteractiveAuthentication=no -o ConnectTimeout=30 \
                 -o ServerAliveInterval=15 -o ServerAliveCountMax=4",
                shell_quote(&key_path),
                shell_quote(&hosts_path)
            );
            let command = match multiplex_socket(url, auth, scratch) {
                // Polls reuse one authenticated connection per host and
                // credentials for two minutes, instead of a handshake each.
                Some(socket) => format!(
                    "{command} -o ControlMaster=auto -o ControlPath={} -o ControlPersist=120",
                    shell_quote(&socket)
                ),
                None => command,
            };
            git = git.env("GIT_SSH_COMMAND", command);
            match passphrase {
                Some(pass) => {
                    // ssh reads the passphrase from an askpass program; the
                    // program prints an env var so the secret is never on disk.
                    let askpass = f.write(
                        "askpass",
                        "#!/bin/sh\nprintf '%s\\n' \"$DRIFTLESS_SSH_PASSPHRASE\"\n",
                        0o700,
                    )?;
                    git = git
                        .env("SSH_ASKPASS", askpass.as_os_str())
                        .env("SSH_ASKPASS_REQUIRE", "force")
                        .env("DISPLAY", ":0")
                        .env("DRIFTLESS_SSH_PASSPHRASE", pass.as_str());
                }
                None => git = git.env("SSH_ASKPASS_REQUIRE", "never"),
            }
            files = Some(f);
        }
    }
    Ok((git, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_ssh_urls() {
        assert!(is_ssh_url("ssh://git@example.com/org/repo.git"));
        assert!(is_ssh_url("git@example.com:org/repo.git"));
        assert!(!is_ssh_url("https://example.com/org/repo.git"));
        assert!(!is_ssh_url("/srv/git/repo.git"));
        assert!(!is_ssh_url("file:///srv/git/repo.git"));
    }

    #[test]
    fn url_passwords_become_basic_credentials() {
        let (url, auth) = split_url_credentials("https://bob:p%40ss%3Aw@git.example.com/r.git");
        assert_eq!(url, "https://bob@git.example.com/r.git");
        assert_eq!(
            auth,
            Some(Auth::Basic {
                username: "bob".into(),
                password: "p@ss:w".into(),
            })
        );
        let (url, auth) = split_url_credentials("http://:tok@host:8080/r");
        assert_eq!(url, "http://host:8080/r");
        assert!(matches!(auth, Some(Auth::Basic { username, .. }) if username.is_empty()));
        let (url, auth) = split_url_credentials("ssh://git:pw@host/r");
        assert_eq!((url.as_str(), auth), ("ssh://git@host/r", None));
        for plain in [
            "https://bob@host/r",
            "https://host/r",
            "/srv/r.git",
            "git@host:r",
        ] {
            assert_eq!(split_url_credentials(plain), (plain.to_string(), None));
        }
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("https://bob:hunter2@git.example.com/r.git"),
            "https://bob:***@git.example.com/r.git"
        );
        assert_eq!(redact_url("ssh://git@host/r"), "ssh://git@host/r");
        assert_eq!(redact_url("/srv/r.git"), "/srv/r.git");
    }

    #[test]
    fn basic_auth_refuses_ssh_url() {
        let dir = std::env::temp_dir();
        let auth = Auth::Basic {
            username: "u".into(),
            password: "p".into(),
        };
        let err = apply(Git::new(), "git@h:r", &auth, &Tls::default(), &dir)
            .expect_err("basic auth over ssh must be refused");
        assert!(err.to_string().contains("basic credentials"), "{err}");
    }
}
