//! `driftless render DIR --decrypt`: objects encrypted by sops are printed
//! decrypted; a file that does not decrypt exits 2 naming it, printing nothing.

use std::path::{Path, PathBuf};

use crate::support::{driftless, text};

const PLAINTEXT: &str = "correct-horse-battery-staple";

fn example(rel: &str) -> String {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/sops")
        .join(rel);
    path.to_str().expect("utf-8 path").to_string()
}

#[test]
fn render_decrypt_prints_the_secret_in_clear() {
    let (app, key) = (example("app"), example("test-only.agekey"));
    let out = driftless(&["render", &app, "--decrypt", "--age-key-file", &key]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    assert!(yaml.contains(&format!("password: {PLAINTEXT}")), "{yaml}");
    assert!(!yaml.contains("sops:"), "{yaml}");
    assert!(yaml.contains("name: web-config"), "{yaml}");

    let out = driftless(&["render", &app]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        !text(&out.stdout).contains(PLAINTEXT),
        "no --decrypt, no plaintext"
    );
}

#[test]
fn render_decrypt_without_the_key_exits_2_naming_the_file() {
    let app = example("app");
    let other = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(["render", &app, "--decrypt"])
        .env_remove("SOPS_AGE_KEY")
        .env("SOPS_AGE_KEY_FILE", other.path().join("missing.agekey"))
        .output()
        .expect("run driftless");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("missing.agekey"),
        "{}",
        text(&out.stderr)
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(["render", &app, "--decrypt"])
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_FILE")
        .output()
        .expect("run driftless");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("secret.enc.yaml") && err.contains("no age identity given"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing is printed on error");
}

#[test]
fn render_decrypt_of_a_tampered_file_exits_2_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = std::fs::read_to_string(example("app/secret.enc.yaml")).expect("read");
    std::fs::write(
        dir.path().join("secret.enc.yaml"),
        secret.replace("namespace: web", "namespace: elsewhere"),
    )
    .expect("write");
    let key = example("test-only.agekey");
    let out = driftless(&[
        "render",
        dir.path().to_str().expect("utf-8"),
        "--decrypt",
        "--age-key-file",
        &key,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("secret.enc.yaml") && err.contains("MAC mismatch"),
        "{err}"
    );
    assert!(!err.contains(PLAINTEXT) && out.stdout.is_empty(), "{err}");
}

#[test]
fn render_decrypt_decrypts_encrypted_kustomize_generator_sources() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = dir.path().join("app");
    std::fs::create_dir(&app).expect("mkdir");
    std::fs::write(
        app.join("kustomization.yaml"),
        "secretGenerator:\n- name: db\n  envs: [db.env]\n",
    )
    .expect("write");
    std::fs::write(app.join("db.env"), format!("PASSWORD={PLAINTEXT}\n")).expect("write");
    let key = example("test-only.agekey");
    let public = std::fs::read_to_string(&key).expect("key");
    let recipient = public
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key");
    let sops = std::process::Command::new(driftless_testenv::tools::sops())
        .args(["encrypt", "--age", recipient, "--in-place", "db.env"])
        .current_dir(&app)
        .output()
        .expect("run sops");
    assert!(sops.status.success(), "{sops:?}");
    let app = app.to_str().expect("utf-8 path");

    let out = driftless(&["render", app, "--decrypt", "--age-key-file", &key]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, PLAINTEXT);
    assert!(
        text(&out.stdout).contains(&encoded),
        "{}",
        text(&out.stdout)
    );

    let out = driftless(&["render", app]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "prints nothing");
    let err = text(&out.stderr);
    assert!(
        err.contains("kustomization.yaml") && err.contains("db.env"),
        "{err}"
    );
}
