//! `driftless render DIR --decrypt`: objects encrypted by sops are printed
//! decrypted; a file that does not decrypt exits 2 naming it, printing nothing.
//! `driftless diff --decrypt` against the local control plane shows the
//! fields sops encrypted masked, never their values.

use std::path::{Path, PathBuf};

use crate::support::{driftless, text};

const PLAINTEXT: &str = "correct-horse-battery-staple";

/// The recipient of the example's test-only age key.
fn example_recipient() -> String {
    let key = std::fs::read_to_string(example("test-only.agekey")).expect("key");
    key.lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key")
        .to_string()
}

/// Writes `plain` to `dir/name` encrypted in place by the real sops with `args`.
fn sops_encrypt(dir: &Path, name: &str, plain: &str, args: &[&str]) {
    std::fs::write(dir.join(name), plain).expect("write");
    let out = std::process::Command::new(driftless_testenv::tools::sops())
        .arg("encrypt")
        .args(args)
        .args(["--in-place", name])
        .current_dir(dir)
        .output()
        .expect("run sops");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

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
    let key = example("test-only.agekey");
    let recipient = example_recipient();
    sops_encrypt(
        &app,
        "db.env",
        &format!("PASSWORD={PLAINTEXT}\n"),
        &["--age", &recipient],
    );
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

#[tokio::test]
async fn diff_decrypt_masks_the_encrypted_fields_and_never_prints_their_values() {
    const TOKEN: &str = "diff-decrypt-token-3e9b";
    let env = driftless_testenv::shared();
    let ns = env.namespace("cli-decrypt").await.expect("namespace");
    let dir = tempfile::tempdir().expect("tempdir");
    let recipient = example_recipient();
    let config = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  token: {TOKEN}\n  color: blue\n"
    );
    let args = ["--age", recipient.as_str(), "--encrypted-regex", "^token$"];
    sops_encrypt(dir.path(), "settings.enc.yaml", &config, &args);
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: {PLAINTEXT}\n"
    );
    sops_encrypt(
        dir.path(),
        "secret.enc.yaml",
        &secret,
        &["--age", &recipient],
    );
    let (kubeconfig, d) = (
        env.kubeconfig().to_str().expect("utf-8").to_string(),
        dir.path().to_str().expect("utf-8").to_string(),
    );
    let key = example("test-only.agekey");
    let run = |cmd: &str| {
        driftless(&[
            cmd,
            &d,
            "--app",
            "cli-decrypt",
            "--kubeconfig",
            &kubeconfig,
            "-n",
            ns.name(),
            "--decrypt",
            "--age-key-file",
            &key,
        ])
    };
    let hidden = |shown: &str| {
        let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
        for value in [TOKEN, PLAINTEXT, "edited-by-hand"] {
            assert!(!shown.contains(value), "{value} printed: {shown}");
            assert!(!shown.contains(&b64(value)), "{value} printed: {shown}");
        }
    };

    let out = run("diff");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let shown = text(&out.stdout) + &text(&out.stderr);
    hidden(&shown);
    assert!(shown.contains("2 to create"), "{shown}");
    assert!(shown.contains("token: ++++++++ (hmac:"), "{shown}");
    assert!(shown.contains("color: blue"), "{shown}");

    let out = run("apply");
    assert!(out.status.success(), "apply: {}", text(&out.stderr));
    let live = env
        .kubectl()
        .args([
            "-n",
            ns.name(),
            "get",
            "configmap",
            "settings",
            "-o",
            "jsonpath={.data.token}",
        ])
        .output()
        .expect("kubectl");
    assert_eq!(text(&live.stdout), TOKEN, "applied decrypted");
    let out = run("diff");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    // A value changed by hand: the change shows, masked on both sides.
    let patched = env
        .kubectl()
        .args([
            "-n",
            ns.name(),
            "patch",
            "configmap",
            "settings",
            "--type",
            "merge",
        ])
        .args(["-p", r#"{"data":{"token":"edited-by-hand"}}"#])
        .output()
        .expect("kubectl");
    assert!(patched.status.success(), "{}", text(&patched.stderr));
    let out = run("diff");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let shown = text(&out.stdout) + &text(&out.stderr);
    hidden(&shown);
    assert!(shown.contains("1 to update"), "{shown}");
    let changed: Vec<&str> = shown
        .lines()
        .filter(|l| (l.starts_with('-') || l.starts_with('+')) && l.contains("token"))
        .collect();
    assert_eq!(changed.len(), 2, "{shown}");
    assert!(
        changed.iter().all(|l| l.contains("token: ++++++++ (hmac:")),
        "{shown}"
    );
    assert_ne!(
        changed[0][1..],
        changed[1][1..],
        "the masks differ: {shown}"
    );
}
