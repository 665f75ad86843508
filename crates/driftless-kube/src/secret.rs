//! Masking of Secret values for diffs.
//!
//! Each value becomes `++++++++ (hmac:<8 hex>)`: the first 8 hex digits of
//! HMAC-SHA256 over the decoded value, keyed with a random key per masker.
//! Equal values in the live and desired objects get equal masks, different
//! values (almost surely) different ones, and as the key never leaves the
//! process, nobody can test guesses against a printed mask. Masks from two
//! maskers (two runs) are not comparable.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Annotation in which `kubectl apply` keeps a full copy of the object, values included.
pub(crate) const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Why a masker could not be created.
#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    /// The operating system gave no random bytes for the key.
    #[error("generating a random key for secret masking: {0}")]
    Random(String),
}

/// Fields to mask in objects of any kind, by kind and name: JSON Pointers
/// (RFC 6901) into the object.
pub type MaskedFields = BTreeMap<(String, String), Vec<String>>;

/// Replaces Secret values, and the fields named to it in other objects,
/// with keyed digests; see the module docs for the format.
#[derive(Clone)]
pub struct SecretMasker {
    key: [u8; 32],
    fields: Arc<MaskedFields>,
}

impl std::fmt::Debug for SecretMasker {
    // The key must not end up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretMasker { .. }")
    }
}

impl SecretMasker {
    /// A masker with a fresh random key.
    pub fn random() -> Result<Self, MaskError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| MaskError::Random(e.to_string()))?;
        Ok(Self::with_key(key))
    }

    /// A masker with a caller-chosen key (for reproducible output).
    pub fn with_key(key: [u8; 32]) -> Self {
        Self {
            key,
            fields: Arc::default(),
        }
    }

    /// The masker that also masks `fields` in objects of any kind.
    #[must_use]
    pub fn with_fields(mut self, fields: MaskedFields) -> Self {
        self.fields = Arc::new(fields);
        self
    }

    /// The mask of one plain-text value.
    pub fn mask_bytes(&self, value: &[u8]) -> String {
        let digest = hmac_sha256(&self.key, value);
        let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        format!("++++++++ (hmac:{hex})")
    }

    /// A copy of `obj` with every value of a Secret's `data` and `stringData`
    /// masked; other objects are returned unchanged. `data` values are masked
    /// after base64 decoding so that they match the same value given in `stringData`.
    pub fn mask(&self, obj: &Value) -> Value {
        let mut out = obj.clone();
        self.mask_in_place(&mut out);
        out
    }

    /// [`SecretMasker::mask`] without the copy.
    pub fn mask_in_place(&self, out: &mut Value) {
        let named = self.mask_fields(out);
        if !is_secret(out) {
            if named {
                remove_last_applied(out);
            }
            return;
        }
        if let Some(map) = out.get_mut("data").and_then(Value::as_object_mut) {
            self.mask_map(map, true);
        }
        if let Some(map) = out.get_mut("stringData").and_then(Value::as_object_mut) {
            self.mask_map(map, false);
        }
        remove_last_applied(out);
    }

    /// Masks the fields named for `out`'s kind and name; true when some are.
    fn mask_fields(&self, out: &mut Value) -> bool {
        let text = |at: &str| out.pointer(at).and_then(Value::as_str).map(str::to_owned);
        let (Some(kind), Some(name)) = (text("/kind"), text("/metadata/name")) else {
            return false;
        };
        let Some(pointers) = self.fields.get(&(kind, name)) else {
            return false;
        };
        for pointer in pointers {
            let Some(value) = out.pointer_mut(pointer) else {
                continue;
            };
            let masked = match &*value {
                Value::Null => continue,
                Value::String(s) => self.mask_bytes(s.as_bytes()),
                other => self.mask_bytes(other.to_string().as_bytes()),
            };
            *value = Value::String(masked);
        }
        true
    }

    fn mask_map(&self, map: &mut Map<String, Value>, base64_encoded: bool) {
        for value in map.values_mut() {
            let masked = match &*value {
                Value::String(s) if base64_encoded => {
                    // Undecodable data is masked as is rather than shown.
                    match base64::engine::general_purpose::STANDARD.decode(s) {
                        Ok(bytes) => self.mask_bytes(&bytes),
                        Err(_) => self.mask_bytes(s.as_bytes()),
                    }
                }
                Value::String(s) => self.mask_bytes(s.as_bytes()),
                Value::Null => continue,
                other => self.mask_bytes(other.to_string().as_bytes()),
            };
            *value = Value::String(masked);
        }
    }
}

/// Drops the annotation that holds the unmasked values as JSON.
fn remove_last_applied(out: &mut Value) {
    if let Some(annotations) = out
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.shift_remove(LAST_APPLIED);
    }
}

/// Whether `obj` is a core v1 Secret.
fn is_secret(obj: &Value) -> bool {
    obj.get("apiVersion").and_then(Value::as_str) == Some("v1")
        && obj.get("kind").and_then(Value::as_str) == Some("Secret")
}

/// HMAC (RFC 2104) over SHA-256 with a 32-byte key.
fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut inner_pad = [0x36u8; BLOCK];
    let mut outer_pad = [0x5cu8; BLOCK];
    for (i, k) in key.iter().enumerate() {
        inner_pad[i] ^= k;
        outer_pad[i] ^= k;
    }
    let inner = Sha256::new()
        .chain_update(inner_pad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(outer_pad)
        .chain_update(inner)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hmac_matches_rfc4231_style_vector() {
        // Reference value computed with `openssl dgst -sha256 -mac HMAC -macopt hexkey:...`
        // for a key of 32 bytes 0x0b and the message "Hi There".
        let digest = hmac_sha256(&[0x0b; 32], b"Hi There");
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7"
        );
    }

    #[test]
    fn equal_values_equal_masks_across_data_and_string_data() {
        let masker = SecretMasker::with_key([7; 32]);
        let live = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"password": "aHVudGVyMg==", "user": "YWRtaW4="}});
        let desired = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "stringData": {"password": "hunter2", "user": "root"}});
        let live = masker.mask(&live);
        let desired = masker.mask(&desired);
        assert_eq!(live["data"]["password"], desired["stringData"]["password"]);
        assert_ne!(live["data"]["user"], desired["stringData"]["user"]);
        let text = format!("{live}{desired}");
        for secret in ["aHVudGVyMg==", "hunter2", "YWRtaW4=", "root"] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
        let mask = live["data"]["password"].as_str().unwrap_or("");
        assert!(
            mask.starts_with("++++++++ (hmac:") && mask.len() == 24,
            "{mask}"
        );
    }

    #[test]
    fn keys_differ_between_maskers_and_other_kinds_are_untouched() {
        let a = SecretMasker::random().expect("random key");
        let b = SecretMasker::random().expect("random key");
        assert_ne!(a.mask_bytes(b"x"), b.mask_bytes(b"x"));
        assert_eq!(format!("{a:?}"), "SecretMasker { .. }");
        let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"k": "visible"}});
        assert_eq!(a.mask(&config), config);
    }

    #[test]
    fn last_applied_copy_is_dropped_from_secrets() {
        let masker = SecretMasker::with_key([1; 32]);
        let live = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s",
            "annotations": {LAST_APPLIED: "{\"data\":{\"k\":\"c2VjcmV0\"}}", "team": "a"}},
            "data": {"k": "c2VjcmV0", "bad": "%%%"}});
        let masked = masker.mask(&live);
        assert_eq!(masked["metadata"]["annotations"], json!({"team": "a"}));
        assert!(!masked.to_string().contains("%%%"));
    }

    #[test]
    fn named_fields_are_masked_in_other_kinds_too() {
        let fields = MaskedFields::from([(
            ("ConfigMap".to_owned(), "c".to_owned()),
            vec![
                "/data/token".to_owned(),
                "/data/a~1b".to_owned(),
                "/data/gone".to_owned(),
            ],
        )]);
        let masker = SecretMasker::with_key([3; 32]).with_fields(fields);
        let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c",
            "annotations": {LAST_APPLIED: "{\"data\":{\"token\":\"s3cret\"}}"}},
            "data": {"token": "s3cret", "a/b": "other-secret", "plain": "visible"}});
        let masked = masker.mask(&config);
        assert_eq!(
            masked["data"]["token"].as_str(),
            Some(masker.mask_bytes(b"s3cret").as_str())
        );
        assert_eq!(masked["data"]["plain"], "visible");
        let text = masked.to_string();
        assert!(
            !text.contains("s3cret") && !text.contains("other-secret"),
            "{text}"
        );
        let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"},
            "data": {"token": "shown"}});
        assert_eq!(masker.mask(&other), other);
    }
}
