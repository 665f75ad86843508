//! Decryption of rendered objects that carry SOPS metadata (a Secret
//! encrypted as a whole by `sops`), as Flux decrypts them after the build.
//!
//! It is a step of its own after [`crate::render`] and the render cache: the
//! cache, in memory and on disk, holds the encrypted objects only, and the
//! decrypted set lives in the caller's memory.

use std::collections::BTreeMap;

use driftless_sops::{Format, Keys, SopsError};
use serde_json::Value;

use crate::objects::{ObjectError, ObjectSet, Rendered};

/// Why a rendered set could not be decrypted.
#[derive(Debug, thiserror::Error)]
pub enum DecryptError {
    /// An object did not decrypt; the error names its file and document.
    #[error(transparent)]
    Sops(#[from] SopsError),
    /// A decrypted object is not a valid object.
    #[error(transparent)]
    Object(#[from] ObjectError),
}

/// True when `object` carries SOPS metadata (a top-level `sops` map).
pub fn is_encrypted(object: &Value) -> bool {
    object.get("sops").is_some_and(Value::is_object)
}

/// The set with every object that carries SOPS metadata decrypted with
/// `keys`; objects without it are kept as they are.
pub fn decrypt_objects(set: &ObjectSet, keys: &Keys) -> Result<ObjectSet, DecryptError> {
    let mut items = Vec::with_capacity(set.len());
    for item in set.items() {
        if !is_encrypted(&item.object) {
            items.push(item.clone());
            continue;
        }
        let syntax = |e: serde_json::Error| SopsError::Syntax {
            file: item.origin.clone(),
            format: "JSON",
            message: e.to_string(),
        };
        // The object as JSON keeps its values, their types and their order,
        // which is all the MAC covers.
        let encrypted = serde_json::to_vec(&item.object).map_err(syntax)?;
        let plain = driftless_sops::decrypt(&encrypted, Format::Json, keys, &item.origin)?;
        let object: Value = serde_json::from_slice(&plain).map_err(syntax)?;
        items.push(Rendered::new(object, item.origin.clone()));
    }
    Ok(ObjectSet::new(items)?)
}

/// The fields sops encrypted, by object kind and name: JSON Pointers
/// (RFC 6901) into each object. A diff masks them once decrypted.
pub type EncryptedFields = BTreeMap<(String, String), Vec<String>>;

/// The values sops encrypted in the objects of `set` that carry SOPS
/// metadata (an encrypted set, before [`decrypt_objects`]).
pub fn encrypted_fields(set: &ObjectSet) -> EncryptedFields {
    let mut fields = EncryptedFields::new();
    for item in set.items().iter().filter(|i| is_encrypted(&i.object)) {
        let Some(map) = item.object.as_object() else {
            continue;
        };
        let text = |at: &str| {
            let value = item.object.pointer(at).and_then(Value::as_str);
            value.unwrap_or_default().to_owned()
        };
        let mut found = Vec::new();
        for (key, value) in map.iter().filter(|(k, _)| k.as_str() != "sops") {
            collect_encrypted(value, &format!("/{}", escape(key)), &mut found);
        }
        if !found.is_empty() {
            fields
                .entry((text("/kind"), text("/metadata/name")))
                .or_default()
                .extend(found);
        }
    }
    fields
}

/// Pointers below `at` to values sops wrote as `ENC[AES256_GCM,…]`.
fn collect_encrypted(value: &Value, at: &str, found: &mut Vec<String>) {
    match value {
        Value::String(s) if s.starts_with("ENC[AES256_GCM,") => found.push(at.to_owned()),
        Value::Object(map) => {
            for (key, v) in map {
                collect_encrypted(v, &format!("{at}/{}", escape(key)), found);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_encrypted(v, &format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// A key as a JSON Pointer reference token.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}
