//! Decryption of rendered objects that carry SOPS metadata (a Secret
//! encrypted as a whole by `sops`), as Flux decrypts them after the build.
//!
//! It is a step of its own after [`crate::render`] and the render cache: the
//! cache, in memory and on disk, holds the encrypted objects only, and the
//! decrypted set lives in the caller's memory.
//!
//! Kustomize generator sources (`envs:`, `files:`) encrypted by sops are
//! decrypted during the build instead, by [`GeneratorSources`], as Flux does
//! before its build; a render that decrypted one is never cached.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Decrypts the generator sources of a kustomize build that sops encrypted,
/// with the render's keys; without keys such a source is an error.
#[derive(Debug)]
pub(crate) struct GeneratorSources {
    keys: Option<Arc<Keys>>,
    decrypted: AtomicBool,
}

impl GeneratorSources {
    /// A decryptor with `keys`, or one that refuses encrypted sources.
    pub(crate) fn new(keys: Option<Arc<Keys>>) -> GeneratorSources {
        GeneratorSources {
            keys,
            decrypted: AtomicBool::new(false),
        }
    }

    /// True once a source was decrypted: the build holds plaintext.
    pub(crate) fn decrypted(&self) -> bool {
        self.decrypted.load(Ordering::Relaxed)
    }
}

impl driftless_kustomize::GeneratorDecryptor for GeneratorSources {
    fn source(&self, path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>, String> {
        let format = Format::from_path(path);
        if !driftless_sops::is_encrypted(&bytes, format) {
            return Ok(bytes);
        }
        let Some(keys) = &self.keys else {
            return Err("encrypted by sops, and the render has no decryption keys \
                 (driftless render --decrypt, or the App's spec.decryption)"
                .to_owned());
        };
        let file = path.display().to_string();
        let plain =
            driftless_sops::decrypt(&bytes, format, keys, &file).map_err(|e| e.to_string())?;
        self.decrypted.store(true, Ordering::Relaxed);
        Ok(plain)
    }
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
