//! The log of `driftless serve`: text for people by default, one JSON object
//! per line with `--log-format json`, and never a credential.

use std::time::{Duration, Instant};

use driftless_testenv::git_http::Options;
use driftless_testenv::shared;
use serde_json::Value;

use crate::support::{GitServer, Repo, Serve, app, applied, config, config_map};

const WAIT: Duration = Duration::from_secs(60);
const PASSWORD: &str = "e2e-log-password-7f3a";

/// A served repository behind basic auth with one ConfigMap App, and the
/// config that follows it with the credentials in the GitSource URL.
fn setup(ns: &str, name: &str) -> (GitServer, Repo, String, String) {
    let server = GitServer::start_with(Options::basic_auth("deploy", PASSWORD));
    let repo = Repo::new(&server, "platform");
    repo.write("app/cm.yaml", &config_map("settings", "1"));
    let sha = repo.push("first");
    let url = repo
        .url
        .replacen("http://", &format!("http://deploy:{PASSWORD}@"), 1);
    let text = config(&url, "1h", &app(name, "app", ns, ""));
    (server, repo, sha, text)
}

/// Waits until some log line satisfies `check`.
async fn wait_line(serve: &Serve, what: &str, check: impl Fn(&str) -> bool) {
    let start = Instant::now();
    while !serve.lines().iter().any(|l| check(l)) {
        assert!(
            start.elapsed() < WAIT,
            "no log line {what}:\n{}",
            serve.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_a_line_with_level_target_message_and_fields() {
    let ns = shared().namespace("e2e-logjson").await.expect("namespace");
    let name = format!("logjson-{}", std::process::id());
    let (_server, _repo, sha, text) = setup(ns.name(), &name);
    let serve = Serve::start_with(&text, &[], &["--log-format", "json"]);
    serve
        .wait_app(&name, WAIT, "first commit", applied(&sha))
        .await;
    let synced = |line: &str| {
        serde_json::from_str::<Value>(line).is_ok_and(|v| {
            v["app"] == name.as_str()
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("synced"))
        })
    };
    wait_line(&serve, "saying the App synced", synced).await;

    let lines = serve.lines();
    let objects: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    for object in &objects {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(object[key].is_string(), "no {key}: {object}");
        }
        let level = object["level"].as_str().unwrap_or_default();
        assert!(["INFO", "WARN", "ERROR"].contains(&level), "{object}");
    }
    let syncing = objects
        .iter()
        .find(|o| {
            o["app"] == name.as_str()
                && o["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("syncing"))
        })
        .unwrap_or_else(|| panic!("no syncing line:\n{}", serve.log()));
    assert_eq!(syncing["revision"], sha.as_str(), "{syncing}");
    assert_eq!(syncing["level"], "INFO");
    assert_eq!(syncing["target"], "driftless_engine::runtime::reconcile");
    let done = objects
        .iter()
        .find(|o| synced(&o.to_string()))
        .expect("synced line");
    assert_eq!(done["created"], 1, "{done}");
    let fetched = objects
        .iter()
        .find(|o| o["source"] == "platform" && o["revision"] == sha.as_str())
        .unwrap_or_else(|| panic!("no fetch line:\n{}", serve.log()));
    assert_eq!(fetched["target"], "driftless_engine::runtime::sources");
    assert!(
        !serve.log().contains(PASSWORD),
        "the URL's password is in the log:\n{}",
        serve.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_are_lines_for_people_with_the_fields_after_the_message() {
    let ns = shared().namespace("e2e-logtext").await.expect("namespace");
    let name = format!("logtext-{}", std::process::id());
    let (_server, _repo, sha, text) = setup(ns.name(), &name);
    let serve = Serve::start(&text, &[]);
    serve
        .wait_app(&name, WAIT, "first commit", applied(&sha))
        .await;
    let app_field = format!("app={name}");
    wait_line(&serve, "saying the App synced", |l| {
        l.contains(" synced ") && l.contains(&app_field)
    })
    .await;
    let lines = serve.lines();
    // Every event here is one line: no message of this run spans lines.
    for line in &lines {
        let mut words = line.split_whitespace();
        let time = words.next().unwrap_or_default();
        let level = words.next().unwrap_or_default();
        assert!(
            time.len() > 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "no UTC timestamp first: {line}"
        );
        assert!(["INFO", "WARN", "ERROR"].contains(&level), "{line}");
        assert!(!line.contains('\u{1b}'), "colour codes in a pipe: {line}");
    }
    let syncing = lines
        .iter()
        .find(|l| l.contains(" syncing main@sha1:") && l.contains(&app_field))
        .unwrap_or_else(|| panic!("no syncing line:\n{}", serve.log()));
    assert!(syncing.contains(&format!("revision={sha}")), "{syncing}");
    assert!(!serve.log().contains(PASSWORD), "{}", serve.log());
}
