//! `driftless controller` as a process, run the way its pod runs it: with the
//! token of the ServiceAccount the install manifests create, so their RBAC is
//! what is tested. Each test installs into a namespace of its own.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use driftless_testenv::{TestNamespace, shared};
use serde_json::Value;

use crate::SECRET;
use crate::kube::kubectl_at;
use crate::support::{GitServer, Repo, Serve, app_to, config_map};

const WAIT: Duration = Duration::from_secs(60);

/// A namespace with the controller's ServiceAccount and RBAC installed, and a
/// kubeconfig holding that ServiceAccount's token.
pub struct Installed {
    pub ns: TestNamespace,
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Installed {
    /// Installs the manifests of `driftless install --export` (but the
    /// Deployment, whose pod the simulated nodes would not run) into a new namespace.
    pub async fn new(prefix: &str) -> Self {
        let ns = shared().namespace(prefix).await.expect("namespace");
        let kept = exported(&["--namespace", ns.name()], |kind| kind != "Deployment");
        let admin = shared().kubeconfig();
        let (ok, _, err) = kubectl_at(
            admin,
            &["apply", "--server-side", "--force-conflicts", "-f", "-"],
            Some(&kept),
        );
        assert!(ok, "applying the install manifests: {err}");
        let (ok, token, err) = kubectl_at(
            admin,
            &[
                "create",
                "token",
                "driftless-controller",
                "-n",
                ns.name(),
                "--duration",
                "2h",
            ],
            None,
        );
        assert!(ok, "TokenRequest: {err}");
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, token_kubeconfig(admin, token.trim())).expect("write");
        Self {
            ns,
            kubeconfig,
            _dir: dir,
        }
    }

    pub fn name(&self) -> &str {
        self.ns.name()
    }

    /// Starts a controller for this namespace with `args`.
    pub fn controller(&self, args: &[&str], data: Option<tempfile::TempDir>) -> Serve {
        let mut all = vec!["--watch-namespace", self.name(), "--namespace", self.name()];
        all.extend_from_slice(args);
        let kubeconfig = self.kubeconfig.display().to_string();
        Serve::controller(&all, &[("KUBECONFIG", kubeconfig.as_str())], data)
    }

    /// kubectl as the cluster admin in this namespace; panics on failure.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut all = vec!["-n", self.name()];
        all.extend_from_slice(args);
        let (ok, out, err) = kubectl_at(shared().kubeconfig(), &all, stdin);
        assert!(ok, "kubectl {all:?}: {err}");
        out
    }

    /// The custom resource `kind/name` as JSON, if it exists.
    pub fn get(&self, kind: &str, name: &str) -> Option<Value> {
        let resource = format!("{kind}.driftless.dev");
        let (ok, out, _) = kubectl_at(
            shared().kubeconfig(),
            &["-n", self.name(), "get", &resource, name, "-o", "json"],
            None,
        );
        ok.then(|| serde_json::from_str(&out).expect("JSON"))
    }

    /// Polls `kind/name` until `check` holds on it; panics with the last state.
    pub async fn wait(
        &self,
        kind: &str,
        name: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let object = self.get(kind, name).unwrap_or(Value::Null);
            if check(&object) {
                return object;
            }
            assert!(
                start.elapsed() < WAIT,
                "timed out waiting for {kind}/{name}: {what}; last {object:#}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Asks for a reconcile of `kind/name` through the annotation, with `value`.
    pub fn request_reconcile(&self, kind: &str, name: &str, value: &str) {
        let resource = format!("{kind}.driftless.dev");
        let annotation = format!("driftless.dev/reconcile-requested-at={value}");
        self.kubectl(
            &["annotate", "--overwrite", &resource, name, &annotation],
            None,
        );
    }

    /// Waits for an Event with `reason` about `name`; returns its note and count.
    pub async fn wait_event(&self, name: &str, reason: &str) -> (String, i64) {
        let start = Instant::now();
        loop {
            let events = self.events(name);
            if let Some((_, note, count)) = events.iter().find(|(r, _, _)| r == reason) {
                return (note.clone(), *count);
            }
            assert!(
                start.elapsed() < WAIT,
                "no Event {reason} about {name}: {events:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Events about `name` (events.k8s.io/v1), as (reason, note, count).
    pub fn events(&self, name: &str) -> Vec<(String, String, i64)> {
        let out = self.kubectl(&["get", "events.events.k8s.io", "-o", "json"], None);
        let list: Value = serde_json::from_str(&out).expect("JSON");
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["regarding"]["name"] == name)
            .map(|e| {
                let count = e["series"]["count"].as_i64().unwrap_or(1);
                let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                (text(&e["reason"]), text(&e["note"]), count)
            })
            .collect()
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let binding = format!("clusterrolebinding/driftless-controller-{}", self.ns.name());
        let _ = kubectl_at(
            shared().kubeconfig(),
            &["delete", &binding, "--ignore-not-found", "--wait=false"],
            None,
        );
    }
}

/// The documents of `driftless install --export ARGS` whose kind `keep` accepts.
fn exported(args: &[&str], keep: impl Fn(&str) -> bool) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(["install", "--export"])
        .args(args)
        .output()
        .expect("driftless install --export runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifests = String::from_utf8(out.stdout).expect("UTF-8");
    let kept: Vec<&str> = manifests
        .split("\n---\n")
        .filter(|doc| {
            let kind = doc.lines().find_map(|l| l.strip_prefix("kind: "));
            kind.is_some_and(&keep)
        })
        .collect();
    kept.join("\n---\n")
}

/// A control plane of a test's own, for faults and cluster-wide changes the
/// shared one must not see; stopped when dropped.
pub struct PrivateCluster {
    dir: PathBuf,
    pub kubeconfig: PathBuf,
    _down: driftless_testenv::DownOnDrop,
    _tmp: tempfile::TempDir,
}

impl PrivateCluster {
    pub fn start() -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("k8s");
        let down = driftless_testenv::DownOnDrop(dir.clone());
        let up = driftless_testenv::k8s_env_up_new(&dir);
        assert!(
            up.status.success(),
            "{}",
            String::from_utf8_lossy(&up.stderr)
        );
        Self {
            kubeconfig: dir.join("kubeconfig"),
            dir,
            _down: down,
            _tmp: tmp,
        }
    }
}

/// A kubeconfig for the admin kubeconfig's cluster that authenticates with `token`.
pub fn token_kubeconfig(admin: &Path, token: &str) -> String {
    let (ok, out, err) = kubectl_at(
        admin,
        &["config", "view", "--raw", "--minify", "-o", "json"],
        None,
    );
    assert!(ok, "{err}");
    let view: Value = serde_json::from_str(&out).expect("JSON");
    let cluster = &view["clusters"][0]["cluster"];
    let server = cluster["server"].as_str().expect("server");
    let ca = match cluster["certificate-authority-data"].as_str() {
        Some(data) => format!("certificate-authority-data: {data}"),
        None => format!(
            "certificate-authority: {}",
            cluster["certificate-authority"].as_str().expect("a CA")
        ),
    };
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: {server}
    {ca}
users:
- name: controller
  user:
    token: {token}
contexts:
- name: test
  context: {{cluster: test, user: controller}}
current-context: test
"
    )
}

/// A GitSource and an App (in the same namespace) as YAML.
pub fn source_and_app(url: &str, app: &str, path: &str, ns: &str, extra: &str) -> String {
    format!(
        "apiVersion: driftless.dev/v1alpha1
kind: GitSource
metadata: {{name: platform}}
spec: {{url: \"{url}\", ref: {{branch: main}}, interval: 1h}}
---
{}",
        app_cr(app, path, ns, extra)
    )
}

/// An App of the `platform` source deploying `path` into `ns` of the controller's cluster.
pub fn app_cr(name: &str, path: &str, ns: &str, extra: &str) -> String {
    app_to(name, path, &format!("{{namespace: {ns}}}"), extra)
}

/// An installed namespace, a Git server and a repository whose directories
/// `dirs` each hold a ConfigMap named after the directory, pushed as "first".
async fn setup(prefix: &str, dirs: &[&str]) -> (Installed, GitServer, Repo, String) {
    let inst = Installed::new(prefix).await;
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    for dir in dirs {
        repo.write(&format!("{dir}/cm.yaml"), &config_map(dir, "1"));
    }
    let first = repo.push("first");
    (inst, server, repo, first)
}

pub fn ready(object: &Value) -> bool {
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

pub fn applied_sha(object: &Value) -> &str {
    object["status"]["lastApplied"]["sha"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_resource_is_synced_edited_requested_and_deleted_with_and_without_prune() {
    let (inst, _server, repo, c1) = setup("e2e-ctl", &["one", "two"]).await;
    let ns = inst.name().to_owned();
    let ctl = inst.controller(&[], None);
    let started = Instant::now();
    inst.kubectl(
        &["apply", "-f", "-"],
        Some(&source_and_app(
            &repo.url,
            "web",
            "one",
            &ns,
            "  prune: true",
        )),
    );
    let (ok, _, err) = kubectl_at(
        shared().kubeconfig(),
        &[
            "-n",
            &ns,
            "wait",
            "--for=condition=Ready",
            "app.driftless.dev/web",
            "--timeout=60s",
        ],
        None,
    );
    assert!(ok, "kubectl wait: {err}\n{}", ctl.log());
    eprintln!("created -> Ready in {} ms", started.elapsed().as_millis());
    let web = inst.get("app", "web").expect("App");
    assert_eq!(applied_sha(&web), c1, "{web:#}");
    assert_eq!(
        web["status"]["observedGeneration"],
        web["metadata"]["generation"]
    );
    assert_eq!(web["status"]["sync"], "Synced");
    assert_eq!(web["status"]["health"], "Healthy");
    assert_eq!(web["status"]["history"][0]["subject"], "first", "{web:#}");
    assert_eq!(web["status"]["history"][0]["result"], "Succeeded");
    assert!(
        web["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.contains(&"driftless.dev/finalizer".into()))
    );
    let source = inst
        .wait("gitsource", "platform", "fetched", |s| {
            s["status"]["artifact"]["revision"]["sha"] == c1.as_str()
        })
        .await;
    assert_eq!(source["status"]["observedGeneration"], 1, "{source:#}");
    let table = inst.kubectl(&["get", "apps.driftless.dev"], None);
    assert!(
        table.contains("READY") && table.contains("SYNC") && table.contains("REVISION"),
        "{table}"
    );
    assert!(
        table.contains("True") && table.contains(&c1[..7]),
        "{table}"
    );
    assert!(
        inst.kubectl(&["get", "configmap", "one"], None)
            .contains("one")
    );
    inst.wait_event("web", "SyncSucceeded").await;
    // The same API as serve, under the App's qualified name.
    let qualified = format!("{ns}.web");
    let (code, status) = ctl.get(&format!("/api/v1/apps/{qualified}")).await;
    assert_eq!(code, 200, "{status}");
    assert_eq!(status["lastApplied"]["sha"], c1.as_str());

    // An edit of the spec is reconciled, and its generation observed.
    inst.kubectl(
        &[
            "patch",
            "app.driftless.dev",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"path":"two"}}"#,
        ],
        None,
    );
    let web = inst
        .wait("app", "web", "the edit observed", |w| {
            w["status"]["observedGeneration"] == 2 && ready(w)
        })
        .await;
    assert_eq!(web["metadata"]["generation"], 2);
    assert!(
        inst.kubectl(&["get", "configmap", "two"], None)
            .contains("two")
    );
    let (ok, _, _) = kubectl_at(
        shared().kubeconfig(),
        &["-n", &ns, "get", "configmap", "one"],
        None,
    );
    assert!(!ok, "prune removed the ConfigMap the edit dropped");

    // The interval is an hour: only the annotation brings the next commit now.
    repo.write("two/cm.yaml", &config_map("two", "2"));
    let c2 = repo.push("second");
    inst.request_reconcile("gitsource", "platform", "1");
    let requested = Instant::now();
    inst.wait("app", "web", "the second commit", |w| applied_sha(w) == c2)
        .await;
    eprintln!(
        "requested -> applied in {} ms",
        requested.elapsed().as_millis()
    );

    // A second App without prune: deleting it leaves its objects.
    inst.kubectl(
        &["apply", "-f", "-"],
        Some(&app_cr("keep", "one", &ns, "  prune: false")),
    );
    inst.wait("app", "keep", "Ready", ready).await;
    inst.kubectl(
        &["delete", "app.driftless.dev", "keep", "--timeout=60s"],
        None,
    );
    assert!(inst.get("app", "keep").is_none());
    assert!(
        inst.kubectl(&["get", "configmap", "one"], None)
            .contains("one"),
        "orphaned, not deleted"
    );

    // With prune, deleting the App deletes what it owns before the object goes.
    inst.kubectl(
        &["delete", "app.driftless.dev", "web", "--timeout=60s"],
        None,
    );
    assert!(inst.get("app", "web").is_none());
    let (ok, _, _) = kubectl_at(
        shared().kubeconfig(),
        &["-n", &ns, "get", "configmap", "two"],
        None,
    );
    assert!(!ok, "the pruned App's ConfigMap is gone\n{}", ctl.log());
    let (code, _) = ctl.get(&format!("/api/v1/apps/{qualified}")).await;
    assert_eq!(code, 404);
}

pub fn condition<'a>(object: &'a Value, type_: &str) -> &'a Value {
    object["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_and_cross_namespace_objects_are_refused_alone_and_a_receiver_reads_its_secret() {
    let (inst, _server, repo, c1) = setup("e2e-ctl-refuse", &["one", "two"]).await;
    let ns = inst.name().to_owned();
    let ctl = inst.controller(&[], None);
    let cross =
        app_cr("cross", "one", &ns, "").replace("{name: platform}", "{name: elsewhere/platform}");
    let manifests = format!(
        "{}---\n{}---\n{cross}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: hook}}\nstringData: {{token: {SECRET}}}\n---\n\
         apiVersion: driftless.dev/v1alpha1\nkind: Receiver\nmetadata: {{name: push}}\n\
         spec: {{type: github, secretRef: {{name: hook}}, resources: [platform]}}\n",
        source_and_app(&repo.url, "good", "one", &ns, ""),
        app_cr("bad", "../outside", &ns, ""),
    );
    inst.kubectl(&["apply", "-f", "-"], Some(&manifests));
    inst.wait("app", "good", "Ready next to invalid Apps", ready)
        .await;
    let bad = inst
        .wait("app", "bad", "refused", |b| {
            condition(b, "Stalled")["status"] == "True"
        })
        .await;
    let message = condition(&bad, "Ready")["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("spec.path"), "{bad:#}");
    assert_eq!(condition(&bad, "Ready")["reason"], "InvalidSpec");
    let cross = inst
        .wait("app", "cross", "refused", |c| {
            condition(c, "Stalled")["status"] == "True"
        })
        .await;
    let message = condition(&cross, "Ready")["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("spec.sourceRef.name") && message.contains("--allow-cross-namespace-refs"),
        "{cross:#}"
    );

    // Fixing the spec brings the App in.
    inst.kubectl(
        &[
            "patch",
            "app.driftless.dev",
            "bad",
            "--type=merge",
            "-p",
            r#"{"spec":{"path":"two"}}"#,
        ],
        None,
    );
    inst.wait("app", "bad", "Ready once fixed", ready).await;

    // The Receiver's webhook checks signatures with the token of its Secret.
    let receiver = inst
        .wait("receiver", "push", "served", |r| {
            condition(r, "Ready")["status"] == "True"
        })
        .await;
    let path = format!("/hooks/{ns}.push");
    assert_eq!(
        receiver["status"]["webhookPath"],
        path.as_str(),
        "{receiver:#}"
    );
    repo.write("one/cm.yaml", &config_map("one", "2"));
    let c2 = repo.push("second");
    assert_ne!(c1, c2);
    let body = serde_json::json!({"ref": "refs/heads/main", "repository": {"clone_url": repo.url}})
        .to_string();
    let post = |signature: String| {
        reqwest::Client::new()
            .post(format!("{}{path}", ctl.base))
            .header("X-GitHub-Event", "push")
            .header("X-Hub-Signature-256", signature)
            .body(body.clone())
            .send()
    };
    let refused = post("sha256=00".into()).await.expect("answers");
    assert_eq!(refused.status().as_u16(), 401);
    let accepted = post(crate::github_signature(body.as_bytes()))
        .await
        .expect("answers");
    assert_eq!(accepted.status().as_u16(), 200, "{}", ctl.log());
    inst.wait("app", "good", "the pushed commit", |g| applied_sha(g) == c2)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_when_the_leader_is_killed_and_refuses_changes_until_then() {
    let (inst, _server, repo, c1) = setup("e2e-ctl-ha", &["one"]).await;
    let ns = inst.name().to_owned();
    let first = inst.controller(&["--leader-elect"], None);
    inst.kubectl(
        &["apply", "-f", "-"],
        Some(&source_and_app(&repo.url, "web", "one", &ns, "")),
    );
    inst.wait("app", "web", "Ready", |w| applied_sha(w) == c1)
        .await;
    let second = inst.controller(&["--leader-elect"], None);
    let (code, _) = first.get("/readyz").await;
    assert_eq!(code, 200, "the leader is ready");
    let (code, _) = second.get("/readyz").await;
    assert_eq!(code, 503, "the standby is not");
    let sync = reqwest::Client::new()
        .post(format!("{}/api/v1/apps/{ns}.web/sync", second.base))
        .send()
        .await
        .expect("answers");
    assert_eq!(sync.status().as_u16(), 503, "the standby refuses changes");

    // The standby writes nothing while it stands by.
    let version = |inst: &Installed| {
        inst.get("app", "web").expect("App")["metadata"]["resourceVersion"].clone()
    };
    let standing_by = version(&inst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        version(&inst),
        standing_by,
        "a write while the leader was idle"
    );
    let killed = Instant::now();
    drop(first.kill());
    let start = Instant::now();
    loop {
        let (code, _) = second.get("/readyz").await;
        if code == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no takeover:\n{}",
            second.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let takeover = killed.elapsed();
    eprintln!(
        "leader killed -> standby leads in {} ms",
        takeover.as_millis()
    );
    assert!(takeover < Duration::from_secs(15), "took {takeover:?}");
    repo.write("one/cm.yaml", &config_map("one", "2"));
    let c2 = repo.push("second");
    inst.request_reconcile("gitsource", "platform", "after-failover");
    inst.wait("app", "web", "the next commit by the new leader", |w| {
        applied_sha(w) == c2
    })
    .await;
    let lease = inst.kubectl(
        &["get", "lease", "driftless-controller", "-o", "json"],
        None,
    );
    let lease: Value = serde_json::from_str(&lease).expect("JSON");
    assert!(
        lease["spec"]["leaseTransitions"].as_i64() >= Some(1),
        "{lease:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_and_the_default_instance_each_reconcile_only_their_own_objects() {
    let (inst, _server, repo, _) = setup("e2e-ctl-shard", &["a", "b", "c"]).await;
    let ns = inst.name().to_owned();
    let source = |key: Option<&str>| {
        let name = key.map_or("platform".to_owned(), |k| format!("platform-{k}"));
        format!(
            "apiVersion: driftless.dev/v1alpha1\nkind: GitSource\nmetadata:\n  name: {name}\n{}\
                 spec: {{url: \"{}\", ref: {{branch: main}}, interval: 1h}}\n",
            key.map(|k| format!("  labels: {{sharding.driftless.dev/key: {k}}}\n"))
                .unwrap_or_default(),
            repo.url
        )
    };
    let app = |name: &str, key: Option<&str>| {
        let source = key.map_or("platform".to_owned(), |k| format!("platform-{k}"));
        let labels = key
            .map(|k| format!("  labels: {{sharding.driftless.dev/key: {k}}}\n"))
            .unwrap_or_default();
        format!(
            "apiVersion: driftless.dev/v1alpha1\nkind: App\nmetadata:\n  name: {name}\n{labels}\
                 spec:\n  sourceRef: {{name: {source}}}\n  path: {name}\n  destination: {{namespace: {ns}}}\n"
        )
    };
    let manifests = [
        source(None),
        source(Some("one")),
        source(Some("two")),
        app("a", None),
        app("b", Some("one")),
        app("c", Some("two")),
    ]
    .join("---\n");
    let default = inst.controller(&[], None);
    let one = inst.controller(&["--shard", "one"], None);
    inst.kubectl(&["apply", "-f", "-"], Some(&manifests));
    for name in ["a", "b"] {
        inst.wait("app", name, "Ready", ready).await;
    }
    // No instance serves shard two: its App stays untouched.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let c = inst.get("app", "c").expect("App");
    assert!(c["status"].is_null(), "{c:#}");
    let listed = |serve: &Serve| {
        let serve_base = serve.base.clone();
        async move {
            let apps: Value = reqwest::get(format!("{serve_base}/api/v1/apps"))
                .await
                .expect("answers")
                .json()
                .await
                .expect("JSON");
            apps["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| a["name"].as_str().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed(&default).await, [format!("{ns}.a")]);
    assert_eq!(listed(&one).await, [format!("{ns}.b")]);
    let two = inst.controller(&["--shard", "two"], None);
    inst.wait("app", "c", "Ready once its shard runs", ready)
        .await;
    assert_eq!(listed(&two).await, [format!("{ns}.c")]);
    let leases = inst.kubectl(&["get", "leases", "-o", "name"], None);
    assert!(
        leases.trim().is_empty(),
        "no election outside a pod unless asked: {leases}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_history_and_writes_no_status_for_nothing() {
    let (inst, _server, repo, c1) = setup("e2e-ctl-restart", &["one"]).await;
    let ns = inst.name().to_owned();
    let ctl = inst.controller(&[], None);
    inst.kubectl(
        &["apply", "-f", "-"],
        Some(&source_and_app(&repo.url, "web", "one", &ns, "")),
    );
    inst.wait("app", "web", "Ready", |w| applied_sha(w) == c1 && ready(w))
        .await;
    let (_, history) = ctl.get(&format!("/api/v1/apps/{ns}.web/history")).await;
    assert_eq!(history.as_array().map(Vec::len), Some(1), "{history}");
    let before = inst.get("app", "web").expect("App");
    let data = ctl.kill();
    let ctl = inst.controller(&[], Some(data));
    let (_, history) = ctl.get(&format!("/api/v1/apps/{ns}.web/history")).await;
    assert_eq!(history[0]["revision"]["sha"], c1.as_str(), "{history}");
    // The restart re-checks the App; nothing changed, so its status stays as written.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = inst.get("app", "web").expect("App");
    assert_eq!(
        after["status"]["history"], before["status"]["history"],
        "{after:#}"
    );
    assert_eq!(
        after["status"]["lastApplied"],
        before["status"]["lastApplied"]
    );
    let (_, history) = ctl.get(&format!("/api/v1/apps/{ns}.web/history")).await;
    assert_eq!(
        history.as_array().map(Vec::len),
        Some(1),
        "no new sync: {history}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_restarted_in_the_middle_of_a_sync_is_ridden_out() {
    use driftless_testenv::{k8s_env, kill_component};
    // A control plane of its own: the shared one must not go away under other tests.
    let private = PrivateCluster::start();
    let (env_dir, kubeconfig) = (private.dir.clone(), private.kubeconfig.clone());
    let kubectl = |args: &[&str], stdin: Option<&str>| {
        let (ok, out, err) = kubectl_at(&kubeconfig, args, stdin);
        assert!(ok, "kubectl {args:?}: {err}");
        out
    };
    let crds = exported(&[], |kind| kind == "CustomResourceDefinition");
    kubectl(&["apply", "--server-side", "-f", "-"], Some(&crds));
    kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "crd/apps.driftless.dev",
            "--timeout=30s",
        ],
        None,
    );
    kubectl(&["create", "namespace", "apps"], None);

    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    for i in 0..40 {
        repo.write(
            &format!("many/cm-{i}.yaml"),
            &config_map(&format!("cm-{i}"), "1"),
        );
    }
    let c1 = repo.push("forty ConfigMaps");
    let path = kubeconfig.display().to_string();
    let mut ctl = Serve::controller(
        &["--watch-namespace", "apps", "--namespace", "apps"],
        &[("KUBECONFIG", path.as_str())],
        None,
    );
    kubectl(
        &["-n", "apps", "apply", "-f", "-"],
        Some(&source_and_app(
            &repo.url,
            "web",
            "many",
            "apps",
            "  wait: true",
        )),
    );
    // Once the engine has the App, the API server goes away for a few seconds.
    let start = Instant::now();
    loop {
        let (code, _) = ctl.get("/api/v1/apps/apps.web").await;
        if code == 200 {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "the App never reached the engine:\n{}",
            ctl.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill_component(&env_dir, "kube-apiserver");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = k8s_env(&env_dir, &["up"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let start = Instant::now();
    loop {
        let (ok, out, _) = kubectl_at(
            &kubeconfig,
            &[
                "-n",
                "apps",
                "get",
                "app.driftless.dev",
                "web",
                "-o",
                "json",
            ],
            None,
        );
        let web: Value = if ok {
            serde_json::from_str(&out).expect("JSON")
        } else {
            Value::Null
        };
        if ready(&web) && applied_sha(&web) == c1 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "not Ready after the restart: {web:#}\n{}",
            ctl.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let listed = kubectl(&["-n", "apps", "get", "configmaps", "-o", "name"], None);
    assert_eq!(
        listed
            .lines()
            .filter(|l| l.starts_with("configmap/cm-"))
            .count(),
        40,
        "{listed}"
    );
    assert!(ctl.running(), "the controller rode it out:\n{}", ctl.log());
}

/// Runs the driftless binary with `args`; returns (exit code, stderr).
pub fn driftless(args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(args)
        .output()
        .expect("driftless runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_waits_for_the_controller_and_uninstall_leaves_the_workloads() {
    // CRDs come and go here: a control plane of the test's own.
    let private = PrivateCluster::start();
    let kubeconfig = private.kubeconfig.clone();
    let path = kubeconfig.display().to_string();
    let kubectl = |args: &[&str]| kubectl_at(&kubeconfig, args, None);

    let (code, err) = driftless(&[
        "install",
        "--kubeconfig",
        &path,
        "--image",
        "registry.invalid/driftless:test",
        "--timeout",
        "2m",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (ok, out, _) = kubectl(&[
        "-n",
        "driftless-system",
        "get",
        "deployment",
        "driftless-controller",
        "-o",
        "json",
    ]);
    assert!(ok);
    let deployment: Value = serde_json::from_str(&out).expect("JSON");
    let available = deployment["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Available" && c["status"] == "True");
    assert!(
        available,
        "install returned before the Deployment was Available: {deployment:#}"
    );
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["image"], "registry.invalid/driftless:test");
    // Installing again changes nothing.
    let (code, err) = driftless(&[
        "install",
        "--kubeconfig",
        &path,
        "--image",
        "registry.invalid/driftless:test",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("0 objects created, 0 updated"), "{err}");

    // The pods of the simulated nodes run no process: this one stands in for it.
    assert!(kubectl(&["create", "namespace", "apps"]).0);
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    repo.write("one/cm.yaml", &config_map("one", "1"));
    repo.push("first");
    let ctl = Serve::controller(
        &["--watch-namespace", "apps", "--namespace", "apps"],
        &[("KUBECONFIG", path.as_str())],
        None,
    );
    let (ok, _, err) = kubectl_at(
        &kubeconfig,
        &["-n", "apps", "apply", "-f", "-"],
        Some(&source_and_app(
            &repo.url,
            "web",
            "one",
            "apps",
            "  prune: true",
        )),
    );
    assert!(ok, "{err}");
    let (ok, _, err) = kubectl(&[
        "-n",
        "apps",
        "wait",
        "--for=condition=Ready",
        "app.driftless.dev/web",
        "--timeout=60s",
    ]);
    assert!(ok, "{err}\n{}", ctl.log());
    drop(ctl.kill());

    let (code, err) = driftless(&["uninstall", "--kubeconfig", &path]);
    assert_eq!(code, Some(0), "{err}");
    let (ok, _, _) = kubectl(&[
        "-n",
        "driftless-system",
        "get",
        "deployment",
        "driftless-controller",
    ]);
    assert!(!ok, "the controller is gone");
    assert!(
        kubectl(&["get", "crd", "apps.driftless.dev"]).0,
        "the CRDs stay"
    );
    assert!(
        kubectl(&["-n", "apps", "get", "app.driftless.dev", "web"]).0,
        "the Apps stay"
    );
    assert!(
        kubectl(&["-n", "apps", "get", "configmap", "one"]).0,
        "the workloads stay"
    );

    let (code, err) = driftless(&["uninstall", "--kubeconfig", &path, "--crds"]);
    assert_eq!(code, Some(2), "--crds needs --yes: {err}");
    let (code, err) = driftless(&["uninstall", "--kubeconfig", &path, "--crds", "--yes"]);
    assert_eq!(code, Some(0), "{err}");
    let start = Instant::now();
    while kubectl(&["get", "crd", "apps.driftless.dev"]).0 {
        assert!(
            start.elapsed() < WAIT,
            "the App CRD stays: an App kept its finalizer"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        kubectl(&["-n", "apps", "get", "configmap", "one"]).0,
        "the workloads stay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverted_drift_is_an_event_and_a_changed_secret_reconciles_its_app() {
    let (inst, _server, repo, _) = setup("e2e-ctl-drift", &[]).await;
    let ns = inst.name().to_owned();
    repo.write(
        "subst/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: greeting}\ndata: {text: \"${greeting}\"}\n",
    );
    repo.push("a substituted ConfigMap");
    let _ctl = inst.controller(&[], None);
    let extra = "  selfHeal: true\n  substitutions: {fromSecret: [{name: vars}]}";
    let manifests = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: vars}}\nstringData: {{greeting: hello}}\n---\n{}",
        source_and_app(&repo.url, "web", "subst", &ns, extra)
    );
    inst.kubectl(&["apply", "-f", "-"], Some(&manifests));
    inst.wait("app", "web", "Ready", ready).await;
    let text = |inst: &Installed| {
        let cm = inst.kubectl(
            &[
                "get",
                "configmap",
                "greeting",
                "-o",
                "jsonpath={.data.text}",
            ],
            None,
        );
        cm.trim().to_owned()
    };
    assert_eq!(text(&inst), "hello");

    // A manual change is reverted, and the App's Events say who made it.
    inst.kubectl(
        &[
            "patch",
            "configmap",
            "greeting",
            "--field-manager=hand-edit",
            "--type=merge",
            "-p",
            r#"{"data":{"text":"changed"}}"#,
        ],
        None,
    );
    let (note, _) = inst.wait_event("web", "DriftReverted").await;
    assert!(
        note.contains("ConfigMap") && note.contains("hand-edit"),
        "{note}"
    );
    assert_eq!(text(&inst), "hello");

    // The Secret the App substitutes from changes: the App reconciles with it.
    inst.kubectl(
        &[
            "patch",
            "secret",
            "vars",
            "--type=merge",
            "-p",
            r#"{"stringData":{"greeting":"bonjour"}}"#,
        ],
        None,
    );
    let start = Instant::now();
    while text(&inst) != "bonjour" {
        assert!(
            start.elapsed() < WAIT,
            "the Secret's change was not applied"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_lease_is_taken_stops_reconciling_at_once() {
    let (inst, _server, repo, c1) = setup("e2e-ctl-deposed", &["one"]).await;
    let ns = inst.name().to_owned();
    let mut leader = inst.controller(&["--leader-elect"], None);
    inst.kubectl(
        &["apply", "-f", "-"],
        Some(&source_and_app(&repo.url, "web", "one", &ns, "")),
    );
    inst.wait("app", "web", "Ready", |w| applied_sha(w) == c1)
        .await;
    // Someone else holds the Lease now, freshly renewed for a long time.
    // MicroTime: six fractional digits, UTC.
    let now = format!(
        "{}.000000Z",
        jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S")
    );
    let patch = serde_json::json!({"spec": {
        "holderIdentity": "another-instance", "renewTime": now, "leaseDurationSeconds": 3600,
    }})
    .to_string();
    inst.kubectl(
        &[
            "patch",
            "lease",
            "driftless-controller",
            "--type=merge",
            "-p",
            &patch,
        ],
        None,
    );
    let start = Instant::now();
    while leader.running() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the deposed leader still runs:\n{}",
            leader.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "lease taken -> leader stopped in {} ms",
        start.elapsed().as_millis()
    );
    assert!(
        leader.log().contains("lost the leadership"),
        "{}",
        leader.log()
    );
}
