//! `driftless status` and `GET /api/v1/apps` against Apps that really sync:
//! the summary, filters on labels from the config (`serve`) and from custom
//! resources (`controller`, whose App names are `NAMESPACE.NAME`), and paging.

use std::process::Output;
use std::time::Duration;

use driftless_testenv::shared;
use serde_json::Value;

use crate::controller::{Installed, app_cr};
use crate::support::{GitServer, Repo, Serve, app, applied, config, config_map};

const WAIT: Duration = Duration::from_secs(60);

/// Runs `driftless status ARGS` against `serve`; returns stdout of a success.
fn status(serve: &Serve, args: &[&str]) -> String {
    let out: Output = std::process::Command::new(env!("CARGO_BIN_EXE_driftless"))
        .arg("status")
        .args(args)
        .args(["--server", &serve.base])
        .env_remove("DRIFTLESS_API_TOKEN")
        .env_remove("DRIFTLESS_SERVER")
        .output()
        .expect("driftless runs");
    assert!(
        out.status.success(),
        "status {args:?}: exit {:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The App names of the table rows of `status` text.
fn rows(text: &str) -> Vec<&str> {
    let mut lines = text.lines().skip(1);
    let header = lines.next().unwrap_or_default();
    assert!(header.starts_with("NAME"), "{text}");
    lines
        .take_while(|l| !l.is_empty() && !l.starts_with("..."))
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

/// The App names of an API page.
fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_lists_and_filters_apps_by_their_config_labels() {
    let ns = shared().namespace("e2e-status").await.expect("namespace");
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    // One directory, and so one ConfigMap, per App: two Apps may not own one object.
    for dir in ["front1", "front2", "back"] {
        repo.write(&format!("{dir}/cm.yaml"), &config_map(dir, "1"));
    }
    let c1 = repo.push("first");
    let pid = std::process::id();
    let (front1, front2, back) = (
        format!("front1-{pid}"),
        format!("front2-{pid}"),
        format!("back-{pid}"),
    );
    // The labels sit in metadata, which `app` writes as a flow mapping.
    let labelled = |name: &str, path: &str, tier: &str, extra: &str| {
        app(name, path, ns.name(), extra).replacen(
            &format!("metadata: {{name: {name}}}"),
            &format!("metadata: {{name: {name}, labels: {{tier: {tier}}}}}"),
            1,
        )
    };
    let apps = labelled(&front1, "front1", "front", "")
        + &labelled(&front2, "front2", "front", "")
        + &labelled(&back, "back", "back", "  suspend: true");
    let serve = Serve::start(&config(&repo.url, "1h", &apps), &[]);
    for name in [&front1, &front2] {
        serve
            .wait_app(name, WAIT, "first commit", |a| {
                applied(&c1)(a) && a["health"] == "Healthy"
            })
            .await;
    }
    serve
        .wait_app(&back, WAIT, "suspended", |a| a["health"] == "Suspended")
        .await;

    let all = status(&serve, &[]);
    assert_eq!(
        all.lines().next(),
        Some("3 Apps: 2 Synced, 1 Unknown; 2 Healthy, 1 Suspended"),
        "{all}"
    );
    let mut everyone = vec![back.as_str(), front1.as_str(), front2.as_str()];
    everyone.sort_unstable();
    assert_eq!(rows(&all), everyone);
    let front = status(&serve, &["-l", "tier=front"]);
    assert_eq!(
        front.lines().next(),
        Some("2 Apps match: 2 Synced; 2 Healthy")
    );
    assert_eq!(rows(&front), [front1.as_str(), front2.as_str()]);
    assert_eq!(
        rows(&status(&serve, &["--label", "tier!=front"])),
        [back.as_str()]
    );
    assert_eq!(
        rows(&status(&serve, &["--health", "Suspended"])),
        [back.as_str()]
    );
    let synced_front1 = status(&serve, &["--sync", "Synced", "-q", "FRONT1"]);
    assert_eq!(rows(&synced_front1), [front1.as_str()]);
    assert_eq!(status(&serve, &["--health", "Degraded"]), "no apps match\n");
    let first = status(&serve, &["--limit", "1"]);
    assert_eq!(rows(&first), [everyone[0]]);
    assert!(
        first.contains("... 2 more Apps (raise --limit to list them)"),
        "{first}"
    );

    // The API pages with `continue`, one App a page.
    let mut seen = Vec::new();
    let mut query = "/api/v1/apps?limit=1".to_owned();
    loop {
        let (code, page) = serve.get(&query).await;
        assert_eq!(code, 200, "{page}");
        assert_eq!(page["summary"]["total"], 3, "{page}");
        seen.extend(names(&page));
        match page["continue"].as_str() {
            Some(token) => query = format!("/api/v1/apps?limit=1&continue={token}"),
            None => break,
        }
    }
    assert_eq!(seen, everyone);
    let (code, refused) = serve.get("/api/v1/apps?label=tier%3D%3D%3Dfront").await;
    assert_eq!(code, 400, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("query parameter label: ")),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_filters_namespaced_apps_by_their_resource_labels() {
    let inst = Installed::new("e2e-ctl-status").await;
    let ns = inst.name().to_owned();
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    for dir in ["front", "back"] {
        repo.write(&format!("{dir}/cm.yaml"), &config_map(dir, "1"));
    }
    let c1 = repo.push("first");
    let labelled = |name: &str, tier: &str| {
        app_cr(name, name, &ns, "").replacen(
            &format!("metadata: {{name: {name}}}"),
            &format!("metadata: {{name: {name}, labels: {{tier: {tier}}}}}"),
            1,
        )
    };
    let manifests = format!(
        "apiVersion: driftless.dev/v1alpha1
kind: GitSource
metadata: {{name: platform}}
spec: {{url: \"{}\", ref: {{branch: main}}, interval: 1h}}
---
{}{}",
        repo.url,
        labelled("front", "front"),
        labelled("back", "back")
    );
    let ctl = inst.controller(&[], None);
    inst.kubectl(&["apply", "-f", "-"], Some(&manifests));
    let (front, back) = (format!("{ns}.front"), format!("{ns}.back"));
    for name in [&front, &back] {
        ctl.wait_app(name, WAIT, "first commit", |a| {
            applied(&c1)(a) && a["health"] == "Healthy"
        })
        .await;
    }
    let all = status(&ctl, &[]);
    assert_eq!(
        all.lines().next(),
        Some("2 Apps: 2 Synced; 2 Healthy"),
        "{all}"
    );
    assert_eq!(rows(&all), [back.as_str(), front.as_str()]);
    assert_eq!(rows(&status(&ctl, &["-l", "tier=front"])), [front.as_str()]);
    let in_namespace = format!("{ns}.");
    assert_eq!(
        rows(&status(&ctl, &["-q", &in_namespace, "-l", "tier"])),
        [back.as_str(), front.as_str()]
    );
    // A label edit on the resource reaches the filter.
    inst.kubectl(
        &[
            "label",
            "--overwrite",
            "apps.driftless.dev",
            "back",
            "tier=front",
        ],
        None,
    );
    let start = std::time::Instant::now();
    loop {
        let (_, page) = ctl.get("/api/v1/apps?label=tier%3Dfront").await;
        if names(&page) == [back.clone(), front.clone()] {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "the new label never selected {back}: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
