//! `App.spec.decryption`: how the rendered objects encrypted by sops are
//! decrypted, and with which keys.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::LocalRef;
use crate::validate::FieldProblem;

/// Decryption of an App's rendered objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Decryption {
    /// Who encrypted the files; only `sops`.
    pub provider: DecryptionProvider,
    /// A Secret in the App's namespace whose keys ending in `.agekey` hold
    /// age identities and `.asc` armored OpenPGP secret keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalRef>,
    /// Key files on the machine running the engine (an age identity file or
    /// an armored OpenPGP secret key each); relative to the declaring file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_files: Vec<String>,
}

/// The tool whose encrypted files an App decrypts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DecryptionProvider {
    /// Files encrypted by sops (age and OpenPGP keys).
    Sops,
}

impl Decryption {
    /// At least one source of keys, and key files that are named.
    pub(crate) fn validate(&self, problems: &mut Vec<FieldProblem>) {
        if self.secret_ref.is_none() && self.key_files.is_empty() {
            problems.push(FieldProblem::new(
                "spec.decryption",
                "needs secretRef or keyFiles: there are no keys to decrypt with",
            ));
        }
        if self.secret_ref.as_ref().is_some_and(|r| r.name.is_empty()) {
            problems.push(FieldProblem::new(
                "spec.decryption.secretRef.name",
                "must not be empty",
            ));
        }
        for (i, file) in self.key_files.iter().enumerate() {
            if file.trim().is_empty() {
                problems.push(FieldProblem::new(
                    format!("spec.decryption.keyFiles[{i}]"),
                    "must not be empty",
                ));
            }
        }
    }
}
