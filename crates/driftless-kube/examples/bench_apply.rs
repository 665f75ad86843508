//! Benchmark driver for `scripts/bench-apply`: applies a generated set of
//! ConfigMaps, Services and Deployments into one namespace, re-applies it
//! unchanged, and measures how fast drift made by another field manager is
//! reverted. With `--emit FILE` it only writes the same set as a YAML stream
//! for the reference tool.
//!
//! usage: bench_apply --kubeconfig FILE --namespace NS [--count N] [--emit FILE]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use driftless_kube::{ApplyOptions, DriftWatch, Target, apply};
use serde_json::{Value, json};

struct Args {
    kubeconfig: PathBuf,
    namespace: String,
    count: usize,
    emit: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut kubeconfig, mut namespace, mut count, mut emit) = (None, None, 1000, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(value()?)),
            "--namespace" => namespace = Some(value()?),
            "--count" => count = value()?.parse().map_err(|e| format!("--count: {e}"))?,
            "--emit" => emit = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        kubeconfig: kubeconfig.ok_or("--kubeconfig is required")?,
        namespace: namespace.ok_or("--namespace is required")?,
        count,
        emit,
    })
}

/// `count` objects: 40% ConfigMaps, 30% Services, 30% Deployments. Services
/// are headless and Deployments have zero replicas, so the benchmark measures
/// apply, not the size of the service IP range or the scheduler.
fn object_set(count: usize, namespace: &str) -> Vec<Value> {
    (0..count)
        .map(|i| match i % 10 {
            0..=3 => json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("config-{i}"), "namespace": namespace},
                "data": {"index": i.to_string(), "payload": "x".repeat(256)}}),
            4..=6 => json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": format!("svc-{i}"), "namespace": namespace},
                "spec": {"clusterIP": "None", "selector": {"app": format!("app-{i}")},
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}}),
            _ => json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": format!("deploy-{i}"), "namespace": namespace},
                "spec": {"replicas": 0,
                    "selector": {"matchLabels": {"app": format!("app-{i}")}},
                    "template": {"metadata": {"labels": {"app": format!("app-{i}")}},
                        "spec": {"containers": [{"name": "main", "image": "nginx:1.27",
                            "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]}}}}),
        })
        .collect()
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let objects = object_set(args.count, &args.namespace);
    if let Some(path) = &args.emit {
        std::fs::write(path, driftless_yaml::emit_stream(&objects)?)?;
        return Ok(());
    }
    let target = Target::connect(Some(&args.kubeconfig), None).await?;
    let mut opts = ApplyOptions::new("bench");
    opts.namespace = Some(args.namespace.clone());
    opts.inventory_namespace = args.namespace.clone();
    let quiet = |_| {};

    let start = Instant::now();
    let first = apply(&target, &objects, &opts, &quiet).await?;
    let first_ms = start.elapsed().as_secs_f64() * 1000.0;
    let start = Instant::now();
    let noop = apply(&target, &objects, &opts, &quiet).await?;
    let noop_ms = start.elapsed().as_secs_f64() * 1000.0;
    println!(
        "driftless_first_apply_ms={first_ms:.0} created={}",
        first.created.len()
    );
    println!(
        "driftless_noop_apply_ms={noop_ms:.0} unchanged={} written={}",
        noop.unchanged.len(),
        noop.created.len() + noop.updated.len()
    );

    let watch = DriftWatch::start(target.clone());
    let mut events = watch.subscribe();
    watch.track(&objects, &opts, true).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut latencies = Vec::new();
    let mut heals = Vec::new();
    for round in 0..5 {
        let patch = format!(r#"{{"data":{{"index":"drift-{round}"}}}}"#);
        let start = Instant::now();
        let status = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&args.kubeconfig)
            .args(["patch", "configmap", "config-0", "-n", &args.namespace])
            .args(["--field-manager=kubectl-edit", "--type=merge", "-p", &patch])
            .stdout(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            return Err("kubectl patch failed".into());
        }
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv()).await??;
        if !event.healed {
            return Err(format!("drift not healed: {event:?}").into());
        }
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
        heals.push(event.heal_millis);
    }
    heals.sort_unstable();
    latencies.sort_by(f64::total_cmp);
    println!(
        "driftless_drift_revert_ms_median={:.0} max={:.0} (from kubectl patch start, includes kubectl)",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
    println!(
        "driftless_event_to_healed_ms_median={} max={}",
        heals[heals.len() / 2],
        heals[heals.len() - 1]
    );
    println!("driftless_peak_rss_kib={}", peak_rss_kib());
    Ok(())
}
