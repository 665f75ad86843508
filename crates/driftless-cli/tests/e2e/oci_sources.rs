//! OCISources: an App whose files are an artifact in an OCI registry (the
//! real distribution `registry`, with htpasswd auth), pushed by `driftless
//! artifact push` as CI would publish rendered manifests. Under `driftless
//! serve`: the highest tag a range allows is applied with its digest as the
//! App's revision; a new tag is applied without any commit; a tag outside the
//! range is ignored; a rollback pins an earlier digest (by tag or digest) and
//! `resume` follows the range again; a registry that goes down keeps the last
//! artifact in use while the source says why; credentials never show. Under
//! the controller: OCISource custom resources with a `Ready` condition.

use std::path::Path;
use std::time::Duration;

use driftless_testenv::registry::Registry;
use driftless_testenv::shared;
use serde_json::Value;

use crate::controller::{Installed, ready};
use crate::kube::{self, kubectl};
use crate::support::{Serve, cli, ok};

const WAIT: Duration = Duration::from_secs(60);
const OPS: &str = "e2e-oci-sources-ops-7c2e";
const USER: &str = "publisher";
const PASSWORD: &str = "oci-source-pass-51f";

/// Pushes `deploy/cm.yaml` (a ConfigMap `name` whose `version` is `tag`)
/// as `oci://host/apps/web:tag`; returns the manifest digest.
fn push(host: &str, tag: &str, name: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let deploy = dir.path().join("deploy");
    std::fs::create_dir_all(&deploy).expect("test step");
    std::fs::write(
        deploy.join("cm.yaml"),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  version: \"{tag}\"\n"
        ),
    )
    .expect("test step");
    push_dir(host, tag, dir.path())
}

fn push_dir(host: &str, tag: &str, dir: &Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args([
            "artifact",
            "push",
            &format!("oci://{host}/apps/web:{tag}"),
            "--path",
            dir.to_str().expect("utf-8 path"),
            "--annotate",
            &format!("revision=main@sha1:{}", "c".repeat(40)),
            "--insecure",
            "--username",
            USER,
            "--password-env",
            "E2E_REGISTRY_PASSWORD",
        ])
        .env("E2E_REGISTRY_PASSWORD", PASSWORD)
        .output()
        .expect("run driftless");
    ok(&out).trim().to_owned()
}

/// The `version` the ConfigMap `name` in `ns` holds.
fn version(ns: &str, name: &str) -> Value {
    kube::config_map(ns, name).map_or(Value::Null, |cm| cm["data"]["version"].clone())
}

/// Whether the App has applied the artifact `digest`.
fn applied(digest: &str) -> impl Fn(&Value) -> bool + '_ {
    move |app| app["lastApplied"]["sha"] == digest && app["sync"] == "Synced"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_follows_an_artifact_version_range_and_rolls_back_to_a_digest() {
    let ns = shared().namespace("e2e-ocisrc").await.expect("namespace");
    let ns = ns.name();
    let mut registry = Registry::with_basic_auth(USER, PASSWORD);
    let host = registry.host();
    let cm = format!("web-{}", std::process::id());
    push(&host, "1.0.0", &cm);
    let second = push(&host, "1.1.0", &cm);
    kubectl(&[
        "-n",
        ns,
        "create",
        "secret",
        "generic",
        "registry-auth",
        &format!("--from-literal=username={USER}"),
        &format!("--from-literal=password={PASSWORD}"),
    ]);
    let kubeconfig = shared().kubeconfig().display().to_string();
    let app = format!("web-{}", std::process::id());
    let locked = format!("locked-{}", std::process::id());
    let text = format!(
        "apiVersion: driftless.dev/v1alpha1
kind: Cluster
metadata: {{name: test}}
spec: {{kubeconfig: {{path: {kubeconfig}}}}}
---
apiVersion: driftless.dev/v1alpha1
kind: OCISource
metadata: {{name: manifests, namespace: {ns}}}
spec:
  url: oci://{host}/apps/web
  ref: {{semver: \">=1.0.0 <2.0.0\"}}
  interval: 1s
  insecure: true
  secretRef: {{name: registry-auth}}
---
apiVersion: driftless.dev/v1alpha1
kind: OCISource
metadata: {{name: no-credentials, namespace: {ns}}}
spec: {{url: \"oci://{host}/apps/web\", ref: {{tag: 1.0.0}}, interval: 1s, insecure: true}}
---
apiVersion: driftless.dev/v1alpha1
kind: App
metadata: {{name: {app}, namespace: {ns}}}
spec:
  sourceRef: {{kind: OCISource, name: manifests}}
  path: deploy
  destination: {{cluster: test, namespace: {ns}}}
  interval: 1s
  selfHeal: true
---
apiVersion: driftless.dev/v1alpha1
kind: App
metadata: {{name: {locked}, namespace: {ns}}}
spec:
  sourceRef: {{kind: OCISource, name: no-credentials}}
  path: deploy
  destination: {{cluster: test, namespace: {ns}}}
---
apiVersion: driftless.dev/v1alpha1
kind: Server
metadata: {{name: driftless}}
spec:
  api:
    tokens:
      - {{name: ops, role: admin, secret: {{env: E2E_OPS}}}}
"
    );
    let env = [("E2E_OPS", OPS), ("KUBECONFIG", kubeconfig.as_str())];
    let serve = Serve::start(&text, &env);

    // The highest tag in the range, its digest the App's revision.
    let status = serve
        .wait_app(&app, WAIT, "1.1.0 applied", applied(&second))
        .await;
    assert_eq!(version(ns, &cm), "1.1.0");
    assert_eq!(status["lastApplied"]["refLabel"], "1.1.0", "{status}");

    // Without the Secret the registry refuses, the App says why and applies nothing.
    let refused = serve
        .wait_app(&locked, WAIT, "refused by the registry", |a| {
            a["lastError"]
                .as_str()
                .is_some_and(|e| e.contains("OCISource no-credentials"))
        })
        .await;
    assert!(refused["lastApplied"].is_null(), "{refused}");

    let (code, sources) = serve.get("/api/v1/ocisources").await;
    assert_eq!(code, 200, "{sources}");
    let manifests = sources
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "manifests"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(manifests["artifact"]["revision"]["sha"], second.as_str());
    assert_eq!(manifests["artifact"]["revision"]["refLabel"], "1.1.0");
    assert_eq!(
        manifests["artifact"]["subject"],
        format!("main@sha1:{}", "c".repeat(40)),
        "{sources}"
    );
    assert_eq!(manifests["conditions"][0]["status"], "True", "{sources}");

    // A new tag in range: applied with no commit anywhere.
    let third = push(&host, "1.2.0", &cm);
    serve
        .wait_app(&app, WAIT, "1.2.0 applied", applied(&third))
        .await;
    assert_eq!(version(ns, &cm), "1.2.0");
    let (_, history) = serve.get(&format!("/api/v1/apps/{app}/history")).await;
    let digests: Vec<&str> = history
        .as_array()
        .expect("history list")
        .iter()
        .filter_map(|r| r["revision"]["sha"].as_str())
        .collect();
    assert!(
        digests.contains(&second.as_str()) && digests.contains(&third.as_str()),
        "{history}"
    );

    // A tag outside the range is not taken.
    push(&host, "2.0.0", &cm);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(version(ns, &cm), "1.2.0");

    // Rollback by tag pins the digest it was applied as; resume follows the range.
    ok(&cli(
        &serve,
        Some(OPS),
        &["rollback", &app, "--to", "1.1.0"],
    ));
    // Pinned while the source is at 1.2.0: applied, and out of sync with the source.
    let pinned_at = |digest: &str| {
        let digest = digest.to_owned();
        move |app: &Value| app["lastApplied"]["sha"] == digest.as_str() && app["pinned"].is_object()
    };
    let status = serve
        .wait_app(&app, WAIT, "rolled back to 1.1.0", pinned_at(&second))
        .await;
    assert_eq!(status["pinned"]["sha"], second.as_str(), "{status}");
    assert!(
        status.to_string().contains("while the OCISource is at"),
        "{status}"
    );
    assert_eq!(version(ns, &cm), "1.1.0");
    let shown = ok(&cli(&serve, None, &["history", &app]));
    let short = &second["sha256:".len().."sha256:".len() + 7];
    assert!(shown.contains(short), "{shown}");
    ok(&cli(&serve, Some(OPS), &["resume", &app]));
    serve
        .wait_app(&app, WAIT, "back on 1.2.0", applied(&third))
        .await;
    // And by a digest prefix.
    let prefix = &second[..20];
    ok(&cli(&serve, Some(OPS), &["rollback", &app, "--to", prefix]));
    serve
        .wait_app(&app, WAIT, "rolled back by digest", pinned_at(&second))
        .await;
    ok(&cli(&serve, Some(OPS), &["resume", &app]));
    serve
        .wait_app(&app, WAIT, "back on 1.2.0 again", applied(&third))
        .await;

    // The registry goes down: the artifact already pulled keeps serving.
    registry.stop();
    let start = std::time::Instant::now();
    loop {
        let (_, sources) = serve.get("/api/v1/ocisources").await;
        let down = sources.as_array().is_some_and(|s| {
            s.iter()
                .any(|s| s["name"] == "manifests" && s["conditions"][0]["status"] == "False")
        });
        if down {
            break;
        }
        assert!(start.elapsed() < WAIT, "no failed poll: {sources}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    kubectl(&["-n", ns, "delete", "configmap", &cm]);
    let start = std::time::Instant::now();
    while version(ns, &cm) != "1.2.0" {
        assert!(
            start.elapsed() < WAIT,
            "not restored from the artifact in the cache:\n{}",
            serve.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, sources) = serve.get("/api/v1/ocisources").await;
    let log = serve.log();
    for shown in [sources.to_string(), log] {
        assert!(!shown.contains(PASSWORD), "the password shows: {shown}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_controller_oci_sources_are_custom_resources_with_a_ready_condition() {
    let inst = Installed::new("e2e-ctl-ocisrc").await;
    let ns = inst.name().to_owned();
    let registry = Registry::with_basic_auth(USER, PASSWORD);
    let host = registry.host();
    let first = push(&host, "v1", "web");
    inst.kubectl(
        &[
            "create",
            "secret",
            "generic",
            "registry-auth",
            &format!("--from-literal=username={USER}"),
            &format!("--from-literal=password={PASSWORD}"),
        ],
        None,
    );
    let objects = format!(
        "apiVersion: driftless.dev/v1alpha1
kind: OCISource
metadata: {{name: manifests}}
spec:
  url: oci://{host}/apps/web
  ref: {{tag: v1}}
  interval: 1s
  insecure: true
  secretRef: {{name: registry-auth}}
---
apiVersion: driftless.dev/v1alpha1
kind: App
metadata: {{name: web}}
spec:
  sourceRef: {{kind: OCISource, name: manifests}}
  path: deploy
  destination: {{namespace: {ns}}}
  interval: 1s
"
    );
    let kubeconfig = inst.kubeconfig.display().to_string();
    let _ctl = Serve::controller(
        &["--watch-namespace", &ns, "--namespace", &ns],
        &[("KUBECONFIG", kubeconfig.as_str())],
        None,
    );
    inst.kubectl(&["apply", "-f", "-"], Some(&objects));
    let at = |digest: String| move |app: &Value| app["status"]["lastApplied"]["sha"] == digest;
    inst.wait("app", "web", "artifact v1", at(first.clone()))
        .await;
    assert_eq!(version(&ns, "web"), "v1");
    let source = inst.wait("ocisource", "manifests", "Ready", ready).await;
    assert_eq!(
        source["status"]["artifact"]["revision"]["sha"],
        first.as_str(),
        "{source}"
    );
    // The tag moves to new content: the new digest is applied.
    let moved = push(&host, "v1", "web-v2-marker");
    assert_ne!(moved, first);
    inst.wait("app", "web", "moved tag", at(moved)).await;
    assert_eq!(version(&ns, "web-v2-marker"), "v1");
}
