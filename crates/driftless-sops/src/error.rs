//! The one error type of the crate: every variant names the file at fault.

/// Why a SOPS file could not be decrypted.
#[derive(Debug, thiserror::Error)]
pub enum SopsError {
    /// The file is not a well-formed document of its format.
    #[error("{file}: not a valid {format} document: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// The format it was read as.
        format: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The file carries no (or incomplete) `sops` metadata.
    #[error("{file}: sops metadata {problem}")]
    Metadata {
        /// The file.
        file: String,
        /// What is missing or malformed.
        problem: String,
    },
    /// The file's data key is held only by key services driftless cannot use.
    #[error("{file}: {provider} keys are not supported yet (only age and OpenPGP keys decrypt)")]
    UnsupportedProvider {
        /// The file.
        file: String,
        /// The provider (`kms`, `gcp_kms`, `azure_kv`, `hc_vault`, ...).
        provider: String,
    },
    /// A sops feature driftless does not implement yet.
    #[error("{file}: {feature} is not supported yet")]
    Unsupported {
        /// The file.
        file: String,
        /// The feature.
        feature: String,
    },
    /// No key group yielded its part of the data key.
    #[error("{file}: cannot recover the data key: {reason}")]
    NoKey {
        /// The file.
        file: String,
        /// Which groups failed and why.
        reason: String,
    },
    /// A value did not decrypt (wrong data key or tampered value).
    #[error("{file}: cannot decrypt the value at {path}: {reason}")]
    Value {
        /// The file.
        file: String,
        /// The value's path, keys joined by `:`.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The message authentication code does not match the content.
    #[error("{file}: MAC mismatch: the file was modified after it was encrypted")]
    MacMismatch {
        /// The file.
        file: String,
    },
    /// The stored MAC itself did not decrypt.
    #[error("{file}: cannot decrypt the MAC: {reason}")]
    Mac {
        /// The file.
        file: String,
        /// What went wrong.
        reason: String,
    },
    /// A key file could not be read or parsed.
    #[error("{file}: {reason}")]
    KeyFile {
        /// The key file.
        file: String,
        /// What went wrong.
        reason: String,
    },
}
