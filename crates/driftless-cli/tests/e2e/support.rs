//! A Git server over HTTP, a repository to push to, and `driftless serve`
//! running as a process, for the end-to-end tests.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use driftless_testenv::git_http::{GitServer, ServedRepo as Repo};
pub use driftless_testenv::manifests::config_map;

/// `driftless serve` as a child process, its log collected.
pub struct Serve {
    child: Child,
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
    pub config: PathBuf,
    /// Bearer token [`Serve::get`] sends, for servers that read only for a token.
    pub token: Option<String>,
    dir: tempfile::TempDir,
}

impl Serve {
    /// Starts serving `config` (YAML text) with `env` set; waits until it listens.
    pub fn start(config: &str, env: &[(&str, &str)]) -> Self {
        Self::start_with(config, env, &[])
    }

    /// As [`Serve::start`], with more command-line arguments.
    pub fn start_with(config: &str, env: &[(&str, &str)], args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, config).expect("write config");
        let mut command = vec![
            "serve".into(),
            "--config".into(),
            path.clone().into_os_string(),
        ];
        command.extend(args.iter().map(Into::into));
        Self::launch(&command, env, dir, path)
    }

    /// Runs `driftless controller` with `args` and `env`; waits until it listens.
    pub fn controller(
        args: &[&str],
        env: &[(&str, &str)],
        data: Option<tempfile::TempDir>,
    ) -> Self {
        let dir = data.unwrap_or_else(|| tempfile::tempdir().expect("temp dir"));
        let mut command: Vec<std::ffi::OsString> = vec!["controller".into()];
        command.extend(args.iter().map(Into::into));
        let none = dir.path().join("no-config");
        Self::launch(&command, env, dir, none)
    }

    /// Starts the binary with `args`, its state in `dir`; waits until it listens.
    fn launch(
        args: &[std::ffi::OsString],
        env: &[(&str, &str)],
        dir: tempfile::TempDir,
        config: PathBuf,
    ) -> Self {
        // The workspace's reqwest carries no crypto provider; the tests' clients
        // take the process default.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut child = Command::new(env!("CARGO_BIN_EXE_driftless"))
            .args(args)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("driftless starts");
        let stderr = child.stderr.take().expect("piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let who = args[0].to_string_lossy().into_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{who}: {line}");
                if let Some(addr) = line.split("listening on ").nth(1) {
                    let _ = tx.send(addr.split(',').next().unwrap_or_default().to_owned());
                }
                lines.lock().expect("log lock").push(line);
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("driftless listens");
        Self {
            child,
            base,
            log,
            config,
            token: None,
            dir,
        }
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the process at once (SIGKILL), keeping its state directory.
    pub fn kill(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let placeholder = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.dir, placeholder)
    }

    pub fn log(&self) -> String {
        self.lines().join("\n")
    }

    /// The stderr lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.log.lock().expect("log lock").clone()
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let mut request = reqwest::Client::new().get(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let resp = request.send().await.expect("GET answers");
        let status = resp.status().as_u16();
        let body = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }

    /// Polls app `name` until `check` holds; panics with the log after `timeout`.
    pub async fn wait_app(
        &self,
        name: &str,
        timeout: Duration,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let (code, app) = self.get(&format!("/api/v1/apps/{name}")).await;
            if code == 200 && check(&app) {
                return app;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {name}: {what}; last {app}\nlog:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether an app's status says commit `sha` is applied.
pub fn applied(sha: &str) -> impl Fn(&Value) -> bool + '_ {
    move |app| app["lastApplied"]["sha"] == sha
}

/// The test cluster, a GitSource following `url`, and `rest` (YAML documents).
pub fn config(url: &str, interval: &str, rest: &str) -> String {
    let kubeconfig = driftless_testenv::shared().kubeconfig().display();
    format!(
        "apiVersion: driftless.dev/v1alpha1
kind: Cluster
metadata: {{name: test}}
spec: {{kubeconfig: {{path: {kubeconfig}}}}}
---
apiVersion: driftless.dev/v1alpha1
kind: GitSource
metadata: {{name: platform}}
spec: {{url: \"{url}\", ref: {{branch: main}}, interval: {interval}}}
---
{rest}"
    )
}

/// A SyncWindow `name` with `spec` (flow YAML), and the document separator.
pub fn sync_window(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: driftless.dev/v1alpha1
kind: SyncWindow
metadata: {{name: {name}}}
spec: {spec}
---
"
    )
}

/// An App of the `platform` source deploying `path` into `namespace` of the test cluster.
pub fn app(name: &str, path: &str, namespace: &str, extra: &str) -> String {
    app_to(
        name,
        path,
        &format!("{{cluster: test, namespace: {namespace}}}"),
        extra,
    )
}

/// An App of the `platform` source deploying `path` to `destination` (flow YAML).
pub fn app_to(name: &str, path: &str, destination: &str, extra: &str) -> String {
    format!(
        "apiVersion: driftless.dev/v1alpha1
kind: App
metadata: {{name: {name}}}
spec:
  sourceRef: {{name: platform}}
  path: {path}
  destination: {destination}
{extra}
---
"
    )
}

/// Runs the CLI against `serve`, with `token` when given and none from the environment.
pub fn cli(serve: &Serve, token: Option<&str>, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_driftless"));
    command
        .args(args)
        .args(["--server", &serve.base])
        .env_remove("DRIFTLESS_API_TOKEN")
        .env_remove("DRIFTLESS_SERVER");
    if let Some(token) = token {
        command.args(["--token", token]);
    }
    command.output().expect("driftless runs")
}

/// The output of a command that must succeed.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
