//! `scripts/k8s-env` faults: bad input fails clearly and leaves no processes;
//! a killed API server is reported and recovered with its data.
//!
//! These run a second, private control plane in a temporary directory, so the
//! shared one used by other tests is never disturbed.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use driftless_testenv::{DownOnDrop, k8s_env, k8s_env_script, kill_component};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("driftless-k8s-env-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Processes whose command line mentions `dir`: all of them were started for it.
fn processes_using(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) && !cmdline.contains("k8s-env") {
            found.push(cmdline);
        }
    }
    found
}

#[test]
fn busy_api_port_is_named_and_nothing_is_left_running() {
    let dir = temp_dir("busy");
    let holder = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = holder.local_addr().expect("addr").port().to_string();
    let out = k8s_env(&dir, &["up", "--apiserver-port", &port]);
    assert!(!out.status.success(), "up must fail on a busy port");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("127.0.0.1:{port} is already in use")),
        "message names the port: {err}"
    );
    assert!(
        processes_using(&dir).is_empty(),
        "stray processes: {:?}",
        processes_using(&dir)
    );
    let _ = k8s_env(&dir, &["down"]);
}

#[test]
fn missing_go_toolchain_is_reported_when_a_build_is_needed() {
    let dir = temp_dir("nogo");
    let empty_cache = temp_dir("nogo-cache");
    let out = Command::new("bash")
        .arg(k8s_env_script())
        .args(["up", "--dir"])
        .arg(&dir)
        .env("PATH", "/usr/bin:/bin")
        .env("XDG_CACHE_HOME", &empty_cache)
        .output()
        .expect("run k8s-env");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("needs the Go toolchain"),
        "message names the missing tool: {err}"
    );
    assert!(processes_using(&dir).is_empty());
    let _ = std::fs::remove_dir_all(&empty_cache);
    let _ = k8s_env(&dir, &["down"]);
}

#[test]
fn failed_build_is_reported_with_its_log() {
    let dir = temp_dir("badbuild");
    let cache = temp_dir("badbuild-cache");
    let src = temp_dir("badbuild-src");
    // A copy of testenv/ whose main package does not compile.
    let testenv = driftless_testenv::repo_root().join("testenv");
    let copied = Command::new("cp")
        .arg("-rL")
        .arg(&testenv)
        .arg(&src)
        .status()
        .expect("cp");
    assert!(copied.success());
    let main = src.join("testenv/cmd/k8s-testenv/main.go");
    std::fs::write(&main, "package main\n\nfunc main() { this is not go }\n")
        .expect("break main.go");
    let out = Command::new("bash")
        .arg(k8s_env_script())
        .args(["up", "--dir"])
        .arg(&dir)
        .env("K8S_ENV_TESTENV", src.join("testenv"))
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .expect("run k8s-env");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("building k8s-testenv failed"),
        "message names the failed build: {err}"
    );
    assert!(err.contains("main.go"), "compiler output is shown: {err}");
    assert!(processes_using(&dir).is_empty());
    for d in [&cache, &src] {
        let _ = std::fs::remove_dir_all(d);
    }
    let _ = k8s_env(&dir, &["down"]);
}

#[test]
fn killed_apiserver_is_reported_and_up_recovers_the_same_data() {
    let dir = temp_dir("recover");
    let _down = DownOnDrop(dir.clone());
    let up = driftless_testenv::k8s_env_up_new(&dir);
    assert!(up.status.success(), "first up: {}", stderr(&up));
    assert!(
        k8s_env(&dir, &["up"]).status.success(),
        "a second up is a no-op"
    );

    let kubectl = |args: &[&str]| {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(dir.join("kubeconfig"))
            .args(args)
            .output()
            .expect("run kubectl")
    };
    let created = kubectl(&[
        "-n",
        "default",
        "create",
        "configmap",
        "keep-me",
        "--from-literal=k=v",
    ]);
    assert!(created.status.success(), "{}", stderr(&created));

    kill_component(&dir, "kube-apiserver");
    std::thread::sleep(std::time::Duration::from_millis(300));

    let status = k8s_env(&dir, &["status"]);
    assert!(
        !status.status.success(),
        "status fails while a component is down"
    );
    let report = String::from_utf8_lossy(&status.stdout);
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("kube-apiserver") && l.contains("DOWN")),
        "{report}"
    );

    let again = k8s_env(&dir, &["up"]);
    assert!(
        again.status.success(),
        "up after a crash: {}",
        stderr(&again)
    );
    let read = kubectl(&[
        "-n",
        "default",
        "get",
        "configmap",
        "keep-me",
        "-o",
        "jsonpath={.data.k}",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&read.stdout),
        "v",
        "data survives: {}",
        stderr(&read)
    );
    assert!(k8s_env(&dir, &["status"]).status.success());

    let down = k8s_env(&dir, &["down"]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert!(
        processes_using(&dir).is_empty(),
        "down leaves nothing: {:?}",
        processes_using(&dir)
    );
    assert!(!dir.exists(), "down removes the data dir");
}
