//! One SSH connection per host (russh), shared by an App's steps: strict host
//! key checking against a known_hosts file, public-key login, commands with
//! time limits, and TCP through the host for HTTP health checks.
//!
//! Private keys are never printed: [`Identity`] redacts itself and errors
//! about a key name its file, not its content.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use driftless_api::Host;
use russh::client::{self, Handle};

use crate::known_hosts::{KeyCheck, KnownHosts};
use crate::shell::Shell;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Why talking to a host failed.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// No TCP connection or no SSH handshake.
    #[error("host {host}: connecting to {address}: {message}")]
    Connect {
        /// Host name.
        host: String,
        /// `address:port`.
        address: String,
        /// The cause.
        message: String,
    },
    /// The host's key is not in the known_hosts file: refused.
    #[error("host {host}: host key {fingerprint} is not in {known_hosts}; refused")]
    HostKeyUnknown {
        /// Host name.
        host: String,
        /// SHA-256 fingerprint of the key offered.
        fingerprint: String,
        /// The known hosts checked.
        known_hosts: KnownHosts,
    },
    /// The host offered a key other than the one recorded: refused.
    #[error(
        "host {host}: host key {fingerprint} does not match the key recorded in {known_hosts} line {line}; refused"
    )]
    HostKeyMismatch {
        /// Host name.
        host: String,
        /// SHA-256 fingerprint of the key offered.
        fingerprint: String,
        /// The known hosts checked.
        known_hosts: KnownHosts,
        /// Line of the recorded key.
        line: usize,
    },
    /// The known hosts could not be read.
    #[error("host {host}: reading known hosts {known_hosts}: {message}")]
    KnownHosts {
        /// Host name.
        host: String,
        /// The file or Secret.
        known_hosts: KnownHosts,
        /// The cause.
        message: String,
    },
    /// The private key could not be loaded (its content is never shown).
    #[error("host {host}: loading identity {identity}: {message}")]
    Identity {
        /// Host name.
        host: String,
        /// The key file, or the Secret and key it came from.
        identity: String,
        /// The cause.
        message: String,
    },
    /// The host refused the key.
    #[error("host {host}: login as {user} with public key refused")]
    AuthRejected {
        /// Host name.
        host: String,
        /// User name.
        user: String,
    },
    /// An operation took longer than its limit.
    #[error("host {host}: {what} timed out after {after:?}")]
    Timeout {
        /// Host name.
        host: String,
        /// The operation.
        what: String,
        /// The limit.
        after: Duration,
    },
    /// A channel failed mid-way (connection lost, request refused).
    #[error("host {host}: {what}: {message}")]
    Channel {
        /// Host name.
        host: String,
        /// The operation.
        what: String,
        /// The cause.
        message: String,
    },
    /// A Host object that names a Secret needs its credentials from the caller.
    #[error("host {host}: spec.secretRef credentials must be given with Endpoint::with_identity")]
    NeedsSecret {
        /// Host name.
        host: String,
    },
}

/// The private key to log in with.
#[derive(Clone)]
pub enum Identity {
    /// A key file (OpenSSH or PEM format).
    File(PathBuf),
    /// The key itself, e.g. from a Secret.
    Key {
        /// Where it came from, for messages (e.g. `Secret team-a/web-ssh key identity`).
        origin: String,
        /// The key (OpenSSH or PEM format); never printed.
        pem: String,
    },
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Key { origin, .. } => write!(f, "Key({origin}, <redacted>)"),
        }
    }
}

impl Identity {
    fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Key { origin, .. } => origin.clone(),
        }
    }
}

/// Everything needed to reach one host.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Host object name.
    pub name: String,
    /// Address or host name.
    pub address: String,
    /// SSH port.
    pub port: u16,
    /// Login user.
    pub user: String,
    /// Private key.
    pub identity: Identity,
    /// The known hosts the host key must be in.
    pub known_hosts: KnownHosts,
    /// `appsRoot` on the host.
    pub apps_root: String,
    /// Per-host substitution variables.
    pub vars: BTreeMap<String, String>,
}

impl Endpoint {
    /// The endpoint of a standalone Host (identityFile and knownHostsFile).
    pub fn from_host(host: &Host) -> Result<Self, SshError> {
        let spec = &host.spec;
        match (&spec.identity_file, &spec.known_hosts_file) {
            (Some(identity), Some(known_hosts)) => Ok(Self::with_identity(
                host,
                Identity::File(identity.into()),
                KnownHosts::File(known_hosts.into()),
            )),
            _ => Err(SshError::NeedsSecret {
                host: host.name().to_owned(),
            }),
        }
    }

    /// The endpoint of a Host with credentials the caller resolved (in-cluster Secrets).
    pub fn with_identity(host: &Host, identity: Identity, known_hosts: KnownHosts) -> Self {
        let spec = &host.spec;
        Self {
            name: host.name().to_owned(),
            address: spec.address.clone(),
            port: spec.port,
            user: spec.user.clone(),
            identity,
            known_hosts,
            apps_root: spec.apps_root.clone(),
            vars: spec.vars.clone(),
        }
    }
}

/// Time limits of SSH operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect, handshake and login.
    pub connect: Duration,
    /// One ordinary command (read state, switch, prune).
    pub command: Duration,
    /// The upload of one release.
    pub upload: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(15),
            command: Duration::from_secs(60),
            upload: Duration::from_secs(600),
        }
    }
}

/// What a remote command printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit status; absent when the command died on a signal.
    pub status: Option<u32>,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

impl Output {
    /// Whether the command exited 0.
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// Standard error and output, trimmed to their last 4 KiB, for messages.
    pub fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.stderr).into_owned();
        text.push_str(&String::from_utf8_lossy(&self.stdout));
        let text = text.trim();
        let cut = text.len().saturating_sub(4096);
        let start = (cut..=text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[start..].to_owned()
    }
}

/// What the host key check saw, kept so a refusal becomes a typed error.
#[derive(Debug, Clone)]
enum KeyVerdict {
    Unknown(String),
    Mismatch(String, usize),
    Unreadable(String),
}

struct HostKeyCheck {
    address: String,
    port: u16,
    known_hosts: KnownHosts,
    verdict: Arc<Mutex<Option<KeyVerdict>>>,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = offered else {
            self.record(KeyVerdict::Unreadable(
                "host certificates are not supported".into(),
            ));
            return Ok(false);
        };
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        match self.known_hosts.check(&self.address, self.port, key) {
            Ok(KeyCheck::Trusted) => return Ok(true),
            Ok(KeyCheck::Unknown) => self.record(KeyVerdict::Unknown(fingerprint)),
            Ok(KeyCheck::Mismatch(line)) => self.record(KeyVerdict::Mismatch(fingerprint, line)),
            Err(e) => self.record(KeyVerdict::Unreadable(e)),
        }
        Ok(false)
    }
}

impl HostKeyCheck {
    fn record(&self, verdict: KeyVerdict) {
        if let Ok(mut slot) = self.verdict.lock() {
            *slot = Some(verdict);
        }
    }
}

/// An authenticated connection to one host.
pub struct Connection {
    host: String,
    handle: Handle<HostKeyCheck>,
    timeouts: Timeouts,
    /// Commands started so far (a lost connection with none started since a
    /// point in time ran nothing on the host from then on).
    commands: AtomicU64,
    /// The shell for bookkeeping scripts, started on first use.
    shell: tokio::sync::Mutex<Option<Shell>>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("host", &self.host)
            .finish()
    }
}

impl Connection {
    /// Connects, checks the host key against the endpoint's known_hosts (an
    /// unknown or different key is refused before anything is sent) and logs in.
    pub async fn open(endpoint: &Endpoint, timeouts: Timeouts) -> Result<Self, SshError> {
        let host = endpoint.name.clone();
        let key = load_identity(endpoint)?;
        let verdict = Arc::new(Mutex::new(None));
        let check = HostKeyCheck {
            address: endpoint.address.clone(),
            port: endpoint.port,
            known_hosts: endpoint.known_hosts.clone(),
            verdict: verdict.clone(),
        };
        let config = Arc::new(client::Config {
            keepalive_interval: Some(Duration::from_secs(10)),
            keepalive_max: 3,
            nodelay: true,
            ..client::Config::default()
        });
        let address = format!("{}:{}", endpoint.address, endpoint.port);
        let login = async {
            let mut handle =
                client::connect(config, (endpoint.address.as_str(), endpoint.port), check)
                    .await
                    .map_err(|e| {
                        refusal(endpoint, &verdict)
                            .unwrap_or_else(|| connect_error(&host, &address, e))
                    })?;
            let hash = handle
                .best_supported_rsa_hash()
                .await
                .map_err(|e| connect_error(&host, &address, e))?
                .flatten();
            let auth = handle
                .authenticate_publickey(
                    &endpoint.user,
                    PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                )
                .await
                .map_err(|e| connect_error(&host, &address, e))?;
            if !auth.success() {
                return Err(SshError::AuthRejected {
                    host: host.clone(),
                    user: endpoint.user.clone(),
                });
            }
            Ok(handle)
        };
        let handle = tokio::time::timeout(timeouts.connect, login)
            .await
            .map_err(|_| SshError::Timeout {
                host: host.clone(),
                what: format!("connecting to {address}"),
                after: timeouts.connect,
            })??;
        Ok(Self {
            host,
            handle,
            timeouts,
            commands: AtomicU64::new(0),
            shell: tokio::sync::Mutex::new(None),
        })
    }

    /// The host's name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The time limits in force.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Whether the connection has ended (the host went away, keepalives
    /// went unanswered, or it was closed).
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// How many commands were started on the host over this connection.
    pub fn commands_started(&self) -> u64 {
        self.commands.load(Ordering::SeqCst)
    }

    /// Runs `command` through the login shell, feeding `stdin` when given;
    /// gives up after `limit`.
    pub async fn run(
        &self,
        command: &str,
        stdin: Option<&[u8]>,
        limit: Duration,
    ) -> Result<Output, SshError> {
        self.bounded(
            first_line(command),
            limit,
            self.run_unbounded(command, stdin),
        )
        .await
    }

    /// Runs one of driftless's own scripts (no process left behind) with
    /// `stdin` in the shell kept on the host, or in a session of its own
    /// while that shell is busy or the input is large; gives up after `limit`.
    pub async fn run_script(
        &self,
        script: &str,
        stdin: Option<&[u8]>,
        limit: Duration,
    ) -> Result<Output, SshError> {
        let small = stdin.is_none_or(|data| data.len() <= crate::shell::MAX_INPUT);
        let slot = self.shell.try_lock().ok().filter(|_| small);
        let Some(mut slot) = slot else {
            return self.run(script, stdin, limit).await;
        };
        let work = async {
            let mut shell = match slot.take() {
                Some(shell) => shell,
                None => {
                    let channel = self
                        .handle
                        .channel_open_session()
                        .await
                        .map_err(|e| self.channel_error(script, e.to_string()))?;
                    Shell::start(channel)
                        .await
                        .map_err(|e| self.channel_error(script, e))?
                }
            };
            let marker = shell
                .submit(script, stdin)
                .await
                .map_err(|e| self.channel_error(script, e))?;
            self.commands.fetch_add(1, Ordering::SeqCst);
            let output = shell
                .answer(&marker)
                .await
                .map_err(|e| self.channel_error(script, e))?;
            // Kept only after a whole answer: a shell cut off mid-script
            // (time limit, lost connection) is dropped with its channel.
            *slot = Some(shell);
            Ok(output)
        };
        self.bounded(first_line(script), limit, work).await
    }

    fn channel_error(&self, command: &str, message: String) -> SshError {
        SshError::Channel {
            host: self.host.clone(),
            what: first_line(command),
            message,
        }
    }

    /// `work`, or a [`SshError::Timeout`] naming `what` after `limit`.
    async fn bounded<T>(
        &self,
        what: String,
        limit: Duration,
        work: impl Future<Output = Result<T, SshError>>,
    ) -> Result<T, SshError> {
        tokio::time::timeout(limit, work)
            .await
            .map_err(|_| SshError::Timeout {
                host: self.host.clone(),
                what,
                after: limit,
            })?
    }

    async fn run_unbounded(&self, command: &str, stdin: Option<&[u8]>) -> Result<Output, SshError> {
        let failed = |e: russh::Error| SshError::Channel {
            host: self.host.clone(),
            what: first_line(command),
            message: e.to_string(),
        };
        let channel = self.handle.channel_open_session().await.map_err(failed)?;
        // Counted before the request leaves: once sent, the command may run.
        self.commands.fetch_add(1, Ordering::SeqCst);
        channel.exec(true, command).await.map_err(failed)?;
        let (mut read, write) = channel.split();
        // Input is written while output is read: a connection that dies
        // mid-upload ends the read side at once, while a writer waiting for
        // window space would otherwise wait for ever.
        let writer = async {
            if let Some(input) = stdin {
                write.data(input).await?;
            }
            write.eof().await
        };
        tokio::pin!(writer);
        let mut writing = true;
        let mut output = Output::default();
        let mut exited = false;
        loop {
            tokio::select! {
                written = &mut writer, if writing => {
                    written.map_err(failed)?;
                    writing = false;
                }
                message = read.wait() => match message {
                    None => break,
                    Some(ChannelMsg::Data { data }) => output.stdout.extend_from_slice(&data),
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                        output.stderr.extend_from_slice(&data)
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => {
                        output.status = Some(exit_status);
                        exited = true;
                    }
                    Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                        let text = format!("killed by signal {signal_name:?}");
                        output.stderr.extend_from_slice(text.as_bytes());
                        exited = true;
                    }
                    Some(_) => {}
                },
            }
        }
        if !exited {
            return Err(SshError::Channel {
                host: self.host.clone(),
                what: first_line(command),
                message: "connection closed before the command finished".into(),
            });
        }
        Ok(output)
    }

    /// `GET path` on `address:port` as seen from the host, through the SSH
    /// connection; the status code and the first bytes of the answer.
    pub async fn http_get(
        &self,
        address: &str,
        port: u16,
        path: &str,
        limit: Duration,
    ) -> Result<(u16, String), SshError> {
        let what = format!("GET http://{address}:{port}{path}");
        let failed = |message: String| SshError::Channel {
            host: self.host.clone(),
            what: what.clone(),
            message,
        };
        let exchange = async {
            self.commands.fetch_add(1, Ordering::SeqCst);
            let channel = self
                .handle
                .channel_open_direct_tcpip(address, u32::from(port), "127.0.0.1", 0)
                .await
                .map_err(|e| failed(e.to_string()))?;
            let mut stream = channel.into_stream();
            let request = format!(
                "GET {path} HTTP/1.0\r\nHost: {address}:{port}\r\nConnection: close\r\n\r\n"
            );
            stream
                .write_all(request.as_bytes())
                .await
                .map_err(|e| failed(e.to_string()))?;
            let mut answer = Vec::new();
            let mut buf = [0u8; 4096];
            while answer.len() < 16 * 1024 {
                let n = stream
                    .read(&mut buf)
                    .await
                    .map_err(|e| failed(e.to_string()))?;
                if n == 0 {
                    break;
                }
                answer.extend_from_slice(&buf[..n]);
            }
            let text = String::from_utf8_lossy(&answer).into_owned();
            let status = text
                .split_whitespace()
                .nth(1)
                .and_then(|code| code.parse::<u16>().ok())
                .ok_or_else(|| failed(format!("not an HTTP answer: {:?}", first_line(&text))))?;
            let body = text
                .split("\r\n\r\n")
                .nth(1)
                .unwrap_or("")
                .chars()
                .take(512)
                .collect();
            Ok((status, body))
        };
        self.bounded(what.clone(), limit, exchange).await
    }

    /// Says goodbye to the host.
    pub async fn close(&self) {
        // A shell busy with a script ends with the connection below.
        let shell = self.shell.try_lock().ok().and_then(|mut s| s.take());
        if let Some(shell) = shell {
            shell.close().await;
        }
        // The connection is dropped either way; a failed goodbye changes nothing.
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }
}

fn load_identity(endpoint: &Endpoint) -> Result<russh::keys::PrivateKey, SshError> {
    let loaded = match &endpoint.identity {
        Identity::File(path) => russh::keys::load_secret_key(path, None),
        Identity::Key { pem, .. } => russh::keys::decode_secret_key(pem, None),
    };
    loaded.map_err(|e| SshError::Identity {
        host: endpoint.name.clone(),
        identity: endpoint.identity.describe(),
        message: e.to_string(),
    })
}

/// The typed refusal behind a failed handshake, when the host key check refused.
fn refusal(endpoint: &Endpoint, verdict: &Mutex<Option<KeyVerdict>>) -> Option<SshError> {
    let host = endpoint.name.clone();
    let known_hosts = endpoint.known_hosts.clone();
    let verdict = verdict.lock().ok()?.clone()?;
    Some(match verdict {
        KeyVerdict::Unknown(fingerprint) => SshError::HostKeyUnknown {
            host,
            fingerprint,
            known_hosts,
        },
        KeyVerdict::Mismatch(fingerprint, line) => SshError::HostKeyMismatch {
            host,
            fingerprint,
            known_hosts,
            line,
        },
        KeyVerdict::Unreadable(message) => SshError::KnownHosts {
            host,
            known_hosts,
            message,
        },
    })
}

fn connect_error(host: &str, address: &str, e: russh::Error) -> SshError {
    SshError::Connect {
        host: host.to_owned(),
        address: address.to_owned(),
        message: e.to_string(),
    }
}

/// The first line of a command or answer, short, for messages.
fn first_line(text: &str) -> String {
    let line = text.trim_start().lines().next().unwrap_or("");
    line.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_in_memory_is_never_printed() {
        let identity = Identity::Key {
            origin: "Secret team/web-ssh key identity".into(),
            pem: "-----BEGIN OPENSSH PRIVATE KEY-----secret".into(),
        };
        assert_eq!(
            format!("{identity:?}"),
            "Key(Secret team/web-ssh key identity, <redacted>)"
        );
        assert_eq!(identity.describe(), "Secret team/web-ssh key identity");
        let err = load_identity(&Endpoint {
            name: "web-1".into(),
            address: "127.0.0.1".into(),
            port: 22,
            user: "deploy".into(),
            identity,
            known_hosts: KnownHosts::File("/k".into()),
            apps_root: "/srv".into(),
            vars: BTreeMap::new(),
        })
        .expect_err("not a key");
        assert!(!err.to_string().contains("secret\""), "{err}");
        assert!(
            err.to_string().contains("Secret team/web-ssh key identity"),
            "{err}"
        );
    }

    #[test]
    fn output_text_keeps_the_end_of_long_output() {
        let out = Output {
            status: Some(1),
            stdout: "x".repeat(10_000).into_bytes(),
            stderr: b"boom\n".to_vec(),
        };
        assert_eq!(out.text().len(), 4096);
        assert!(!out.success());
    }
}
