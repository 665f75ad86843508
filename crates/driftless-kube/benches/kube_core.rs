//! Throughput of the cluster-free core: health assessment, apply ordering and
//! set diffs, on generated objects of realistic shape. No reference tool runs
//! in this process (Argo CD's Go code is not available here), so it prints
//! absolute figures: `cargo bench -p driftless-kube`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use driftless_kube::compare::{SecretMasker, diff_sets};
use driftless_kube::order::apply_order;
use driftless_kube::{Health, assess};
use serde_json::{Value, json};

fn deployment(i: usize, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": format!("app-{i}"), "namespace": format!("ns-{}", i % 20),
            "labels": {"app.driftless.dev/name": "bench", "app": format!("app-{i}")},
            "annotations": {"driftless.dev/sync-wave": format!("{}", i % 3)},
            "generation": 2},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": format!("app-{i}")}},
            "template": {"metadata": {"labels": {"app": format!("app-{i}")}},
                "spec": {"containers": [{"name": "main", "image": image,
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "env": [{"name": "MODE", "value": "production"},
                        {"name": "CONFIG", "value": "line one\nline two\n"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}},
        "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3,
            "readyReplicas": 3, "availableReplicas": 3,
            "conditions": [{"type": "Available", "status": "True"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}})
}

fn secret(i: usize, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": format!("secret-{i}"), "namespace": format!("ns-{}", i % 20)},
        "data": {"password": value, "user": "YWRtaW4="}})
}

/// Runs `f` until at least `min` has passed; returns time per call.
fn time_per_call(min: Duration, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    let mut calls = 0u32;
    while start.elapsed() < min || calls == 0 {
        f();
        calls += 1;
    }
    start.elapsed() / calls
}

fn main() {
    let budget = Duration::from_secs(2);
    let n = 2000;
    let live: Vec<Value> = (0..n)
        .map(|i| deployment(i, "registry.example/app:1.0"))
        .chain((0..n / 4).map(|i| secret(i, "b2xk")))
        .collect();
    // One object in ten changes: new image or new password.
    let desired: Vec<Value> = (0..n)
        .map(|i| {
            deployment(
                i,
                if i % 10 == 0 {
                    "registry.example/app:1.1"
                } else {
                    "registry.example/app:1.0"
                },
            )
        })
        .chain((0..n / 4).map(|i| secret(i, if i % 10 == 0 { "bmV3" } else { "b2xk" })))
        .collect();
    let total = live.len();

    let per = time_per_call(budget, || {
        let healths: Vec<Health> = live.iter().map(assess).collect();
        black_box(healths);
    });
    println!(
        "health: {total} objects in {:.2} ms ({:.0} objects/s)",
        per.as_secs_f64() * 1e3,
        total as f64 / per.as_secs_f64()
    );

    let per = time_per_call(budget, || {
        black_box(apply_order(&desired).expect("bench objects are valid"));
    });
    println!(
        "order: {total} objects in {:.2} ms ({:.0} objects/s)",
        per.as_secs_f64() * 1e3,
        total as f64 / per.as_secs_f64()
    );

    let masker = SecretMasker::random().expect("random key");
    let mut changed = 0;
    let per = time_per_call(budget, || {
        let summary = diff_sets(&desired, &live, &masker).expect("bench objects are valid");
        changed = summary.update;
        black_box(summary);
    });
    println!(
        "diff: {total} objects ({changed} changed) in {:.2} ms ({:.0} objects/s)",
        per.as_secs_f64() * 1e3,
        total as f64 / per.as_secs_f64()
    );
}
