//! Helm charts through the pipeline, with `helm template` run directly as the oracle.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Barrier;
use std::time::Duration;

use driftless_render::{
    Error, HelmError, HelmOptions, PathError, RenderKind, RenderOptions, render,
};
use serde_json::json;

use crate::Repo;

pub use driftless_testenv::tools::helm;

const CHART: &str = "apiVersion: v2\nname: web\nversion: 1.2.3\nappVersion: \"2.0\"\n";
const VALUES: &str = "replicas: 1\nimage: nginx\nport: 80\nextraConfig: {}\n";
const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  namespace: {{ .Release.Namespace }}
  labels:
    chart: {{ .Chart.Name }}-{{ .Chart.Version }}
spec:
  replicas: {{ .Values.replicas }}
  template:
    spec:
      containers:
      - name: web
        image: "{{ .Values.image }}:{{ .Chart.AppVersion }}"
        ports:
        - containerPort: {{ .Values.port }}
"#;
const CONFIG: &str = r#"{{- range $k, $v := .Values.extraConfig }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $.Release.Name }}-{{ $k }}
data:
  value: {{ $v | quote }}
{{- end }}
"#;

/// The objects a successful helm run printed.
pub fn helm_objects(out: std::process::Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    driftless_kustomize::parse_stream(&text, Path::new("helm")).expect("parse")
}

/// Writes the test chart into the directory `rel`.
fn write_chart(repo: &Repo, rel: &str) -> PathBuf {
    repo.write(&format!("{rel}/Chart.yaml"), CHART);
    repo.write(&format!("{rel}/values.yaml"), VALUES);
    repo.write(&format!("{rel}/templates/deployment.yaml"), DEPLOYMENT);
    repo.write(&format!("{rel}/templates/config.yaml"), CONFIG);
    repo.path(rel)
}

fn chart(repo: &Repo) -> PathBuf {
    write_chart(repo, "charts/web");
    repo.write(
        "env/prod-values.yaml",
        "replicas: 3\nextraConfig: {a: one, b: two}\n",
    );
    repo.path("charts/web")
}

#[test]
fn pipeline_output_equals_helm_template() {
    let repo = Repo::new();
    let dir = chart(&repo);
    let mut opts = repo.opts();
    opts.helm = HelmOptions {
        command: Some(helm()),
        release_name: Some("shop".into()),
        namespace: Some("prod".into()),
        values_files: vec!["../../env/prod-values.yaml".into()],
        values: Some(json!({"image": "registry.local/nginx", "port": 8080})),
        ..HelmOptions::default()
    };
    assert_eq!(
        driftless_render::detect(&dir).expect("detect"),
        RenderKind::Helm
    );
    let set = render(&dir, &opts).expect("render");

    let inline = repo.write("inline.yaml", "image: registry.local/nginx\nport: 8080\n");
    let out = Command::new(helm())
        .args(["template", "shop"])
        .arg(&dir)
        .args(["--namespace", "prod", "--values"])
        .arg(repo.path("env/prod-values.yaml"))
        .arg("--values")
        .arg(inline)
        .output()
        .expect("run helm");
    let direct = helm_objects(out);
    let ours: Vec<_> = set.iter().cloned().collect();
    assert_eq!(ours, direct);
    assert_eq!(ours.len(), 3);
    assert_eq!(ours[2]["spec"]["replicas"], 3);
    assert_eq!(
        ours[2]["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.local/nginx:2.0"
    );
    assert_eq!(
        set.items()[0].origin,
        "helm template charts/web (web/templates/config.yaml)#0"
    );
}

#[test]
fn values_files_outside_the_root_are_refused() {
    let repo = Repo::new();
    let dir = chart(&repo);
    for escape in ["../../../etc/passwd", "/etc/passwd"] {
        let mut opts = repo.opts();
        opts.helm.command = Some(helm());
        opts.helm.values_files = vec![escape.into()];
        let err = render(&dir, &opts).expect_err(escape);
        assert!(
            matches!(
                err,
                Error::Helm(HelmError::Path(PathError::OutsideRoot { .. }))
            ),
            "{err}"
        );
    }
    let outside = Repo::new();
    outside.write("values.yaml", "replicas: 9\n");
    std::os::unix::fs::symlink(
        outside.path("values.yaml"),
        repo.path("charts/web/linked.yaml"),
    )
    .expect("link");
    let mut opts = repo.opts();
    opts.helm.command = Some(helm());
    let err = render(&dir, &opts).expect_err("symlink in chart");
    // The link is named as it sits in the repository.
    assert!(
        err.to_string()
            .contains("symlink charts/web/linked.yaml leads outside the repository root"),
        "{err}"
    );
}

#[test]
fn helm_failures_are_reported_with_the_chart() {
    let repo = Repo::new();
    let dir = chart(&repo);
    repo.write(
        "charts/web/templates/broken.yaml",
        "{{ .Values.missing.field }}\n",
    );
    let mut opts = repo.opts();
    opts.helm.command = Some(helm());
    let err = render(&dir, &opts).expect_err("template error");
    let msg = err.to_string();
    assert!(msg.starts_with("helm template "), "{msg}");
    assert!(msg.contains("broken.yaml"), "{msg}");

    std::fs::remove_file(repo.path("charts/web/templates/broken.yaml")).expect("rm");
    opts.helm.values = Some(json!(["not", "a", "mapping"]));
    let err = render(&dir, &opts).expect_err("inline values list");
    assert!(
        matches!(err, Error::Helm(HelmError::Values { .. })),
        "{err}"
    );

    opts.helm.values = None;
    opts.helm.command = Some(repo.path("no-such-helm"));
    let err = render(&dir, &opts).expect_err("no binary");
    assert!(matches!(err, Error::Helm(HelmError::Spawn { .. })), "{err}");
    assert!(
        err.to_string().contains("the helm binary was not found"),
        "{err}"
    );
}

#[test]
fn duplicate_objects_from_templates_name_both_templates() {
    let repo = Repo::new();
    let dir = chart(&repo);
    repo.write(
        "charts/web/templates/again.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-web\n  namespace: {{ .Release.Namespace }}\n",
    );
    let mut opts = repo.opts();
    opts.helm.command = Some(helm());
    opts.helm.release_name = Some("r".into());
    opts.helm.namespace = Some("ns".into());
    let err = render(&dir, &opts).expect_err("duplicate");
    assert_eq!(
        err.to_string(),
        "duplicate object Deployment.apps ns/r-web: defined at helm template charts/web \
         (web/templates/again.yaml)#0 and at helm template charts/web (web/templates/deployment.yaml)#0"
    );
}

/// A Helm-chart App and a kustomize App with `helmCharts:` rendering at the
/// same time (as `serve` does) must each get their own helm scratch directory:
/// when they shared one, whichever finished first deleted the other's inline
/// values file and helm homes while its helm still needed them.
#[test]
fn helm_and_kustomize_helm_charts_render_concurrently() {
    const ROUNDS: u64 = 40;
    let repo = Repo::new();
    let chart_dir = chart(&repo);
    write_chart(&repo, "kust/charts/web");
    let kust_dir = repo.write(
        "kust/kustomization.yaml",
        "helmCharts:\n- name: web\n  releaseName: kust\n  valuesInline:\n    replicas: 4\n",
    );
    let kust_dir = kust_dir.parent().expect("kustomization in a directory");
    let mut helm_opts = repo.opts();
    helm_opts.helm.command = Some(helm());
    helm_opts.helm.values = Some(json!({"replicas": 5}));
    let mut kust_opts = repo.opts();
    kust_opts.kustomize.enable_helm = true;
    kust_opts.kustomize.helm_command = Some(helm());
    // Both threads start each round together; the kustomize side starts a
    // little later each round, so one render's end sweeps across the other's
    // start, where a shared directory breaks.
    let start = Barrier::new(2);
    // Failures are collected, not raised, so neither thread leaves the other
    // waiting at the barrier.
    let check = |round: u64, what: &str, dir: &Path, opts: &RenderOptions, want: u64| {
        let set = render(dir, opts).map_err(|e| format!("{what} render, round {round}: {e}"))?;
        let found = set
            .iter()
            .find(|o| o["kind"] == "Deployment")
            .map(|o| o["spec"]["replicas"].clone());
        match found {
            Some(n) if n == want => Ok(()),
            other => Err(format!("{what} render, round {round}: replicas {other:?}")),
        }
    };
    let failures: Vec<String> = std::thread::scope(|s| {
        let helm_side = s.spawn(|| {
            (0..ROUNDS)
                .filter_map(|round| {
                    start.wait();
                    check(round, "helm", &chart_dir, &helm_opts, 5).err()
                })
                .collect::<Vec<_>>()
        });
        let kust_side = s.spawn(|| {
            (0..ROUNDS)
                .filter_map(|round| {
                    start.wait();
                    std::thread::sleep(Duration::from_millis(round % 20 * 4));
                    check(round, "kustomize", kust_dir, &kust_opts, 4).err()
                })
                .collect::<Vec<_>>()
        });
        [helm_side, kust_side]
            .into_iter()
            .flat_map(|side| side.join().expect("render threads do not panic"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} failures: {failures:#?}",
        failures.len()
    );
}

#[test]
fn hook_templates_are_rendered_with_their_annotations() {
    let repo = Repo::new();
    let dir = write_chart(&repo, "charts/web");
    repo.write(
        "charts/web/templates/migrate.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ .Release.Name }}-migrate\n  \
         annotations:\n    helm.sh/hook: pre-install,pre-upgrade\n    helm.sh/hook-weight: \"-5\"\n    \
         helm.sh/hook-delete-policy: hook-succeeded\nspec:\n  template:\n    spec:\n      \
         restartPolicy: Never\n      containers: [{name: m, image: busybox}]\n",
    );
    let mut opts = repo.opts();
    opts.helm = HelmOptions {
        command: Some(helm()),
        release_name: Some("shop".into()),
        ..HelmOptions::default()
    };
    let set = render(&dir, &opts).expect("render");
    let job = set
        .iter()
        .find(|o| o["kind"] == "Job")
        .expect("helm template keeps hooks");
    assert_eq!(job["metadata"]["name"], "shop-migrate");
    assert_eq!(
        job["metadata"]["annotations"],
        json!({"helm.sh/hook": "pre-install,pre-upgrade", "helm.sh/hook-weight": "-5",
               "helm.sh/hook-delete-policy": "hook-succeeded"})
    );
}
