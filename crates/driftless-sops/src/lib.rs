//! Decryption of files encrypted by [sops](https://getsops.io), in Rust.
//!
//! A sops file keeps its structure in clear and encrypts each value with
//! AES-256-GCM under a data key; the data key is encrypted for each recipient
//! (age, OpenPGP, or a cloud key service) in the file's `sops` section, split
//! with Shamir's scheme when the file has several key groups, and a MAC over
//! all values guards against tampering. This crate recovers the data key with
//! age identities or OpenPGP secret keys (rPGP, no gpg), decrypts the values,
//! checks the MAC and prints the file exactly as `sops --decrypt` prints it for
//! YAML, JSON, dotenv and binary files. Keys held by cloud key services are
//! refused as not supported yet.
//!
//! Decrypted bytes are returned to the caller and never written anywhere.
//!
//! ```no_run
//! use driftless_sops::{Format, Keys, decrypt};
//! let keys = Keys::from_env()?;
//! let encrypted = std::fs::read("secret.enc.yaml").expect("readable");
//! let plain = decrypt(&encrypted, Format::Yaml, &keys, "secret.enc.yaml")?;
//! # Ok::<(), driftless_sops::SopsError>(())
//! ```

mod cipher;
mod dotenv;
mod error;
mod json;
mod keys;
mod metadata;
mod shamir;
mod tree;
mod yaml;

use std::path::Path;

use serde_json::Value;

pub use error::SopsError;
pub use keys::Keys;

use metadata::Metadata;

/// The file formats sops stores, as it picks them from a file's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.yaml`, `.yml`.
    Yaml,
    /// `.json`.
    Json,
    /// `.env`.
    Dotenv,
    /// Any other file: its bytes as one encrypted value.
    Binary,
}

impl Format {
    /// The format sops uses for `path` (by its extension).
    pub fn from_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => Format::Yaml,
            Some("json") => Format::Json,
            Some("env") => Format::Dotenv,
            _ => Format::Binary,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Format::Yaml => "YAML",
            Format::Json => "JSON",
            Format::Dotenv => "dotenv",
            Format::Binary => "binary (sops JSON)",
        }
    }
}

/// True when `bytes` look like a sops-encrypted file of `format`: a document
/// with a top-level `sops` entry holding a `mac` (`sops_mac=` in dotenv).
pub fn is_encrypted(bytes: &[u8], format: Format) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    match format {
        Format::Dotenv => text.lines().any(|l| l.starts_with("sops_mac=")),
        Format::Yaml => {
            text.lines().any(|l| l.starts_with("sops:"))
                && text
                    .lines()
                    .any(|l| l.trim_start().starts_with("mac: ENC["))
        }
        Format::Json | Format::Binary => {
            text.trim_start().starts_with('{')
                && serde_json::from_str::<Value>(text)
                    .ok()
                    .and_then(|v| v.get("sops").and_then(|s| s.get("mac")).cloned())
                    .is_some()
        }
    }
}

/// Decrypts the sops file `bytes` of `format` with `keys`, returning what
/// `sops --decrypt` prints. `file` names the file in errors.
pub fn decrypt(
    bytes: &[u8],
    format: Format,
    keys: &Keys,
    file: &str,
) -> Result<Vec<u8>, SopsError> {
    let syntax = |message: String| SopsError::Syntax {
        file: file.to_string(),
        format: format.name(),
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| syntax(e.to_string()))?;
    match format {
        Format::Yaml => yaml::decrypt(text, keys, file).map(String::into_bytes),
        Format::Json => json::decrypt(text, keys, file, false),
        Format::Binary => json::decrypt(text, keys, file, true),
        Format::Dotenv => dotenv::decrypt(text, keys, file).map(String::into_bytes),
    }
}

/// The data key of a file whose `sops` section is `sops`, refusing files
/// whose keys are all held by key services.
fn data_key(sops: &Value, keys: &Keys, file: &str) -> Result<(Metadata, Vec<u8>), SopsError> {
    let metadata = Metadata::parse(sops, file)?;
    if let Some(provider) = metadata.service_only_provider() {
        return Err(SopsError::UnsupportedProvider {
            file: file.to_string(),
            provider,
        });
    }
    let key = keys::recover_data_key(&metadata, keys, file)?;
    Ok((metadata, key))
}
