//! Locating the pinned external tools the tests run as references.

use std::path::PathBuf;
use std::process::Command;

/// The pinned helm (from `scripts/ci/install-driftless-render.sh`),
/// `$DRIFTLESS_HELM`, or `helm` on PATH; panics with a hint when none runs.
pub fn helm() -> PathBuf {
    if let Some(cmd) = std::env::var_os("DRIFTLESS_HELM") {
        return PathBuf::from(cmd);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let pinned = home.join(".cache/driftless/helm-v3.16.3/helm");
    if pinned.is_file() {
        return pinned;
    }
    let on_path = Command::new("helm").arg("version").output();
    assert!(
        on_path.is_ok_and(|o| o.status.success()),
        "helm not found: run scripts/ci/install-driftless-render.sh or set DRIFTLESS_HELM"
    );
    PathBuf::from("helm")
}
