//! API access through `driftless serve` and the CLI: named tokens with roles,
//! reads that need a token, and the audit log of operations with who asked.

use std::process::Output;
use std::time::Duration;

use driftless_testenv::shared;

use crate::support::{GitServer, Repo, Serve, app, applied, cli, config, config_map, ok};

const WAIT: Duration = Duration::from_secs(60);
const VIEWER: &str = "e2e-viewer-token-1c9d";
const CI: &str = "e2e-ci-token-88ab";
const ADMIN: &str = "e2e-admin-token-5e02";

/// Asserts a command failed with exit 1 saying `expected`.
fn refused(out: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_decide_what_each_token_may_do_and_every_operation_names_its_token() {
    let ns = shared().namespace("e2e-access").await.expect("namespace");
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    repo.write("app/cm.yaml", &config_map("settings", "1"));
    let c1 = repo.push("first");
    let name = format!("access-{}", std::process::id());
    let dir = tempfile::tempdir().expect("tempdir");
    let admin_file = dir.path().join("admin-token");
    std::fs::write(&admin_file, format!("{ADMIN}\n")).expect("write token file");
    let server_object = format!(
        "apiVersion: driftless.dev/v1alpha1
kind: Server
metadata: {{name: driftless}}
spec:
  api:
    anonymousRead: false
    tokens:
      - {{name: viewer, role: read, secret: {{env: E2E_VIEWER}}}}
      - {{name: ci, role: operate, secret: {{env: E2E_CI}}}}
      - {{name: alice, role: admin, secret: {{file: {}}}}}
---
",
        admin_file.display()
    );
    let text = config(
        &repo.url,
        "1s",
        &(app(&name, "app", ns.name(), "") + &server_object),
    );
    let mut serve = Serve::start(&text, &[("E2E_VIEWER", VIEWER), ("E2E_CI", CI)]);

    // Reads need a token; any role reads.
    let (code, body) = serve.get(&format!("/api/v1/apps/{name}")).await;
    assert_eq!(code, 401, "{body}");
    refused(
        &cli(&serve, None, &["status"]),
        "it requires an API token for reads (pass --token",
    );
    refused(
        &cli(&serve, Some("not-a-token"), &["status"]),
        "the API token is wrong",
    );
    serve.token = Some(VIEWER.to_owned());
    serve
        .wait_app(&name, WAIT, "the first commit", applied(&c1))
        .await;
    repo.write("app/cm.yaml", &config_map("settings", "2"));
    let c2 = repo.push("second");
    serve
        .wait_app(&name, WAIT, "the second commit", applied(&c2))
        .await;
    assert!(ok(&cli(&serve, Some(VIEWER), &["status"])).contains(&name));

    // read may not sync; operate may sync and resume but not suspend or roll back.
    refused(
        &cli(&serve, Some(VIEWER), &["sync", &name]),
        "token \"viewer\" has the read role; sync needs operate",
    );
    ok(&cli(&serve, Some(CI), &["sync", &name]));
    refused(
        &cli(&serve, Some(CI), &["suspend", &name]),
        "token \"ci\" has the operate role; suspend needs admin",
    );
    refused(
        &cli(&serve, Some(CI), &["rollback", &name]),
        "rollback needs admin",
    );
    // admin may do everything.
    ok(&cli(
        &serve,
        Some(ADMIN),
        &["rollback", &name, "--to", &c1[..10]],
    ));
    serve
        .wait_app(&name, WAIT, "rolled back to the first commit", applied(&c1))
        .await;
    ok(&cli(&serve, Some(ADMIN), &["suspend", &name]));
    refused(&cli(&serve, Some(CI), &["sync", &name]), "is suspended");
    ok(&cli(&serve, Some(CI), &["resume", &name]));
    serve
        .wait_app(&name, WAIT, "following Git again", applied(&c2))
        .await;

    // The audit log: every operation the engine was asked for, by token name, newest first.
    let out = ok(&cli(
        &serve,
        Some(VIEWER),
        &["history", &name, "--operations", "-o", "json"],
    ));
    let operations: serde_json::Value = serde_json::from_str(&out).expect("json");
    let seen: Vec<(String, String, bool)> = operations
        .as_array()
        .expect("a list")
        .iter()
        .rev()
        .map(|o| {
            (
                o["operation"].as_str().unwrap_or_default().to_owned(),
                o["by"].as_str().unwrap_or_default().to_owned(),
                o["error"].is_string(),
            )
        })
        .collect();
    let expected = [
        ("sync", "ci", false),
        ("rollback", "alice", false),
        ("suspend", "alice", false),
        ("sync", "ci", true),
        ("resume", "ci", false),
    ];
    let expected: Vec<(String, String, bool)> = expected
        .iter()
        .map(|(o, b, e)| ((*o).to_owned(), (*b).to_owned(), *e))
        .collect();
    assert_eq!(
        seen, expected,
        "refused calls are not operations: {operations}"
    );
    assert_eq!(
        operations[3]["revision"]["sha"],
        c1.as_str(),
        "{operations}"
    );
    for op in operations.as_array().expect("a list") {
        assert!(op["time"].is_string(), "{op}");
    }
    let table = ok(&cli(
        &serve,
        Some(VIEWER),
        &["history", &name, "--operations"],
    ));
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].contains("TIME") && lines[0].contains("BY"),
        "{table}"
    );
    assert!(
        lines[1].contains("resume") && lines[1].contains("ci"),
        "{table}"
    );
    assert!(
        lines[4].contains(&format!("rollback to {}", &c1[..7])) && lines[4].contains("alice"),
        "{table}"
    );
    assert!(lines[2].contains("refused: app"), "{table}");
    // The server's log names who asked, and never a token's value.
    let log = serve.log();
    assert!(log.contains("operation=rollback by=alice"), "{log}");
    for secret in [VIEWER, CI, ADMIN] {
        assert!(!log.contains(secret), "a token value in the log");
    }
}
