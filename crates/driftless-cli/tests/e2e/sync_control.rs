//! Manual syncs and sync windows under `driftless serve`: a manual App shows
//! what a sync would change and applies only on request, its drift stays; a
//! deny window holds new commits until it ends, and a user's sync overrides
//! it, recorded in the audit log.

use std::process::Output;
use std::time::{Duration, Instant};

use driftless_testenv::shared;
use serde_json::Value;

use crate::controller::{Installed, applied_sha, condition, source_and_app};
use crate::kube::{self, kubectl};
use crate::support::{
    GitServer, Repo, Serve, app, applied, cli, config, config_map, ok, sync_window,
};

const WAIT: Duration = Duration::from_secs(60);
const CI: &str = "e2e-sync-control-ci-7f3a";
const OPS: &str = "e2e-sync-control-ops-91c2";

/// A Server object with an operate token (env E2E_CI), an admin token
/// (env E2E_OPS) and anonymous reads.
const SERVER: &str = "apiVersion: driftless.dev/v1alpha1
kind: Server
metadata: {name: driftless}
spec:
  api:
    tokens:
      - {name: ci, role: operate, secret: {env: E2E_CI}}
      - {name: ops, role: admin, secret: {env: E2E_OPS}}
---
";

/// The value `v` of ConfigMap `ns/name`, if it exists.
fn value(ns: &str, name: &str) -> Option<String> {
    kube::config_map(ns, name).and_then(|cm| cm["data"]["v"].as_str().map(str::to_owned))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether the App waits for a manual sync of `sha` that would `change` ConfigMap settings.
fn pending<'a>(sha: &'a str, change: &'static str) -> impl Fn(&Value) -> bool + 'a {
    move |app| {
        app["sync"] == "OutOfSync"
            && app["pending"]["revision"] == sha
            && app["pending"]["objects"][0]["change"] == change
            && app["pending"]["objects"][0]["name"] == "settings"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_app_shows_what_a_sync_would_change_applies_on_request_and_keeps_its_drift() {
    let ns = shared().namespace("e2e-manual").await.expect("namespace");
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    repo.write("app/cm.yaml", &config_map("settings", "1"));
    let c1 = repo.push("first");
    let name = format!("manual-{}", std::process::id());
    let extra = "  syncPolicy: manual\n  prune: true";
    let text = config(
        &repo.url,
        "1s",
        &(app(&name, "app", ns.name(), extra) + SERVER),
    );
    let serve = Serve::start(&text, &[("E2E_CI", CI), ("E2E_OPS", OPS)]);

    let status = serve
        .wait_app(
            &name,
            WAIT,
            "the first commit compared",
            pending(&c1, "create"),
        )
        .await;
    assert_eq!(status["pending"]["create"], 1, "{status}");
    assert!(status.get("lastApplied").is_none(), "{status}");
    assert_eq!(value(ns.name(), "settings"), None, "nothing is applied");
    let detail = ok(&cli(&serve, None, &["status", &name]));
    assert!(
        detail.contains(&format!("create ConfigMap {}/settings", ns.name()))
            && detail.contains(&format!("`driftless sync {name}`")),
        "{detail}"
    );
    let table = ok(&cli(&serve, None, &["status"]));
    assert!(table.contains("MANUAL"), "{table}");
    let diff = cli(&serve, None, &["diff", "--app", &name]);
    assert_eq!(diff.status.code(), Some(1), "{}", stdout(&diff));
    let text = stdout(&diff);
    assert!(
        text.contains(&format!("=== create ConfigMap {}/settings", ns.name()))
            && text.contains("1 to create, 0 to update, 0 to prune"),
        "{text}"
    );
    // Suspending and resuming it is no request to sync: it goes on waiting.
    ok(&cli(&serve, Some(OPS), &["suspend", &name]));
    ok(&cli(&serve, Some(CI), &["resume", &name]));
    serve
        .wait_app(&name, WAIT, "resumed and compared again", |a| {
            a["suspended"] == false && pending(&c1, "create")(a)
        })
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        value(ns.name(), "settings"),
        None,
        "a resume applies nothing"
    );

    let out = cli(&serve, Some(CI), &["sync", &name, "--wait"]);
    ok(&out);
    assert_eq!(value(ns.name(), "settings").as_deref(), Some("1"));
    let status = serve
        .wait_app(&name, WAIT, "synced", |a| a["sync"] == "Synced")
        .await;
    assert!(status.get("pending").is_none(), "{status}");
    assert_eq!(status["lastApplied"]["sha"], c1.as_str());

    repo.write("app/cm.yaml", &config_map("settings", "2"));
    let c2 = repo.push("second");
    let status = serve
        .wait_app(
            &name,
            WAIT,
            "the second commit compared",
            pending(&c2, "update"),
        )
        .await;
    assert_eq!(status["lastApplied"]["sha"], c1.as_str(), "{status}");
    assert_eq!(value(ns.name(), "settings").as_deref(), Some("1"));

    // Drift is reported, never reverted.
    let patch = r#"{"data":{"v":"edited"}}"#;
    kubectl(&[
        "-n",
        ns.name(),
        "patch",
        "configmap",
        "settings",
        "-p",
        patch,
    ]);
    let events_path = format!("/api/v1/apps/{name}/events");
    let start = Instant::now();
    loop {
        let (_, events) = serve.get(&events_path).await;
        let reported = events.as_array().into_iter().flatten().any(|e| {
            e["action"] == "reported"
                && e["object"]
                    .as_str()
                    .is_some_and(|o| o.ends_with("/settings"))
        });
        if reported {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "no drift reported: {events}\n{}",
            serve.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(value(ns.name(), "settings").as_deref(), Some("edited"));

    ok(&cli(&serve, Some(CI), &["sync", &name, "--wait"]));
    serve
        .wait_app(&name, WAIT, "the second commit applied", applied(&c2))
        .await;
    assert_eq!(value(ns.name(), "settings").as_deref(), Some("2"));
    let (_, history) = serve.get(&format!("/api/v1/apps/{name}/history")).await;
    let triggers: Vec<&Value> = history
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| &r["trigger"])
        .collect();
    assert!(triggers.iter().all(|t| *t == "manual"), "{history}");
}

/// The next whole UTC minute at least 12 s away, as (instant, `M H * * *`).
fn next_minute() -> (jiff::Timestamp, String) {
    let now = jiff::Timestamp::now().as_second();
    let mut start = (now / 60 + 1) * 60;
    if start - now < 12 {
        start += 60;
    }
    let at = jiff::Timestamp::from_second(start).expect("in range");
    let civil = at.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    (at, format!("{} {} * * *", civil.minute(), civil.hour()))
}

async fn sleep_until(at: jiff::Timestamp) {
    let left = at.as_millisecond() - jiff::Timestamp::now().as_millisecond();
    if let Ok(ms) = u64::try_from(left) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_window_holds_commits_until_it_ends_and_an_override_goes_through_audited() {
    let ns = shared().namespace("e2e-window").await.expect("namespace");
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    repo.write("app/cm.yaml", &config_map("settings", "1"));
    let c1 = repo.push("first");
    let name = format!("window-{}", std::process::id());
    let (start, schedule) = next_minute();
    let window = sync_window(
        "freeze",
        &format!(
            "{{kind: deny, schedule: \"{schedule}\", duration: 45s, timeZone: UTC, apps: [\"window-*\"]}}"
        ),
    );
    let rest = app(&name, "app", ns.name(), "  selfHeal: true") + SERVER + &window;
    let env = [("E2E_CI", CI), ("E2E_OPS", OPS)];
    let serve = Serve::start(&config(&repo.url, "1s", &rest), &env);
    serve
        .wait_app(&name, WAIT, "the first commit", applied(&c1))
        .await;

    sleep_until(start).await;
    let end = start.as_millisecond() + 45_000;
    let held = serve
        .wait_app(&name, WAIT, "held by the window", |a| {
            a["held"]["window"] == "freeze"
        })
        .await;
    assert_eq!(held["held"]["kind"], "deny", "{held}");
    let opens: jiff::Timestamp = held["held"]["opens"]
        .as_str()
        .expect("opens")
        .parse()
        .expect("RFC 3339");
    assert_eq!(opens.as_millisecond(), end, "{held}");

    repo.write("app/cm.yaml", &config_map("settings", "2"));
    let c2 = repo.push("second");
    let short = &c2[..7];
    serve
        .wait_app(&name, WAIT, "the second commit held", |a| {
            a["sync"] == "OutOfSync"
                && a["conditions"].as_array().into_iter().flatten().any(|c| {
                    c["reason"] == "SyncWindowClosed"
                        && c["message"].as_str().is_some_and(|m| m.contains(short))
                })
        })
        .await;
    let detail = ok(&cli(&serve, None, &["status", &name]));
    assert!(
        detail.contains("held by deny window freeze; opens at"),
        "{detail}"
    );
    // A user's sync without the override waits too: the window allows no manual syncs.
    ok(&cli(&serve, Some(CI), &["sync", &name]));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(value(ns.name(), "settings").as_deref(), Some("1"));
    // Self-heal is off while the window holds the App.
    let patch = r#"{"data":{"v":"edited"}}"#;
    kubectl(&[
        "-n",
        ns.name(),
        "patch",
        "configmap",
        "settings",
        "-p",
        patch,
    ]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(value(ns.name(), "settings").as_deref(), Some("edited"));

    let refused = cli(&serve, None, &["sync", &name, "--override-window"]);
    assert_eq!(refused.status.code(), Some(1), "an override needs a token");
    ok(&cli(
        &serve,
        Some(CI),
        &["sync", &name, "--override-window", "--wait"],
    ));
    let status = serve
        .wait_app(&name, WAIT, "the override applied", applied(&c2))
        .await;
    assert!(
        jiff::Timestamp::now().as_millisecond() < end,
        "the override ran inside the window: {status}"
    );
    assert_eq!(value(ns.name(), "settings").as_deref(), Some("2"));
    let (_, operations) = serve.get(&format!("/api/v1/apps/{name}/operations")).await;
    assert_eq!(operations[0]["operation"], "sync", "{operations}");
    assert_eq!(operations[0]["by"], "ci");
    assert_eq!(operations[0]["overrideWindow"], true, "{operations}");
    assert!(
        operations[1].get("overrideWindow").is_none(),
        "{operations}"
    );
    let audit = ok(&cli(&serve, None, &["history", &name, "--operations"]));
    assert!(audit.contains("sync (overriding sync windows)"), "{audit}");

    repo.write("app/cm.yaml", &config_map("settings", "3"));
    let c3 = repo.push("third");
    serve
        .wait_app(&name, WAIT, "the third commit held", |a| {
            a["sync"] == "OutOfSync" && a["lastApplied"]["sha"] == c2.as_str()
        })
        .await;
    serve
        .wait_app(
            &name,
            WAIT * 2,
            "the third commit after the window",
            applied(&c3),
        )
        .await;
    let applied_at = jiff::Timestamp::now().as_millisecond();
    assert!(
        applied_at >= end,
        "applied {} ms before the window ended",
        end - applied_at
    );
    eprintln!("applied {} ms after the window ended", applied_at - end);
    assert_eq!(value(ns.name(), "settings").as_deref(), Some("3"));
    let status = serve
        .wait_app(&name, WAIT, "no longer held", |a| a.get("held").is_none())
        .await;
    assert_eq!(status["sync"], "Synced", "{status}");
    // Self-heal is back on.
    kubectl(&[
        "-n",
        ns.name(),
        "patch",
        "configmap",
        "settings",
        "-p",
        patch,
    ]);
    let start = Instant::now();
    while value(ns.name(), "settings").as_deref() != Some("3") {
        assert!(
            start.elapsed() < WAIT,
            "drift not reverted after the window\n{}",
            serve.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_controller_a_manual_app_waits_for_a_request_and_windows_are_custom_resources() {
    let inst = Installed::new("e2e-ctl-manual").await;
    let ns = inst.name().to_owned();
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    repo.write("one/cm.yaml", &config_map("one", "1"));
    let c1 = repo.push("first");
    let ctl = inst.controller(&[], None);
    let windows = sync_window(
        "freeze",
        "{kind: deny, schedule: \"* * * * *\", duration: 2h, apps: [\"web\"], manualSync: true}",
    ) + &sync_window(
        "broken",
        "{kind: allow, schedule: \"0 9 * * *\", duration: 1h, timeZone: Mars/Olympus, apps: [\"*\"]}",
    );
    let manifests = format!(
        "{}---\n{windows}",
        source_and_app(&repo.url, "web", "one", &ns, "  syncPolicy: manual")
    );
    inst.kubectl(&["apply", "-f", "-"], Some(&manifests));

    let broken = inst
        .wait("syncwindow", "broken", "refused", |w| {
            condition(w, "Ready")["reason"] == "InvalidSpec"
        })
        .await;
    let message = condition(&broken, "Ready")["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("spec.timeZone") && message.contains("Mars/Olympus"),
        "{broken:#}"
    );
    inst.wait("syncwindow", "freeze", "accepted", |w| {
        condition(w, "Ready")["status"] == "True"
    })
    .await;
    let web = inst
        .wait("app", "web", "compared, held and not applied", |w| {
            w["status"]["pending"]["revision"] == c1.as_str()
                && w["status"]["held"]["window"] == format!("{ns}.freeze")
        })
        .await;
    assert_eq!(web["status"]["sync"], "OutOfSync", "{web:#}");
    assert_eq!(
        web["status"]["pending"]["objects"][0]["name"], "one",
        "{web:#}"
    );
    assert!(kube::config_map(&ns, "one").is_none(), "nothing is applied");

    // The window allows manual syncs: a requested reconcile applies the commit.
    inst.request_reconcile("app", "web", "now");
    let web = inst
        .wait("app", "web", "applied on request", |w| applied_sha(w) == c1)
        .await;
    assert!(web["status"].get("pending").is_none(), "{web:#}");
    assert!(kube::config_map(&ns, "one").is_some(), "{}", ctl.log());
}
