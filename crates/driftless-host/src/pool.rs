//! Connections kept open between operations, one per host: a drift check
//! every interval or a rollout after a commit then costs its commands, not a
//! TCP connect, a key exchange and a login each time (as OpenSSH's
//! ControlPersist does for a shell user).
//!
//! A connection is reused while it is open and was used within the idle
//! limit; otherwise a new one is opened, with the host key checked again.
//! Keepalives (see [`Connection::open`]) notice a host that went away.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::known_hosts::KnownHosts;
use crate::ssh::{Connection, Endpoint, Identity, SshError, Timeouts};

/// What makes two endpoints the same connection: where, who, which key and
/// which known_hosts. A Host whose key or address changes gets a new one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Target {
    address: String,
    port: u16,
    user: String,
    identity: IdentityId,
    known_hosts: KnownHosts,
}

/// A key file by path, a key in memory by its digest (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum IdentityId {
    File(PathBuf),
    Key([u8; 32]),
}

impl Target {
    fn of(endpoint: &Endpoint) -> Self {
        let identity = match &endpoint.identity {
            Identity::File(path) => IdentityId::File(path.clone()),
            Identity::Key { pem, .. } => IdentityId::Key(Sha256::digest(pem.as_bytes()).into()),
        };
        Self {
            address: endpoint.address.clone(),
            port: endpoint.port,
            user: endpoint.user.clone(),
            identity,
            known_hosts: endpoint.known_hosts.clone(),
        }
    }
}

struct Held {
    connection: Arc<Connection>,
    used: Instant,
}

/// One slot per host; its lock is held while a connection is being opened,
/// so concurrent operations on one host share one login.
type Slot = Arc<Mutex<Option<Held>>>;

/// Open connections by host, reused within an idle limit.
pub struct ConnectionPool {
    idle: Duration,
    slots: Mutex<HashMap<Target, Slot>>,
}

/// A connection handed out by the pool.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The connection.
    pub connection: Arc<Connection>,
    /// Whether it was open before this lease (a fresh one was not).
    pub reused: bool,
    /// Commands the connection had started when leased.
    started: u64,
}

impl Lease {
    /// Whether the operation may run again on a new connection: it was
    /// handed an old connection that has since closed before any command of
    /// the operation started, so nothing ran on the host.
    pub fn may_retry(&self) -> bool {
        self.reused
            && self.connection.is_closed()
            && self.connection.commands_started() == self.started
    }
}

impl ConnectionPool {
    /// A pool that closes connections unused for `idle`.
    pub fn new(idle: Duration) -> Self {
        Self {
            idle,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// A connection to `endpoint`: the open one when it is still usable, a
    /// new one otherwise.
    pub async fn lease(&self, endpoint: &Endpoint, timeouts: Timeouts) -> Result<Lease, SshError> {
        let slot = {
            let mut slots = self.slots.lock().await;
            slots.entry(Target::of(endpoint)).or_default().clone()
        };
        let mut held = slot.lock().await;
        if let Some(h) = held.as_mut()
            && !h.connection.is_closed()
            && h.used.elapsed() < self.idle
        {
            h.used = Instant::now();
            return Ok(Lease {
                started: h.connection.commands_started(),
                connection: h.connection.clone(),
                reused: true,
            });
        }
        if let Some(stale) = held.take() {
            stale.connection.close().await;
        }
        let connection = Arc::new(Connection::open(endpoint, timeouts).await?);
        *held = Some(Held {
            connection: connection.clone(),
            used: Instant::now(),
        });
        Ok(Lease {
            started: connection.commands_started(),
            connection,
            reused: false,
        })
    }

    /// After work on `lease` failed: forgets its connection when it closed,
    /// and says whether the work may run once more on a new connection
    /// (see [`Lease::may_retry`]).
    pub async fn failed(&self, endpoint: &Endpoint, lease: &Lease) -> bool {
        if !lease.connection.is_closed() {
            return false;
        }
        self.forget(endpoint).await;
        lease.may_retry()
    }

    /// Forgets the connection to `endpoint` (after it failed), closing it.
    pub async fn forget(&self, endpoint: &Endpoint) {
        let slot = self.slots.lock().await.get(&Target::of(endpoint)).cloned();
        if let Some(slot) = slot
            && let Some(held) = slot.lock().await.take()
        {
            held.connection.close().await;
        }
    }

    /// Closes the connections unused for the idle limit or already closed,
    /// and drops hosts no longer in use; returns how many stay open.
    pub async fn close_idle(&self) -> usize {
        let mut slots = self.slots.lock().await;
        let mut open = 0;
        let mut empty = Vec::new();
        for (target, slot) in slots.iter() {
            // A slot busy opening a connection is in use: leave it.
            let Ok(mut held) = slot.try_lock() else {
                open += 1;
                continue;
            };
            let expired = held
                .as_ref()
                .is_some_and(|h| h.connection.is_closed() || h.used.elapsed() >= self.idle);
            if expired && let Some(h) = held.take() {
                h.connection.close().await;
            }
            if held.is_some() {
                open += 1;
            } else {
                empty.push(target.clone());
            }
        }
        for target in empty {
            slots.remove(&target);
        }
        open
    }

    /// Closes every connection.
    pub async fn close_all(&self) {
        let slots: Vec<Slot> = self.slots.lock().await.drain().map(|(_, s)| s).collect();
        for slot in slots {
            if let Some(held) = slot.lock().await.take() {
                held.connection.close().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(identity: Identity) -> Endpoint {
        Endpoint {
            name: "web-1".into(),
            address: "127.0.0.1".into(),
            port: 22,
            user: "deploy".into(),
            identity,
            known_hosts: KnownHosts::File("/etc/known_hosts".into()),
            apps_root: "/srv".into(),
            vars: Default::default(),
        }
    }

    #[test]
    fn a_changed_key_address_or_user_is_another_connection() {
        let key = |pem: &str| Identity::Key {
            origin: "Secret s key identity".into(),
            pem: pem.into(),
        };
        let a = endpoint(key("one"));
        assert_eq!(Target::of(&a), Target::of(&a.clone()));
        let other_key = endpoint(key("two"));
        assert_ne!(Target::of(&a), Target::of(&other_key));
        let mut moved = a.clone();
        moved.port = 2222;
        assert_ne!(Target::of(&a), Target::of(&moved));
        let mut rekeyed = a.clone();
        rekeyed.known_hosts = KnownHosts::Lines {
            origin: "Secret s key known_hosts".into(),
            text: "[127.0.0.1]:22 ssh-ed25519 AAAA".into(),
        };
        assert_ne!(
            Target::of(&a),
            Target::of(&rekeyed),
            "changed known hosts check the host key again"
        );
        let mut renamed = a.clone();
        renamed.apps_root = "/other".into();
        assert_eq!(
            Target::of(&a),
            Target::of(&renamed),
            "the apps root is not part of a login"
        );
        let target = format!("{:?}", Target::of(&a));
        assert!(
            !target.contains("one"),
            "the key itself is never kept: {target}"
        );
    }
}
