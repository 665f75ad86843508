//! Files that must not decrypt: each error is typed and names the file.

use std::path::{Path, PathBuf};

use driftless_sops::SopsError;

use super::support::{AgeKey, Fixture, decrypt, keys};

fn encrypted_yaml(fixture: &Fixture) -> (PathBuf, AgeKey) {
    let key = fixture.age_key("key");
    let file = fixture.encrypt(
        "secret.yaml",
        b"user: admin\npassword: hunter2\n",
        &["--age", &key.recipient],
    );
    (file, key)
}

fn error_for(file: &Path, key: &Path) -> SopsError {
    let err = decrypt(file, &keys(&[key])).expect_err("decryption must fail");
    let message = err.to_string();
    assert!(
        message.starts_with(&file.display().to_string()),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
    err
}

/// What follows `prefix` on the line that starts with it.
fn after(text: &str, prefix: &str) -> String {
    let line = text.lines().find(|l| l.starts_with(prefix)).expect("line");
    line[prefix.len()..].to_string()
}

/// Rewrites the file with `edit` applied to its text.
fn tamper(file: &Path, edit: impl Fn(&str) -> String) {
    let text = std::fs::read_to_string(file).expect("read");
    std::fs::write(file, edit(&text)).expect("write");
}

#[test]
fn wrong_key() {
    let fixture = Fixture::new();
    let (file, _) = encrypted_yaml(&fixture);
    let other = fixture.age_key("other");
    assert!(matches!(
        error_for(&file, &other.file),
        SopsError::NoKey { .. }
    ));
}

#[test]
fn missing_key() {
    let fixture = Fixture::new();
    let (file, _) = encrypted_yaml(&fixture);
    let err = decrypt(&file, &keys(&[])).expect_err("no key");
    assert!(matches!(err, SopsError::NoKey { .. }), "{err}");
    assert!(err.to_string().contains("no age identity given"), "{err}");
}

#[test]
fn tampered_value() {
    let fixture = Fixture::new();
    let (file, key) = encrypted_yaml(&fixture);
    // Swap the two values' ciphertexts: each is valid, but not at its path.
    tamper(&file, |text| {
        let (user, password) = (after(text, "user: "), after(text, "password: "));
        text.replace(&user, "@USER@")
            .replace(&password, &user)
            .replace("@USER@", &password)
    });
    let err = error_for(&file, &key.file);
    assert!(matches!(err, SopsError::Value { .. }), "{err}");
}

#[test]
fn tampered_mac() {
    let fixture = Fixture::new();
    let (file, key) = encrypted_yaml(&fixture);
    tamper(&file, |text| {
        text.replacen(
            "mac: ENC[AES256_GCM,data:",
            "mac: ENC[AES256_GCM,data:AAAA",
            1,
        )
    });
    assert!(matches!(error_for(&file, &key.file), SopsError::Mac { .. }));
}

#[test]
fn a_value_in_clear_changes_the_mac() {
    let fixture = Fixture::new();
    let key = fixture.age_key("key");
    let file = fixture.encrypt(
        "plain.yaml",
        b"user_unencrypted: admin\npassword: hunter2\n",
        &["--age", &key.recipient],
    );
    tamper(&file, |text| {
        text.replace("user_unencrypted: admin", "user_unencrypted: root")
    });
    assert!(matches!(
        error_for(&file, &key.file),
        SopsError::MacMismatch { .. }
    ));
}

#[test]
fn truncated_file() {
    let fixture = Fixture::new();
    let (file, key) = encrypted_yaml(&fixture);
    tamper(&file, |text| text[..text.len() / 2].to_string());
    let err = error_for(&file, &key.file);
    assert!(
        matches!(
            err,
            SopsError::Syntax { .. } | SopsError::Metadata { .. } | SopsError::NoKey { .. }
        ),
        "{err}"
    );
}

#[test]
fn key_service_only_files_are_refused_as_not_supported_yet() {
    let fixture = Fixture::new();
    let (file, key) = encrypted_yaml(&fixture);
    tamper(&file, |text| text.replace("\n    age:\n", "\n    kms:\n"));
    let err = error_for(&file, &key.file);
    assert!(
        matches!(err, SopsError::UnsupportedProvider { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("kms keys are not supported yet"),
        "{err}"
    );
}

#[test]
fn every_format_refuses_a_truncated_or_changed_file() {
    let fixture = Fixture::new();
    let key = fixture.age_key("key");
    let json = fixture.encrypt(
        "s.json",
        br#"{"user": "admin", "password": "hunter2"}"#,
        &["--age", &key.recipient],
    );
    let env = fixture.encrypt(
        "s.env",
        b"USER=admin\nPASSWORD=hunter2\n",
        &["--age", &key.recipient],
    );
    let bin = fixture.encrypt("s.bin", b"hunter2", &["--age", &key.recipient]);
    for file in [&json, &bin] {
        tamper(file, |text| text[..text.len() / 2].to_string());
        assert!(matches!(
            error_for(file, &key.file),
            SopsError::Syntax { .. }
        ));
    }
    // A dotenv value moved to another key does not decrypt there.
    tamper(&env, |text| {
        let (user, password) = (after(text, "USER="), after(text, "PASSWORD="));
        text.replace(&user, &password)
    });
    assert!(matches!(
        error_for(&env, &key.file),
        SopsError::Value { .. }
    ));
}

#[test]
fn a_wrong_openpgp_key() {
    let fixture = Fixture::new();
    let right = fixture.pgp_key("right", "future-default");
    let wrong = fixture.pgp_key("wrong", "future-default");
    let file = fixture.encrypt(
        "pgp.yaml",
        b"password: hunter2\n",
        &["--pgp", &right.fingerprint],
    );
    let err = error_for(&file, &wrong.secret_file);
    assert!(matches!(err, SopsError::NoKey { .. }), "{err}");
    assert!(err.to_string().contains(&right.fingerprint), "{err}");
}

#[test]
fn an_openpgp_key_protected_by_a_passphrase_is_refused_naming_it() {
    let fixture = Fixture::new();
    let key = fixture.pgp_key_with_passphrase("locked", "future-default", "correct horse");
    let mut keys = driftless_sops::Keys::new();
    let err = keys
        .add_pgp_key_file(&key.secret_file)
        .expect_err("a protected key is refused");
    let message = err.to_string();
    assert!(matches!(err, SopsError::KeyFile { .. }), "{message}");
    assert!(
        message.starts_with(&key.secret_file.display().to_string()),
        "{message}"
    );
    assert!(message.contains(&key.fingerprint), "{message}");
    assert!(message.contains("protected by a passphrase"), "{message}");
    assert!(!message.contains("correct horse"), "{message}");
    // The same key read as Secret data names the Secret key it came from.
    let armored = std::fs::read_to_string(&key.secret_file).expect("read key");
    let err = keys
        .add_pgp_secret_keys(&armored, "Secret apps/sops-keys key locked.asc")
        .expect_err("a protected key is refused");
    assert!(
        err.to_string()
            .starts_with("Secret apps/sops-keys key locked.asc: OpenPGP secret key"),
        "{err}"
    );
    assert!(keys.is_empty());
}
