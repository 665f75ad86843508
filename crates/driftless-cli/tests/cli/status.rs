//! `driftless status` over many Apps: the summary line, the filters as flags, and
//! the list read from a real server a page at a time.

use driftless_api::status::{AppStatus, HealthStatus, Named, SyncStatus};
use driftless_api::{Config, Document};
use driftless_engine::store::Store;
use serde_json::json;

use crate::remote::{Server, assert_exit, fails_saying, row, stdout};

/// More Apps than one page of the API holds, so the CLI pages.
const APPS: usize = 1234;

fn name(i: usize) -> String {
    format!("app-{i:04}")
}

/// Every 100th App is OutOfSync and Degraded, every 50th (of the rest) Progressing.
fn status_of(i: usize) -> AppStatus {
    let (sync, health) = match (i % 100, i % 50) {
        (0, _) => (SyncStatus::OutOfSync, HealthStatus::Degraded),
        (_, 0) => (SyncStatus::Synced, HealthStatus::Progressing),
        _ => (SyncStatus::Synced, HealthStatus::Healthy),
    };
    AppStatus {
        sync,
        health,
        ..AppStatus::default()
    }
}

/// A config declaring every App, labelled `team=t0`..`t9` by the last digit.
fn labelled_config() -> Config {
    let source = json!({"apiVersion": "driftless.dev/v1alpha1", "kind": "GitSource",
        "metadata": {"name": "platform"},
        "spec": {"url": "https://git.example.com/platform.git", "ref": {"branch": "main"}}});
    let apps = (0..APPS).map(|i| {
        json!({"apiVersion": "driftless.dev/v1alpha1", "kind": "App",
            "metadata": {"name": name(i), "labels": {"team": format!("t{}", i % 10)}},
            "spec": {"sourceRef": {"name": "platform"}}})
    });
    let docs = std::iter::once(source)
        .chain(apps)
        .enumerate()
        .map(|(i, value)| Document {
            file: "apps.yaml".into(),
            index: i + 1,
            value,
        });
    Config::from_documents(docs).expect("valid config")
}

fn many_apps() -> Server {
    let seed = |store: &Store| {
        let names: Vec<String> = (0..APPS).map(name).collect();
        let statuses: Vec<AppStatus> = (0..APPS).map(status_of).collect();
        store
            .put_apps(names.iter().map(String::as_str).zip(&statuses))
            .expect("seed");
    };
    Server::start_with(seed, labelled_config())
}

/// The names in the first column of the table rows (after the summary and header).
fn listed(text: &str) -> Vec<&str> {
    text.lines()
        .skip(2)
        .take_while(|l| l.starts_with("app-"))
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

#[test]
fn the_summary_comes_first_and_every_app_follows_page_by_page() {
    let server = many_apps();
    let out = server.run(&["status"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("1234 Apps: 1221 Synced, 13 OutOfSync; 1209 Healthy, 12 Progressing, 13 Degraded")
    );
    assert!(
        lines.next().is_some_and(|h| h.starts_with("NAME")),
        "{text}"
    );
    let names = listed(&text);
    let expected: Vec<String> = (0..APPS).map(name).collect();
    assert_eq!(
        names, expected,
        "each App once, in name order, over three pages"
    );
    // Pages after the first continue the same columns.
    let widths: std::collections::BTreeSet<usize> = text
        .lines()
        .skip(1)
        .map(|l| {
            l.find("Synced")
                .or_else(|| l.find("OutOfSync"))
                .unwrap_or(0)
        })
        .filter(|at| *at > 0)
        .collect();
    assert_eq!(widths.len(), 1, "the SYNC column moves: {widths:?}");
    assert!(row(&text, "app-0100").contains("Degraded"), "{text}");
}

#[test]
fn filters_select_by_health_sync_label_and_name() {
    let server = many_apps();
    let out = server.run(&["status", "--health", "Degraded"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert_eq!(
        text.lines().next(),
        Some("13 Apps match: 13 OutOfSync; 13 Degraded")
    );
    let degraded: Vec<String> = (0..APPS).step_by(100).map(name).collect();
    assert_eq!(listed(&text), degraded);
    for (args, expected) in [
        (
            &[
                "--health",
                "progressing",
                "--health",
                "Degraded",
                "-q",
                "app-11",
            ][..],
            &["app-1100", "app-1150"][..],
        ),
        (
            &["--sync", "OutOfSync", "-l", "team=t0", "-q", "app-03"],
            &["app-0300"],
        ),
        (&["--label", "team=t3", "--query", "APP-123"], &["app-1233"]),
        (
            &["-l", "team", "-l", "team!=t1,team!=t2", "-q", "app-000"],
            &[
                "app-0000", "app-0003", "app-0004", "app-0005", "app-0006", "app-0007", "app-0008",
                "app-0009",
            ],
        ),
    ] {
        let mut all = vec!["status"];
        all.extend_from_slice(args);
        let out = server.run(&all);
        assert_exit(&out, 0);
        assert_eq!(listed(&stdout(&out)), expected, "{args:?}");
    }
    let out = server.run(&["status", "--health", "Missing"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "no apps match\n");
}

#[test]
fn the_limit_cuts_the_list_and_says_how_many_more() {
    let server = many_apps();
    let out = server.run(&["status", "--limit", "3"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert_eq!(listed(&text), ["app-0000", "app-0001", "app-0002"]);
    assert_eq!(
        text.lines().last(),
        Some("... 1231 more Apps (raise --limit to list them)"),
        "{text}"
    );
    let out = server.run(&["status", "--limit", "600", "-l", "team=t4"]);
    let text = stdout(&out);
    assert_eq!(
        listed(&text).len(),
        123,
        "fewer than the limit: all of them"
    );
    assert!(!text.contains("more Apps"), "{text}");
}

#[test]
fn json_output_is_every_selected_app_across_pages() {
    let server = many_apps();
    let out = server.run(&["status", "-o", "json", "--sync", "Synced"]);
    assert_exit(&out, 0);
    let apps: Vec<Named<AppStatus>> = serde_json::from_slice(&out.stdout).expect("a list");
    assert_eq!(apps.len(), 1221);
    assert!(apps.iter().all(|a| a.status.sync == SyncStatus::Synced));
    let out = server.run(&["status", "-o", "json", "--limit", "2"]);
    let apps: Vec<Named<AppStatus>> = serde_json::from_slice(&out.stdout).expect("a list");
    let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["app-0000", "app-0001"]);
    let out = server.run(&["status", "-o", "json", "--health", "Missing"]);
    assert_eq!(stdout(&out), "[]\n");
}

#[test]
fn bad_filters_are_usage_errors_before_anything_is_sent() {
    // Nothing listens there: a usage error is found before connecting.
    let server = "http://127.0.0.1:1";
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_driftless"))
            .args(args)
            .args(["--server", server])
            .env_remove("DRIFTLESS_SERVER")
            .output()
            .expect("run driftless")
    };
    fails_saying(
        &run(&["status", "--health", "Fine"]),
        2,
        "--health: unknown health \"Fine\"",
    );
    fails_saying(
        &run(&["status", "--sync", "synced,"]),
        2,
        "--sync: empty entry",
    );
    fails_saying(
        &run(&["status", "-l", "team=a=b"]),
        2,
        "--label: \"team=a=b\": label value",
    );
    fails_saying(&run(&["status", "--limit", "0"]), 2, "--limit");
    fails_saying(
        &run(&["status", "web", "--health", "Degraded"]),
        2,
        "cannot be used with",
    );
}
