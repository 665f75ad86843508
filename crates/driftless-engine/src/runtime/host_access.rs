//! How each Host is reached: its endpoint (for a Host with `secretRef`, the
//! private key and known_hosts read from its Secret into memory, as a
//! GitSource's SSH Secret is read), and what the last attempt to reach it
//! found, which a Host's status shows.
//!
//! Key material is never written to disk: it stays in the endpoint, whose
//! identity redacts itself, and errors name the Secret and key, not values.

use std::collections::BTreeMap;
use std::sync::Arc;

use driftless_api::status::{Condition, ConditionStatus, READY};
use driftless_api::{Host, HostStatus, IDENTITY_KEY, KNOWN_HOSTS_KEY};
use driftless_host::{Endpoint, HostError, Identity, KnownHosts, SshError};

use super::clusters::secret;
use super::sources::secret_namespace;
use super::{Inner, lock};
use crate::store::Named;

/// What the last attempt to reach a Host found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Contact {
    /// `Ready` condition reason: `Reachable`, or why not.
    pub(crate) reason: &'static str,
    /// The message, naming the Secret and key or the host key's source.
    pub(crate) message: String,
    /// Whether the host was reached with its key checked.
    pub(crate) reached: bool,
}

/// Reason of a Host whose Secret is missing, unreadable or lacks a key.
const SECRET_INVALID: &str = "SecretInvalid";

impl Contact {
    fn reached() -> Self {
        Self {
            reason: "Reachable",
            message: "reached over SSH; host key checked and login accepted".to_owned(),
            reached: true,
        }
    }

    /// The credentials of a Host could not be made (its Secret).
    pub(crate) fn credentials(message: &str) -> Self {
        Self {
            reason: SECRET_INVALID,
            message: message.to_owned(),
            reached: false,
        }
    }

    /// How a host's part ended, as far as reaching it goes: a failure after
    /// login (a hook, a check) still reached it.
    pub(crate) fn of(result: Result<(), &HostError>) -> Self {
        let Err(HostError::Ssh(e)) = result else {
            return Self::reached();
        };
        let reason = match e {
            SshError::HostKeyUnknown { .. } => "HostKeyUnknown",
            SshError::HostKeyMismatch { .. } => "HostKeyMismatch",
            SshError::KnownHosts { .. } | SshError::Identity { .. } => SECRET_INVALID,
            SshError::AuthRejected { .. } => "LoginRefused",
            SshError::Connect { .. } | SshError::Timeout { .. } | SshError::Channel { .. } => {
                "Unreachable"
            }
            SshError::NeedsSecret { .. } => SECRET_INVALID,
        };
        Self {
            reason,
            message: e.to_string(),
            reached: false,
        }
    }
}

impl Inner {
    /// How to reach `host`; the error names the Secret and key at fault.
    pub(crate) async fn host_endpoint(self: &Arc<Self>, host: &Host) -> Result<Endpoint, String> {
        let Some(secret_ref) = &host.spec.secret_ref else {
            return Endpoint::from_host(host).map_err(|e| e.to_string());
        };
        let namespace = secret_namespace(&host.metadata);
        let name = &secret_ref.name;
        let config = self.config();
        let cluster = self
            .cluster(&config, None)
            .await
            .map_err(|e| format!("spec.secretRef: reading Secret {namespace}/{name}: {e}"))?;
        let data = secret(&cluster.target, namespace, name)
            .await
            .map_err(|e| format!("spec.secretRef: {e}"))?;
        let value = |key: &str| {
            data.get(key)
                .filter(|v| !v.trim().is_empty())
                .cloned()
                .ok_or_else(|| {
                    format!("spec.secretRef: Secret {namespace}/{name} has no key {key}")
                })
        };
        let origin = |key: &str| format!("Secret {namespace}/{name} key {key}");
        let identity = Identity::Key {
            origin: origin(IDENTITY_KEY),
            pem: value(IDENTITY_KEY)?,
        };
        let known_hosts = KnownHosts::Lines {
            origin: origin(KNOWN_HOSTS_KEY),
            text: value(KNOWN_HOSTS_KEY)?,
        };
        Ok(Endpoint::with_identity(host, identity, known_hosts))
    }

    /// Keeps what reaching each host found, by Host name.
    pub(crate) fn note_contacts(&self, contacts: impl IntoIterator<Item = (String, Contact)>) {
        let mut known = lock(&self.host_contacts);
        for (host, contact) in contacts {
            known.insert(host, contact);
        }
    }

    /// The status of every declared Host: `Ready` from the last attempt to reach it.
    pub(crate) fn host_statuses(&self) -> Vec<Named<HostStatus>> {
        let config = self.config();
        let known: BTreeMap<String, Contact> = lock(&self.host_contacts).clone();
        config
            .hosts()
            .map(|host| {
                let condition = match known.get(host.name()) {
                    Some(c) => {
                        let status = if c.reached {
                            ConditionStatus::True
                        } else {
                            ConditionStatus::False
                        };
                        Condition::new(READY, status, c.reason, &c.message)
                    }
                    None => Condition::new(
                        READY,
                        ConditionStatus::Unknown,
                        "NotContacted",
                        "no App has reached it yet",
                    ),
                };
                let status = HostStatus {
                    conditions: vec![condition],
                };
                Named::new(host.name(), status)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_host_key_and_a_failed_hook_are_told_apart() {
        let mismatch = SshError::HostKeyMismatch {
            host: "web-1".into(),
            fingerprint: "SHA256:x".into(),
            known_hosts: KnownHosts::Lines {
                origin: "Secret team/web-ssh key known_hosts".into(),
                text: String::new(),
            },
            line: 1,
        };
        let refused = Contact::of(Err(&HostError::Ssh(mismatch)));
        assert_eq!(refused.reason, "HostKeyMismatch");
        assert!(!refused.reached);
        assert!(
            refused
                .message
                .contains("Secret team/web-ssh key known_hosts line 1"),
            "{}",
            refused.message
        );
        assert!(Contact::of(Ok(())).reached);
    }
}
