//! `driftless bootstrap git` against a Git server that takes pushes over HTTPS
//! (a private CA) with basic auth or over SSH with a key, and a control plane of the test's
//! own (bootstrap installs CRDs and cluster-wide RBAC). The simulated nodes run no containers, so the
//! test runs the controller the way its pod would: with the token of the
//! bootstrapped ServiceAccount and the flags of the bootstrapped Deployment.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use driftless_testenv::git_http::Options;
use driftless_testenv::servers::port_of;
use driftless_testenv::{sshd, tls};
use serde_json::Value;

use crate::controller::{PrivateCluster, token_kubeconfig};
use crate::kube::kubectl_at;
use crate::support::{GitServer, Repo, Serve, config_map};

const WAIT: Duration = Duration::from_secs(120);
const NS: &str = "driftless-system";
const PASSWORD: &str = "bootstrap-pw-5f1c";

/// Polls `check` until it gives a value; panics naming `what` after WAIT.
async fn until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn get(kubeconfig: &std::path::Path, args: &[&str]) -> Option<Value> {
    let mut all = vec!["-n", NS, "get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let (ok, out, _) = kubectl_at(kubeconfig, &all, None);
    ok.then(|| serde_json::from_str(&out).expect("JSON"))
}

fn ready_at(app: &Value, sha: &str) -> bool {
    let ready = app["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    ready && app["status"]["lastApplied"]["sha"] == sha
}

/// The arguments of the Deployment's container, without the listener and the
/// state directory (the test's process gets its own).
fn deployment_args(deployment: &Value) -> Vec<String> {
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .filter(|a| *a != "controller")
        .filter(|a| !a.starts_with("--listen") && !a.starts_with("--data-dir"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_commits_installs_and_leaves_the_controller_managing_itself() {
    let private = PrivateCluster::start();
    let kubeconfig = private.kubeconfig.clone();
    let kc = kubeconfig.display().to_string();
    let server = GitServer::start_with(Options::basic_auth("bot", PASSWORD));
    let repo = Repo::new(&server, "fleet");
    repo.write("README.md", "the fleet\n");
    repo.write("apps/web/cm.yaml", &config_map("web", "1"));
    repo.push("first");
    // The server is reached over HTTPS, its certificate signed by a private CA.
    let tmp = tempfile::tempdir().expect("temp dir");
    let https = tls::start(&tmp.path().join("tls"), port_of(&server.url));
    let ca_file = tmp.path().join("tls/ca.pem");
    let url = format!("{}/fleet.git", https.url);
    let bootstrap = |image: &str| {
        Command::new(env!("CARGO_BIN_EXE_driftless"))
            .args(["bootstrap", "git", "--url", &url, "--username", "bot"])
            .arg("--ca-file")
            .arg(&ca_file)
            .args([
                "--password-env",
                "FLEET_PASSWORD",
                "--path",
                "clusters/test",
            ])
            .args(["--image", image, "--author-name", "Bootstrap Bot"])
            .args(["--author-email", "bot@example.com", "--timeout", "3m"])
            .args(["--kubeconfig", &kc])
            .env("FLEET_PASSWORD", PASSWORD)
            .stderr(Stdio::piped())
            .spawn()
            .expect("driftless bootstrap starts")
    };
    // Bootstrap waits for its App, which needs the controller: once the
    // Deployment exists, its pod's process starts here, as the pod would.
    let first_run = bootstrap("registry.invalid/driftless:one");
    let (ctl, _pod) = start_pod_process(&kubeconfig).await;
    let err = finish(first_run, PASSWORD);
    assert!(err.contains("pushed"), "{err}\n{}", ctl.log());

    // Git holds the manifests and the App, committed by the given author,
    // and not the password, which is in a Secret of the cluster.
    let work = &repo.work;
    let sync_to_origin = || {
        work.git(&["fetch", "-q", "origin"]);
        work.git(&["reset", "-q", "--hard", "origin/main"]);
        work.head()
    };
    let bootstrapped = sync_to_origin();
    for file in ["install.yaml", "sync.yaml"] {
        let path = work
            .path()
            .join("clusters/test/driftless-system")
            .join(file);
        assert!(path.exists(), "{file} committed");
    }
    assert_eq!(
        work.git(&["log", "-1", "--format=%an <%ae>"]),
        "Bootstrap Bot <bot@example.com>"
    );
    let everything = work.git(&["log", "-p", "--all"]);
    assert!(!everything.contains(PASSWORD), "no password in Git");
    let secret = get(&kubeconfig, &["secret", "driftless-system"]).expect("the Secret");
    assert!(secret["data"]["password"].is_string());
    assert!(secret["data"]["ca.crt"].is_string(), "the CA in {secret:#}");
    let app = get(&kubeconfig, &["app.driftless.dev", "driftless-system"]).expect("App");
    assert!(ready_at(&app, &bootstrapped), "{app:#}");

    // The same version again: nothing to commit, nothing changed.
    let err = finish(bootstrap("registry.invalid/driftless:one"), PASSWORD);
    assert!(err.contains("nothing committed"), "{err}");
    assert!(err.contains("0 objects created, 0 updated"), "{err}");
    assert_eq!(sync_to_origin(), bootstrapped, "no empty commit");

    let fetch_now = |value: &str| {
        let annotation = format!("driftless.dev/reconcile-requested-at={value}");
        let (ok, _, err) = kubectl_at(
            &kubeconfig,
            &[
                "-n",
                NS,
                "annotate",
                "--overwrite",
                "gitsource.driftless.dev/driftless-system",
                &annotation,
            ],
            None,
        );
        assert!(ok, "{err}");
    };
    let wait_app_at = |sha: String| {
        let kubeconfig = kubeconfig.clone();
        async move {
            until(&format!("App driftless-system Ready at {sha}"), || {
                get(&kubeconfig, &["app.driftless.dev", "driftless-system"])
                    .filter(|app| ready_at(app, &sha))
            })
            .await
        }
    };

    // A commit changing the controller's Deployment is applied by the controller.
    let install = work
        .path()
        .join("clusters/test/driftless-system/install.yaml");
    let text = std::fs::read_to_string(&install).expect("install.yaml");
    let line = text
        .lines()
        .find(|l| l.trim() == "- --leader-elect")
        .expect("the --leader-elect argument");
    let indent = &line[..line.len() - line.trim_start().len()];
    let edited = text.replacen(line, &format!("{line}\n{indent}- --log-level=debug"), 1);
    std::fs::write(&install, edited).expect("write");
    let flag = repo.push("controller: debug log");
    fetch_now("1");
    wait_app_at(flag).await;
    let deployment = get(&kubeconfig, &["deployment", "driftless-controller"]).expect("Deployment");
    assert!(
        deployment_args(&deployment).contains(&"--log-level=debug".to_owned()),
        "{deployment:#}"
    );

    // App of apps: an App committed under the path is created; removed, pruned.
    let child = format!(
        "apiVersion: driftless.dev/v1alpha1
kind: App
metadata: {{name: web, namespace: {NS}}}
spec:
  sourceRef: {{name: driftless-system}}
  path: apps/web
  prune: true
  destination: {{namespace: web, createNamespace: true}}
"
    );
    repo.write("clusters/test/web.yaml", &child);
    let added = repo.push("add web");
    fetch_now("2");
    wait_app_at(added).await;
    until("App web Ready with its ConfigMap", || {
        let app = get(&kubeconfig, &["app.driftless.dev", "web"])?;
        let applied = app["status"]["lastApplied"]["sha"].as_str()?.to_owned();
        let (ok, _, _) = kubectl_at(&kubeconfig, &["-n", "web", "get", "configmap", "web"], None);
        (ready_at(&app, &applied) && ok).then_some(())
    })
    .await;
    repo.remove("clusters/test/web.yaml");
    let removed = repo.push("remove web");
    fetch_now("3");
    wait_app_at(removed).await;
    until("App web and its ConfigMap pruned", || {
        let app = get(&kubeconfig, &["app.driftless.dev", "web"]);
        let (cm, _, _) = kubectl_at(&kubeconfig, &["-n", "web", "get", "configmap", "web"], None);
        (app.is_none() && !cm).then_some(())
    })
    .await;

    // A new version upgrades through a commit.
    let before = sync_to_origin();
    let err = finish(bootstrap("registry.invalid/driftless:two"), PASSWORD);
    assert!(err.contains("pushed"), "{err}");
    let upgraded = sync_to_origin();
    assert_ne!(upgraded, before);
    let deployment = get(&kubeconfig, &["deployment", "driftless-controller"]).expect("Deployment");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.invalid/driftless:two"
    );
    drop(ctl.kill());
}

/// Waits for a bootstrap run; asserts it succeeded without printing `secret`.
fn finish(mut child: Child, secret: &str) -> String {
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut err)
        .expect("stderr");
    let status = child.wait().expect("bootstrap ends");
    eprintln!("bootstrap: {err}");
    assert!(status.success(), "bootstrap failed: {err}");
    assert!(
        !err.contains(secret),
        "the credential is not printed: {err}"
    );
    err
}

/// Once bootstrap has applied the controller's Deployment, starts the process
/// of its pod here, as the pod would run it: with the bootstrapped
/// ServiceAccount's token and the Deployment's flags. The directory holds the
/// pod's kubeconfig and lives as long as the process.
async fn start_pod_process(kubeconfig: &Path) -> (Serve, tempfile::TempDir) {
    let deployment = until("the controller's Deployment", || {
        get(kubeconfig, &["deployment", "driftless-controller"])
    })
    .await;
    let args = deployment_args(&deployment);
    let (ok, token, err) = kubectl_at(
        kubeconfig,
        &[
            "-n",
            NS,
            "create",
            "token",
            "driftless-controller",
            "--duration",
            "1h",
        ],
        None,
    );
    assert!(ok, "TokenRequest: {err}");
    let dir = tempfile::tempdir().expect("temp dir");
    let pod_kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&pod_kubeconfig, token_kubeconfig(kubeconfig, token.trim())).expect("write");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let pod_kc = pod_kubeconfig.display().to_string();
    let ctl = Serve::controller(&args, &[("KUBECONFIG", pod_kc.as_str())], None);
    (ctl, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_over_ssh_keeps_the_key_in_the_cluster_and_the_controller_fetches_with_it() {
    let private = PrivateCluster::start();
    let kubeconfig = private.kubeconfig.clone();
    let server = GitServer::start();
    let repo = Repo::new(&server, "fleet-ssh");
    repo.write("README.md", "the fleet\n");
    repo.push("first");
    let tmp = tempfile::tempdir().expect("temp dir");
    let sshd = sshd::start(&tmp.path().join("sshd"));
    let key = tmp.path().join("deploy-key");
    let hosts = tmp.path().join("known_hosts");
    std::fs::write(&key, &sshd.client_key).expect("write the key");
    std::fs::write(&hosts, &sshd.known_hosts).expect("write known_hosts");
    // A line of the key's body: it must appear in no output and no commit.
    let key_line = sshd.client_key.lines().nth(1).expect("key body").to_owned();

    let run = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(["bootstrap", "git", "--url", &sshd.url(&repo.bare)])
        .arg("--private-key-file")
        .arg(&key)
        .arg("--known-hosts-file")
        .arg(&hosts)
        .args(["--path", "clusters/ssh", "--timeout", "3m"])
        .args(["--image", "registry.invalid/driftless:one"])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stderr(Stdio::piped())
        .spawn()
        .expect("driftless bootstrap starts");
    let (ctl, _pod) = start_pod_process(&kubeconfig).await;
    let err = finish(run, &key_line);
    assert!(err.contains("pushed"), "{err}\n{}", ctl.log());

    // The commit reached the server over SSH; the key is in a Secret, not in Git.
    let work = &repo.work;
    work.git(&["fetch", "-q", "origin"]);
    work.git(&["reset", "-q", "--hard", "origin/main"]);
    let bootstrapped = work.head();
    let sync = std::fs::read_to_string(work.path().join("clusters/ssh/driftless-system/sync.yaml"))
        .expect("sync.yaml committed");
    assert!(sync.contains("ssh://"), "{sync}");
    assert!(
        !work.git(&["log", "-p", "--all"]).contains(&key_line),
        "no key in Git"
    );
    let secret = get(&kubeconfig, &["secret", "driftless-system"]).expect("the Secret");
    for field in ["identity", "known_hosts"] {
        assert!(secret["data"][field].is_string(), "{field} in {secret:#}");
    }
    // Bootstrap returned once the controller had fetched over SSH with that
    // Secret and applied the bootstrapped commit.
    let app = get(&kubeconfig, &["app.driftless.dev", "driftless-system"]).expect("App");
    assert!(ready_at(&app, &bootstrapped), "{app:#}");
    assert!(
        !ctl.log().contains(&key_line),
        "no key in the controller's log"
    );
    drop(ctl.kill());
}
