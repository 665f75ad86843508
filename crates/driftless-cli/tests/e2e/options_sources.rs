//! GitSource and Receiver options through `driftless serve`: every kind of
//! ref, HTTPS with basic auth and a private CA, SSH with a key, signature
//! verification, ignore, suspend, a fetch timeout, and the webhook types.
//! One serve process covers them all, over two commits.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use driftless_testenv::git_http::{GitServer, Options, ServedRepo};
use driftless_testenv::servers::port_of;
use driftless_testenv::{shared, sshd, tls};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::kube::{config_map, kubectl_stdin};
use crate::support::{Serve, applied};

const WAIT: Duration = Duration::from_secs(90);
const HOOK_TOKEN: &str = "options-webhook-token";

/// Files of one commit of the `platform` repository: each ref's App reads
/// its own directory, whose ConfigMap says which commit it came from.
fn write_refs(repo: &ServedRepo, letter: &str) {
    for dir in [
        "tag",
        "semver",
        "commit",
        "name",
        "branch",
        "hook",
        "suspended",
    ] {
        let text = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: ref-{dir}}}\ndata: {{commit: {letter}}}\n"
        );
        repo.write(&format!("{dir}/cm.yaml"), &text);
    }
    // Left out of the snapshot by the source's `ignore`.
    repo.write(
        "branch/ignored.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ignored}\n",
    );
}

fn cm_text(name: &str, v: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{v: \"{v}\"}}\n")
}

/// A new ed25519 key at `path`; returns its allowed-signers line.
fn signing_key(path: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "signer", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = std::fs::read_to_string(path.with_extension("pub")).expect("public key");
    let mut fields = public.split_whitespace();
    let (kind, key) = (fields.next().expect("type"), fields.next().expect("key"));
    format!("ada@example.com {kind} {key}")
}

/// `git` arguments that sign with the SSH key at `key`.
fn signing(key: &Path) -> [String; 4] {
    [
        "-c".into(),
        "gpg.format=ssh".into(),
        "-c".into(),
        format!("user.signingkey={}", key.display()),
    ]
}

/// Commits everything signed with `key`, tags it `tag` (signed) and pushes.
fn signed_push(repo: &ServedRepo, key: &Path, message: &str, tag: &str) -> String {
    let sign = signing(key);
    let sign: Vec<&str> = sign.iter().map(String::as_str).collect();
    repo.work.git(&["add", "-A"]);
    repo.work
        .git(&[&sign[..], &["commit", "-q", "-S", "-m", message]].concat());
    repo.work
        .git(&[&sign[..], &["tag", "-s", "-m", tag, tag]].concat());
    repo.work.git(&["push", "-q", "origin", "main", "--tags"]);
    repo.work.head()
}

fn source(name: &str, ns: &str, url: &str, rest: &str) -> String {
    format!(
        "apiVersion: driftless.dev/v1alpha1
kind: GitSource
metadata: {{name: {name}, namespace: {ns}}}
spec:
  url: \"{url}\"
{rest}
---
"
    )
}

fn app(name: &str, source: &str, path: &str, ns: &str) -> String {
    format!(
        "apiVersion: driftless.dev/v1alpha1
kind: App
metadata: {{name: {name}}}
spec:
  sourceRef: {{name: {source}}}
  path: {path}
  destination: {{cluster: test, namespace: {ns}}}
---
"
    )
}

fn receiver(name: &str, kind: &str, source: &str) -> String {
    format!(
        "apiVersion: driftless.dev/v1alpha1
kind: Receiver
metadata: {{name: {name}}}
spec: {{type: {kind}, secretEnv: E2E_OPTIONS_TOKEN, resources: [{source}]}}
---
"
    )
}

fn hmac_hex(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(HOOK_TOKEN.as_bytes()).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Posts a push of `url` to receiver `name`, signed the way `kind` expects.
async fn post_push(serve: &Serve, name: &str, kind: &str, url: &str) -> Value {
    let body = serde_json::json!({
        "ref": "refs/heads/main",
        "repository": {"clone_url": url, "git_http_url": url},
        "project": {"git_http_url": url},
    })
    .to_string();
    let request = reqwest::Client::new()
        .post(format!("{}/hooks/{name}", serve.base))
        .header("Content-Type", "application/json");
    let request = match kind {
        "gitlab" => request
            .header("X-Gitlab-Event", "Push Hook")
            .header("X-Gitlab-Token", HOOK_TOKEN),
        "gitea" => request
            .header("X-Gitea-Event", "push")
            .header("X-Gitea-Signature", hmac_hex(body.as_bytes())),
        _ => request.header(
            "X-Signature",
            format!("sha256={}", hmac_hex(body.as_bytes())),
        ),
    };
    let resp = request.body(body).send().await.expect("webhook answers");
    assert_eq!(resp.status().as_u16(), 200, "{kind} webhook");
    resp.json().await.expect("JSON answer")
}

fn secrets(ns: &str, sshd: &sshd::Sshd, allowed_signers: &str) -> String {
    let indent = |text: &str| {
        text.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    format!(
        "apiVersion: v1
kind: Secret
metadata: {{name: git-basic, namespace: {ns}}}
stringData: {{username: reader, password: s3cret-pass}}
---
apiVersion: v1
kind: Secret
metadata: {{name: git-ssh, namespace: {ns}}}
stringData:
  identity: |
{key}  known_hosts: |
{hosts}---
apiVersion: v1
kind: Secret
metadata: {{name: signers, namespace: {ns}}}
stringData:
  allowed_signers: \"{allowed_signers}\"
",
        key = indent(&sshd.client_key),
        hosts = indent(&sshd.known_hosts),
    )
}

fn source_status(sources: &Value, name: &str) -> Value {
    sources
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == name))
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_source_and_receiver_option_works_under_serve() {
    let test_ns = shared().namespace("e2e-opt-src").await.expect("namespace");
    let ns = test_ns.name().to_owned();
    let tmp = tempfile::tempdir().expect("temp dir");

    // The refs: v1.0.0 and refs/heads/release on A, v1.1.0 on B, main at C.
    let open = GitServer::start();
    let platform = ServedRepo::new(&open, "platform");
    write_refs(&platform, "a");
    let a = platform.push("a");
    platform.work.git(&["tag", "v1.0.0"]);
    write_refs(&platform, "b");
    let b = platform.push("b");
    platform.work.git(&["tag", "v1.1.0"]);
    platform.work.git(&["branch", "release", &b]);
    write_refs(&platform, "c");
    let c = platform.push("c");
    platform
        .work
        .git(&["push", "-q", "origin", "release", "--tags"]);

    // HTTPS with basic auth behind TLS from a private CA, and SSH, both
    // serving the same bare repository.
    let locked = GitServer::start_with(Options::basic_auth("reader", "s3cret-pass"));
    let private = ServedRepo::new(&locked, "private");
    private.write("https/cm.yaml", &cm_text("over-https", "1"));
    private.write("ssh/cm.yaml", &cm_text("over-ssh", "1"));
    let p1 = private.push("private");
    let tls = tls::start(&tmp.path().join("tls"), port_of(&locked.url));
    let ca_file = tmp.path().join("tls/ca.pem");
    let sshd = sshd::start(&tmp.path().join("sshd"));

    // Signed commits and tags.
    let signed = ServedRepo::new(&open, "signed");
    let key = tmp.path().join("signer");
    let allowed = signing_key(&key);
    signed.write("verify/cm.yaml", &cm_text("verified", "signed"));
    signed.write("verify-tag/cm.yaml", &cm_text("verified-tag", "signed"));
    let s1 = signed_push(&signed, &key, "signed", "v1");

    // A server that never sends a pack, for the fetch timeout.
    let stalled = GitServer::start_with(Options {
        stall_fetch: Some(Duration::from_secs(20)),
        ..Options::default()
    });
    let hung = ServedRepo::new(&stalled, "hung");
    hung.write("hung/cm.yaml", &cm_text("hung", "1"));
    hung.push("hung");

    kubectl_stdin(&["apply", "-f", "-"], Some(&secrets(&ns, &sshd, &allowed)));

    let kubeconfig = shared().kubeconfig().display().to_string();
    let pid = std::process::id();
    let n = |base: &str| format!("{base}-{pid}");
    let mut text = format!(
        "apiVersion: driftless.dev/v1alpha1
kind: Cluster
metadata: {{name: test}}
spec: {{kubeconfig: {{path: {kubeconfig}}}}}
---
"
    );
    let url = platform.url.as_str();
    for (name, rest) in [
        ("tag", "  ref: {tag: v1.0.0}\n  interval: 1s".to_owned()),
        (
            "semver",
            "  ref: {semver: '>=1.0.0 <2.0.0'}\n  interval: 1s".to_owned(),
        ),
        ("commit", format!("  ref: {{commit: {a}}}\n  interval: 1s")),
        (
            "name",
            "  ref: {name: refs/heads/release}\n  interval: 1s".to_owned(),
        ),
        (
            "branch",
            "  ref: {branch: main}\n  interval: 1s\n  timeout: 30s\n  ignore: |\n    ignored.yaml"
                .to_owned(),
        ),
        ("hook", "  ref: {branch: main}\n  interval: 1h".to_owned()),
        (
            "suspended",
            "  ref: {branch: main}\n  interval: 1s\n  suspend: true".to_owned(),
        ),
    ] {
        text.push_str(&source(&format!("src-{name}"), &ns, url, &rest));
        text.push_str(&app(&n(name), &format!("src-{name}"), name, &ns));
    }
    let https = format!("{}/private.git", tls.url);
    let https_rest = format!(
        "  ref: {{branch: main}}\n  interval: 1s\n  secretRef: {{name: git-basic}}\n  caFile: {}",
        ca_file.display()
    );
    text.push_str(&source("src-https", &ns, &https, &https_rest));
    text.push_str(&app(&n("https"), "src-https", "https", &ns));
    let ssh_rest = "  ref: {branch: main}\n  interval: 1s\n  secretRef: {name: git-ssh}";
    text.push_str(&source("src-ssh", &ns, &sshd.url(&private.bare), ssh_rest));
    text.push_str(&app(&n("ssh"), "src-ssh", "ssh", &ns));
    let verify = |mode: &str, reference: &str| {
        format!(
            "  ref: {reference}\n  interval: 1s\n  verify: {{provider: ssh, mode: {mode}, secretRef: {{name: signers}}}}"
        )
    };
    let head = verify("head-commit", "{branch: main}");
    text.push_str(&source("src-verify", &ns, &signed.url, &head));
    text.push_str(&app(&n("verify"), "src-verify", "verify", &ns));
    let tagged = verify("tag", "{tag: v1}");
    text.push_str(&source("src-verify-tag", &ns, &signed.url, &tagged));
    text.push_str(&app(&n("verify-tag"), "src-verify-tag", "verify-tag", &ns));
    let hung_rest = "  ref: {branch: main}\n  interval: 1s\n  timeout: 2s";
    text.push_str(&source("src-hung", &ns, &hung.url, hung_rest));
    text.push_str(&app(&n("hung"), "src-hung", "hung", &ns));
    for kind in ["gitlab", "gitea", "generic-hmac"] {
        text.push_str(&receiver(&format!("hook-{kind}"), kind, "src-hook"));
    }
    let serve = Serve::start(
        &text,
        &[
            ("KUBECONFIG", &kubeconfig),
            ("E2E_OPTIONS_TOKEN", HOOK_TOKEN),
        ],
    );

    // Each kind of ref picks its commit.
    for (base, sha, letter) in [
        ("tag", &a, "a"),
        ("semver", &b, "b"),
        ("commit", &a, "a"),
        ("name", &b, "b"),
        ("branch", &c, "c"),
        ("hook", &c, "c"),
    ] {
        serve.wait_app(&n(base), WAIT, base, applied(sha)).await;
        let cm = config_map(&ns, &format!("ref-{base}")).expect("applied");
        assert_eq!(cm["data"]["commit"], letter, "{base}");
    }
    assert!(
        config_map(&ns, "ignored").is_none(),
        "ignored by the source"
    );

    // Credentials over HTTPS (private CA) and SSH.
    serve
        .wait_app(&n("https"), WAIT, "https", applied(&p1))
        .await;
    assert!(config_map(&ns, "over-https").is_some());
    serve.wait_app(&n("ssh"), WAIT, "ssh", applied(&p1)).await;
    assert!(config_map(&ns, "over-ssh").is_some());
    assert!(
        locked
            .http
            .requests
            .load(std::sync::atomic::Ordering::SeqCst)
            > 0
    );

    // Signed head commit and signed tag are accepted.
    serve
        .wait_app(&n("verify"), WAIT, "signed", applied(&s1))
        .await;
    serve
        .wait_app(&n("verify-tag"), WAIT, "signed tag", applied(&s1))
        .await;

    // The fetch that never ends is cut at the source's timeout.
    let hung_app = serve
        .wait_app(&n("hung"), WAIT, "fetch timeout", |a| {
            a["lastError"].is_string()
        })
        .await;
    assert!(hung_app["lastApplied"].is_null(), "{hung_app}");
    let (_, sources) = serve.get("/api/v1/sources").await;
    let hung_source = source_status(&sources, "src-hung");
    let error = hung_source["lastError"].as_str().unwrap_or_default();
    assert!(error.contains("no answer within 2s"), "{hung_source}");

    // Second commit: an unsigned one on the verified branch is refused, and
    // the webhooks bring the new commit to the source polled hourly.
    signed.write("verify/cm.yaml", &cm_text("verified", "unsigned"));
    let unsigned = signed.push("unsigned");
    write_refs(&platform, "d");
    let d = platform.push("d");
    for kind in ["gitlab", "gitea", "generic-hmac"] {
        let answer = post_push(&serve, &format!("hook-{kind}"), kind, &platform.url).await;
        assert_eq!(answer["triggered"], 1, "{kind}: {answer}");
    }
    serve
        .wait_app(&n("hook"), WAIT, "webhook", applied(&d))
        .await;
    serve
        .wait_app(&n("branch"), WAIT, "polling", applied(&d))
        .await;
    let refused = serve
        .wait_app(&n("verify"), WAIT, "unsigned refused", |a| {
            a["lastError"]
                .as_str()
                .is_some_and(|e| e.contains(&unsigned[..12]) || e.contains("sign"))
        })
        .await;
    assert_eq!(
        refused["lastApplied"]["sha"],
        s1.as_str(),
        "nothing applied"
    );
    let ready = refused["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(ready["status"], "False", "{refused}");
    assert_eq!(
        config_map(&ns, "verified").expect("still there")["data"]["v"],
        "signed"
    );

    // The suspended source never moved past its first fetch, if any.
    let (_, sources) = serve.get("/api/v1/sources").await;
    assert_eq!(
        source_status(&sources, "src-suspended")["suspended"],
        true,
        "{sources}"
    );
    let (_, suspended) = serve.get(&format!("/api/v1/apps/{}", n("suspended"))).await;
    assert_ne!(suspended["lastApplied"]["sha"], d.as_str(), "{suspended}");
    drop(sshd);
}
