//! Rendered objects carrying SOPS metadata: decrypted in memory after the
//! render and its cache, which keep only the encrypted objects.

use std::path::{Path, PathBuf};

use driftless_render::RenderCache;
use driftless_render::decrypt::{DecryptError, decrypt_objects};
use driftless_sops::{Keys, SopsError};

use super::Repo;

const PLAINTEXT: &str = "correct-horse-battery-staple";

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/sops")
        .join(rel)
}

/// A repository holding the fixture's encrypted Secret and a ConfigMap.
fn repo_with_secret() -> Repo {
    let repo = Repo::new();
    for name in ["secret.enc.yaml", "config.yaml"] {
        let text = std::fs::read_to_string(fixture(&format!("app/{name}"))).expect("fixture");
        repo.write(&format!("app/{name}"), &text);
    }
    repo
}

fn test_key() -> Keys {
    let mut keys = Keys::new();
    keys.add_age_key_file(&fixture("test-only.agekey"))
        .expect("test key");
    keys
}

/// Every file below `dir`, as bytes.
pub(super) fn files_below(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push((path.clone(), std::fs::read(&path).expect("read")));
            }
        }
    }
    found
}

#[test]
fn secrets_decrypt_after_the_cache_which_keeps_them_encrypted() {
    let repo = repo_with_secret();
    let disk = tempfile::tempdir().expect("temp dir");
    let cache = RenderCache::new(4).with_disk(disk.path().join("render"));
    let rendered = cache
        .render(&repo.path("app"), &repo.opts())
        .expect("render");
    let decrypted = decrypt_objects(&rendered, &test_key()).expect("decrypt");

    let secret = decrypted
        .iter()
        .find(|o| o["kind"] == "Secret")
        .expect("the Secret");
    assert_eq!(secret["stringData"]["password"], PLAINTEXT);
    assert_eq!(secret["stringData"]["username"], "admin");
    assert!(secret.get("sops").is_none(), "{secret}");
    assert_eq!(decrypted.len(), 2);

    let cached = files_below(disk.path());
    assert!(!cached.is_empty(), "the cache wrote its entries");
    for (path, bytes) in cached {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(PLAINTEXT),
            "{} holds the plaintext",
            path.display()
        );
    }
}

#[test]
fn no_key_fails_naming_the_file() {
    let repo = repo_with_secret();
    let rendered = driftless_render::render(&repo.path("app"), &repo.opts()).expect("render");
    let err = decrypt_objects(&rendered, &Keys::new()).expect_err("no key");
    assert!(
        matches!(err, DecryptError::Sops(SopsError::NoKey { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("secret.enc.yaml"), "{err}");
}

#[test]
fn a_changed_clear_field_fails_the_mac_naming_the_file() {
    let repo = repo_with_secret();
    let path = repo.path("app/secret.enc.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, text.replace("name: db-credentials", "name: other")).expect("write");
    let rendered = driftless_render::render(&repo.path("app"), &repo.opts()).expect("render");
    let err = decrypt_objects(&rendered, &test_key()).expect_err("tampered");
    assert!(
        matches!(err, DecryptError::Sops(SopsError::MacMismatch { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("secret.enc.yaml"), "{err}");
    assert!(!err.to_string().contains(PLAINTEXT), "{err}");
}
