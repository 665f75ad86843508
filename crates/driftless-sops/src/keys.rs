//! The private keys a decryption may use, and the recovery of a file's data
//! key from its key groups.

use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use crate::SopsError;
use crate::metadata::{MasterKey, Metadata};
use crate::shamir;

/// Private keys: age identities and OpenPGP secret keys.
#[derive(Default, Clone)]
pub struct Keys {
    age: Vec<age::x25519::Identity>,
    pgp: Vec<pgp::composed::SignedSecretKey>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(
            f,
            "Keys {{ age: {} identities, pgp: {} secret keys }}",
            self.age.len(),
            self.pgp.len()
        )
    }
}

impl Keys {
    /// No keys.
    pub fn new() -> Keys {
        Keys::default()
    }

    /// Keys from the environment as sops reads them: `SOPS_AGE_KEY` (identities
    /// inline) and `SOPS_AGE_KEY_FILE` (a file of identities).
    pub fn from_env() -> Result<Keys, SopsError> {
        let mut keys = Keys::new();
        if let Some(inline) = std::env::var_os("SOPS_AGE_KEY") {
            keys.add_age_identities(&inline.to_string_lossy(), "SOPS_AGE_KEY")?;
        }
        if let Some(file) = std::env::var_os("SOPS_AGE_KEY_FILE") {
            keys.add_age_key_file(Path::new(&file))?;
        }
        Ok(keys)
    }

    /// Adds the identities of an age key file (as `age-keygen` writes it).
    pub fn add_age_key_file(&mut self, path: &Path) -> Result<(), SopsError> {
        let text = read_key_file(path, "age")?;
        self.add_age_identities(&text, &path.display().to_string())
    }

    /// Adds age identities (`AGE-SECRET-KEY-1…` lines; `#` lines are comments)
    /// read from `origin`.
    pub fn add_age_identities(&mut self, text: &str, origin: &str) -> Result<(), SopsError> {
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let identity =
                age::x25519::Identity::from_str(line).map_err(|_| SopsError::KeyFile {
                    file: origin.to_string(),
                    reason: format!("line {} is not an age identity", number + 1),
                })?;
            self.age.push(identity);
        }
        Ok(())
    }

    /// Adds the OpenPGP secret keys of an armored key file (as
    /// `gpg --export-secret-keys --armor` writes it; keys without a
    /// passphrase, a protected key is refused).
    pub fn add_pgp_key_file(&mut self, path: &Path) -> Result<(), SopsError> {
        let text = read_key_file(path, "OpenPGP")?;
        self.add_pgp_secret_keys(&text, &path.display().to_string())
    }

    /// Adds the OpenPGP secret keys of armored text read from `origin`.
    pub fn add_pgp_secret_keys(&mut self, armored: &str, origin: &str) -> Result<(), SopsError> {
        use pgp::composed::{Deserializable, SignedSecretKey};
        let bad = |e: pgp::errors::Error| SopsError::KeyFile {
            file: origin.to_string(),
            reason: format!("not an armored OpenPGP secret key: {e}"),
        };
        let (keys, _headers) = SignedSecretKey::from_armor_many(armored.as_bytes()).map_err(bad)?;
        for key in keys {
            let key = key.map_err(bad)?;
            refuse_protected(&key, origin)?;
            self.pgp.push(key);
        }
        Ok(())
    }

    /// Adds the keys of a file holding either age identities or armored
    /// OpenPGP secret keys, told apart by its content.
    pub fn add_key_file(&mut self, path: &Path) -> Result<(), SopsError> {
        let text = read_key_file(path, "decryption")?;
        let origin = path.display().to_string();
        if text.contains(PGP_SECRET_ARMOR) {
            self.add_pgp_secret_keys(&text, &origin)
        } else {
            self.add_age_identities(&text, &origin)
        }
    }

    /// True when no key was added.
    pub fn is_empty(&self) -> bool {
        self.age.is_empty() && self.pgp.is_empty()
    }

    /// The data key of one master key, or why it cannot be had.
    fn decrypt_master_key(&self, key: &MasterKey) -> Result<Vec<u8>, String> {
        match key {
            MasterKey::Age { recipient, enc } => self
                .decrypt_age(enc)
                .map_err(|e| format!("age {recipient}: {e}")),
            MasterKey::Pgp { fingerprint, enc } => self
                .decrypt_pgp(enc)
                .map_err(|e| format!("pgp {fingerprint}: {e}")),
            MasterKey::Other { provider } => Err(format!("{provider}: not supported yet")),
        }
    }

    fn decrypt_pgp(&self, armored: &str) -> Result<Vec<u8>, String> {
        use pgp::composed::Message;
        use pgp::types::Password;
        if self.pgp.is_empty() {
            return Err("no OpenPGP secret key given".into());
        }
        let (message, _headers) = Message::from_armor(std::io::BufReader::new(armored.as_bytes()))
            .map_err(|e| e.to_string())?;
        let empty = Password::empty();
        let passwords = self.pgp.iter().map(|_| &empty).collect();
        let mut message = message
            .decrypt_with_keys(passwords, self.pgp.iter().collect())
            .map_err(|e| format!("no given OpenPGP key decrypts it ({e})"))?;
        if message.is_compressed() {
            message = message.decompress().map_err(|e| e.to_string())?;
        }
        message.as_data_vec().map_err(|e| e.to_string())
    }

    fn decrypt_age(&self, armored: &str) -> Result<Vec<u8>, String> {
        if self.age.is_empty() {
            return Err(
                "no age identity given (SOPS_AGE_KEY_FILE, SOPS_AGE_KEY or --age-key-file)".into(),
            );
        }
        let reader = age::armor::ArmoredReader::new(armored.as_bytes());
        let decryptor = age::Decryptor::new(reader).map_err(|e| e.to_string())?;
        let identities = self.age.iter().map(|i| i as &dyn age::Identity);
        let mut plain = Vec::new();
        decryptor
            .decrypt(identities)
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys => "no given age identity matches".to_string(),
                other => other.to_string(),
            })?
            .read_to_end(&mut plain)
            .map_err(|e| e.to_string())?;
        Ok(plain)
    }
}

/// The armor header `gpg --export-secret-keys --armor` writes.
const PGP_SECRET_ARMOR: &str = "-----BEGIN PGP PRIVATE KEY BLOCK-----";

/// Refuses a secret key whose decryption keys are protected by a passphrase:
/// nothing unattended can type it (Flux refuses such keys too). A primary
/// key exported without its secret part (`gpg --export-secret-subkeys`) is
/// fine when its subkeys are in clear.
fn refuse_protected(key: &pgp::composed::SignedSecretKey, origin: &str) -> Result<(), SopsError> {
    use pgp::types::KeyDetails;
    let subkeys = &key.secret_subkeys;
    let protected = if subkeys.is_empty() {
        key.primary_key.secret_params().is_encrypted()
    } else {
        subkeys.iter().any(|s| s.key.secret_params().is_encrypted())
    };
    if !protected {
        return Ok(());
    }
    Err(SopsError::KeyFile {
        file: origin.to_string(),
        reason: format!(
            "OpenPGP secret key {:X} is protected by a passphrase, which an unattended \
             decryption cannot enter: export a key without a passphrase for decryption",
            key.primary_key.fingerprint()
        ),
    })
}

/// The text of a key file of `kind`.
fn read_key_file(path: &Path, kind: &str) -> Result<String, SopsError> {
    std::fs::read_to_string(path).map_err(|e| SopsError::KeyFile {
        file: path.display().to_string(),
        reason: format!("cannot read the {kind} key file: {e}"),
    })
}

/// The data key of a file: one part per key group, recombined when the file
/// has several groups.
pub(crate) fn recover_data_key(
    metadata: &Metadata,
    keys: &Keys,
    file: &str,
) -> Result<Vec<u8>, SopsError> {
    let mut parts = Vec::new();
    let mut failures = Vec::new();
    for (index, group) in metadata.key_groups.iter().enumerate() {
        let mut errors = Vec::new();
        let mut part = None;
        for key in group {
            match keys.decrypt_master_key(key) {
                Ok(p) => {
                    part = Some(p);
                    break;
                }
                Err(e) => errors.push(e),
            }
        }
        match part {
            Some(p) => parts.push(p),
            None => failures.push(format!("group {}: {}", index + 1, errors.join("; "))),
        }
    }
    let no_key = |reason: String| SopsError::NoKey {
        file: file.to_string(),
        reason,
    };
    if metadata.key_groups.len() == 1 {
        return parts.pop().ok_or_else(|| no_key(failures.join("; ")));
    }
    if parts.len() < metadata.shamir_threshold {
        return Err(no_key(format!(
            "{} of {} key groups decrypted, {} needed ({})",
            parts.len(),
            metadata.key_groups.len(),
            metadata.shamir_threshold,
            failures.join("; ")
        )));
    }
    shamir::combine(&parts).map_err(|e| no_key(e.to_string()))
}
