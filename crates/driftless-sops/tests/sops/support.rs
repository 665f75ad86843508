//! Finding the reference tools and making encrypted fixtures with them.

use std::path::{Path, PathBuf};
use std::process::Command;

use driftless_sops::{Format, Keys};

const SOPS_VERSION: &str = "v3.13.3";
const AGE_VERSION: &str = "v1.3.2";
const INSTALL: &str = "scripts/ci/install-sops.sh";

/// A tool from its override variable or the test setup's cache; a missing
/// tool fails the test, naming the script that builds it.
fn tool(var: &str, cached: &str) -> PathBuf {
    let path = match std::env::var_os(var) {
        Some(path) => PathBuf::from(path),
        None => {
            let home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(home).join(".cache/driftless").join(cached)
        }
    };
    assert!(
        path.is_file(),
        "{} is missing: run {INSTALL} (or set {var})",
        path.display()
    );
    path
}

/// The `sops` binary.
pub fn sops() -> PathBuf {
    tool("DRIFTLESS_SOPS", &format!("sops-{SOPS_VERSION}/sops"))
}

/// A binary of the age distribution (`age`, `age-keygen`).
pub fn age_tool(name: &str) -> PathBuf {
    match std::env::var_os("DRIFTLESS_AGE") {
        Some(dir) => {
            let path = PathBuf::from(dir).join(name);
            assert!(
                path.is_file(),
                "{} is missing: run {INSTALL} (or fix DRIFTLESS_AGE)",
                path.display()
            );
            path
        }
        None => tool("DRIFTLESS_AGE", &format!("age-{AGE_VERSION}/{name}")),
    }
}

/// A fixture directory with age keys in it.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

/// An OpenPGP key made by `gpg` in the fixture's keyring.
pub struct PgpKey {
    pub fingerprint: String,
    /// The armored secret key, as a `.asc` entry of a Secret holds it.
    pub secret_file: PathBuf,
}

/// An age key pair made by `age-keygen`.
pub struct AgeKey {
    pub file: PathBuf,
    pub recipient: String,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The fixture's GnuPG home (private, as gpg wants it).
    fn gnupg_home(&self) -> PathBuf {
        let home = self.path("gnupg");
        if !home.exists() {
            std::fs::create_dir(&home).expect("create GnuPG home");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700))
                .expect("chmod GnuPG home");
        }
        home
    }

    fn gpg(&self, args: &[&str]) -> Vec<u8> {
        self.gpg_with_passphrase("", args)
    }

    /// Runs gpg with `passphrase` for the keys it makes or unlocks.
    fn gpg_with_passphrase(&self, passphrase: &str, args: &[&str]) -> Vec<u8> {
        let output = Command::new("gpg")
            .env("GNUPGHOME", self.gnupg_home())
            .args([
                "--batch",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                passphrase,
            ])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("gpg is missing ({e}): run {INSTALL}"));
        assert!(
            output.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// A new OpenPGP key without a passphrase: `algo` is `gpg --quick-gen-key`'s
    /// (`future-default` makes ed25519 with a cv25519 subkey); other algorithms
    /// get an encryption subkey of the same kind.
    pub fn pgp_key(&self, name: &str, algo: &str) -> PgpKey {
        self.pgp_key_with_passphrase(name, algo, "")
    }

    /// A new OpenPGP key as [`Fixture::pgp_key`] makes it, protected by
    /// `passphrase` (none when empty).
    pub fn pgp_key_with_passphrase(&self, name: &str, algo: &str, passphrase: &str) -> PgpKey {
        let uid = format!("{name} <{name}@example.com>");
        let gpg = |args: &[&str]| self.gpg_with_passphrase(passphrase, args);
        gpg(&["--quick-gen-key", &uid, algo, "default", "never"]);
        let listing = String::from_utf8(self.gpg(&["--with-colons", "--list-secret-keys", &uid]))
            .expect("gpg prints UTF-8");
        let fingerprint = listing
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .and_then(|l| l.trim_matches(':').split(':').next_back())
            .expect("a fingerprint")
            .to_string();
        if algo != "future-default" && algo != "default" {
            gpg(&["--quick-add-key", &fingerprint, algo, "encr", "never"]);
        }
        let secret_file = self.path(&format!("{name}.asc"));
        std::fs::write(
            &secret_file,
            gpg(&["--armor", "--export-secret-keys", &fingerprint]),
        )
        .expect("write secret key");
        PgpKey {
            fingerprint,
            secret_file,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A new age key named `name`.
    pub fn age_key(&self, name: &str) -> AgeKey {
        let file = self.path(&format!("{name}.agekey"));
        let output = Command::new(age_tool("age-keygen"))
            .arg("-o")
            .arg(&file)
            .output()
            .expect("run age-keygen");
        assert!(output.status.success(), "age-keygen: {output:?}");
        let text = std::fs::read_to_string(&file).expect("read key");
        let recipient = text
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .expect("public key line")
            .to_string();
        AgeKey { file, recipient }
    }

    /// Writes `plain` as `name` and encrypts it with `sops encrypt ARGS`,
    /// returning the encrypted file's path.
    pub fn encrypt(&self, name: &str, plain: &[u8], args: &[&str]) -> PathBuf {
        let source = self.path(name);
        std::fs::write(&source, plain).expect("write plain file");
        let output = Command::new(sops())
            .current_dir(self.dir.path())
            .arg("encrypt")
            .args(args)
            .env("GNUPGHOME", self.gnupg_home())
            .arg(&source)
            .env_remove("SOPS_AGE_KEY_FILE")
            .env_remove("SOPS_AGE_KEY")
            .output()
            .expect("run sops encrypt");
        assert!(
            output.status.success(),
            "sops encrypt {name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let encrypted = self.path(&format!("enc-{name}"));
        std::fs::write(&encrypted, &output.stdout).expect("write encrypted file");
        std::fs::remove_file(&source).expect("remove plain file");
        encrypted
    }

    /// What `sops decrypt` prints for `file` with the age keys in `key_files`.
    pub fn sops_decrypt(&self, file: &Path, key_files: &[&Path]) -> Vec<u8> {
        // sops reads OpenPGP keys from the fixture's keyring, age keys from here.
        let keys = key_files
            .iter()
            .filter(|p| p.extension().is_none_or(|e| e != "asc"))
            .map(|p| std::fs::read_to_string(p).expect("read key"))
            .collect::<String>();
        let output = Command::new(sops())
            .current_dir(self.dir.path())
            .arg("decrypt")
            .arg(file)
            .env("GNUPGHOME", self.gnupg_home())
            .env_remove("SOPS_AGE_KEY_FILE")
            .env("SOPS_AGE_KEY", keys)
            .output()
            .expect("run sops decrypt");
        assert!(
            output.status.success(),
            "sops decrypt {}: {}",
            file.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }
}

/// Keys from `key_files`: `.asc` files hold OpenPGP keys, others age identities.
pub fn keys(key_files: &[&Path]) -> Keys {
    let mut keys = Keys::new();
    for file in key_files {
        if file.extension().is_some_and(|e| e == "asc") {
            keys.add_pgp_key_file(file).expect("OpenPGP key file");
        } else {
            keys.add_age_key_file(file).expect("age key file");
        }
    }
    keys
}

/// driftless's decryption of `file`.
pub fn decrypt(file: &Path, keys: &Keys) -> Result<Vec<u8>, driftless_sops::SopsError> {
    let bytes = std::fs::read(file).expect("read encrypted file");
    driftless_sops::decrypt(
        &bytes,
        Format::from_path(file),
        keys,
        &file.display().to_string(),
    )
}

/// Asserts driftless prints byte for byte what `sops decrypt` prints.
pub fn assert_same_as_sops(fixture: &Fixture, file: &Path, key_files: &[&Path]) {
    let expected = fixture.sops_decrypt(file, key_files);
    let actual = decrypt(file, &keys(key_files))
        .unwrap_or_else(|e| panic!("driftless failed on {}: {e}", file.display()));
    assert_eq!(
        String::from_utf8_lossy(&actual),
        String::from_utf8_lossy(&expected),
        "{}",
        file.display()
    );
    assert_eq!(actual, expected, "{}", file.display());
}
