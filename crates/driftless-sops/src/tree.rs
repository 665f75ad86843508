//! The walk over a document's values in sops' order: which values are
//! encrypted, their decryption with the path as additional data, and the MAC.

use serde_json::{Number, Value};
use sha2::{Digest, Sha512};

use crate::SopsError;
use crate::cipher::{self, Plain};
use crate::metadata::{Metadata, Rules};

/// Bytes that open the MAC of a file written with `mac_only_encrypted`, so
/// that its MAC never equals the one over all values.
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// A decrypted encrypted value, with the ciphertext it came from.
#[derive(Debug)]
pub(crate) struct Decrypted {
    pub ciphertext: String,
    pub plain: Plain,
}

impl Rules {
    /// Whether sops encrypted the value at `path` (sops' precedence: suffixes,
    /// then regexes, the last rule set deciding).
    pub(crate) fn encrypts(&self, path: &[String]) -> bool {
        let mut encrypted = true;
        if let Some(suffix) = &self.unencrypted_suffix
            && path.iter().any(|k| k.ends_with(suffix.as_str()))
        {
            encrypted = false;
        }
        if let Some(suffix) = &self.encrypted_suffix {
            encrypted = path.iter().any(|k| k.ends_with(suffix.as_str()));
        }
        if let Some(regex) = &self.unencrypted_regex
            && path.iter().any(|k| regex.is_match(k))
        {
            encrypted = false;
        }
        if let Some(regex) = &self.encrypted_regex {
            encrypted = path.iter().any(|k| regex.is_match(k));
        }
        encrypted
    }

    /// Whether sops encrypted the leaf `value` at `path`. Under a comment
    /// regex, sops decided by the comments above each value (sops allows no
    /// other rule beside it), a choice the value's own form records: sops
    /// wrote exactly those values as `ENC[…]`, and the MAC refuses a file
    /// where an encrypted value was replaced by a value in clear.
    pub(crate) fn encrypts_value(&self, path: &[String], value: &Value) -> bool {
        if self.by_comments {
            return matches!(value, Value::String(s) if cipher::is_encrypted(s));
        }
        self.encrypts(path)
    }
}

/// Decrypts every encrypted value of `documents` in place, checks the MAC, and
/// returns the decrypted values in document order.
pub(crate) fn decrypt_documents(
    documents: &mut [Value],
    metadata: &Metadata,
    key: &[u8],
    file: &str,
) -> Result<Vec<Decrypted>, SopsError> {
    let mut walk = Walk {
        metadata,
        key,
        file,
        hash: Sha512::new(),
        decrypted: Vec::new(),
    };
    if metadata.mac_only_encrypted {
        walk.hash.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    for document in documents.iter_mut() {
        walk.value(document, &mut Vec::new())?;
    }
    let computed: String = walk
        .hash
        .finalize()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let stored =
        cipher::decrypt(&metadata.mac, key, &metadata.last_modified).map_err(|reason| {
            SopsError::Mac {
                file: file.to_string(),
                reason,
            }
        })?;
    if stored != Plain::Str(computed) {
        return Err(SopsError::MacMismatch {
            file: file.to_string(),
        });
    }
    Ok(walk.decrypted)
}

struct Walk<'a> {
    metadata: &'a Metadata,
    key: &'a [u8],
    file: &'a str,
    hash: Sha512,
    decrypted: Vec<Decrypted>,
}

impl Walk<'_> {
    /// Decrypts what `value` holds; true when it was an encrypted comment.
    fn value(&mut self, value: &mut Value, path: &mut Vec<String>) -> Result<bool, SopsError> {
        match value {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    path.push(key.clone());
                    self.value(child, path)?;
                    path.pop();
                }
                Ok(false)
            }
            Value::Array(items) => {
                let mut comments = Vec::new();
                for (index, item) in items.iter_mut().enumerate() {
                    if self.value(item, path)? {
                        comments.push(index);
                    }
                }
                // A YAML list keeps its comments as items; they are no values.
                for index in comments.into_iter().rev() {
                    items.remove(index);
                }
                Ok(false)
            }
            Value::Null => Ok(false),
            leaf => self.leaf(leaf, path),
        }
    }

    fn leaf(&mut self, leaf: &mut Value, path: &[String]) -> Result<bool, SopsError> {
        let encrypted = self.metadata.rules.encrypts_value(path, leaf);
        let plain = if encrypted {
            let Value::String(ciphertext) = leaf else {
                return Err(
                    self.value_error(path, "expected an encrypted string, found a plain value")
                );
            };
            let plain = cipher::decrypt(ciphertext, self.key, &additional_data(path))
                .map_err(|reason| self.value_error(path, &reason))?;
            let ciphertext = std::mem::take(ciphertext);
            *leaf = plain_to_value(&plain);
            // sops leaves empty strings as they are: there is nothing to replace.
            if !ciphertext.is_empty() {
                self.decrypted.push(Decrypted {
                    ciphertext,
                    plain: plain.clone(),
                });
            }
            plain
        } else {
            value_to_plain(leaf)
        };
        if (!self.metadata.mac_only_encrypted || encrypted)
            && let Some(bytes) = plain.mac_bytes()
        {
            self.hash.update(bytes);
        }
        Ok(matches!(plain, Plain::Comment(_)))
    }

    fn value_error(&self, path: &[String], reason: &str) -> SopsError {
        SopsError::Value {
            file: self.file.to_string(),
            path: if path.is_empty() {
                "the top level".into()
            } else {
                path.join(":")
            },
            reason: reason.to_string(),
        }
    }
}

/// The additional data of a value: its keys joined and ended by `:`.
pub(crate) fn additional_data(path: &[String]) -> String {
    let mut data = path.join(":");
    data.push(':');
    data
}

/// An unencrypted leaf as the typed value sops hashes.
fn value_to_plain(value: &Value) -> Plain {
    match value {
        Value::Bool(b) => Plain::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Plain::Int(i),
            None => Plain::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Plain::Str(s.clone()),
        _ => Plain::Str(String::new()),
    }
}

/// A decrypted value in the document (comments and bytes become what JSON can hold).
fn plain_to_value(plain: &Plain) -> Value {
    match plain {
        Plain::Str(s) | Plain::Time(s) => Value::String(s.clone()),
        Plain::Int(i) => Value::Number((*i).into()),
        Plain::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Plain::Bool(b) => Value::Bool(*b),
        Plain::Bytes(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        Plain::Comment(_) => Value::Null,
    }
}
