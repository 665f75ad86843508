//! An App for hosts through `driftless serve`: real sshd hosts on loopback
//! ports, a Git server over HTTP, and the CLI and API showing the hosts as
//! the App's resources, the rollouts per host in its history, a Notifier
//! telling of each rollout, and a rollback.

use std::time::Duration;

use driftless_testenv::hosts::{Lab, available};
use driftless_testenv::recorder::Recorder;

use crate::support::{GitServer, Repo, Serve, app_to, applied, cli, ok, sync_window};

const WAIT: Duration = Duration::from_secs(60);
const ADMIN: &str = "e2e-hosts-admin-token-7f31";

/// A Server with the admin token (env E2E_ADMIN), the documents `extra`, and
/// the GitSource following `url` each second; no Cluster at all (an App for
/// hosts needs none).
fn hosts_config(url: &str, extra: &str) -> String {
    format!(
        "apiVersion: driftless.dev/v1alpha1
kind: Server
metadata: {{name: driftless}}
spec:
  api:
    tokens:
      - {{name: admin, role: admin, secret: {{env: E2E_ADMIN}}}}
---
{extra}apiVersion: driftless.dev/v1alpha1
kind: GitSource
metadata: {{name: platform}}
spec: {{url: \"{url}\", ref: {{branch: main}}, interval: 1s}}
---
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_deploys_to_hosts_and_status_history_and_rollback_show_them() {
    if !available() {
        return;
    }
    let lab = Lab::start(2);
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    repo.write("hosts/web/etc/app.conf", "region=${region}\n");
    repo.write("hosts/web/index.html", "v1\n");
    let c1 = repo.push("first");
    let hook = Recorder::start();
    let notifier = format!(
        "apiVersion: driftless.dev/v1alpha1
kind: Notifier
metadata: {{name: team}}
spec: {{type: webhook, address: \"{}\", secretEnv: E2E_HOOK_KEY, events: [SyncSucceeded]}}
---
",
        hook.url("/driftless")
    );
    let app = app_to(
        "web",
        "hosts/web",
        "{hosts: {names: [h1, h0]}}",
        "  host: {substitute: [\"*.conf\"]}",
    );
    let config = hosts_config(&repo.url, &notifier) + &lab.host_objects() + &app;
    let serve = Serve::start(
        &config,
        &[("E2E_ADMIN", ADMIN), ("E2E_HOOK_KEY", "e2e-hosts-hook-key")],
    );
    let status = serve
        .wait_app("web", WAIT, "c1 on both hosts", applied(&c1))
        .await;
    let resources = status["resources"].as_array().cloned().unwrap_or_default();
    let hosts: Vec<(&str, &str, &str)> = resources
        .iter()
        .map(|r| {
            let field = |k: &str| r[k].as_str().unwrap_or_default();
            (field("kind"), field("name"), field("health"))
        })
        .collect();
    assert_eq!(
        hosts,
        [("Host", "h1", "Healthy"), ("Host", "h0", "Healthy")],
        "{status:#}"
    );
    let conf = lab.hosts[0].app_root("web").join("current/etc/app.conf");
    assert_eq!(
        std::fs::read_to_string(&conf).expect("conf"),
        "region=region-of-h0\n"
    );

    let text = ok(&cli(&serve, None, &["status", "web"]));
    assert!(
        text.contains("Host") && text.contains("h0") && text.contains("h1"),
        "{text}"
    );

    repo.write("hosts/web/index.html", "v2\n");
    let c2 = repo.push("second");
    serve
        .wait_app("web", WAIT, "c2 on both hosts", applied(&c2))
        .await;
    // The Notifier told of both rollouts, as of any App.
    let told: Vec<(String, String, String)> = hook
        .wait_for(2, WAIT)
        .await
        .iter()
        .map(|r| {
            let body = r.json();
            let field = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
            (
                field(&body["kind"]),
                field(&body["app"]),
                field(&body["revision"]["sha"]),
            )
        })
        .collect();
    assert_eq!(
        told[..2],
        [
            ("SyncSucceeded".to_owned(), "web".to_owned(), c1.clone()),
            ("SyncSucceeded".to_owned(), "web".to_owned(), c2.clone()),
        ]
    );
    let (_, history) = serve.get("/api/v1/apps/web/history").await;
    assert_eq!(history[0]["subject"], "second", "{history:#}");
    let per_host: Vec<(&str, &str)> = history[0]["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            (
                h["host"].as_str().unwrap_or_default(),
                h["result"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        per_host,
        [("h1", "Succeeded"), ("h0", "Succeeded")],
        "{history:#}"
    );
    assert_eq!(history[0]["hosts"][0]["previous"], c1.as_str());
    let text = ok(&cli(&serve, None, &["history", "web"]));
    assert!(text.contains(&c2[..7]) && text.contains(&c1[..7]), "{text}");
    // Each rollout's hosts under the history, the newest first.
    let hosts_of_c2 = text
        .split(&format!("Hosts of {}", &c2[..7]))
        .nth(1)
        .unwrap_or_default();
    let rows: Vec<Vec<&str>> = hosts_of_c2
        .lines()
        .skip(2)
        .take(2)
        .map(|l| l.split_whitespace().take(4).collect())
        .collect();
    assert_eq!(
        rows,
        [
            ["h1", "Succeeded", "Healthy", &c1[..7]],
            ["h0", "Succeeded", "Healthy", &c1[..7]]
        ],
        "{text}"
    );
    assert!(text.contains(&format!("Hosts of {}", &c1[..7])), "{text}");

    ok(&cli(
        &serve,
        Some(ADMIN),
        &["rollback", "web", "--to", &c1[..10]],
    ));
    let status = serve
        .wait_app("web", WAIT, "pinned to c1", |app| {
            app["pinned"]["sha"] == c1.as_str() && applied(&c1)(app)
        })
        .await;
    assert_eq!(status["sync"], "OutOfSync", "pinned behind Git: {status:#}");
    let page = lab.hosts[1].app_root("web").join("current/index.html");
    assert_eq!(std::fs::read_to_string(&page).expect("page"), "v1\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_window_holds_a_release_to_hosts_until_a_user_overrides_it() {
    if !available() {
        return;
    }
    let lab = Lab::start(1);
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    repo.write("hosts/web/index.html", "v1\n");
    let c1 = repo.push("first");
    // Opens every minute for two: the window is always in force.
    let window = sync_window(
        "freeze",
        "{kind: deny, schedule: \"* * * * *\", duration: 2m, timeZone: UTC, apps: [web]}",
    );
    let app = app_to("web", "hosts/web", "{hosts: {names: [h0]}}", "");
    let config = hosts_config(&repo.url, &window) + &lab.host_objects() + &app;
    let serve = Serve::start(&config, &[("E2E_ADMIN", ADMIN)]);
    let held = serve
        .wait_app("web", WAIT, "held by the window", |a| {
            a["held"]["window"] == "freeze"
                && a["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["reason"] == "SyncWindowClosed")
        })
        .await;
    assert_eq!(held["held"]["kind"], "deny", "{held:#}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        lab.hosts[0].current("web"),
        None,
        "nothing deployed while held"
    );

    ok(&cli(
        &serve,
        Some(ADMIN),
        &["sync", "web", "--override-window", "--wait"],
    ));
    serve
        .wait_app("web", WAIT, "c1 on the host", applied(&c1))
        .await;
    let page = lab.hosts[0].app_root("web").join("current/index.html");
    assert_eq!(std::fs::read_to_string(&page).expect("page"), "v1\n");
    let (_, operations) = serve.get("/api/v1/apps/web/operations").await;
    assert_eq!(operations[0]["overrideWindow"], true, "{operations}");

    // The next commit is held again: the override was for one sync.
    repo.write("hosts/web/index.html", "v2\n");
    let c2 = repo.push("second");
    let short = c2[..7].to_owned();
    serve
        .wait_app("web", WAIT, "the second commit held", |a| {
            a["conditions"].as_array().into_iter().flatten().any(|c| {
                c["reason"] == "SyncWindowClosed"
                    && c["message"].as_str().is_some_and(|m| m.contains(&short))
            })
        })
        .await;
    assert_eq!(std::fs::read_to_string(&page).expect("page"), "v1\n");
}
