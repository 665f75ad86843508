//! Kustomize generator sources (`envs:`, `files:`) encrypted by sops: decrypted
//! during the build with the render's keys, generating what kustomize
//! generates from the plaintext files, and never cached.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use base64::Engine as _;
use driftless_render::{RenderCache, Served};
use driftless_sops::Keys;

use super::Repo;

const DOTENV_SECRET: &str = "dotenv-secret-5d1e";
const YAML_SECRET: &str = "yaml-secret-77ab";
const JSON_SECRET: &str = "json-secret-9c02";
const BINARY_SECRET: &str = "binary-secret-e4f1";

fn key_file() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sops/test-only.agekey")
}

fn recipient() -> String {
    let text = std::fs::read_to_string(key_file()).expect("key file");
    let line = text.lines().find_map(|l| l.strip_prefix("# public key: "));
    line.expect("public key line").trim().to_owned()
}

fn keys() -> Arc<Keys> {
    let mut keys = Keys::new();
    keys.add_age_key_file(&key_file()).expect("test key");
    Arc::new(keys)
}

/// Runs the real sops on `file` in place with `args`.
fn sops(args: &[&str], file: &Path) {
    let out = Command::new(driftless_testenv::tools::sops())
        .args(args)
        .arg("--in-place")
        .arg(file)
        .env("SOPS_AGE_KEY_FILE", key_file())
        .current_dir(file.parent().expect("parent"))
        .output()
        .expect("run sops");
    assert!(
        out.status.success(),
        "sops {args:?} {}: {out:?}",
        file.display()
    );
}

/// The plaintext generator sources of the test kustomization.
const SOURCES: [(&str, &str); 4] = [
    ("db.env", "USER=admin\nPASSWORD=dotenv-secret-5d1e\n"),
    (
        "config.yaml",
        "api:\n    token: yaml-secret-77ab\n    port: 8080\n",
    ),
    ("settings.json", "{\n\t\"key\": \"json-secret-9c02\"\n}"),
    ("cert.bin", "-----CERT-----\nbinary-secret-e4f1\n"),
];

/// A repository whose kustomization generates a Secret and a ConfigMap
/// from the sources, encrypted by the real sops.
fn encrypted_repo() -> Repo {
    let repo = Repo::new();
    repo.write(
        "app/kustomization.yaml",
        "secretGenerator:\n\
         - name: creds\n  envs: [db.env]\n  files: [config.yaml, settings.json, tls.crt=cert.bin]\n\
         configMapGenerator:\n\
         - name: settings\n  files: [settings.json]\n",
    );
    let recipient = recipient();
    for (name, text) in SOURCES {
        let path = repo.write(&format!("app/{name}"), text);
        sops(&["encrypt", "--age", &recipient], &path);
    }
    repo
}

/// A copy of the repository's `app` with every source decrypted by sops.
fn plaintext_copy(repo: &Repo) -> tempfile::TempDir {
    let copy = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(repo.path("app")).expect("read dir") {
        let path = entry.expect("entry").path();
        let to = copy.path().join(path.file_name().expect("name"));
        std::fs::copy(&path, &to).expect("copy");
    }
    for (name, _) in SOURCES {
        sops(&["decrypt"], &copy.path().join(name));
    }
    copy
}

fn kustomize_build(dir: &Path) -> String {
    let out = Command::new(driftless_testenv::tools::kustomize())
        .arg("build")
        .arg(dir)
        .output()
        .expect("run kustomize");
    assert!(out.status.success(), "kustomize build: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

fn secrets() -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut all = Vec::new();
    for s in [DOTENV_SECRET, YAML_SECRET, JSON_SECRET, BINARY_SECRET] {
        all.push(s.to_owned());
        all.push(b64.encode(s));
    }
    all
}

#[test]
fn encrypted_generator_sources_generate_what_kustomize_does_from_the_plaintext() {
    let repo = encrypted_repo();
    for (name, _) in SOURCES {
        let text = std::fs::read_to_string(repo.path(&format!("app/{name}"))).expect("read");
        assert!(text.contains("sops"), "{name} is encrypted: {text}");
    }
    let plain = plaintext_copy(&repo);
    let expected = kustomize_build(plain.path());
    assert!(expected.contains("name: creds-"), "{expected}");

    let mut opts = repo.opts();
    opts.decryption_keys = Some(keys());
    let set = driftless_render::render(&repo.path("app"), &opts).expect("render");
    assert_eq!(set.to_yaml().expect("yaml"), expected);
}

#[test]
fn renders_that_decrypted_a_source_are_never_cached() {
    let repo = encrypted_repo();
    let disk = tempfile::tempdir().expect("temp dir");
    let cache = RenderCache::new(4).with_disk(disk.path().join("render"));
    let mut opts = repo.opts();
    opts.decryption_keys = Some(keys());
    for _ in 0..2 {
        let got = cache
            .get_or_render(&repo.path("app"), &opts)
            .expect("render");
        assert_eq!(got.served, Served::Rendered);
        let secret = got.set.iter().find(|o| o["kind"] == "Secret");
        let data = &secret.expect("the Secret")["data"]["PASSWORD"];
        let b64 = base64::engine::general_purpose::STANDARD;
        assert_eq!(data, &serde_json::json!(b64.encode(DOTENV_SECRET)));
    }
    // A render without encrypted sources is still cached.
    repo.write(
        "plain/kustomization.yaml",
        "configMapGenerator:\n- name: c\n  literals: [a=b]\n",
    );
    cache
        .render(&repo.path("plain"), &opts)
        .expect("plain render");
    let listing = super::decrypt::files_below(disk.path());
    assert!(!listing.is_empty(), "the cache wrote the plain render");
    for (path, bytes) in listing {
        let text = String::from_utf8_lossy(&bytes);
        for secret in secrets() {
            assert!(
                !text.contains(&secret),
                "{} holds a plaintext",
                path.display()
            );
        }
    }
}

#[test]
fn without_keys_an_encrypted_source_fails_naming_kustomization_and_file() {
    let repo = encrypted_repo();
    let err = driftless_render::render(&repo.path("app"), &repo.opts()).expect_err("no keys");
    let text = err.to_string();
    assert!(text.contains("kustomization.yaml"), "{text}");
    // kustomize runs configMapGenerator first, so its source fails first.
    assert!(text.contains("configMapGenerator"), "{text}");
    assert!(text.contains("settings.json"), "{text}");
    assert!(text.contains("no decryption keys"), "{text}");

    let mut opts = repo.opts();
    opts.decryption_keys = Some(Arc::new(Keys::new()));
    let err = driftless_render::render(&repo.path("app"), &opts).expect_err("no key matches");
    let text = err.to_string();
    assert!(text.contains("settings.json"), "{text}");
    for secret in secrets() {
        assert!(!text.contains(&secret), "{text}");
    }
}
