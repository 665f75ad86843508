//! kubectl against the test clusters, for the end-to-end option tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Runs kubectl with `kubeconfig`; returns (success, stdout, stderr).
pub fn kubectl_at(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    let mut input = child.stdin.take().expect("piped");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    let out = child.wait_with_output().expect("kubectl ends");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs kubectl against the shared test cluster; panics with its stderr on failure.
pub fn kubectl(args: &[&str]) -> String {
    kubectl_stdin(args, None)
}

/// Like [`kubectl`] with a manifest on stdin.
pub fn kubectl_stdin(args: &[&str], stdin: Option<&str>) -> String {
    let kubeconfig = driftless_testenv::shared().kubeconfig();
    let (ok, out, err) = kubectl_at(kubeconfig, args, stdin);
    assert!(ok, "kubectl {args:?}: {err}");
    out
}

/// The ConfigMap `ns/name` on the cluster of `kubeconfig`, if it exists.
pub fn config_map_at(kubeconfig: &Path, ns: &str, name: &str) -> Option<Value> {
    let (ok, out, _) = kubectl_at(
        kubeconfig,
        &["get", "configmap", name, "-n", ns, "-o", "json"],
        None,
    );
    ok.then(|| serde_json::from_str(&out).expect("kubectl prints JSON"))
}

/// The ConfigMap `ns/name` on the shared test cluster, if it exists.
pub fn config_map(ns: &str, name: &str) -> Option<Value> {
    config_map_at(driftless_testenv::shared().kubeconfig(), ns, name)
}

/// Polls `check` every 100 ms for up to `timeout`; panics naming `what`.
pub async fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A namespace that a test makes driftless create; deleted when dropped.
pub struct ExtraNamespace {
    pub name: String,
    pub kubeconfig: PathBuf,
}

impl Drop for ExtraNamespace {
    fn drop(&mut self) {
        let _ = kubectl_at(
            &self.kubeconfig,
            &[
                "delete",
                "namespace",
                &self.name,
                "--wait=false",
                "--ignore-not-found",
            ],
            None,
        );
    }
}
