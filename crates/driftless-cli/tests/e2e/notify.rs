//! Notifications through `driftless serve`: a bad commit, its fix and a hand
//! edit told to a webhook and as commit statuses, and a receiver that is
//! down given up on while the App keeps syncing; and a Notifier resource of
//! `driftless controller` reading its Secret.

use std::time::{Duration, Instant};

use driftless_testenv::recorder::{Recorder, Request};
use driftless_testenv::shared;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::WAIT;
use super::controller::{Installed, source_and_app};
use super::support::{GitServer, Repo, Serve, app, applied, config, config_map};

/// A ConfigMap whose value is a number: the API server refuses it on apply.
const REFUSED: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: refused\ndata:\n  n: 1\n";

fn notifiers(chat: &Recorder, git: &Recorder, down_port: u16) -> String {
    format!(
        "apiVersion: driftless.dev/v1alpha1
kind: Notifier
metadata: {{name: team-hook}}
spec:
  type: webhook
  address: {chat}
  secretEnv: E2E_NOTIFY_KEY
  events: [SyncSucceeded, SyncFailed, DriftReverted]
---
apiVersion: driftless.dev/v1alpha1
kind: Notifier
metadata: {{name: commits}}
spec: {{type: github, address: {git}, secretEnv: E2E_GITHUB_TOKEN, repository: acme/platform}}
---
apiVersion: driftless.dev/v1alpha1
kind: Notifier
metadata: {{name: down}}
spec: {{type: slack, address: \"http://127.0.0.1:{down_port}/services/T0/B0/hidden\", events: [SyncSucceeded]}}
---
apiVersion: driftless.dev/v1alpha1
kind: Server
metadata: {{name: server}}
spec:
  externalURL: https://driftless.example.com
  notifications: {{tries: 2, retryWait: 200ms, minInterval: 10ms}}
---
",
        chat = chat.url("/driftless"),
        git = git.url(""),
    )
}

/// The webhook messages of `kind`.
fn of_kind(requests: &[Request], kind: &str) -> Vec<Value> {
    requests
        .iter()
        .map(Request::json)
        .filter(|b| b["kind"] == kind)
        .collect()
}

/// Polls `recorder` until `check` holds for its requests.
async fn wait_until(recorder: &Recorder, what: &str, check: impl Fn(&[Request]) -> bool) {
    let start = Instant::now();
    loop {
        let requests = recorder.requests();
        if check(&requests) {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "timed out waiting for {what}; got {:#?}",
            requests.iter().map(Request::json).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The commit states set on `sha`, in order.
fn states(git: &Recorder, sha: &str) -> Vec<String> {
    git.requests()
        .iter()
        .filter(|r| r.path.ends_with(sha))
        .map(|r| r.json()["state"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_commit_its_fix_and_a_hand_edit_are_told_once_each_and_set_commit_statuses() {
    let ns = shared().namespace("e2e-notify").await.expect("namespace");
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    repo.write("app/cm.yaml", &config_map("settings", "1"));
    let c1 = repo.push("first");
    let (chat, git) = (Recorder::start(), Recorder::start());
    let down_port = driftless_testenv::servers::free_port();
    let name = format!("notify-{}", std::process::id());
    let extra = "  selfHeal: true\n  retry: {backoff: {duration: 1s, maxDuration: 1s}}\n";
    let rest = app(&name, "app", ns.name(), extra) + &notifiers(&chat, &git, down_port);
    let serve = Serve::start(
        &config(&repo.url, "1s", &rest),
        &[
            ("E2E_NOTIFY_KEY", "hmac-key"),
            ("E2E_GITHUB_TOKEN", "ghp_e2e_token"),
        ],
    );
    serve
        .wait_app(&name, WAIT, "first commit", applied(&c1))
        .await;
    wait_until(&git, "success on the first commit", |_| {
        states(&git, &c1).last().map(String::as_str) == Some("success")
    })
    .await;
    assert_eq!(states(&git, &c1), ["pending", "success"]);
    let first = &git.requests()[0];
    assert_eq!(first.path, format!("/repos/acme/platform/statuses/{c1}"));
    assert_eq!(first.header("authorization"), Some("Bearer ghp_e2e_token"));
    assert_eq!(first.json()["context"], format!("driftless/{name}"));
    assert_eq!(
        first.json()["target_url"],
        format!("https://driftless.example.com/apps/{name}")
    );

    // A commit the API server refuses fails on every retry: one message.
    repo.write("app/refused.yaml", REFUSED);
    let bad = repo.push("add a refused ConfigMap");
    let start = Instant::now();
    loop {
        let (_, history) = serve.get(&format!("/api/v1/apps/{name}/history")).await;
        let failures = history
            .as_array()
            .into_iter()
            .flatten()
            .filter(|h| h["revision"]["sha"] == bad.as_str() && h["result"] == "Failed")
            .count();
        if failures >= 3 {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "the bad commit never failed 3 times: {history}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_until(&git, "failure on the bad commit", |_| {
        states(&git, &bad).last().map(String::as_str) == Some("failure")
    })
    .await;
    let failed = of_kind(&chat.requests(), "SyncFailed");
    assert_eq!(failed.len(), 1, "{failed:#?}");
    let failed = &failed[0];
    assert_eq!(failed["app"], name.as_str());
    assert_eq!(failed["cluster"], "test");
    assert_eq!(failed["namespace"], ns.name());
    assert_eq!(failed["revision"]["sha"], bad.as_str());
    assert_eq!(failed["revision"]["subject"], "add a refused ConfigMap");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("refused")),
        "{failed}"
    );
    let signed = chat
        .requests()
        .into_iter()
        .find(|r| r.json()["kind"] == "SyncFailed");
    assert!(
        signed
            .and_then(|r| r.header("x-driftless-signature").map(str::to_owned))
            .is_some_and(|s| s.starts_with("sha256=")),
        "the webhook is signed"
    );

    // The fix: success, told once, and a success status on its commit.
    repo.remove("app/refused.yaml");
    let fix = repo.push("drop the refused ConfigMap");
    serve.wait_app(&name, WAIT, "the fix", applied(&fix)).await;
    wait_until(&chat, "SyncSucceeded of the fix", |r| {
        of_kind(r, "SyncSucceeded")
            .iter()
            .any(|b| b["revision"]["sha"] == fix.as_str())
    })
    .await;
    wait_until(&git, "success on the fix", |_| {
        states(&git, &fix).last().map(String::as_str) == Some("success")
    })
    .await;

    // A `kubectl edit` is reverted and told with its field manager.
    let kubeconfig = shared().kubeconfig();
    let edit = std::process::Command::new("kubectl")
        .args(["-n", ns.name(), "edit", "configmap", "settings"])
        .env("KUBECONFIG", kubeconfig)
        .env("KUBE_EDITOR", r#"sed -i -e 's/v: "1"/v: "by hand"/'"#)
        .output()
        .expect("kubectl runs");
    assert!(
        edit.status.success(),
        "kubectl edit: {}",
        String::from_utf8_lossy(&edit.stderr)
    );
    wait_until(&chat, "DriftReverted", |r| {
        !of_kind(r, "DriftReverted").is_empty()
    })
    .await;
    let drift = &of_kind(&chat.requests(), "DriftReverted")[0];
    assert_eq!(drift["drift"]["manager"], "kubectl-edit", "{drift}");
    assert_eq!(
        drift["drift"]["object"],
        format!("v1/ConfigMap/{}/settings", ns.name())
    );

    // The receiver that is down was tried and given up on; the App synced anyway.
    let start = Instant::now();
    let down = loop {
        let (_, notifiers) = serve.get("/api/v1/notifiers").await;
        let down = notifiers
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| n["name"] == "down")
            .cloned()
            .unwrap_or_default();
        if down["failed"].as_u64().unwrap_or(0) >= 1 {
            break down;
        }
        assert!(
            start.elapsed() < WAIT,
            "the down receiver was never given up on: {notifiers}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let error = down["lastError"].as_str().unwrap_or_default();
    assert!(
        error.starts_with(&format!("POST to http://127.0.0.1:{down_port}: ")),
        "{down}"
    );
    assert!(!down.to_string().contains("hidden"), "{down}");
    let (_, metrics) = serve.get("/metrics").await;
    let metrics = metrics.as_str().unwrap_or_default();
    assert!(
        metrics.contains(
            "driftless_notifications_total{notifier=\"team-hook\",result=\"deduplicated\"}"
        ),
        "{metrics}"
    );
    let log = serve.log();
    for secret in ["hmac-key", "ghp_e2e_token", "/services/T0/B0/hidden"] {
        assert!(!log.contains(secret), "the log shows {secret}:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notifier_resource_reads_its_secret_and_shows_its_deliveries_in_its_status() {
    let inst = Installed::new("e2e-ctl-notify").await;
    let ns = inst.name().to_owned();
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    repo.write("one/cm.yaml", &config_map("one", "1"));
    let c1 = repo.push("first");
    let hook = Recorder::start();
    let _ctl = inst.controller(&[], None);
    // The Notifiers first: events from before a Notifier is loaded are not
    // its to tell, so the App comes once the controller shows it ready (with
    // no `apps:` list, which may only name Apps that exist, it tells about
    // every App of this controller's namespace).
    let notifiers = format!(
        "apiVersion: v1
kind: Secret
metadata: {{name: hook-key}}
stringData: {{token: resource-hmac-key}}
---
apiVersion: driftless.dev/v1alpha1
kind: Notifier
metadata: {{name: team}}
spec: {{type: webhook, address: \"{url}\", secretRef: {{name: hook-key}}, events: [SyncSucceeded]}}
---
apiVersion: driftless.dev/v1alpha1
kind: Notifier
metadata: {{name: keyless}}
spec: {{type: github, secretRef: {{name: missing}}, repository: acme/platform}}
",
        url = hook.url("/driftless"),
    );
    inst.kubectl(&["apply", "-f", "-"], Some(&notifiers));
    inst.wait("notifier", "team", "ready", |n| {
        n["status"]["conditions"][0]["status"] == "True"
    })
    .await;
    let app = source_and_app(&repo.url, "good", "one", &ns, "");
    inst.kubectl(&["apply", "-f", "-"], Some(&app));
    hook.wait_for(1, WAIT).await;
    let told = &hook.requests()[0];
    let body = told.json();
    assert_eq!(body["kind"], "SyncSucceeded");
    assert_eq!(body["app"], format!("{ns}.good"));
    assert_eq!(body["revision"]["sha"], c1.as_str());
    let signature = told.header("x-driftless-signature").unwrap_or_default();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"resource-hmac-key").expect("key");
    mac.update(&told.body);
    assert_eq!(
        signature,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
    let team = inst
        .wait("notifier", "team", "a delivery in its status", |n| {
            n["status"]["delivered"].as_u64().unwrap_or(0) >= 1
        })
        .await;
    assert_eq!(
        team["status"]["conditions"][0]["status"], "True",
        "{team:#}"
    );
    let keyless = inst
        .wait("notifier", "keyless", "not ready", |n| {
            n["status"]["conditions"][0]["reason"] == "InvalidSecret"
        })
        .await;
    let message = keyless["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains(&format!("Secret {ns}/missing")),
        "{keyless:#}"
    );
}
