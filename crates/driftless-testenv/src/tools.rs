//! Locating the pinned external tools the tests run as references.

use std::path::PathBuf;
use std::process::Command;

/// The pinned helm (from `scripts/ci/install-driftless-render.sh`),
/// `$DRIFTLESS_HELM`, or `helm` on PATH; panics with a hint when none runs.
pub fn helm() -> PathBuf {
    pinned("helm", "v3.16.3", "DRIFTLESS_HELM", "version")
}

/// The pinned go-jsonnet (from `scripts/ci/install-driftless-render.sh`),
/// `$DRIFTLESS_JSONNET`, or `jsonnet` on PATH; panics with a hint when none runs.
pub fn go_jsonnet() -> PathBuf {
    pinned("jsonnet", "v0.20.0", "DRIFTLESS_JSONNET", "--version")
}

/// The pinned kustomize (from `scripts/ci/install-driftless-kustomize.sh`),
/// `$DRIFTLESS_KUSTOMIZE`, or `kustomize` on PATH; panics with a hint when none runs.
pub fn kustomize() -> PathBuf {
    pinned("kustomize", "v5.5.0", "DRIFTLESS_KUSTOMIZE", "version")
}

/// The pinned sops (from `scripts/ci/install-sops.sh`) or `$DRIFTLESS_SOPS`.
pub fn sops() -> PathBuf {
    cached_tool("DRIFTLESS_SOPS", "sops-v3.13.3/sops")
}

/// `age-keygen` of the pinned age (from `scripts/ci/install-sops.sh`), or
/// the one in the directory `$DRIFTLESS_AGE`.
pub fn age_keygen() -> PathBuf {
    match std::env::var_os("DRIFTLESS_AGE") {
        Some(dir) => PathBuf::from(dir).join("age-keygen"),
        None => cached_tool("DRIFTLESS_AGE", "age-v1.3.2/age-keygen"),
    }
}

/// distribution's `registry` (from `scripts/ci/install-oci.sh`) or
/// `$DRIFTLESS_OCI_REGISTRY`.
pub fn oci_registry() -> PathBuf {
    cached_tool_from(
        "DRIFTLESS_OCI_REGISTRY",
        "registry-v3.0.0/registry",
        "scripts/ci/install-oci.sh",
    )
}

/// `$env_var`, else `~/.cache/driftless/<cached>`; panics naming the
/// install script when it is not there.
fn cached_tool(env_var: &str, cached: &str) -> PathBuf {
    cached_tool_from(env_var, cached, "scripts/ci/install-sops.sh")
}

fn cached_tool_from(env_var: &str, cached: &str, script: &str) -> PathBuf {
    let path = match std::env::var_os(env_var) {
        Some(path) => PathBuf::from(path),
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".cache/driftless")
            .join(cached),
    };
    assert!(
        path.is_file(),
        "{} is missing: run {script} (or set {env_var})",
        path.display()
    );
    path
}

/// `$env_var`, else `~/.cache/driftless/<name>-<version>/<name>`, else `name`
/// on PATH if `name probe` runs.
fn pinned(name: &str, version: &str, env_var: &str, probe: &str) -> PathBuf {
    if let Some(cmd) = std::env::var_os(env_var) {
        return PathBuf::from(cmd);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let cached = home.join(format!(".cache/driftless/{name}-{version}/{name}"));
    if cached.is_file() {
        return cached;
    }
    let on_path = Command::new(name).arg(probe).output();
    assert!(
        on_path.is_ok_and(|o| o.status.success()),
        "{name} not found: run scripts/ci/install-driftless-render.sh (kustomize: \
         install-driftless-kustomize.sh) or set {env_var}"
    );
    PathBuf::from(name)
}
