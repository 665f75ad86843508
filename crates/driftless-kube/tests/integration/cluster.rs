//! Helpers for tests against the local control plane.

use std::sync::Mutex;

use driftless_kube::{ApplyEvent, ApplyOptions, Target};
use driftless_testenv::{TestNamespace, shared};
use serde_json::{Value, json};

/// A connected target for the shared test cluster.
pub async fn target() -> Target {
    Target::connect(Some(shared().kubeconfig()), None)
        .await
        .expect("connect to the test cluster")
}

/// A fresh namespace and options for an App deploying into it, with the
/// inventory kept in the same namespace so tests do not share one.
pub async fn app_in(prefix: &str) -> (TestNamespace, ApplyOptions) {
    let ns = shared().namespace(prefix).await.expect("test namespace");
    let mut opts = ApplyOptions::new(prefix);
    opts.namespace = Some(ns.name().to_owned());
    opts.inventory_namespace = ns.name().to_owned();
    opts.timeout = std::time::Duration::from_secs(60);
    (ns, opts)
}

pub use driftless_testenv::manifests::config_map_object as config_map;

/// A Deployment manifest of one nginx-like container.
pub fn deployment(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]}
            }
        }
    })
}

/// Runs `kubectl` against the shared cluster; panics with its stderr on failure.
pub fn kubectl(args: &[&str]) -> String {
    kubectl_stdin(args, None)
}

/// Like [`kubectl`] with a manifest on stdin.
pub fn kubectl_stdin(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut cmd = shared().kubectl();
    cmd.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("kubectl runs");
    let input = stdin.unwrap_or("").to_owned();
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("write kubectl stdin");
    let out = child.wait_with_output().expect("kubectl finishes");
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Reads one object as JSON through kubectl, or None when absent.
pub fn get(kind: &str, ns: &str, name: &str) -> Option<Value> {
    let out = shared()
        .kubectl()
        .args([
            "get",
            kind,
            name,
            "-n",
            ns,
            "-o",
            "json",
            "--ignore-not-found",
        ])
        .output()
        .expect("kubectl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        None
    } else {
        Some(serde_json::from_str(&text).expect("kubectl prints JSON"))
    }
}

/// Collects progress events for later assertions.
#[derive(Default)]
pub struct Events(pub Mutex<Vec<ApplyEvent>>);

impl Events {
    /// A progress callback recording into `self`.
    pub fn sink(&self) -> impl Fn(ApplyEvent) + Send + Sync + '_ {
        move |e| self.0.lock().expect("events lock").push(e)
    }
}

/// Ignores progress.
pub fn quiet(_: ApplyEvent) {}

/// Names of the objects of `kind` in `ns` that carry the owner label of `app`.
pub fn owned_names(kind: &str, ns: &str, app: &str) -> Vec<String> {
    let selector = format!("{}={app}", driftless_kube::OWNER_LABEL);
    let out = kubectl(&[
        "get",
        kind,
        "-n",
        ns,
        "-l",
        &selector,
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    let mut names: Vec<String> = out.split_whitespace().map(str::to_owned).collect();
    names.sort();
    names
}
