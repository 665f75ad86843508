//! Apps with objects encrypted by the real `sops` under `driftless serve`:
//! decrypted with key files or a Secret's keys, applied, masked in diffs,
//! refused whole when a file does not decrypt (nothing applied or pruned),
//! and never written in clear to the data directory or the log; under the
//! controller, with the keys of a Secret whose change reconciles the App.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use driftless_testenv::{shared, tools};
use serde_json::Value;

use crate::kube::{config_map, kubectl, kubectl_stdin};
use crate::support::{GitServer, Repo, Serve, app, applied, config};

const WAIT: Duration = Duration::from_secs(90);
const PASSWORD: &str = "e2e-sops-password-7f3a";
const TOKEN: &str = "e2e-sops-token-91cd";
const BY_SECRET: &str = "e2e-sops-by-secret-5b2e";
const GENERATED: &str = "e2e-sops-generated-c41d";

/// A new age key: its identity file and its recipient.
fn age_key(dir: &Path, name: &str) -> (String, String) {
    let file = dir.join(name);
    let out = Command::new(tools::age_keygen())
        .arg("-o")
        .arg(&file)
        .output()
        .expect("age-keygen runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).expect("key file");
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key line")
        .to_owned();
    (file.display().to_string(), recipient)
}

/// `plain` (YAML) as the real sops encrypts it for `recipient`, only the
/// keys `regex` matches.
fn encrypt(dir: &Path, plain: &str, recipient: &str, regex: &str) -> String {
    sops_encrypt(
        dir,
        plain,
        "yaml",
        &["--age", recipient, "--encrypted-regex", regex],
    )
}

/// A dotenv file as the real sops encrypts it for `recipient`.
fn encrypt_dotenv(dir: &Path, plain: &str, recipient: &str) -> String {
    sops_encrypt(dir, plain, "dotenv", &["--age", recipient])
}

/// `plain` in `format` as `sops encrypt` with `args` prints it.
fn sops_encrypt(dir: &Path, plain: &str, format: &str, args: &[&str]) -> String {
    let file = dir.join(format!("plain.{format}"));
    std::fs::write(&file, plain).expect("write plain");
    let out = Command::new(tools::sops())
        .current_dir(dir)
        .arg("encrypt")
        .args(args)
        .args(["--input-type", format, "--output-type", format])
        .arg(&file)
        .output()
        .expect("sops runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&file).expect("remove plain");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// `encrypted` (a sops YAML file for age) with its data key held by AWS KMS
/// only, as sops writes a `kms` entry.
fn kms_only(encrypted: &str) -> String {
    let mut out = String::new();
    let mut in_age = false;
    for line in encrypted.split_inclusive('\n') {
        if line == "    age:\n" {
            in_age = true;
            out.push_str(
                "    kms:\n        - arn: arn:aws:kms:eu-west-1:111122223333:key/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d\n          created_at: \"2026-01-01T00:00:00Z\"\n          enc: AQICAHhEXAMPLEEXAMPLEEXAMPLE==\n          aws_profile: \"\"\n",
            );
            continue;
        }
        if in_age && line.starts_with("    ") && !line.starts_with("     ") {
            in_age = false;
        }
        if !in_age {
            out.push_str(line);
        }
    }
    assert!(
        out.contains("    kms:") && !out.contains("    age:"),
        "{out}"
    );
    out
}

fn secret_yaml(name: &str, key: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\ntype: Opaque\nstringData:\n  {key}: {value}\n  user: admin\n"
    )
}

fn secret_value(ns: &str, name: &str, key: &str) -> String {
    let json = kubectl(&["get", "secret", "-n", ns, name, "-o", "json"]);
    let secret: Value = serde_json::from_str(&json).expect("secret json");
    let data = secret["data"][key].as_str().unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64");
    String::from_utf8(bytes).expect("utf-8")
}

fn condition<'a>(app: &'a Value, kind: &str) -> &'a Value {
    app["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

/// Every file below `dir` that contains one of `needles`, as raw bytes.
fn files_holding(dir: &Path, needles: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap_or_default();
            for needle in needles {
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push(format!("{} holds {needle}", path.display()));
                }
            }
        }
    }
    found
}

/// The plaintexts, and their base64 forms as a Secret's `data` holds them.
fn plaintexts() -> Vec<String> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    [PASSWORD, TOKEN, BY_SECRET, GENERATED]
        .iter()
        .flat_map(|p| [(*p).to_owned(), b64(p)])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sops_encrypted_objects_sync_masked_refused_whole_and_never_in_clear_at_rest() {
    let ns = shared().namespace("e2e-sops").await.expect("namespace");
    let keys = tempfile::tempdir().expect("temp dir");
    let (key_file, recipient) = age_key(keys.path(), "files.agekey");
    let (_, secret_recipient) = age_key(keys.path(), "secret.agekey");
    let (wrong, _) = age_key(keys.path(), "wrong.agekey");
    let data_regex = "^(data|stringData)$";

    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    let secret = encrypt(
        keys.path(),
        &secret_yaml("db", "password", PASSWORD),
        &recipient,
        data_regex,
    );
    let settings = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  token: {TOKEN}\n  color: blue\n"
    );
    let settings = encrypt(keys.path(), &settings, &recipient, "^data$");
    repo.write("files/secret.enc.yaml", &secret);
    repo.write("files/settings.enc.yaml", &settings);
    let by_secret = secret_yaml("api", "key", BY_SECRET);
    repo.write(
        "keyed/secret.enc.yaml",
        &encrypt(keys.path(), &by_secret, &secret_recipient, data_regex),
    );
    // A kustomization generating a Secret from an encrypted dotenv file.
    repo.write(
        "gen/kustomization.yaml",
        "secretGenerator:\n- name: creds\n  envs: [creds.enc.env]\n",
    );
    repo.write(
        "gen/creds.enc.env",
        &encrypt_dotenv(keys.path(), &format!("API_KEY={GENERATED}\n"), &recipient),
    );
    let c1 = repo.push("encrypted objects");

    // The Secret with the keys first holds a key the files were not encrypted for.
    let keys_secret = |file: &str| {
        let identity = std::fs::read_to_string(file).expect("key");
        let secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "sops-keys", "namespace": ns.name()},
            "stringData": {"identity.agekey": identity, "notes.txt": "ignored"}});
        kubectl_stdin(&["apply", "-f", "-"], Some(&secret.to_string()));
    };
    keys_secret(&wrong);

    let pid = std::process::id();
    let (files_app, keyed_app) = (format!("sops-files-{pid}"), format!("sops-keyed-{pid}"));
    let gen_app = format!("sops-gen-{pid}");
    let decrypt_gen = format!("  decryption: {{provider: sops, keyFiles: [\"{key_file}\"]}}");
    let decrypt_files =
        format!("  prune: true\n  decryption: {{provider: sops, keyFiles: [\"{key_file}\"]}}");
    let keyed = format!(
        "apiVersion: driftless.dev/v1alpha1
kind: App
metadata: {{name: {keyed_app}, namespace: {ns}}}
spec:
  sourceRef: {{name: platform}}
  path: keyed
  destination: {{cluster: test, namespace: {ns}}}
  retry: {{backoff: {{duration: 1s, maxDuration: 2s}}}}
  decryption:
    provider: sops
    secretRef: {{name: sops-keys}}
---
",
        ns = ns.name()
    );
    let text = config(
        &repo.url,
        "1s",
        &(app(&files_app, "files", ns.name(), &decrypt_files)
            + &app(&gen_app, "gen", ns.name(), &decrypt_gen)
            + &keyed),
    );
    let serve = Serve::start(&text, &[]);
    serve
        .wait_app(&files_app, WAIT, "encrypted objects applied", applied(&c1))
        .await;
    assert_eq!(secret_value(ns.name(), "db", "password"), PASSWORD);
    assert_eq!(secret_value(ns.name(), "db", "user"), "admin");
    let cm = config_map(ns.name(), "settings").expect("ConfigMap applied");
    assert_eq!(cm["data"]["token"], TOKEN, "{cm}");
    assert_eq!(cm["data"]["color"], "blue", "{cm}");
    serve
        .wait_app(
            &gen_app,
            WAIT,
            "generated from an encrypted file",
            applied(&c1),
        )
        .await;
    let listed = kubectl(&["get", "secrets", "-n", ns.name(), "-o", "json"]);
    let listed: Value = serde_json::from_str(&listed).expect("secrets json");
    let generated = listed["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["metadata"]["name"].as_str())
        .find(|n| n.starts_with("creds-"))
        .expect("the generated Secret, with its name hash")
        .to_owned();
    assert_eq!(secret_value(ns.name(), &generated, "API_KEY"), GENERATED);

    // Keys of the Secret: the wrong one fails naming the file, nothing is applied.
    // Under serve, an App's name stays unqualified by its namespace.
    let keyed_name = keyed_app.clone();
    let failed = serve
        .wait_app(&keyed_name, WAIT, "decryption fails", |a| {
            condition(a, "Ready")["reason"] == "DecryptionFailed"
        })
        .await;
    let error = failed["lastError"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("keyed/secret.enc.yaml"), "{error}");
    assert!(error.contains(&keyed_app), "{error}");
    let (found, _, _) = crate::kube::kubectl_at(
        shared().kubeconfig(),
        &["get", "secret", "-n", ns.name(), "api"],
        None,
    );
    assert!(!found, "nothing of a failed decryption is applied");
    // The right key in the Secret takes effect at the next attempt.
    keys_secret(&keys.path().join("secret.agekey").display().to_string());
    serve
        .wait_app(
            &keyed_name,
            WAIT,
            "applied with the Secret's key",
            applied(&c1),
        )
        .await;
    assert_eq!(secret_value(ns.name(), "api", "key"), BY_SECRET);

    // A value changed by hand: the API's diff masks the encrypted fields.
    kubectl(&[
        "patch",
        "configmap",
        "settings",
        "-n",
        ns.name(),
        "--type",
        "merge",
        "-p",
        r#"{"data":{"token":"edited-by-hand"}}"#,
    ]);
    let (code, diff) = serve.get(&format!("/api/v1/apps/{files_app}/diff")).await;
    assert_eq!(code, 200, "{diff}");
    let shown = diff.to_string();
    assert!(shown.contains("++++++++ (hmac:"), "{shown}");
    for hidden in [TOKEN, PASSWORD, "edited-by-hand"] {
        assert!(!shown.contains(hidden), "{hidden} in {shown}");
    }
    assert!(shown.contains("color"), "{shown}");

    // A tampered file fails the whole sync: nothing applied, nothing pruned.
    // The first ciphertext's first base64 character changed.
    let at = secret.find("ENC[AES256_GCM,data:").expect("a value") + 20;
    let first = if &secret[at..=at] == "A" { "B" } else { "A" };
    let tampered = format!("{}{first}{}", &secret[..at], &secret[at + 1..]);
    assert_ne!(tampered, secret);
    repo.write("files/secret.enc.yaml", &tampered);
    repo.write(
        "files/extra.yaml",
        &crate::support::config_map("extra", "1"),
    );
    repo.remove("files/settings.enc.yaml");
    let c2 = repo.push("tampered");
    let failed = serve
        .wait_app(&files_app, WAIT, "tampered file refused", |a| {
            a["lastAttempted"]["sha"] == c2.as_str()
                && condition(a, "Ready")["reason"] == "DecryptionFailed"
        })
        .await;
    let error = failed["lastError"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("files/secret.enc.yaml"), "{error}");
    assert_eq!(failed["lastApplied"]["sha"], c1.as_str(), "{failed}");
    assert!(config_map(ns.name(), "settings").is_some(), "not pruned");
    assert!(config_map(ns.name(), "extra").is_none(), "nothing applied");
    assert_eq!(secret_value(ns.name(), "db", "password"), PASSWORD);

    // A file whose data key only AWS KMS holds: refused naming the App, the
    // file and the provider; still nothing applied, nothing pruned.
    repo.write("files/secret.enc.yaml", &kms_only(&secret));
    let c3 = repo.push("kms only");
    let failed = serve
        .wait_app(&files_app, WAIT, "KMS-only file refused", |a| {
            a["lastAttempted"]["sha"] == c3.as_str()
                && condition(a, "Ready")["reason"] == "DecryptionFailed"
        })
        .await;
    let error = failed["lastError"].as_str().unwrap_or_default().to_owned();
    for part in [
        files_app.as_str(),
        "files/secret.enc.yaml",
        "kms keys are not supported yet",
    ] {
        assert!(error.contains(part), "{part} not in {error}");
    }
    assert_eq!(failed["lastApplied"]["sha"], c1.as_str(), "{failed}");
    assert!(config_map(ns.name(), "settings").is_some(), "not pruned");
    assert!(config_map(ns.name(), "extra").is_none(), "nothing applied");

    // Never in clear at rest: not in the data directory, not in the log.
    let log = serve.log();
    let state = serve.kill();
    let leaks = files_holding(state.path(), &plaintexts());
    assert!(leaks.is_empty(), "{leaks:?}");
    for plain in plaintexts() {
        assert!(!log.contains(&plain), "{plain} in the log");
    }
    assert!(
        log.contains("secret.enc.yaml"),
        "the failure is logged:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_controller_a_secrets_keys_decrypt_and_a_new_key_reconciles_the_app() {
    use crate::controller::{Installed, applied_sha, ready, source_and_app};
    let inst = Installed::new("e2e-sops-ctl").await;
    let ns = inst.name().to_owned();
    let keys = tempfile::tempdir().expect("temp dir");
    let (right, recipient) = age_key(keys.path(), "right.agekey");
    let (wrong, _) = age_key(keys.path(), "wrong.agekey");
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    let encrypted = encrypt(
        keys.path(),
        &secret_yaml("db", "password", PASSWORD),
        &recipient,
        "^(data|stringData)$",
    );
    repo.write("app/secret.enc.yaml", &encrypted);
    let c1 = repo.push("an encrypted Secret");
    let keys_secret = |file: &str| {
        let identity = std::fs::read_to_string(file).expect("key");
        serde_json::json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "sops-keys"},
            "stringData": {"team.agekey": identity}})
        .to_string()
    };
    inst.kubectl(&["apply", "-f", "-"], Some(&keys_secret(&wrong)));
    let ctl = inst.controller(&[], None);
    // Retries an hour apart: only the Secret's change can bring the right key in time.
    let extra = "  retry: {backoff: {duration: 1h, maxDuration: 1h}}
  decryption: {provider: sops, secretRef: {name: sops-keys}}";
    inst.kubectl(
        &["apply", "-f", "-"],
        Some(&source_and_app(&repo.url, "web", "app", &ns, extra)),
    );
    let failed = inst
        .wait("app", "web", "DecryptionFailed", |a| {
            a["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["reason"] == "DecryptionFailed")
        })
        .await;
    let shown = failed["status"].to_string();
    assert!(shown.contains("app/secret.enc.yaml"), "{shown}");
    let (found, _, _) = crate::kube::kubectl_at(
        shared().kubeconfig(),
        &["get", "secret", "-n", &ns, "db"],
        None,
    );
    assert!(!found, "nothing of a failed decryption is applied");

    inst.kubectl(&["apply", "-f", "-"], Some(&keys_secret(&right)));
    inst.wait("app", "web", "applied with the new key", |a| {
        ready(a) && applied_sha(a) == c1
    })
    .await;
    assert_eq!(secret_value(&ns, "db", "password"), PASSWORD);

    let log = ctl.log();
    let identity = std::fs::read_to_string(&right).expect("key");
    let secret_key = identity
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .expect("identity line");
    for hidden in [PASSWORD, secret_key] {
        assert!(!log.contains(hidden), "the controller's log holds a secret");
    }
    for plain in plaintexts() {
        assert!(!shown.contains(&plain), "the status holds a plaintext");
    }
}
