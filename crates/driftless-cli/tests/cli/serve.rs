//! `driftless serve` log settings, without a cluster: a GitSource that
//! cannot be reached is enough to log something.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{driftless, text};

/// A config of one GitSource nobody answers for.
fn unreachable_source(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("config.yaml");
    std::fs::write(
        &path,
        "apiVersion: driftless.dev/v1alpha1\nkind: GitSource\nmetadata: {name: gone}\n\
         spec: {url: 'http://127.0.0.1:1/gone.git', ref: {branch: main}, interval: 1h}\n",
    )
    .expect("write config");
    path
}

#[test]
fn log_level_warn_keeps_warnings_and_drops_info() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = unreachable_source(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .expect("driftless serve starts");
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        let warned = line.contains(" WARN ");
        lines.push(line);
        if warned {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = lines.join("\n");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" WARN ") && l.contains("gone.git")),
        "no warning about the fetch:\n{log}"
    );
    assert!(!log.contains(" INFO "), "info lines at level warn:\n{log}");
}

#[test]
fn concurrency_is_logged_at_start_and_zero_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = unreachable_source(dir.path());
    let config = config.to_str().expect("UTF-8 path");
    let data = dir.path().join("data");
    let data = data.to_str().expect("UTF-8 path");
    let out = driftless(&[
        "serve",
        "--config",
        config,
        "--data-dir",
        data,
        "--concurrency",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("concurrency 0 is out of range: 1 to 1024"),
        "{}",
        text(&out.stderr)
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(["serve", "--config", config, "--data-dir", data])
        .args(["--listen", "127.0.0.1:0", "--concurrency", "3"])
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .expect("driftless serve starts");
    let stderr = child.stderr.take().expect("piped");
    let listening = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("listening on"));
    let _ = child.kill();
    let _ = child.wait();
    let line = listening.expect("serve logs where it listens");
    assert!(line.contains("up to 3 Apps at once"), "{line}");
}

#[test]
fn a_bad_log_level_or_format_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = unreachable_source(dir.path());
    let config = config.to_str().expect("UTF-8 path");
    let out = driftless(&["serve", "--config", config, "--log-level", "info,["]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--log-level \"info,[\""),
        "{}",
        text(&out.stderr)
    );
    let out = driftless(&["serve", "--config", config, "--log-format", "xml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("text, json"),
        "{}",
        text(&out.stderr)
    );
}
