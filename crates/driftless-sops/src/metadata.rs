//! The `sops` section of an encrypted file: who holds the data key, which
//! values are encrypted, and the MAC.

use serde_json::{Map, Value};

use crate::SopsError;

/// One holder of the data key (or of a key group's part of it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MasterKey {
    /// An age recipient with the armored age file holding the key.
    Age { recipient: String, enc: String },
    /// An OpenPGP key (fingerprint) with the armored message holding the key.
    Pgp { fingerprint: String, enc: String },
    /// A key service driftless does not reach (`kms`, `gcp_kms`, ...).
    Other { provider: String },
}

/// The rules that say which values sops encrypted.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rules {
    pub unencrypted_suffix: Option<String>,
    pub encrypted_suffix: Option<String>,
    pub unencrypted_regex: Option<regex::Regex>,
    pub encrypted_regex: Option<regex::Regex>,
    /// `encrypted_comment_regex` or `unencrypted_comment_regex` is set: which
    /// values sops encrypted then depends on the comments above them.
    pub by_comments: bool,
}

/// The parsed `sops` section.
#[derive(Debug, Clone)]
pub(crate) struct Metadata {
    /// Key groups; without `key_groups` the top-level keys form one group.
    pub key_groups: Vec<Vec<MasterKey>>,
    /// How many groups' parts recombine the data key.
    pub shamir_threshold: usize,
    /// `lastmodified` as written: the MAC's additional data.
    pub last_modified: String,
    /// The encrypted MAC.
    pub mac: String,
    pub rules: Rules,
    pub mac_only_encrypted: bool,
}

/// The providers whose keys live in a service, not in a file.
const SERVICE_PROVIDERS: [&str; 5] = ["kms", "gcp_kms", "azure_kv", "hc_vault", "hckms"];

impl Metadata {
    /// Reads the `sops` map of `file`.
    pub(crate) fn parse(sops: &Value, file: &str) -> Result<Metadata, SopsError> {
        let problem = |problem: String| SopsError::Metadata {
            file: file.to_string(),
            problem,
        };
        let map = sops
            .as_object()
            .ok_or_else(|| problem("is not a map".into()))?;
        let text = |name: &str| -> Option<String> {
            match map.get(name) {
                Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                _ => None,
            }
        };
        let regex = |name: &str| -> Result<Option<regex::Regex>, SopsError> {
            text(name)
                .map(|r| regex::Regex::new(&r).map_err(|e| problem(format!("{name}: {e}"))))
                .transpose()
        };
        let rules = Rules {
            unencrypted_suffix: text("unencrypted_suffix"),
            encrypted_suffix: text("encrypted_suffix"),
            unencrypted_regex: regex("unencrypted_regex")?,
            encrypted_regex: regex("encrypted_regex")?,
            by_comments: regex("encrypted_comment_regex")?.is_some()
                || regex("unencrypted_comment_regex")?.is_some(),
        };
        let key_groups = match map.get("key_groups") {
            Some(Value::Array(groups)) if !groups.is_empty() => groups
                .iter()
                .map(|g| g.as_object().map(master_keys).unwrap_or_default())
                .collect(),
            _ => vec![master_keys(map)],
        };
        if key_groups.iter().all(Vec::is_empty) {
            return Err(problem(
                "names no key (no age, pgp or key service entry)".into(),
            ));
        }
        let shamir_threshold = match map.get("shamir_threshold") {
            Some(Value::Number(n)) => n.as_u64().unwrap_or(0) as usize,
            Some(Value::String(s)) => s.parse().unwrap_or(0),
            _ => 0,
        };
        let shamir_threshold = if shamir_threshold == 0 {
            key_groups.len()
        } else {
            shamir_threshold
        };
        let mac_only_encrypted = matches!(map.get("mac_only_encrypted"), Some(Value::Bool(true)))
            || matches!(map.get("mac_only_encrypted"), Some(Value::String(s)) if s == "true");
        Ok(Metadata {
            key_groups,
            shamir_threshold,
            last_modified: text("lastmodified")
                .ok_or_else(|| problem("has no lastmodified".into()))?,
            mac: text("mac").ok_or_else(|| problem("has no mac".into()))?,
            rules,
            mac_only_encrypted,
        })
    }

    /// The providers of keys that driftless cannot use, when a group has no other.
    pub(crate) fn service_only_provider(&self) -> Option<String> {
        let usable = |k: &MasterKey| !matches!(k, MasterKey::Other { .. });
        self.key_groups
            .iter()
            .find(|group| !group.iter().any(usable))
            .and_then(|group| {
                group.iter().find_map(|k| match k {
                    MasterKey::Other { provider } => Some(provider.clone()),
                    _ => None,
                })
            })
    }
}

/// The master keys of one group (or of the top-level section).
fn master_keys(map: &Map<String, Value>) -> Vec<MasterKey> {
    let entries = |name: &str| -> Vec<&Map<String, Value>> {
        match map.get(name) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_object).collect(),
            _ => Vec::new(),
        }
    };
    let field = |entry: &Map<String, Value>, name: &str| {
        entry
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut keys = Vec::new();
    for entry in entries("age") {
        keys.push(MasterKey::Age {
            recipient: field(entry, "recipient"),
            enc: field(entry, "enc"),
        });
    }
    for entry in entries("pgp") {
        keys.push(MasterKey::Pgp {
            fingerprint: field(entry, "fp"),
            enc: field(entry, "enc"),
        });
    }
    for provider in SERVICE_PROVIDERS {
        if !entries(provider).is_empty() {
            keys.push(MasterKey::Other {
                provider: provider.to_string(),
            });
        }
    }
    keys
}

/// Rebuilds the nested `sops` map from dotenv's flattened `sops_…` keys
/// (`sops_age__list_0__map_enc`).
pub(crate) fn unflatten(entries: &[(String, String)]) -> Value {
    let mut root = Value::Object(Map::new());
    for (key, value) in entries {
        let Some(path) = key.strip_prefix("sops_") else {
            continue;
        };
        let mut tokens = Vec::new();
        let mut rest = path;
        let first_end = rest.find("__").unwrap_or(rest.len());
        tokens.push(Token::Key(rest[..first_end].to_string()));
        rest = &rest[first_end..];
        while !rest.is_empty() {
            let (token, tail) = if let Some(t) = rest.strip_prefix("__map_") {
                (t, true)
            } else if let Some(t) = rest.strip_prefix("__list_") {
                (t, false)
            } else {
                break;
            };
            let end = token.find("__").unwrap_or(token.len());
            tokens.push(if tail {
                Token::Key(token[..end].to_string())
            } else {
                Token::Index(token[..end].parse().unwrap_or(0))
            });
            rest = &token[end..];
        }
        place(&mut root, &tokens, Value::String(value.clone()));
    }
    root
}

enum Token {
    Key(String),
    Index(usize),
}

fn place(node: &mut Value, path: &[Token], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        *node = value;
        return;
    };
    let child = match first {
        Token::Key(key) => {
            if !node.is_object() {
                *node = Value::Object(Map::new());
            }
            let Value::Object(map) = node else { return };
            map.entry(key.clone()).or_insert(Value::Null)
        }
        Token::Index(index) => {
            if !node.is_array() {
                *node = Value::Array(Vec::new());
            }
            let Value::Array(items) = node else { return };
            while items.len() <= *index {
                items.push(Value::Null);
            }
            &mut items[*index]
        }
    };
    place(child, rest, value);
}
