//! The Server's ignored differences under `driftless serve`: a webhook
//! configuration's `caBundle` that a CA injector writes stays the injector's
//! for every App (not drift, not reverted, kept when a commit changes the
//! object), while a field no rule names is still taken back to Git's value;
//! the same under the controller with the Server object of `--config`.

use std::time::Duration;

use base64::Engine as _;
use driftless_testenv::shared;
use serde_json::Value;

use crate::controller::{Installed, applied_sha, source_and_app};
use crate::kube::kubectl;
use crate::support::{GitServer, Repo, Serve, app, applied, config};

const WAIT: Duration = Duration::from_secs(90);

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A webhook configuration of `kind` that never matches anything.
fn webhook(kind: &str, name: &str, timeout: u32) -> String {
    format!(
        "apiVersion: admissionregistration.k8s.io/v1
kind: {kind}
metadata: {{name: {name}}}
webhooks:
- name: never.e2e.driftless.dev
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Ignore
  timeoutSeconds: {timeout}
  objectSelector: {{matchLabels: {{e2e-never-matches: {name}}}}}
  clientConfig: {{url: \"https://127.0.0.1:1/never\", caBundle: {ca}}}
  rules: [{{operations: [CREATE], apiGroups: [\"\"], apiVersions: [v1], resources: [configmaps]}}]
",
        ca = b64("placeholder")
    )
}

/// What `resource` `name` holds in its first webhook.
fn first_webhook(resource: &str, name: &str) -> Value {
    let json = kubectl(&["get", resource, name, "-o", "json"]);
    let object: Value = serde_json::from_str(&json).expect("json");
    object["webhooks"][0].clone()
}

/// Sets the CA bundle of `resource` `name` as cert-manager's injector does.
fn inject(resource: &str, name: &str, ca: &str) {
    let patch = format!(
        r#"[{{"op":"replace","path":"/webhooks/0/clientConfig/caBundle","value":"{}"}}]"#,
        b64(ca)
    );
    kubectl(&[
        "patch",
        resource,
        name,
        "--field-manager=cainjector",
        "--type=json",
        "-p",
        &patch,
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_ignore_list_keeps_an_injected_ca_bundle_for_every_app() {
    let ns = shared().namespace("e2e-ignore").await.expect("namespace");
    let pid = std::process::id();
    let (mutating, validating) = (format!("e2e-ignore-m-{pid}"), format!("e2e-ignore-v-{pid}"));
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    let write = |timeout: u32| {
        repo.write(
            "hooks/mutating.yaml",
            &webhook("MutatingWebhookConfiguration", &mutating, timeout),
        );
        repo.write(
            "hooks/validating.yaml",
            &webhook("ValidatingWebhookConfiguration", &validating, timeout),
        );
    };
    write(5);
    let c1 = repo.push("webhooks");
    let name = format!("ignore-{pid}");
    let server_spec = "apiVersion: driftless.dev/v1alpha1
kind: Server
metadata: {name: server}
spec:
  ignoreDifferences:
  - group: admissionregistration.k8s.io
    kind: MutatingWebhookConfiguration
    jqPathExpressions: ['.webhooks[]?.clientConfig.caBundle']
---
";
    let text = config(
        &repo.url,
        "1s",
        &(app(
            &name,
            "hooks",
            ns.name(),
            "  selfHeal: true\n  interval: 1s",
        ) + server_spec),
    );
    let serve = Serve::start(&text, &[]);
    serve
        .wait_app(&name, WAIT, "webhooks applied", applied(&c1))
        .await;

    inject("mutatingwebhookconfiguration", &mutating, "injected-ca");
    inject("validatingwebhookconfiguration", &validating, "injected-ca");
    // The rule names no validating webhook: its bundle goes back to Git's.
    let start = std::time::Instant::now();
    while first_webhook("validatingwebhookconfiguration", &validating)["clientConfig"]["caBundle"]
        != b64("placeholder").as_str()
    {
        assert!(start.elapsed() < WAIT, "not healed:\n{}", serve.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Several reconciles later, the mutating one still holds the injected bundle.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let hook = first_webhook("mutatingwebhookconfiguration", &mutating);
    assert_eq!(
        hook["clientConfig"]["caBundle"],
        b64("injected-ca"),
        "{hook}"
    );
    let (_, status) = serve.get(&format!("/api/v1/apps/{name}")).await;
    assert_eq!(status["sync"], "Synced", "{status}");

    // A commit changing another field of it applies, and keeps the bundle.
    write(7);
    let c2 = repo.push("longer timeout");
    serve
        .wait_app(&name, WAIT, "second commit", applied(&c2))
        .await;
    let hook = first_webhook("mutatingwebhookconfiguration", &mutating);
    assert_eq!(hook["timeoutSeconds"], 7, "{hook}");
    assert_eq!(
        hook["clientConfig"]["caBundle"],
        b64("injected-ca"),
        "{hook}"
    );

    drop(serve);
    for (resource, object) in [
        ("mutatingwebhookconfiguration", &mutating),
        ("validatingwebhookconfiguration", &validating),
    ] {
        kubectl(&["delete", resource, object, "--ignore-not-found"]);
    }
}

/// Whether a condition of `app` has `reason` and a message holding every one of `words`.
fn says(app: &Value, reason: &str, words: &[&str]) -> bool {
    app["conditions"].as_array().into_iter().flatten().any(|c| {
        c["reason"] == reason
            && c["message"]
                .as_str()
                .is_some_and(|m| words.iter().all(|w| m.contains(w)))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_jq_expression_fails_its_own_app_within_bounds_and_writes_nothing() {
    let ns = shared().namespace("e2e-jq-bound").await.expect("namespace");
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    for dir in ["spin", "calm"] {
        repo.write(
            &format!("{dir}/cm.yaml"),
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {dir}}}\ndata: {{k: v}}\n"
            ),
        );
    }
    let c1 = repo.push("two apps");
    // One team's expression never ends; another's App shares the server.
    let spin = "  ignoreDifferences:
  - {group: '', kind: ConfigMap, jqPathExpressions: ['.data | select(def f: f; f)']}";
    let apps = app("spin", "spin", ns.name(), spin) + &app("calm", "calm", ns.name(), "");
    let serve = Serve::start(&config(&repo.url, "1h", &apps), &[]);
    serve
        .wait_app("calm", WAIT, "the other App synced", applied(&c1))
        .await;
    let failed = serve
        .wait_app("spin", WAIT, "failed at the jq bound", |a| {
            says(
                a,
                "ApplyFailed",
                &["ignoreDifferences", "ConfigMap", "ran past"],
            )
        })
        .await;
    assert!(failed["lastApplied"].is_null(), "{failed}");
    let out = kubectl(&["get", "configmap", "-n", ns.name(), "-o", "name"]);
    assert!(!out.contains("configmap/spin"), "nothing written: {out}");
    assert!(out.contains("configmap/calm"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_controller_the_servers_ignore_list_keeps_another_writers_field() {
    let inst = Installed::new("e2e-ctl-ignore").await;
    let ns = inst.name().to_owned();
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {v: '1', token: from-git}\n",
    );
    let c1 = repo.push("first");
    let dir = tempfile::tempdir().expect("temp dir");
    let server_file = dir.path().join("server.yaml");
    std::fs::write(
        &server_file,
        "apiVersion: driftless.dev/v1alpha1
kind: Server
metadata: {name: server}
spec:
  ignoreDifferences:
  - {group: '', kind: ConfigMap, jqPathExpressions: ['.data.token']}
",
    )
    .expect("write");
    let ctl = inst.controller(&["--config", &server_file.display().to_string()], None);
    let app = source_and_app(&repo.url, "web", "app", &ns, "  selfHeal: true");
    inst.kubectl(&["apply", "-f", "-"], Some(&app));
    inst.wait("app", "web", "applied", |w| applied_sha(w) == c1)
        .await;

    // A token rotator writes its field, and someone edits another by hand.
    inst.kubectl(
        &[
            "patch",
            "configmap",
            "settings",
            "--field-manager=rotator",
            "--type=merge",
            "-p",
            r#"{"data":{"token":"rotated","v":"edited"}}"#,
        ],
        None,
    );
    let data =
        |key: &str| crate::kube::config_map(&ns, "settings").map(|cm| cm["data"][key].clone());
    let start = std::time::Instant::now();
    while data("v") != Some(Value::from("1")) {
        assert!(start.elapsed() < WAIT, "not healed:\n{}", ctl.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Healed, and several reconciles later the rotator's value is still there.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(data("token"), Some(Value::from("rotated")), "{}", ctl.log());
    let web = inst.get("app", "web").expect("app");
    assert_eq!(web["status"]["sync"], "Synced", "{web:#}");
}
