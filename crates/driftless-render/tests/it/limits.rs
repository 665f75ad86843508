//! Render bounds: a Jsonnet program that allocates without end or loops is
//! stopped in its worker, oversized or overfull inputs are refused, and the
//! renders around them are unaffected.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use driftless_render::{Error, LimitError, RenderOptions, RenderWorker, render};

use crate::{Repo, config_map, names};

/// The worker binary of this crate.
fn worker() -> RenderWorker {
    RenderWorker {
        program: PathBuf::from(env!("CARGO_BIN_EXE_driftless-render-worker")),
        args: Vec::new(),
    }
}

/// Options with the worker and the given memory (MiB) and time limits.
fn bounded(repo: &Repo, memory_mib: u64, timeout: Duration) -> RenderOptions {
    let mut opts = repo.opts();
    opts.worker = Some(worker());
    opts.limits.max_memory = memory_mib << 20;
    opts.limits.timeout = timeout;
    opts
}

const GOOD: &str = "[{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'ok'}, data: {n: std.toString(6 * 7)}}]\n";

/// A string doubled 33 times: 8 GiB.
const EXPONENTIAL: &str = "local f(s, n) = if n == 0 then s else f(s + s, n - 1);\n[{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'big'}, data: {s: f('x', 33)}}]\n";

/// Constant memory, endless work.
const CPU_LOOP: &str = "local sum = std.foldl(function(acc, i) acc + i, std.range(0, 2000000000), 0);\n[{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'loop'}, data: {s: std.toString(sum)}}]\n";

#[test]
fn an_exponential_string_fails_on_the_memory_limit_and_the_next_render_works() {
    let repo = Repo::new();
    let bad = repo.write("apps/bomb/main.jsonnet", EXPONENTIAL);
    let good = repo.write("apps/good/main.jsonnet", GOOD);
    let opts = bounded(&repo, 512, Duration::from_secs(60));
    let start = Instant::now();
    let err = render(bad.parent().expect("dir"), &opts).expect_err("over the memory limit");
    let elapsed = start.elapsed();
    assert!(
        matches!(
            err,
            Error::Jsonnet(driftless_render::JsonnetError::Limit(
                LimitError::Memory { .. }
            ))
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "jsonnet evaluation of apps/bomb/main.jsonnet exceeded the memory limit of 512 MiB"
    );
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
    let set = render(good.parent().expect("dir"), &opts).expect("a normal render still works");
    assert_eq!(names(&set), ["ok"]);
    assert_eq!(set.items()[0].object["data"]["n"], "42");
}

#[test]
fn a_cpu_loop_is_stopped_at_the_time_limit() {
    let repo = Repo::new();
    let dir = repo.write("apps/spin/main.jsonnet", CPU_LOOP);
    let timeout = Duration::from_secs(2);
    let opts = bounded(&repo, 512, timeout);
    let start = Instant::now();
    let err = render(dir.parent().expect("dir"), &opts).expect_err("over the time limit");
    let elapsed = start.elapsed();
    assert_eq!(
        err.to_string(),
        "jsonnet evaluation of apps/spin/main.jsonnet exceeded the time limit of 2s"
    );
    assert!(
        elapsed >= timeout && elapsed < timeout + timeout / 2,
        "stopped after {elapsed:?}"
    );
}

#[test]
fn the_worker_renders_what_the_process_renders_and_reports_errors_alike() {
    let repo = Repo::new();
    repo.write("lib/k.libsonnet", "{ cm(name):: {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: name}, data: {env: std.extVar('env')}} }\n");
    let dir = repo.mkdir("apps/web");
    repo.write(
        "apps/web/main.jsonnet",
        "local k = import 'k.libsonnet';\nfunction(suffix) [k.cm('web-' + suffix), k.cm('db-' + suffix)]\n",
    );
    let mut opts = repo.opts();
    opts.jsonnet.lib_paths = vec!["lib".into()];
    opts.jsonnet.ext_vars.insert("env".into(), "prod".into());
    opts.jsonnet.tla_vars.insert("suffix".into(), "a".into());
    let here = render(&dir, &opts).expect("in process");
    opts.worker = Some(worker());
    let there = render(&dir, &opts).expect("in the worker");
    assert_eq!(here, there);
    assert_eq!(names(&there), ["web-a", "db-a"]);

    repo.write("apps/web/main.jsonnet", "error 'no ' + 'way'\n");
    let err = render(&dir, &opts).expect_err("a Jsonnet error");
    let text = err.to_string();
    assert!(
        text.starts_with("apps/web/main.jsonnet: ") && text.contains("no way"),
        "{text}"
    );
}

#[test]
fn a_jsonnet_result_over_the_byte_limit_is_refused_in_and_out_of_the_worker() {
    let repo = Repo::new();
    let dir = repo.mkdir("apps/wide");
    repo.write(
        "apps/wide/main.jsonnet",
        "[{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'w'}, data: {s: std.repeat('y', 5000)}}]\n",
    );
    let mut opts = repo.opts();
    opts.limits.max_input_bytes = 4096;
    for worker in [None, Some(worker())] {
        opts.worker = worker;
        let err = render(&dir, &opts).expect_err("result over the limit");
        let text = err.to_string();
        assert!(
            text.starts_with("apps/wide: reading the result of apps/wide/main.jsonnet")
                && text.ends_with("over the limit of 4 KiB per render"),
            "{text}"
        );
    }
}

#[test]
fn plain_files_over_the_byte_limit_fail_before_they_are_read() {
    let repo = Repo::new();
    let dir = repo.mkdir("apps/big");
    for name in ["a", "b", "c"] {
        let mut text = config_map(name, "v");
        text.push_str(&format!("  pad: {}\n", "z".repeat(400)));
        repo.write(&format!("apps/big/{name}.yaml"), &text);
    }
    let mut opts = repo.opts();
    let set = render(&dir, &opts).expect("the defaults fit");
    assert_eq!(names(&set), ["a", "b", "c"]);
    opts.limits.max_input_bytes = 1000;
    let err = render(&dir, &opts).expect_err("over the byte limit");
    assert!(
        matches!(
            err,
            Error::Plain(driftless_render::PlainError::Limit(
                LimitError::Input { .. }
            ))
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("apps/big: reading apps/big/c.yaml brings the render to ")
            && text.ends_with("over the limit of 1000 bytes per render"),
        "{text}"
    );
}

#[test]
fn kustomize_reads_over_the_byte_limit_fail_in_all_files_together() {
    // Each file is far below the per-file bound; together they cross the
    // render's bound, whether read as resources, a base or generator files.
    let repo = Repo::new();
    let pad = "z".repeat(400);
    for name in ["a", "b", "c"] {
        let mut text = config_map(name, "v");
        text.push_str(&format!("  pad: {pad}\n"));
        repo.write(&format!("apps/base/{name}.yaml"), &text);
    }
    repo.write(
        "apps/base/kustomization.yaml",
        "resources: [a.yaml, b.yaml, c.yaml]\n",
    );
    repo.write("apps/prod/env.txt", &pad);
    repo.write(
        "apps/prod/kustomization.yaml",
        "resources: [../base]\nconfigMapGenerator: [{name: env, files: [env.txt]}]\n",
    );
    let dir = repo.path("apps/prod");
    let mut opts = repo.opts();
    let set = render(&dir, &opts).expect("the defaults fit");
    assert_eq!(set.len(), 4);
    opts.limits.max_input_bytes = 1200;
    let err = render(&dir, &opts).expect_err("over the byte limit");
    let text = err.to_string();
    assert!(
        text.contains("over the limit of 1200 bytes") && text.contains("apps/base/"),
        "{text}"
    );
    opts.limits.max_input_bytes = 1700;
    let err = render(&dir, &opts).expect_err("generator file over the byte limit");
    assert!(err.to_string().contains("env.txt"), "{err}");
}

#[test]
fn more_objects_than_the_limit_fail_naming_the_directory() {
    let repo = Repo::new();
    let dir = repo.mkdir("apps/many");
    let stream: Vec<String> = (0..11)
        .map(|i| config_map(&format!("cm-{i}"), "v"))
        .collect();
    repo.write("apps/many/all.yaml", &stream.join("---\n"));
    repo.write(
        "apps/gen/main.jsonnet",
        "[{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'cm-' + i}} for i in std.range(1, 11)]\n",
    );
    let mut opts = repo.opts();
    assert_eq!(render(&dir, &opts).expect("default limit").len(), 11);
    opts.limits.max_objects = 10;
    opts.worker = Some(worker());
    for app in ["apps/many", "apps/gen"] {
        let err = render(&repo.path(app), &opts).expect_err("over the object limit");
        assert!(
            matches!(err, Error::Limit(LimitError::Objects { .. })),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("{app}: the render produced 11 objects, over the limit of 10 per App")
        );
    }
}

#[test]
fn helm_is_stopped_at_the_time_limit() {
    let repo = Repo::new();
    let chart = repo.mkdir("charts/slow");
    repo.write(
        "charts/slow/Chart.yaml",
        "apiVersion: v2\nname: slow\nversion: 0.1.0\n",
    );
    // A hundred million template steps: many seconds of work, little memory.
    repo.write(
        "charts/slow/templates/loop.yaml",
        "{{- range until 10000 }}{{- range until 10000 }}{{- end }}{{- end }}\n",
    );
    let mut opts = repo.opts();
    opts.helm.command = Some(crate::helm::helm());
    opts.limits.timeout = Duration::from_millis(1500);
    let start = Instant::now();
    let err = render(&chart, &opts).expect_err("over the time limit");
    let elapsed = start.elapsed();
    assert_eq!(
        err.to_string(),
        "helm template charts/slow exceeded the time limit of 1.5s"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "stopped after {elapsed:?}"
    );
}
