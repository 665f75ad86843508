//! helm within the render bounds: a chart whose templates allocate past the
//! memory limit fails naming the limit, as a Helm-chart App and through
//! kustomize's `helmCharts:`; a chart that computes past the deadline is
//! stopped there; the same charts with modest values still render.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use driftless_render::{Error, HelmError, LimitError, RenderOptions, RenderWorker, render};
use serde_json::json;

use driftless_testenv::manifests::{GROWING_CHART as CHART, GROWING_CHART_TEMPLATE as TEMPLATE};

use crate::Repo;
use crate::helm::helm;

/// Nested loops that take minutes and little memory.
const SPIN: &str = r#"{{- $n := 0 }}
{{- range until 30000 }}{{ range until 30000 }}{{ $n = add1 $n }}{{ end }}{{ end }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: spun
data:
  n: {{ $n | quote }}
"#;

fn worker() -> RenderWorker {
    RenderWorker {
        program: PathBuf::from(env!("CARGO_BIN_EXE_driftless-render-worker")),
        args: Vec::new(),
    }
}

/// Options with helm started through the worker, 256 MiB and `timeout`.
fn bounded(repo: &Repo, timeout: Duration) -> RenderOptions {
    let mut opts = repo.opts();
    opts.worker = Some(worker());
    opts.limits.max_memory = 256 << 20;
    opts.limits.timeout = timeout;
    opts.helm.command = Some(helm());
    opts.kustomize.enable_helm = true;
    opts.kustomize.helm_command = Some(helm());
    opts
}

/// Writes the chart at `rel` with `template` and `doublings` as its default.
fn write_chart(repo: &Repo, rel: &str, template: &str, doublings: u32) -> PathBuf {
    repo.write(&format!("{rel}/Chart.yaml"), CHART);
    repo.write(
        &format!("{rel}/values.yaml"),
        &format!("doublings: {doublings}\n"),
    );
    repo.write(&format!("{rel}/templates/cm.yaml"), template);
    repo.path(rel)
}

fn length(set: &driftless_render::ObjectSet) -> String {
    set.iter()
        .find(|o| o["metadata"]["name"] == "grown")
        .map(|o| o["data"]["length"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

#[test]
fn a_chart_allocating_past_the_memory_limit_fails_and_a_modest_one_renders() {
    let repo = Repo::new();
    let chart = write_chart(&repo, "charts/grow", TEMPLATE, 4);
    let mut opts = bounded(&repo, Duration::from_secs(60));
    // 16 << 26 bytes: a string of 1 GiB, four times the limit.
    opts.helm.values = Some(json!({"doublings": 26}));
    let start = Instant::now();
    let err = render(&chart, &opts).expect_err("over the memory limit");
    let elapsed = start.elapsed();
    assert!(
        matches!(
            err,
            Error::Helm(HelmError::Limit(LimitError::Memory { limit, .. })) if limit == 256 << 20
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "helm template charts/grow exceeded the memory limit of 256 MiB"
    );
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");

    opts.helm.values = Some(json!({"doublings": 20}));
    let set = render(&chart, &opts).expect("16 MiB fits");
    assert_eq!(length(&set), (16u64 << 20).to_string());
}

#[test]
fn kustomize_helm_charts_allocating_past_the_memory_limit_fail_naming_it() {
    let repo = Repo::new();
    write_chart(&repo, "kust/charts/grow", TEMPLATE, 4);
    let kustomization = |doublings: u32| {
        format!(
            "helmCharts:\n- name: grow\n  releaseName: k\n  valuesInline:\n    doublings: {doublings}\n"
        )
    };
    let dir = repo.path("kust");
    repo.write("kust/kustomization.yaml", &kustomization(26));
    let opts = bounded(&repo, Duration::from_secs(60));
    let err = render(&dir, &opts).expect_err("over the memory limit");
    let message = err.to_string();
    assert!(
        message.contains(
            "helm template for the helmCharts of kust exceeded the memory limit of 256 MiB"
        ),
        "{message}"
    );
    assert!(message.contains("helm template grow"), "{message}");

    repo.write("kust/kustomization.yaml", &kustomization(20));
    let set = render(&dir, &opts).expect("16 MiB fits");
    assert_eq!(length(&set), (16u64 << 20).to_string());
}

#[test]
fn helm_past_the_deadline_is_stopped_in_both_kinds_of_render() {
    let repo = Repo::new();
    let chart = write_chart(&repo, "charts/spin", SPIN, 0);
    write_chart(&repo, "kust/charts/spin", SPIN, 0);
    let kust = repo.write(
        "kust/kustomization.yaml",
        "helmCharts:\n- name: spin\n  releaseName: k\n",
    );
    let opts = bounded(&repo, Duration::from_secs(2));
    for dir in [chart.as_path(), kust.parent().expect("dir")] {
        let start = Instant::now();
        let err = render(dir, &opts).expect_err("past the deadline");
        let elapsed = start.elapsed();
        assert!(
            err.to_string().contains("exceeded the time limit of 2s"),
            "{}: {err}",
            dir.display()
        );
        assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
    }
}
