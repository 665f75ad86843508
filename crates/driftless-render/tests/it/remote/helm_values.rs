//! `helmCharts` values by URL: kustomize v5.5.0 GETs `valuesFile` like any
//! file it loads, and hands `additionalValuesFiles` to helm as paths below
//! the kustomization (so a URL there fails). Compared with kustomize
//! reading the same loopback server, with the same helm.

use std::process::Command;

use driftless_render::render_with_reads;

use super::file_server::FileServer;
use super::remote_opts;
use crate::Repo;

const CHART: &str = "apiVersion: v2\nname: demo\nversion: 0.1.0\n";
const TEMPLATE: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-demo\n\
data:\n  greeting: {{ .Values.greeting | quote }}\n  replicas: {{ .Values.replicas | quote }}\n  \
extra: {{ .Values.extra | default \"none\" | quote }}\n";

fn app() -> Repo {
    let app = Repo::new();
    app.write("app/charts/demo/Chart.yaml", CHART);
    app.write(
        "app/charts/demo/values.yaml",
        "replicas: 1\ngreeting: hello\n",
    );
    app.write("app/charts/demo/templates/cm.yaml", TEMPLATE);
    app
}

/// kustomize's output and error text for `app/`, with helm enabled.
fn kustomize(app: &Repo) -> (bool, String, String) {
    let helm = driftless_testenv::tools::helm();
    let out = Command::new(driftless_testenv::tools::kustomize())
        .args(["build", "--enable-helm", "--helm-command"])
        .arg(&helm)
        .arg(app.path("app"))
        .output()
        .expect("kustomize runs");
    (
        out.status.success(),
        String::from_utf8(out.stdout).expect("utf-8"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_values_file_by_url_is_fetched_and_matches_kustomize() {
    let server = FileServer::start(vec![(
        "/values.yaml".into(),
        "greeting: from-url\nreplicas: 5\n".into(),
    )]);
    let app = app();
    let url = format!("{}/values.yaml", server.url);
    let cache = tempfile::tempdir().expect("temp dir");
    let mut opts = remote_opts(&app, cache.path());
    opts.kustomize.enable_helm = true;
    opts.kustomize.helm_command = Some(driftless_testenv::tools::helm());
    for inline in ["", "  valuesInline:\n    extra: inline\n"] {
        app.write(
            "app/kustomization.yaml",
            &format!("helmCharts:\n- name: demo\n  releaseName: r\n  valuesFile: {url}\n{inline}"),
        );
        let (set, reads) = render_with_reads(&app.path("app"), &opts).expect("renders");
        let yaml = set.to_yaml().expect("yaml");
        assert!(yaml.contains("greeting: from-url"), "{yaml}");
        let (ok, expected, err) = kustomize(&app);
        assert!(ok, "{err}");
        assert_eq!(yaml, expected);
        let [remote] = reads.remotes() else {
            panic!("one remote: {:?}", reads.remotes());
        };
        assert_eq!(remote.url, url);
    }

    // A missing file fails naming the kustomization, the field and the URL.
    let missing = format!("{}/missing.yaml", server.url);
    app.write(
        "app/kustomization.yaml",
        &format!("helmCharts:\n- name: demo\n  valuesFile: {missing}\n"),
    );
    assert!(kustomize(&app).2.contains("404"), "kustomize fails too");
    let text = render_with_reads(&app.path("app"), &opts)
        .expect_err("404")
        .to_string();
    assert!(
        text.contains(&format!(
            "app/kustomization.yaml: helmCharts valuesFile: remote file '{missing}': HTTP status code 404"
        )),
        "{text}"
    );
}

#[test]
fn additional_values_files_by_url_fail_as_in_kustomize() {
    let server = FileServer::start(vec![("/more.yaml".into(), "extra: more\n".into())]);
    let app = app();
    let url = format!("{}/more.yaml", server.url);
    app.write(
        "app/kustomization.yaml",
        &format!("helmCharts:\n- name: demo\n  additionalValuesFiles:\n  - {url}\n"),
    );
    let (ok, _, err) = kustomize(&app);
    assert!(!ok && err.contains("no such file or directory"), "{err}");
    let cache = tempfile::tempdir().expect("temp dir");
    let mut opts = remote_opts(&app, cache.path());
    opts.kustomize.enable_helm = true;
    opts.kustomize.helm_command = Some(driftless_testenv::tools::helm());
    let text = render_with_reads(&app.path("app"), &opts)
        .expect_err("refused")
        .to_string();
    assert!(
        text.contains(&format!(
            "app/kustomization.yaml: helmCharts additionalValuesFiles: '{url}': only local files"
        )),
        "{text}"
    );
}
