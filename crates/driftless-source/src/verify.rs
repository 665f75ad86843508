//! Commit and tag signature verification (SSH allowed-signers, OpenPGP).
//!
//! git itself checks the signature and calls `ssh-keygen -Y verify` or `gpg`;
//! driftless supplies only the trusted keys, in files private to one check.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::git::{Git, GitError};
use crate::revision::Revision;

/// A revision that failed signature verification.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The commit or tag carries no valid signature from a trusted key.
    #[error("{what} {id} of {revision}: signature not trusted: {detail}")]
    Untrusted {
        /// `commit` or `tag`.
        what: &'static str,
        /// Object id checked.
        id: String,
        /// Display form of the revision.
        revision: String,
        /// What git/gpg/ssh-keygen said.
        detail: String,
    },
    /// Tag mode was asked for, but the revision is not an annotated tag.
    #[error("{revision}: tag verification needs an annotated tag, but the ref is not one")]
    NotAnnotatedTag {
        /// Display form of the revision.
        revision: String,
    },
    /// No trusted keys were configured.
    #[error("signature verification is enabled but no trusted keys are configured")]
    NoKeys,
    /// Preparing the key files failed.
    #[error("preparing trusted keys in {path}: {source}")]
    Keyring {
        /// Directory or file at fault.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// `gpg --import` rejected an OpenPGP key.
    #[error("importing OpenPGP key #{index}: {detail}")]
    BadKey {
        /// Position of the key in the configured list.
        index: usize,
        /// What gpg said.
        detail: String,
    },
}

/// What must be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyMode {
    /// The commit the ref resolves to.
    HeadCommit,
    /// The annotated tag object the ref names.
    Tag,
}

/// A key or key list trusted to sign revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustedKey {
    /// Lines in `ssh-keygen` allowed-signers format (`principal key-type key`).
    SshAllowedSigners(String),
    /// An ASCII-armored OpenPGP public key.
    OpenPgp(String),
}

/// Signature verification policy of a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verify {
    /// Which object must carry the signature.
    pub mode: VerifyMode,
    /// Keys whose signatures are accepted.
    pub keys: Vec<TrustedKey>,
}

/// Checks `rev` in the repository `repo` against `policy`.
///
/// `scratch` is a private directory for key files; it is removed afterwards.
pub fn verify(
    repo: &Path,
    rev: &Revision,
    policy: &Verify,
    scratch: &Path,
) -> Result<(), VerifyError> {
    if policy.keys.is_empty() {
        return Err(VerifyError::NoKeys);
    }
    let (what, id, subcommand) = match policy.mode {
        VerifyMode::HeadCommit => ("commit", rev.sha.clone(), "verify-commit"),
        VerifyMode::Tag => match &rev.tag_object {
            Some(tag) => ("tag", tag.clone(), "verify-tag"),
            None => {
                return Err(VerifyError::NotAnnotatedTag {
                    revision: rev.to_string(),
                });
            }
        },
    };
    let keyring = Keyring::create(scratch, &policy.keys)?;
    let git = Git::in_dir(repo)
        .config(
            "gpg.ssh.allowedSignersFile",
            &keyring.allowed_signers.to_string_lossy(),
        )
        .env("GNUPGHOME", keyring.gnupg_home.as_os_str());
    let result = git.run(&[subcommand, "--raw", &id]);
    drop(keyring);
    result.map(|_| ()).map_err(|e| VerifyError::Untrusted {
        what,
        id,
        revision: rev.to_string(),
        detail: detail_of(&e),
    })
}

fn detail_of(err: &GitError) -> String {
    let stderr = err.stderr();
    if stderr.is_empty() {
        return "no signature".to_string();
    }
    // gpg's --raw status lines are noisy; keep the lines a person can act on.
    let useful: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("[GNUPG:] KEY_CONSIDERED") && !l.trim().is_empty())
        .take(4)
        .collect();
    useful.join("; ")
}

/// Trusted keys materialised on disk for one verification.
struct Keyring {
    /// Private (0700), freshly named; held only to be removed on drop, after
    /// the agent is stopped.
    _dir: tempfile::TempDir,
    allowed_signers: PathBuf,
    gnupg_home: PathBuf,
}

impl Drop for Keyring {
    fn drop(&mut self) {
        // gpg may have started an agent bound to this home; stop it first.
        let _ = Command::new("gpgconf")
            .args(["--kill", "all"])
            .env("GNUPGHOME", &self.gnupg_home)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // Dropping `dir` afterwards removes the directory.
    }
}

impl Keyring {
    fn create(scratch: &Path, keys: &[TrustedKey]) -> Result<Keyring, VerifyError> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| VerifyError::Keyring { path, source }
        };
        let dir = tempfile::Builder::new()
            .prefix("keys-")
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir_in(scratch)
            .map_err(io(scratch))?;
        let gnupg_home = dir.path().join("gnupg");
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&gnupg_home)
            .map_err(io(&gnupg_home))?;
        let keyring = Keyring {
            allowed_signers: dir.path().join("allowed_signers"),
            gnupg_home,
            _dir: dir,
        };
        let mut signers = String::new();
        for (index, key) in keys.iter().enumerate() {
            match key {
                TrustedKey::SshAllowedSigners(lines) => {
                    signers.push_str(lines);
                    signers.push('\n');
                }
                TrustedKey::OpenPgp(armored) => keyring.import(index, armored)?,
            }
        }
        fs::write(&keyring.allowed_signers, signers).map_err(io(&keyring.allowed_signers))?;
        Ok(keyring)
    }

    fn import(&self, index: usize, armored: &str) -> Result<(), VerifyError> {
        use std::io::Write;
        let bad = |detail: String| VerifyError::BadKey { index, detail };
        let mut child = Command::new("gpg")
            .args(["--batch", "--no-tty", "--quiet", "--import"])
            .env("GNUPGHOME", &self.gnupg_home)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| bad(format!("starting gpg: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(armored.as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|e| bad(format!("waiting for gpg: {e}")))?;
        if !out.status.success() {
            return Err(bad(String::from_utf8_lossy(&out.stderr).trim().to_string()));
        }
        Ok(())
    }
}
