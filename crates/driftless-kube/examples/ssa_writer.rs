//! The physical limit for `scripts/bench-scale`: how fast this machine's API
//! server takes the writes at all. Server-side applies of the given ConfigMaps,
//! `--parallel` requests in flight, and nothing else: no reads, no diff, no
//! inventory, no status. Prints one JSON line with the count and the seconds.
//!
//! usage: ssa_writer --kubeconfig FILE --objects FILE.json [--parallel N]
//!
//! FILE.json holds a JSON array of ConfigMaps, each naming its namespace.

use std::path::PathBuf;
use std::time::Instant;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};

struct Args {
    kubeconfig: PathBuf,
    objects: PathBuf,
    parallel: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut kubeconfig, mut objects, mut parallel) = (None, None, 64);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(value()?)),
            "--objects" => objects = Some(PathBuf::from(value()?)),
            "--parallel" => {
                parallel = value()?.parse().map_err(|e| format!("--parallel: {e}"))?;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        kubeconfig: kubeconfig.ok_or("--kubeconfig is required")?,
        objects: objects.ok_or("--objects is required")?,
        parallel: parallel.max(1),
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let text = std::fs::read_to_string(&args.objects)
        .map_err(|e| format!("{}: {e}", args.objects.display()))?;
    let objects: Vec<ConfigMap> =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", args.objects.display()))?;
    let target = driftless_kube::Target::connect(Some(&args.kubeconfig), None).await?;
    let client = target.client().clone();
    let params = PatchParams::apply("bench-ssa-writer").force();
    let start = Instant::now();
    let errors: Vec<String> = futures_util::stream::iter(objects.iter())
        .map(|object| {
            let ns = object.metadata.namespace.clone().unwrap_or_default();
            let name = object.metadata.name.clone().unwrap_or_default();
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
            let params = &params;
            async move {
                api.patch(&name, params, &Patch::Apply(object))
                    .await
                    .err()
                    .map(|e| format!("{ns}/{name}: {e}"))
            }
        })
        .buffer_unordered(args.parallel)
        .filter_map(std::future::ready)
        .collect()
        .await;
    let seconds = start.elapsed().as_secs_f64();
    for error in errors.iter().take(5) {
        eprintln!("ssa_writer: {error}");
    }
    println!(
        "{}",
        serde_json::json!({
            "objects": objects.len(),
            "errors": errors.len(),
            "seconds": seconds,
            "parallel": args.parallel,
        })
    );
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{} of {} applies failed", errors.len(), objects.len()).into())
    }
}
