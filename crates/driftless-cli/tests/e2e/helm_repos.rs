//! Charts from a HelmRepository under `driftless serve`: a repository with
//! basic auth whose files the real `helm package` and `helm repo index`
//! wrote; a chart in Git whose dependency needs the repository's credentials
//! (lent to the Apps of the repository's namespace only); an App rendering the highest version its range allows with values
//! from Git, a ConfigMap and inline values; a new version in the repository
//! synced without a commit, recorded as the App's revision; a version outside
//! the range ignored; a rollback to an earlier chart version; a repository
//! that goes down keeping the last good chart in use; and a chart from an
//! OCI registry (the real distribution `registry`, charts pushed by `helm push`);
//! the same kinds as custom resources under the controller.

use std::time::Duration;

use driftless_testenv::chart_repo::{ChartRepo, write_chart};
use driftless_testenv::helm_cli::Helm;
use driftless_testenv::registry::Registry;
use driftless_testenv::shared;
use serde_json::Value;

use crate::controller::{Installed, ready, source_and_app};
use crate::kube::{self, kubectl};
use crate::support::{GitServer, Repo, Serve, cli, config, ok};

const WAIT: Duration = Duration::from_secs(60);
const OPS: &str = "e2e-helm-repos-ops-4b1d";

/// Whether the App has applied version `version` of its chart.
fn chart_applied(version: &str) -> impl Fn(&Value) -> bool + '_ {
    move |app| app["lastApplied"]["chart"]["version"] == version && app["sync"] == "Synced"
}

/// The data of the chart's ConfigMap `name` in `ns`.
fn rendered(ns: &str, name: &str) -> Value {
    kube::config_map(ns, name).map_or(Value::Null, |cm| cm["data"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_follows_a_chart_version_range_of_a_helm_repository_and_rolls_back_to_a_version() {
    let ns = shared().namespace("e2e-helmrepo").await.expect("namespace");
    let ns = ns.name();
    let charts = ChartRepo::with_basic_auth("reader", "chart-pass-6d2");
    let work = tempfile::tempdir().expect("temp dir");
    let publish = |version: &str| {
        let dir = work.path().join(version);
        charts.publish(&write_chart(&dir, "web", version, ""));
    };
    publish("1.0.0");
    publish("1.1.0");
    kubectl(&[
        "-n",
        ns,
        "create",
        "secret",
        "generic",
        "charts-auth",
        "--from-literal=username=reader",
        "--from-literal=password=chart-pass-6d2",
    ]);
    kubectl(&[
        "-n",
        ns,
        "create",
        "configmap",
        "web-values",
        "--from-literal=values.yaml=replicas: 3\n",
    ]);
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    repo.write("values/web.yaml", "greeting: from-git\nreplicas: 2\n");
    // A chart in Git whose dependency is in the repository that needs auth.
    let deps = format!(
        "- name: web\n  version: \"~1.0\"\n  repository: {}\n",
        charts.url
    );
    write_chart(repo.work.path(), "shop", "0.1.0", &deps);
    repo.push("values and a chart with a dependency");
    let app = format!("web-{}", std::process::id());
    let shop = format!("shop-{}", std::process::id());
    let outsider = format!("outsider-{}", std::process::id());
    let rest = format!(
        "apiVersion: driftless.dev/v1alpha1
kind: HelmRepository
metadata: {{name: charts, namespace: {ns}}}
spec: {{url: \"{url}\", interval: 1s, secretRef: {{name: charts-auth}}}}
---
apiVersion: driftless.dev/v1alpha1
kind: App
metadata: {{name: {app}, namespace: {ns}}}
spec:
  sourceRef: {{name: platform}}
  path: values
  destination: {{cluster: test, namespace: {ns}}}
  interval: 1s
  selfHeal: true
  render:
    helm:
      chart: {{repository: charts, name: web, version: \">=1.0.0 <2.0.0\"}}
      valuesFiles: [web.yaml]
      valuesFrom: [{{kind: ConfigMap, name: web-values}}]
      values: {{extra: inline}}
---
apiVersion: driftless.dev/v1alpha1
kind: App
metadata: {{name: {shop}, namespace: {ns}}}
spec:
  sourceRef: {{name: platform}}
  path: shop
  destination: {{cluster: test, namespace: {ns}}}
---
apiVersion: driftless.dev/v1alpha1
kind: App
metadata: {{name: {outsider}}}
spec:
  sourceRef: {{name: platform}}
  path: shop
  destination: {{cluster: test, namespace: {ns}}}
  render: {{helm: {{releaseName: outsider}}}}
---
apiVersion: driftless.dev/v1alpha1
kind: Server
metadata: {{name: driftless}}
spec:
  api:
    tokens:
      - {{name: ops, role: admin, secret: {{env: E2E_OPS}}}}
---
",
        url = charts.url
    );
    let text = config(&repo.url, "1s", &rest);
    let helm = driftless_testenv::tools::helm().display().to_string();
    // The repository's Secret is read from the default cluster, as a GitSource's is.
    let kubeconfig = shared().kubeconfig().display().to_string();
    let env = [
        ("E2E_OPS", OPS),
        ("DRIFTLESS_HELM", helm.as_str()),
        ("KUBECONFIG", kubeconfig.as_str()),
    ];
    let serve = Serve::start(&text, &env);

    // The highest version in the range, values in Flux's order: the file
    // from Git, then the ConfigMap over it.
    let status = serve
        .wait_app(&app, WAIT, "chart 1.1.0 applied", chart_applied("1.1.0"))
        .await;
    let cm = format!("{app}-web");
    let data = rendered(ns, &cm);
    assert_eq!(data["version"], "1.1.0", "{data}");
    assert_eq!(data["greeting"], "from-git", "{data}");
    assert_eq!(data["replicas"], "3", "{data}");
    let chart = &status["lastApplied"]["chart"];
    assert_eq!(chart["repository"], "charts", "{status}");
    assert!(
        chart["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{status}"
    );

    // The dependency came with the credentials of the namespace's
    // HelmRepository; an App of another namespace gets none of them.
    serve
        .wait_app(&shop, WAIT, "shop applied", |a| a["sync"] == "Synced")
        .await;
    // `~1.0` is 1.0.x in Helm's terms.
    assert_eq!(rendered(ns, &format!("{shop}-web"))["version"], "1.0.0");
    let refused = serve
        .wait_app(&outsider, WAIT, "refused without credentials", |a| {
            a["lastError"].as_str().is_some_and(|e| e.contains("401"))
        })
        .await;
    assert!(refused["lastApplied"].is_null(), "{refused}");

    // A new version in range: synced with no commit, recorded as the revision.
    publish("1.2.0");
    serve
        .wait_app(&app, WAIT, "chart 1.2.0 applied", chart_applied("1.2.0"))
        .await;
    assert_eq!(rendered(ns, &cm)["version"], "1.2.0");
    let (code, history) = serve.get(&format!("/api/v1/apps/{app}/history")).await;
    assert_eq!(code, 200, "{history}");
    let versions: Vec<&str> = history
        .as_array()
        .expect("history list")
        .iter()
        .filter_map(|r| r["revision"]["chart"]["version"].as_str())
        .collect();
    assert!(
        versions.contains(&"1.2.0") && versions.contains(&"1.1.0"),
        "{history}"
    );
    let (_, repos) = serve.get("/api/v1/helmrepositories").await;
    assert_eq!(repos[0]["name"], "charts", "{repos}");
    assert_eq!(repos[0]["charts"], 1, "{repos}");
    assert!(repos[0]["lastError"].is_null(), "{repos}");
    assert!(
        !repos.to_string().contains("chart-pass-6d2"),
        "the password shows: {repos}"
    );

    // A version outside the range is not taken.
    publish("2.0.0");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(rendered(ns, &cm)["version"], "1.2.0");

    // A rollback to a chart version pins it.
    ok(&cli(
        &serve,
        Some(OPS),
        &["rollback", &app, "--to", "1.1.0"],
    ));
    let status = serve
        .wait_app(&app, WAIT, "rolled back to 1.1.0", chart_applied("1.1.0"))
        .await;
    assert_eq!(status["pinned"]["chart"]["version"], "1.1.0", "{status}");
    assert_eq!(rendered(ns, &cm)["version"], "1.1.0");
    let shown = ok(&cli(&serve, None, &["history", &app]));
    assert!(shown.contains("web@1.1.0"), "{shown}");
    ok(&cli(&serve, Some(OPS), &["resume", &app]));
    serve
        .wait_app(&app, WAIT, "back on 1.2.0", chart_applied("1.2.0"))
        .await;

    // The repository goes down: the chart in the cache keeps rendering.
    drop(charts);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, repos) = serve.get("/api/v1/helmrepositories").await;
    assert!(
        repos[0]["lastError"].is_string(),
        "a poll of a stopped repository fails: {repos}"
    );
    kubectl(&["-n", ns, "delete", "configmap", &cm]);
    let start = std::time::Instant::now();
    while rendered(ns, &cm)["version"] != "1.2.0" {
        assert!(
            start.elapsed() < WAIT,
            "not restored from the cached chart:\n{}",
            serve.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !serve.log().contains("chart-pass-6d2"),
        "the password is in the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_takes_its_chart_from_an_oci_registry_and_follows_a_new_tag() {
    let ns = shared().namespace("e2e-helmoci").await.expect("namespace");
    let ns = ns.name();
    let registry = Registry::start();
    let host = registry.host();
    let pusher = Helm::new();
    let work = tempfile::tempdir().expect("temp dir");
    pusher.push(&host, "api", "0.3.0", work.path());
    pusher.push(&host, "api", "0.4.0", work.path());
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    repo.write("values/api.yaml", "greeting: from-oci\n");
    repo.push("values");
    let app = format!("api-{}", std::process::id());
    let rest = format!(
        "apiVersion: driftless.dev/v1alpha1
kind: HelmRepository
metadata: {{name: registry}}
spec: {{url: \"oci://{host}/charts\", interval: 1s}}
---
apiVersion: driftless.dev/v1alpha1
kind: App
metadata: {{name: {app}}}
spec:
  sourceRef: {{name: platform}}
  path: values
  destination: {{cluster: test, namespace: {ns}}}
  interval: 1s
  render:
    helm:
      chart: {{repository: registry, name: api, version: \"~0\"}}
      valuesFiles: [api.yaml]
---
"
    );
    let text = config(&repo.url, "1s", &rest);
    let helm = driftless_testenv::tools::helm().display().to_string();
    let serve = Serve::start(&text, &[("DRIFTLESS_HELM", helm.as_str())]);
    let status = serve
        .wait_app(&app, WAIT, "chart 0.4.0 applied", chart_applied("0.4.0"))
        .await;
    let cm = format!("{app}-api");
    let data = rendered(ns, &cm);
    assert_eq!(data["version"], "0.4.0", "{data}");
    assert_eq!(data["greeting"], "from-oci", "{data}");
    assert_eq!(status["lastApplied"]["chart"]["repository"], "registry");

    // A new tag in range is found by the next poll of the tags.
    pusher.push(&host, "api", "0.5.1", work.path());
    serve
        .wait_app(&app, WAIT, "chart 0.5.1 applied", chart_applied("0.5.1"))
        .await;
    assert_eq!(rendered(ns, &cm)["version"], "0.5.1");
    let (_, repos) = serve.get("/api/v1/helmrepositories").await;
    assert!(repos[0]["lastError"].is_null(), "{repos}");
    assert_eq!(repos[0]["conditions"][0]["status"], "True", "{repos}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_controller_helm_repositories_are_custom_resources_with_a_ready_condition() {
    let inst = Installed::new("e2e-ctl-helmrepo").await;
    let ns = inst.name().to_owned();
    let charts = ChartRepo::with_basic_auth("reader", "ctl-chart-pass-31");
    let work = tempfile::tempdir().expect("temp dir");
    let publish = |version: &str| {
        let dir = work.path().join(version);
        charts.publish(&write_chart(&dir, "web", version, ""));
    };
    publish("1.0.0");
    inst.kubectl(
        &[
            "create",
            "secret",
            "generic",
            "charts-auth",
            "--from-literal=username=reader",
            "--from-literal=password=ctl-chart-pass-31",
        ],
        None,
    );
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    repo.write("values/web.yaml", "greeting: from-the-controller\n");
    repo.push("values");
    let objects = format!(
        "apiVersion: driftless.dev/v1alpha1
kind: HelmRepository
metadata: {{name: charts}}
spec: {{url: \"{url}\", interval: 1s, secretRef: {{name: charts-auth}}}}
---
{}",
        source_and_app(
            &repo.url,
            "web",
            "values",
            &ns,
            "  interval: 1s
  render:
    helm:
      chart: {repository: charts, name: web, version: '>=1.0.0'}
      valuesFiles: [web.yaml]"
        ),
        url = charts.url
    );
    let helm = driftless_testenv::tools::helm().display().to_string();
    let kubeconfig = inst.kubeconfig.display().to_string();
    let _ctl = Serve::controller(
        &["--watch-namespace", &ns, "--namespace", &ns],
        &[
            ("KUBECONFIG", kubeconfig.as_str()),
            ("DRIFTLESS_HELM", helm.as_str()),
        ],
        None,
    );
    inst.kubectl(&["apply", "-f", "-"], Some(&objects));
    let version =
        |v: &'static str| move |app: &Value| app["status"]["lastApplied"]["chart"]["version"] == v;
    inst.wait("app", "web", "chart 1.0.0", version("1.0.0"))
        .await;
    assert_eq!(rendered(&ns, "web-web")["greeting"], "from-the-controller");
    let repository = inst.wait("helmrepository", "charts", "Ready", ready).await;
    assert_eq!(repository["status"]["charts"], 1, "{repository}");
    publish("1.1.0");
    inst.wait("app", "web", "chart 1.1.0", version("1.1.0"))
        .await;
    assert_eq!(rendered(&ns, "web-web")["version"], "1.1.0");
}
