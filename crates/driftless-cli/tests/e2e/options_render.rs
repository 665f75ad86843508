//! App options through `driftless serve`: every renderer with its options,
//! substitution from a Secret and a ConfigMap, and the apply options
//! (prune, self-heal, force, wait, dependencies, impersonation, suspend).
//! One serve process covers them all, over two commits.
//!
//! Jsonnet Apps that ask for unbounded memory or time, and a Helm chart
//! whose templates ask for unbounded memory, fail alone, naming the bound,
//! while every other App syncs.
//! `interval` is set on an App but not checked: an App without `selfHeal`
//! does not re-create an object deleted by hand at its next interval
//! (its unchanged render is not re-applied).

use std::time::Duration;

use driftless_testenv::manifests::{GROWING_CHART, GROWING_CHART_TEMPLATE};
use driftless_testenv::shared;
use serde_json::Value;

use crate::kube::{ExtraNamespace, config_map, eventually, kubectl, kubectl_stdin};
use crate::support::{GitServer, Repo, Serve, app, applied, config};

const WAIT: Duration = Duration::from_secs(90);

const CHART: &str = "apiVersion: v2\nname: web\nversion: 0.1.0\n";
const CHART_VALUES: &str = "color: red\nsize: s\ntier: base\n";
const CHART_TEMPLATE: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
data:
  color: {{ .Values.color | quote }}
  size: {{ .Values.size | quote }}
  tier: {{ .Values.tier | quote }}
  releaseNamespace: {{ .Release.Namespace | quote }}
"#;

// `naming.libsonnet` is found through `libPaths` (relative to the source root).
const JSONNET_MAIN: &str = r"local naming = import 'naming.libsonnet';
function(owner) [{
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: naming.prefix + '-jsonnet' },
  data: { env: std.extVar('env'), owner: owner },
}]
";

const SUBSTITUTED: &str = r#"apiVersion: v1
kind: ConfigMap
metadata: {name: substituted}
data:
  inline: "${inline_var}"
  fromConfigMap: "${cm_var}"
  fromSecret: "${secret_var}"
  precedence: "${shared_var}"
"#;

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: never-ready}
spec:
  replicas: 1
  selector: {matchLabels: {app: never-ready}}
  template:
    metadata: {labels: {app: never-ready}}
    spec:
      # No node carries this label: the pod never runs, the Deployment never becomes ready.
      nodeSelector: {driftless.dev/no-such-node: \"true\"}
      containers: [{name: main, image: nginx:1.27}]
";

/// A ConfigMap holding `v`, optionally immutable.
fn cm(name: &str, v: &str, immutable: bool) -> String {
    let immutable = if immutable { "immutable: true\n" } else { "" };
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\n{immutable}data: {{v: \"{v}\"}}\n"
    )
}

fn write_first_commit(repo: &Repo) {
    repo.write("helm/web/Chart.yaml", CHART);
    repo.write("helm/web/values.yaml", CHART_VALUES);
    repo.write("helm/web/templates/cm.yaml", CHART_TEMPLATE);
    repo.write("helm/web/values-prod.yaml", "tier: prod\nsize: m\n");
    // A string doubled 33 times is 8 GiB; a fold over two billion numbers
    // takes far longer than the App's timeout.
    repo.write(
        "bomb/main.jsonnet",
        "local f(s, n) = if n == 0 then s else f(s + s, n - 1);\n[{kind: 'ConfigMap', apiVersion: 'v1', metadata: {name: 'bomb'}, data: {v: f('x', 33)}}]\n",
    );
    repo.write(
        "spin/main.jsonnet",
        "local sum = std.foldl(function(acc, i) acc + i, std.range(0, 2000000000), 0);\n[{kind: 'ConfigMap', apiVersion: 'v1', metadata: {name: 'spin'}, data: {v: std.toString(sum)}}]\n",
    );
    // 16 << 28 bytes: a string of 4 GiB, four times the default memory limit.
    repo.write("helmbomb/Chart.yaml", GROWING_CHART);
    repo.write("helmbomb/values.yaml", "doublings: 28\n");
    repo.write("helmbomb/templates/cm.yaml", GROWING_CHART_TEMPLATE);
    repo.write("jsonnet/app/app.jsonnet", JSONNET_MAIN);
    repo.write("jsonnet/lib/naming.libsonnet", "{ prefix:: 'lib' }\n");
    repo.write("plain/a.yaml", &cm("plain-a", "1", false));
    repo.write("plain/sub/b.yaml", &cm("plain-b", "1", false));
    repo.write("plain/skip-c.yaml", &cm("plain-c", "1", false));
    repo.write("plain/d.yml", &cm("plain-d", "1", false));
    repo.write(
        "kust/app/kustomization.yaml",
        "resources: [../../shared/extra.yaml]\nhelmGlobals: {chartHome: ../../helm}\n\
         helmCharts:\n- name: web\n  releaseName: kust\n  valuesInline: {color: green}\n",
    );
    repo.write("shared/extra.yaml", &cm("shared-extra", "1", false));
    repo.write("subst/cm.yaml", SUBSTITUTED);
    repo.write("strict/cm.yaml", &cm("strict", "${missing_var}", false));
    repo.write("created/cm.yaml", &cm("created", "1", false));
    repo.write("prune/keep.yaml", &cm("prune-keep", "1", false));
    repo.write("prune/gone.yaml", &cm("prune-gone", "1", false));
    repo.write("noprune/gone.yaml", &cm("noprune-gone", "1", false));
    repo.write("noprune/keep.yaml", &cm("noprune-keep", "1", false));
    repo.write("empty/README.md", "An App whose render becomes empty.\n");
    repo.write("empty/cm.yaml", &cm("empty-allowed", "1", false));
    repo.write("guarded/README.md", "An App whose render becomes empty.\n");
    repo.write("guarded/cm.yaml", &cm("empty-guarded", "1", false));
    repo.write("heal/cm.yaml", &cm("heal", "git", false));
    repo.write("poll/cm.yaml", &cm("poll", "git", false));
    repo.write("force/cm.yaml", &cm("forced", "1", true));
    repo.write("slow/deploy.yaml", DEPLOYMENT);
    repo.write("after/cm.yaml", &cm("after-slow", "1", false));
    repo.write("sa/cm.yaml", &cm("as-deployer", "1", false));
    repo.write("nosa/cm.yaml", &cm("as-nobody", "1", false));
    repo.write("suspended/cm.yaml", &cm("suspended", "1", false));
}

/// The Apps: `n(base)` names one, `ns` is the test namespace, `created` the
/// namespace driftless must create.
fn apps(n: &dyn Fn(&str) -> String, ns: &str, created: &str) -> String {
    let mut out = String::new();
    let mut add =
        |base: &str, path: &str, extra: &str| out.push_str(&app(&n(base), path, ns, extra));
    add(
        "helm",
        "helm/web",
        &format!(
            "  render:\n    kind: helm\n    helm:\n      releaseName: {}\n      namespace: charts-ns\n      \
             valuesFiles: [values-prod.yaml]\n      values: {{size: xl}}\n  wait: true\n  timeout: 30s",
            n("web")
        ),
    );
    add(
        "jsonnet",
        "jsonnet/app",
        "  render:\n    kind: jsonnet\n    jsonnet:\n      main: app.jsonnet\n      extVars: {env: prod}\n      \
         tlas: {owner: team-a}\n      libPaths: [jsonnet/lib]",
    );
    add(
        "plain",
        "plain",
        &format!(
            "  render:\n    kind: plain\n    plain:\n      recursive: true\n      include: ['*.yaml', 'sub/*.yaml']\n      \
             exclude: ['skip-*']\n  dependsOn: [{}]",
            n("jsonnet")
        ),
    );
    add(
        "kust",
        "kust/app",
        "  render:\n    kind: kustomize\n    kustomize: {enableHelm: true, loadRestrictor: none}",
    );
    out.push_str(&format!(
        "apiVersion: driftless.dev/v1alpha1
kind: App
metadata: {{name: {name}, namespace: {ns}}}
spec:
  sourceRef: {{kind: GitSource, name: platform}}
  path: subst
  render: {{kind: auto}}
  destination: {{cluster: test, namespace: {ns}}}
  substitutions:
    strict: true
    vars: {{inline_var: from-app, shared_var: inline-wins}}
    fromConfigMap: [{{name: subst-vars}}]
    fromSecret: [{{name: subst-secret}}]
---
apiVersion: driftless.dev/v1alpha1
kind: App
metadata: {{name: {created_app}}}
spec:
  sourceRef: {{name: platform}}
  path: created
  destination: {{cluster: test, namespace: {created}, createNamespace: true}}
---
",
        name = n("subst"),
        created_app = n("created"),
    ));
    let mut add =
        |base: &str, path: &str, extra: &str| out.push_str(&app(&n(base), path, ns, extra));
    add(
        "strict",
        "strict",
        "  substitutions: {strict: true}\n  retry: {limit: 2, backoff: {duration: 1s, factor: 2, maxDuration: 2s}}",
    );
    add("prune", "prune", "  prune: true");
    add("noprune", "noprune", "");
    add("empty", "empty", "  prune: true\n  allowEmptyPrune: true");
    add("guarded", "guarded", "  prune: true");
    add("heal", "heal", "  selfHeal: true");
    add("poll", "poll", "  interval: 2s");
    add("force", "force", "  force: true");
    add(
        "slow",
        "slow",
        "  wait: true\n  timeout: 3s\n  retry: {limit: 1}",
    );
    add("after", "after", &format!("  dependsOn: [{}]", n("slow")));
    add("sa", "sa", "  serviceAccountName: deployer");
    add("nosa", "nosa", "  serviceAccountName: nobody");
    add("suspended", "suspended", "  suspend: true");
    add("bomb", "bomb", "  render: {kind: jsonnet}");
    add("spin", "spin", "  render: {kind: jsonnet}\n  timeout: 3s");
    add("helmbomb", "helmbomb", "  render: {kind: helm}");
    out
}

/// A ServiceAccount `deployer` allowed to manage ConfigMaps in `ns`, and
/// the ConfigMap and Secret the substitutions read.
fn prepare_namespace(ns: &str) {
    let objects = format!(
        "apiVersion: v1
kind: ServiceAccount
metadata: {{name: deployer, namespace: {ns}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: deployer, namespace: {ns}}}
rules:
- apiGroups: ['']
  resources: [configmaps]
  verbs: [get, list, watch, create, update, patch, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: deployer, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: deployer}}
subjects: [{{kind: ServiceAccount, name: deployer, namespace: {ns}}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: subst-vars, namespace: {ns}}}
data: {{cm_var: from-configmap, shared_var: configmap}}
---
apiVersion: v1
kind: Secret
metadata: {{name: subst-secret, namespace: {ns}}}
stringData: {{secret_var: from-secret, shared_var: secret}}
"
    );
    kubectl_stdin(&["apply", "-f", "-"], Some(&objects));
}

fn data(ns: &str, name: &str) -> Value {
    config_map(ns, name).map_or(Value::Null, |cm| cm["data"].clone())
}

fn condition<'a>(app: &'a Value, kind: &str) -> Option<&'a Value> {
    app["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

fn error_contains(text: &'static str) -> impl Fn(&Value) -> bool {
    move |app| app["lastError"].as_str().is_some_and(|e| e.contains(text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_render_and_apply_option_works_under_serve() {
    let test_ns = shared()
        .namespace("e2e-opt-render")
        .await
        .expect("namespace");
    let ns = test_ns.name().to_owned();
    let created = ExtraNamespace {
        name: format!("{ns}-new"),
        kubeconfig: shared().kubeconfig().to_path_buf(),
    };
    prepare_namespace(&ns);
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    write_first_commit(&repo);
    let c1 = repo.push("first");
    let pid = std::process::id();
    let n = move |base: &str| format!("{base}-{pid}");
    let text = config(&repo.url, "1s", &apps(&n, &ns, &created.name));
    let helm = driftless_testenv::tools::helm();
    // kustomize's helmCharts run the helm on PATH.
    let path = format!(
        "{}:{}",
        helm.parent().expect("helm has a directory").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let kubeconfig = shared().kubeconfig().display().to_string();
    let serve = Serve::start(
        &text,
        &[
            ("DRIFTLESS_HELM", &helm.display().to_string()),
            ("PATH", &path),
            ("KUBECONFIG", &kubeconfig),
        ],
    );

    // Helm: inline values over the values files over the chart's,
    // release name and namespace as set; `wait` on a ConfigMap is immediate.
    let web = serve.wait_app(&n("helm"), WAIT, "helm", applied(&c1)).await;
    assert_eq!(web["health"], "Healthy", "{web}");
    let settings = data(&ns, &format!("{}-settings", n("web")));
    assert_eq!(settings["color"], "red", "chart values: {settings}");
    assert_eq!(settings["size"], "xl", "inline values: {settings}");
    assert_eq!(settings["tier"], "prod", "values file: {settings}");
    assert_eq!(settings["releaseNamespace"], "charts-ns", "{settings}");

    // Jsonnet: another main file, an ext var, a TLA.
    serve
        .wait_app(&n("jsonnet"), WAIT, "jsonnet", applied(&c1))
        .await;
    let jsonnet = data(&ns, "lib-jsonnet");
    assert_eq!(jsonnet["env"], "prod", "{jsonnet}");
    assert_eq!(jsonnet["owner"], "team-a", "{jsonnet}");

    // Plain: recursive, include and exclude globs (after its dependency).
    serve
        .wait_app(&n("plain"), WAIT, "plain", applied(&c1))
        .await;
    assert!(config_map(&ns, "plain-a").is_some());
    assert!(config_map(&ns, "plain-b").is_some(), "recursive");
    assert!(config_map(&ns, "plain-c").is_none(), "excluded");
    assert!(config_map(&ns, "plain-d").is_none(), "not included");

    // Kustomize: a file outside the kustomization root, a Helm chart.
    serve
        .wait_app(&n("kust"), WAIT, "kustomize", applied(&c1))
        .await;
    assert!(config_map(&ns, "shared-extra").is_some());
    assert_eq!(data(&ns, "kust-settings")["color"], "green");

    // Substitution: inline variables win over the ConfigMap and the Secret.
    serve
        .wait_app(&n("subst"), WAIT, "substitution", applied(&c1))
        .await;
    let subst = data(&ns, "substituted");
    assert_eq!(subst["inline"], "from-app", "{subst}");
    assert_eq!(subst["fromConfigMap"], "from-configmap", "{subst}");
    assert_eq!(subst["fromSecret"], "from-secret", "{subst}");
    assert_eq!(subst["precedence"], "inline-wins", "{subst}");

    // Strict substitution fails the render; two attempts, then Stalled.
    let strict = serve
        .wait_app(&n("strict"), WAIT, "stalled after two attempts", |a| {
            condition(a, "Stalled").is_some_and(|c| c["status"] == "True")
        })
        .await;
    assert!(
        strict["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("missing_var")),
        "{strict}"
    );
    assert_eq!(
        condition(&strict, "Stalled").expect("Stalled")["reason"],
        "RetryLimitReached"
    );
    assert!(config_map(&ns, "strict").is_none(), "nothing applied");

    serve
        .wait_app(&n("created"), WAIT, "created", applied(&c1))
        .await;
    assert!(config_map(&created.name, "created").is_some());

    // Wait with a Deployment that never becomes ready: the timeout fails
    // it, and the App that depends on it is held back.
    let slow = serve
        .wait_app(&n("slow"), WAIT, "timed out", |a| {
            a["lastError"].is_string()
        })
        .await;
    assert!(
        slow["lastApplied"].is_null() || slow["health"] != "Healthy",
        "{slow}"
    );
    let after = serve
        .wait_app(&n("after"), WAIT, "held back", |a| {
            condition(a, "Ready").is_some_and(|c| {
                c["status"] == "False" && c["message"].as_str().is_some_and(|m| m.contains("slow"))
            })
        })
        .await;
    assert!(after["lastApplied"].is_null(), "{after}");
    assert!(config_map(&ns, "after-slow").is_none());

    // Impersonation: the deployer may write ConfigMaps, nobody may not.
    serve
        .wait_app(&n("sa"), WAIT, "as deployer", applied(&c1))
        .await;
    assert!(config_map(&ns, "as-deployer").is_some());
    let nosa = serve
        .wait_app(&n("nosa"), WAIT, "forbidden", error_contains("nobody"))
        .await;
    assert!(nosa["lastApplied"].is_null(), "{nosa}");
    assert!(config_map(&ns, "as-nobody").is_none());

    let suspended = serve
        .wait_app(&n("suspended"), WAIT, "suspended", |a| {
            a["health"] == "Suspended"
        })
        .await;
    assert!(suspended["lastApplied"].is_null(), "{suspended}");
    assert!(config_map(&ns, "suspended").is_none());

    // Renders past their bounds fail alone, naming the bound; every other App
    // above synced while they failed, and the server still answers.
    let bomb = serve
        .wait_app(
            &n("bomb"),
            WAIT,
            "memory bound",
            error_contains("exceeded the memory limit of 1 GiB"),
        )
        .await;
    assert!(
        bomb["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("main.jsonnet")),
        "{bomb}"
    );
    assert_eq!(
        condition(&bomb, "Ready").map(|c| c["reason"].clone()),
        Some("RenderFailed".into()),
        "{bomb}"
    );
    let spin = serve
        .wait_app(
            &n("spin"),
            WAIT,
            "time bound",
            error_contains("exceeded the time limit of 3s"),
        )
        .await;
    assert!(spin["lastApplied"].is_null(), "{spin}");
    let helm_bomb = serve
        .wait_app(
            &n("helmbomb"),
            WAIT,
            "memory bound of helm",
            error_contains("helm template helmbomb exceeded the memory limit of 1 GiB"),
        )
        .await;
    assert!(helm_bomb["lastApplied"].is_null(), "{helm_bomb}");
    assert!(config_map(&ns, "bomb").is_none() && config_map(&ns, "spin").is_none());
    assert!(config_map(&ns, "grown").is_none());

    // Self-heal reverts a hand edit.
    for base in [
        "heal", "poll", "prune", "noprune", "empty", "guarded", "force",
    ] {
        serve.wait_app(&n(base), WAIT, base, applied(&c1)).await;
    }
    kubectl(&[
        "-n",
        &ns,
        "patch",
        "configmap",
        "heal",
        "-p",
        r#"{"data":{"v":"by-hand"}}"#,
    ]);
    eventually(WAIT, "self-heal", || data(&ns, "heal")["v"] == "git").await;
    // `interval` alone does not re-create a deleted object (see the module doc).

    // Second commit: files removed, an immutable ConfigMap changed.
    repo.remove("prune/gone.yaml");
    repo.remove("noprune/gone.yaml");
    repo.remove("empty/cm.yaml");
    repo.remove("guarded/cm.yaml");
    repo.write("force/cm.yaml", &cm("forced", "2", true));
    let c2 = repo.push("second");
    for base in ["prune", "noprune", "empty", "guarded", "force"] {
        serve.wait_app(&n(base), WAIT, base, applied(&c2)).await;
    }
    assert!(config_map(&ns, "prune-keep").is_some());
    assert!(config_map(&ns, "prune-gone").is_none(), "pruned");
    assert!(config_map(&ns, "noprune-gone").is_some(), "prune is opt-in");
    assert!(
        config_map(&ns, "empty-allowed").is_none(),
        "empty render pruned"
    );
    assert!(
        config_map(&ns, "empty-guarded").is_some(),
        "empty render prunes nothing"
    );
    assert_eq!(data(&ns, "forced")["v"], "2", "recreated by force");
}
