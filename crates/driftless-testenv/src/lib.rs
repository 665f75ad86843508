//! A shared local Kubernetes control plane for integration tests.
//!
//! The first test that asks for it starts the control plane with
//! `scripts/k8s-env up` (a no-op when it already runs), unless
//! `DRIFTLESS_TEST_KUBECONFIG` names the kubeconfig of a cluster to use instead.
//! Each test then takes a [`TestNamespace`] of its own, deleted when dropped.
//!
//! The modules hold the other fixtures the crates' tests share: Git
//! repositories ([`git`]), manifests ([`manifests`]), a Git smart-HTTP server
//! ([`git_http`]), an SSH server ([`sshd`]), test hosts over SSH ([`hosts`]), TLS in front of a server ([`tls`]),
//! loopback ports ([`servers`]), a Helm chart repository ([`chart_repo`]) and the pinned
//! external tools ([`tools`]).

pub mod chart_repo;
pub mod git;
pub mod git_http;
pub mod helm_cli;
pub mod hosts;
pub mod manifests;
pub mod recorder;
pub mod registry;
pub mod servers;
pub mod sshd;
pub mod tls;
pub mod tools;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// Environment variable naming the kubeconfig of an already running cluster.
pub const KUBECONFIG_ENV: &str = "DRIFTLESS_TEST_KUBECONFIG";
/// Label put on every namespace a test creates, so leftovers can be found.
pub const TEST_NAMESPACE_LABEL: &str = "driftless.dev/test";

/// What can go wrong while reaching the test cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("starting the local control plane with {script}: {detail}")]
    Start { script: PathBuf, detail: String },
    #[error("reading kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: kube::config::KubeconfigError,
    },
    #[error("building a client for {path}: {source}")]
    Client { path: PathBuf, source: kube::Error },
    #[error("creating test namespace {name}: {source}")]
    Namespace { name: String, source: kube::Error },
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
}

/// The cluster the tests of this process share.
#[derive(Debug)]
pub struct TestEnv {
    kubeconfig: PathBuf,
}

static SHARED: OnceLock<Result<TestEnv, String>> = OnceLock::new();

/// The shared cluster, started on first use. Panics with the reason when it
/// cannot be had, which fails the calling test with a readable message.
pub fn shared() -> &'static TestEnv {
    let env = SHARED.get_or_init(|| TestEnv::locate().map_err(|e| e.to_string()));
    match env {
        Ok(env) => env,
        Err(e) => panic!("no test cluster: {e}"),
    }
}

/// Root of the repository (where `scripts/` lives).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the crate lives two levels below the repository root")
        .to_path_buf()
}

/// Path of the `scripts/k8s-env` control-plane script.
pub fn k8s_env_script() -> PathBuf {
    repo_root().join("scripts").join("k8s-env")
}

/// Runs `scripts/k8s-env ARGS --dir DIR`: for tests that need a private
/// control plane of their own (fault tests), never the shared one.
pub fn k8s_env(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(k8s_env_script())
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .expect("bash runs scripts/k8s-env")
}

/// Starts a new private control plane in `dir` (`scripts/k8s-env up`). Its
/// ports are chosen free when it starts, and a process running beside the
/// tests can take one before etcd, the API server or kwok binds it: such an
/// attempt is removed and made again with other ports, three attempts at most.
pub fn k8s_env_up_new(dir: &Path) -> std::process::Output {
    let mut out = k8s_env(dir, &["up"]);
    for _ in 0..2 {
        let taken = String::from_utf8_lossy(&out.stderr).contains("already in use");
        if out.status.success() || !taken {
            break;
        }
        let _ = k8s_env(dir, &["down"]);
        out = k8s_env(dir, &["up"]);
    }
    out
}

/// Stops the private control plane in its directory when dropped, also
/// when the test fails, so nothing is left running.
pub struct DownOnDrop(pub PathBuf);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        let _ = k8s_env(&self.0, &["down"]);
    }
}

/// Kills a component of the private control plane in `dir` with SIGKILL,
/// by the PID `scripts/k8s-env` recorded for it.
pub fn kill_component(dir: &Path, component: &str) {
    let pid_file = dir.join("run").join(format!("{component}.pid"));
    let line = std::fs::read_to_string(&pid_file).expect("the component's pid file exists");
    let pid = line
        .split_whitespace()
        .next()
        .expect("the pid file names a pid");
    let killed = Command::new("kill")
        .args(["-9", pid])
        .status()
        .expect("kill runs");
    assert!(killed.success(), "kill -9 {pid} ({component})");
}

impl TestEnv {
    fn locate() -> Result<Self, Error> {
        if let Some(path) = std::env::var_os(KUBECONFIG_ENV).filter(|p| !p.is_empty()) {
            return Ok(Self {
                kubeconfig: PathBuf::from(path),
            });
        }
        let script = k8s_env_script();
        let dir = repo_root().join(".k8s-env");
        let out = Command::new("bash")
            .arg(&script)
            .arg("up")
            .arg("--dir")
            .arg(&dir)
            .output()
            .map_err(|e| Error::Start {
                script: script.clone(),
                detail: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(Error::Start {
                script,
                detail: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(Self {
            kubeconfig: dir.join("kubeconfig"),
        })
    }

    /// The admin kubeconfig of this cluster.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A new client. Each call builds its own, because every `#[tokio::test]`
    /// runs its own runtime and a connection pool must not outlive it.
    pub async fn client(&self) -> Result<Client, Error> {
        let config = self.config().await?;
        Client::try_from(config).map_err(|source| Error::Client {
            path: self.kubeconfig.clone(),
            source,
        })
    }

    /// The client configuration for this cluster.
    pub async fn config(&self) -> Result<Config, Error> {
        let kc = Kubeconfig::read_from(&self.kubeconfig).map_err(|source| Error::Kubeconfig {
            path: self.kubeconfig.clone(),
            source,
        })?;
        Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .map_err(|source| Error::Kubeconfig {
                path: self.kubeconfig.clone(),
                source,
            })
    }

    /// `kubectl` pointed at this cluster.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }

    /// A fresh namespace named after `prefix`, ready for pods (its default
    /// ServiceAccount exists). Deleted when the returned value is dropped.
    pub async fn namespace(&self, prefix: &str) -> Result<TestNamespace, Error> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{}-{}-{}",
            sanitize(prefix),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let client = self.client().await?;
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([(TEST_NAMESPACE_LABEL.to_string(), "true".to_string())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        let fail = |source| Error::Namespace {
            name: name.clone(),
            source,
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .map_err(fail)?;
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
        wait_until(
            Duration::from_secs(30),
            "the default ServiceAccount",
            || {
                let accounts = accounts.clone();
                async move { accounts.get_opt("default").await.ok().flatten().is_some() }
            },
        )
        .await?;
        Ok(TestNamespace {
            name,
            client,
            kubeconfig: self.kubeconfig.clone(),
        })
    }
}

/// A namespace owned by one test.
pub struct TestNamespace {
    name: String,
    client: Client,
    kubeconfig: PathBuf,
}

impl TestNamespace {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A client for the cluster (the one that created the namespace).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// A namespaced API for `K` in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }
}

impl Drop for TestNamespace {
    // Deletion must not depend on the (possibly finished) test runtime, so it
    // goes through kubectl and does not wait for finalizers.
    fn drop(&mut self) {
        let _ = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["delete", "namespace", &self.name, "--wait=false"])
            .args(["--ignore-not-found", "--request-timeout=10s"])
            .output();
    }
}

/// Polls `check` every 100 ms until it returns true or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(Error::Timeout(timeout, what.to_string()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sanitize(prefix: &str) -> String {
    let cleaned: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    cleaned.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn namespace_prefixes_become_dns_labels() {
        assert_eq!(sanitize("Apply_Prune test"), "apply-prune-test");
        assert_eq!(sanitize("--x--"), "x");
    }
}
