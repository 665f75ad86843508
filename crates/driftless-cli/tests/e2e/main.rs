//! End to end: `driftless serve` as a process, a Git server over HTTP, the
//! local control plane.

mod access;
mod bootstrap;
mod controller;
mod controller_hosts;
mod helm_repos;
mod hosts;
mod ignore;
mod kube;
mod logging;
mod notify;
mod oci_sources;
mod options_clusters;
mod options_render;
mod options_sources;
mod sops;
mod status;
mod support;
mod sync_control;

use std::time::{Duration, Instant};

use driftless_testenv::shared;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use support::{GitServer, Repo, Serve, app, applied, config, config_map};

const WAIT: Duration = Duration::from_secs(60);
const SECRET: &str = "e2e-webhook-secret";

fn github_signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn post_push(
    serve: &Serve,
    url: &str,
    signature: Option<String>,
) -> (u16, serde_json::Value) {
    let body =
        serde_json::json!({"ref": "refs/heads/main", "repository": {"clone_url": url}}).to_string();
    let signature = signature.unwrap_or_else(|| github_signature(body.as_bytes()));
    let resp = reqwest::Client::new()
        .post(format!("{}/hooks/platform-push", serve.base))
        .header("X-GitHub-Event", "push")
        .header("X-Hub-Signature-256", signature)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .expect("webhook answers");
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_push_webhook_applies_the_commit_and_a_bad_signature_changes_nothing() {
    let ns = shared().namespace("e2e-hook").await.expect("namespace");
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    repo.write("app/cm.yaml", &config_map("settings", "1"));
    let c1 = repo.push("first");
    let name = format!("hook-{}", std::process::id());
    let receiver = "apiVersion: driftless.dev/v1alpha1
kind: Receiver
metadata: {name: platform-push}
spec: {type: github, secretEnv: E2E_HOOK_SECRET, resources: [platform]}
---
";
    // A long interval: only the webhook can bring the second commit in time.
    let text = config(
        &repo.url,
        "1h",
        &(app(&name, "app", ns.name(), "") + receiver),
    );
    let serve = Serve::start(&text, &[("E2E_HOOK_SECRET", SECRET)]);
    serve
        .wait_app(&name, WAIT, "first commit", applied(&c1))
        .await;

    repo.write("app/cm.yaml", &config_map("settings", "2"));
    let c2 = repo.push("second");
    let (code, body) = post_push(&serve, &repo.url, Some("sha256=00".to_owned())).await;
    assert_eq!(code, 401, "{body}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, status) = serve.get(&format!("/api/v1/apps/{name}")).await;
    assert_eq!(
        status["lastApplied"]["sha"],
        c1.as_str(),
        "a bad signature triggers nothing"
    );

    let start = Instant::now();
    let (code, body) = post_push(&serve, &repo.url, None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["triggered"], 1, "{body}");
    serve
        .wait_app(&name, WAIT, "second commit", applied(&c2))
        .await;
    let latency = start.elapsed();
    eprintln!("webhook to applied: {} ms", latency.as_millis());
    assert!(latency < Duration::from_secs(5), "took {latency:?}");
    let (_, history) = serve.get(&format!("/api/v1/apps/{name}/history")).await;
    assert_eq!(history[0]["trigger"], "webhook", "{history}");
    assert_eq!(history[0]["author"], driftless_testenv::git::AUTHOR);
    assert_eq!(history[0]["subject"], "second");
    let (_, metrics) = serve.get("/metrics").await;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        metrics.contains("driftless_syncs_total{result=\"Succeeded\"} 2"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_follows_commits_and_config_edits_apply_live_unless_invalid() {
    let ns = shared().namespace("e2e-poll").await.expect("namespace");
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    repo.write("one/cm.yaml", &config_map("one", "1"));
    repo.write("two/cm.yaml", &config_map("two", "1"));
    let c1 = repo.push("first");
    let pid = std::process::id();
    let (one, two) = (format!("one-{pid}"), format!("two-{pid}"));
    let first = config(&repo.url, "1s", &app(&one, "one", ns.name(), ""));
    let serve = Serve::start(&first, &[]);
    let (code, ready) = serve.get("/readyz").await;
    assert_eq!(code, 200, "{ready}");
    serve
        .wait_app(&one, WAIT, "first commit", applied(&c1))
        .await;

    repo.write("one/cm.yaml", &config_map("one", "2"));
    let c2 = repo.push("second");
    serve
        .wait_app(&one, WAIT, "second commit by polling", applied(&c2))
        .await;
    let (_, sources) = serve.get("/api/v1/sources").await;
    assert_eq!(sources[0]["name"], "platform", "{sources}");
    assert_eq!(sources[0]["url"], repo.url.as_str());
    let artifact = &sources[0]["artifact"];
    assert_eq!(artifact["revision"]["refLabel"], "main", "{sources}");
    assert_eq!(artifact["revision"]["sha"], c2.as_str());
    assert_eq!(artifact["author"], driftless_testenv::git::AUTHOR);
    assert_eq!(artifact["subject"], "second");
    assert!(sources[0]["lastFetchTime"].is_string(), "{sources}");
    assert_eq!(sources[0]["lastError"], serde_json::Value::Null);

    // An invalid edit is refused whole; the running config stays.
    let broken = config(
        &repo.url,
        "1s",
        &app(&two, "two", ns.name(), "  selfHeall: true"),
    );
    std::fs::write(&serve.config, broken).expect("write config");
    let start = Instant::now();
    while !serve.log().contains("rejected") {
        assert!(
            start.elapsed() < WAIT,
            "no rejection logged:\n{}",
            serve.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = serve.log();
    assert!(log.contains("spec.selfHeall: unknown field"), "{log}");
    let (code, _) = serve.get(&format!("/api/v1/apps/{two}")).await;
    assert_eq!(code, 404, "the invalid config did not apply");
    let (_, apps) = serve.get("/api/v1/apps").await;
    assert_eq!(apps["items"].as_array().map(Vec::len), Some(1), "{apps}");

    // A valid edit adds an App and removes one.
    let second = config(&repo.url, "1s", &app(&two, "two", ns.name(), ""));
    std::fs::write(&serve.config, second).expect("write config");
    serve
        .wait_app(&two, WAIT, "added by a config edit", applied(&c2))
        .await;
    let start = Instant::now();
    loop {
        let (code, _) = serve.get(&format!("/api/v1/apps/{one}")).await;
        if code == 404 {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "{one} still listed:\n{}",
            serve.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The sum of the samples of metric `name` whose labels contain `labels`.
fn metric_sum(metrics: &str, name: &str, labels: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_of_an_unchanged_app_sends_the_api_server_no_write() {
    let ns = shared().namespace("e2e-noop").await.expect("namespace");
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    repo.write("app/cm.yaml", &config_map("settings", "1"));
    let c1 = repo.push("first");
    let name = format!("noop-{}", std::process::id());
    let text = config(
        &repo.url,
        "1s",
        &app(&name, "app", ns.name(), "  interval: 1s"),
    );
    let serve = Serve::start(&text, &[]);
    serve
        .wait_app(&name, WAIT, "first commit", |a| {
            applied(&c1)(a) && a["health"] == "Healthy"
        })
        .await;
    let scrape = || async {
        let (_, text) = serve.get("/metrics").await;
        let text = text.as_str().unwrap_or_default().to_owned();
        let requests = "driftless_kube_requests_total";
        let writes = metric_sum(&text, requests, "") - metric_sum(&text, requests, "\"GET\"");
        let runs = metric_sum(
            &text,
            "driftless_app_reconcile_duration_seconds_count",
            &name,
        );
        (writes, runs, text)
    };
    let (writes, runs, text) = scrape().await;
    assert!(writes >= 1.0, "the first sync wrote its ConfigMap: {text}");
    let start = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (now_writes, now_runs, text) = scrape().await;
        assert_eq!(now_writes, writes, "a no-op resync wrote: {text}");
        if now_runs >= runs + 3.0 {
            break;
        }
        assert!(start.elapsed() < WAIT, "no resync ran: {text}");
    }
    let (_, status) = serve.get(&format!("/api/v1/apps/{name}")).await;
    assert_eq!(status["sync"], "Synced", "{status}");
}
