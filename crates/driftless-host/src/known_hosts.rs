//! The host keys a host is checked against: a known_hosts file, or known_hosts
//! lines held in memory (from a Secret), matched the same way.
//!
//! Lines are `HOSTS KEYTYPE BASE64 [COMMENT]`; `HOSTS` is a comma-separated list
//! of names (`[host]:port` for ports other than 22) or hashed names
//! (`|1|salt|hash`, HMAC-SHA1 of the name). Lines with a marker (`@revoked`,
//! `@cert-authority`) never accept a key.

use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use driftless_api::glob;
use hmac::{Hmac, Mac};
use russh::keys::PublicKey;
use sha1::Sha1;

/// Where the trusted host keys come from.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum KnownHosts {
    /// A known_hosts file (a missing file trusts no key).
    File(PathBuf),
    /// known_hosts lines in memory, with what they are called in messages
    /// (e.g. `Secret team-a/web-ssh key known_hosts`).
    Lines {
        /// Where the lines came from.
        origin: String,
        /// The lines.
        text: String,
    },
}

impl fmt::Debug for KnownHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Lines { origin, .. } => f.debug_tuple("Lines").field(origin).finish(),
        }
    }
}

impl fmt::Display for KnownHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Lines { origin, .. } => f.write_str(origin),
        }
    }
}

/// What the known hosts say of a key a host offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyCheck {
    /// A line for this host records this key.
    Trusted,
    /// No line for this host records a key of this type.
    Unknown,
    /// A line for this host records another key of this type (1-based line).
    Mismatch(usize),
}

impl KnownHosts {
    /// Checks `key` offered by `address:port`; an error says why the lines
    /// could not be read.
    pub(crate) fn check(
        &self,
        address: &str,
        port: u16,
        key: &PublicKey,
    ) -> Result<KeyCheck, String> {
        let text = match self {
            Self::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => return Err(e.to_string()),
            },
            Self::Lines { text, .. } => text.clone(),
        };
        check_lines(&text, address, port, key)
    }
}

/// The verdict of `text` on `key`: trusted if any line of the host records it,
/// else a mismatch at the first line recording another key of its type.
fn check_lines(text: &str, address: &str, port: u16, key: &PublicKey) -> Result<KeyCheck, String> {
    let name = if port == 22 {
        address.to_owned()
    } else {
        format!("[{address}]:{port}")
    };
    let mut mismatch = None;
    for (index, line) in text.lines().enumerate() {
        let mut fields = line.split_whitespace();
        let Some(hosts) = fields.next() else {
            continue;
        };
        if hosts.starts_with('#') || hosts.starts_with('@') || !matches_name(hosts, &name) {
            continue;
        }
        let (Some(_), Some(base64)) = (fields.next(), fields.next()) else {
            continue;
        };
        let recorded = russh::keys::parse_public_key_base64(base64)
            .map_err(|e| format!("line {}: {e}", index + 1))?;
        if recorded.algorithm() != key.algorithm() {
            continue;
        }
        if recorded.key_data() == key.key_data() {
            return Ok(KeyCheck::Trusted);
        }
        mismatch.get_or_insert(index + 1);
    }
    Ok(mismatch.map_or(KeyCheck::Unknown, KeyCheck::Mismatch))
}

/// Whether a line's host list names `name`, as OpenSSH reads it: entries
/// are hashed names or patterns (`*` and `?` wildcards, no case), and a
/// negated pattern (`!`) that matches excludes the line whatever else does.
fn matches_name(hosts: &str, name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let mut matched = false;
    for entry in hosts.split(',') {
        if let Some(hashed) = entry.strip_prefix("|1|") {
            matched |= matches_hashed(hashed, &name);
        } else if let Some(negated) = entry.strip_prefix('!') {
            if glob(&negated.to_ascii_lowercase(), &name) {
                return false;
            }
        } else {
            matched |= glob(&entry.to_ascii_lowercase(), &name);
        }
    }
    matched
}

/// `salt|hash`, both base64: whether HMAC-SHA1(salt, name) is the hash.
fn matches_hashed(hashed: &str, name: &str) -> bool {
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (STANDARD.decode(salt), STANDARD.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const KEY_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAINvRe0EXQSYbj4+LlOw8KmhGYVhoA6oQRFWVhldBUzT1";

    fn key(base64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(base64).expect("test key")
    }

    fn lines(text: &str) -> KnownHosts {
        KnownHosts::Lines {
            origin: "Secret team/web-ssh key known_hosts".into(),
            text: text.into(),
        }
    }

    #[test]
    fn plain_names_with_ports_are_matched_and_another_key_is_a_mismatch() {
        let known = lines(&format!(
            "# comment\n\nother.example {KEY_B}\n[127.0.0.1]:2222 ssh-ed25519 {KEY_A} c\n"
        ));
        let trusted = known.check("127.0.0.1", 2222, &key(KEY_A));
        assert_eq!(trusted, Ok(KeyCheck::Trusted));
        let wrong = known.check("127.0.0.1", 2222, &key(KEY_B));
        assert_eq!(wrong, Ok(KeyCheck::Mismatch(4)));
        // Port 22 is written without brackets; another port is another host.
        let other_port = known.check("127.0.0.1", 22, &key(KEY_A));
        assert_eq!(other_port, Ok(KeyCheck::Unknown));
        assert_eq!(
            format!("{known:?}"),
            "Lines(\"Secret team/web-ssh key known_hosts\")"
        );
        assert_eq!(known.to_string(), "Secret team/web-ssh key known_hosts");
    }

    #[test]
    fn hashed_names_are_matched_and_markers_trust_nothing() {
        // `ssh-keygen -H` of "[127.0.0.1]:2222" with this salt.
        let salt = [7u8; 20];
        let mut mac = Hmac::<Sha1>::new_from_slice(&salt).expect("any key length");
        mac.update(b"[127.0.0.1]:2222");
        let hash = STANDARD.encode(mac.finalize().into_bytes());
        let hashed = format!("|1|{}|{hash}", STANDARD.encode(salt));
        let known = lines(&format!("{hashed} ssh-ed25519 {KEY_A}\n"));
        assert_eq!(
            known.check("127.0.0.1", 2222, &key(KEY_A)),
            Ok(KeyCheck::Trusted)
        );
        assert_eq!(
            known.check("127.0.0.2", 2222, &key(KEY_A)),
            Ok(KeyCheck::Unknown)
        );
        let revoked = lines(&format!("@revoked [127.0.0.1]:2222 ssh-ed25519 {KEY_A}\n"));
        assert_eq!(
            revoked.check("127.0.0.1", 2222, &key(KEY_A)),
            Ok(KeyCheck::Unknown)
        );
        let broken = lines("[127.0.0.1]:2222 ssh-ed25519 not-base64\n");
        let err = broken
            .check("127.0.0.1", 2222, &key(KEY_A))
            .expect_err("bad key");
        assert!(err.starts_with("line 1:"), "{err}");
    }

    #[test]
    fn patterns_match_as_openssh_reads_them() {
        assert!(glob("*.example.com", "web-1.example.com"));
        assert!(glob("web-?.example.com", "web-1.example.com"));
        assert!(!glob("web-?.example.com", "web-10.example.com"));
        assert!(glob("[10.0.0.*]:2222", "[10.0.0.5]:2222"));
        assert!(!glob("*.example.com", "example.com"));
        assert!(glob("*", "anything"));
        assert!(matches_name(
            "*.example.com,!db.example.com",
            "WEB.example.com"
        ));
        assert!(!matches_name(
            "*.example.com,!db.example.com",
            "db.example.com"
        ));
        assert!(
            !matches_name("!db.example.com", "web.example.com"),
            "a negation alone names nothing"
        );
        let lines = lines(&format!("*.internal,!old.internal ssh-ed25519 {KEY_A}\n"));
        assert_eq!(
            lines.check("web.internal", 22, &key(KEY_A)),
            Ok(KeyCheck::Trusted)
        );
        assert_eq!(
            lines.check("old.internal", 22, &key(KEY_A)),
            Ok(KeyCheck::Unknown)
        );
    }

    #[test]
    fn a_missing_file_trusts_no_key() {
        let missing = KnownHosts::File("/nonexistent/known_hosts".into());
        assert_eq!(missing.check("h", 22, &key(KEY_A)), Ok(KeyCheck::Unknown));
    }
}
