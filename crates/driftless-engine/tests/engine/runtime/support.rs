//! A Git repository, a config and a running engine for the reconcile tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use driftless_engine::queue::QueueConfig;
use driftless_engine::runtime::{Engine, EngineOptions};
use driftless_engine::store::{AppStatus, Store, SyncRecord, SyncResult};
use driftless_testenv::TestNamespace;

pub use driftless_testenv::git::GitRepo as Repo;
pub use driftless_testenv::manifests::config_map;

/// The config for the test cluster and a source following `repo`'s main
/// branch every second, plus `apps` (YAML documents).
pub fn config(dir: &Path, repo: &Repo, apps: &str) -> PathBuf {
    let kubeconfig = driftless_testenv::shared()
        .kubeconfig()
        .display()
        .to_string();
    let text = format!(
        "{cluster}{source}{apps}",
        cluster = cluster_doc(Path::new(&kubeconfig)),
        source = source_doc(repo)
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// A Cluster `test` reached with `kubeconfig`, as a YAML document.
pub fn cluster_doc(kubeconfig: &Path) -> String {
    format!(
        "apiVersion: driftless.dev/v1alpha1
kind: Cluster
metadata: {{name: test}}
spec:
  kubeconfig: {{path: {}}}
---
",
        kubeconfig.display()
    )
}

/// The GitSource `repo` following `repo`'s main branch every second.
pub fn source_doc(repo: &Repo) -> String {
    format!(
        "apiVersion: driftless.dev/v1alpha1
kind: GitSource
metadata: {{name: repo}}
spec:
  url: file://{}
  ref: {{branch: main}}
  interval: 1s
---
",
        repo.path().display()
    )
}

/// The Ready condition's reason and message.
pub fn ready(status: &AppStatus) -> (String, String) {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.reason.clone(), c.message.clone()))
        .unwrap_or_default()
}

/// Waits until `app`'s history holds a finished sync of `sha` that
/// satisfies `check`; returns it.
pub async fn wait_sync(
    running: &Running,
    app: &str,
    sha: &str,
    timeout: Duration,
    check: impl Fn(&SyncRecord) -> bool,
) -> SyncRecord {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let history = running.engine.store().history(app, 20).expect("history");
        if let Some(record) = history
            .iter()
            .find(|r| r.start.revision.sha == sha && r.result != SyncResult::Running && check(r))
        {
            return record.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no sync of {sha} recorded as expected (the engine's log is above): {history:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An App of the `repo` source deploying `path` into `ns`.
pub fn app(name: &str, path: &str, ns: &TestNamespace, extra: &str) -> String {
    format!(
        "apiVersion: driftless.dev/v1alpha1
kind: App
metadata: {{name: {name}}}
spec:
  sourceRef: {{name: repo}}
  path: {path}
  destination: {{cluster: test, namespace: {ns}}}
{extra}
---
",
        ns = ns.name()
    )
}

/// A running engine.
pub struct Running {
    pub engine: Engine,
}

/// Every log line of this test binary so far (all tests share one log).
static LOGGED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// The log lines written so far, by every test's engine.
pub fn logged() -> Vec<String> {
    LOGGED.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Writes log output to stderr and keeps each line for [`logged`].
struct Tee;

impl std::io::Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        LOGGED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(text.lines().map(str::to_owned));
        std::io::stderr().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Starts an engine on `config_path`; its log goes to stderr and [`logged`].
pub fn start(config_path: &Path, data_dir: &Path) -> Running {
    // The first test installs the log for all; the others find it there.
    let _ = tracing_subscriber::fmt()
        .with_writer(|| Tee)
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .try_init();
    let config = driftless_api::load_config(config_path).expect("valid config");
    let mut opts = EngineOptions::new(data_dir);
    opts.queue = QueueConfig {
        concurrency: 4,
        ..QueueConfig::default()
    };
    // Housekeeping runs often, alongside everything the tests do.
    opts.housekeeping = Duration::from_secs(2);
    opts.helm_command = Some(driftless_testenv::tools::helm());
    Running {
        engine: Engine::start(config, opts).expect("engine starts"),
    }
}

/// Waits until `app`'s status satisfies `check`; panics with the status
/// after `timeout` (the engine's log is on stderr).
pub async fn wait_status(
    running: &Running,
    app: &str,
    timeout: Duration,
    what: &str,
    check: impl Fn(&AppStatus) -> bool,
) -> AppStatus {
    let store: &Store = running.engine.store();
    let start = std::time::Instant::now();
    loop {
        let status = store.app(app).expect("store reads");
        if let Some(status) = status.filter(|s| check(s)) {
            return status;
        }
        if start.elapsed() > timeout {
            panic!(
                "timed out waiting for {app}: {what}; status {:#?}",
                store.app(app)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether the App last applied commit `sha`.
pub fn applied(sha: &str) -> impl Fn(&AppStatus) -> bool + '_ {
    move |s| s.last_applied.as_ref().is_some_and(|r| r.sha == sha)
}

/// `kubectl get` of one object's field via jsonpath, empty when absent.
pub fn kubectl_get(ns: &str, object: &str, jsonpath: &str) -> String {
    let out = driftless_testenv::shared()
        .kubectl()
        .args(["get", "-n", ns, object, "--ignore-not-found"])
        .arg(format!("-o=jsonpath={jsonpath}"))
        .output()
        .expect("kubectl runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs kubectl against the test cluster, asserting success.
pub fn kubectl(args: &[&str]) {
    let out = driftless_testenv::shared()
        .kubectl()
        .args(args)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
