//! `driftless diff|apply|delete`: render a directory and make a cluster match it.

use std::io::Write as _;

use driftless_kube::{ApplyEvent, ApplyOptions, ApplyReport, Target};

use crate::args::{ApplyArgs, ClusterArgs, DeleteArgs, SummaryOutput, TargetArgs};
use crate::exit::{Failure, Outcome};
use crate::render::render_decrypted;

pub fn diff(args: &ClusterArgs) -> Outcome {
    let (set, encrypted) = render_decrypted(&args.input, &args.decrypt)?;
    let objects: Vec<serde_json::Value> = set.iter().cloned().collect();
    let mut opts = options(&args.target);
    // Values sops encrypted in Git never show, whatever the live object holds.
    opts.masked_fields = encrypted;
    opts.prune = args.prune;
    // Any failure of diff exits 2: exit 1 means "there are changes".
    let summary = block_on(async {
        let target = connect(&args.target).await?;
        driftless_kube::diff(&target, &objects, &opts)
            .await
            .map_err(|e| Failure::input(anyhow::Error::new(e)))
    })
    .map_err(|f| Failure::input(f.error))?;
    match args.target.output {
        SummaryOutput::Text => {
            print!("{}", summary.patch());
            println!("{summary}");
        }
        SummaryOutput::Json => print_json(&summary)?,
    }
    Ok(u8::from(summary.has_changes()))
}

pub fn apply(args: &ApplyArgs) -> Outcome {
    let objects = rendered_objects(&args.cluster)?;
    let timeout: driftless_api::Duration = args
        .timeout
        .parse()
        .map_err(|e| Failure::input(anyhow::anyhow!("--timeout: {e}")))?;
    let mut opts = options(&args.cluster.target);
    opts.prune = args.cluster.prune;
    opts.allow_empty_prune = args.allow_empty_prune;
    opts.wait = args.wait;
    opts.timeout = timeout.get();
    opts.force = args.force;
    opts.create_namespace = args.create_namespace;
    let output = args.cluster.target.output;
    let report = block_on(async {
        let target = connect(&args.cluster.target).await?;
        driftless_kube::apply(&target, &objects, &opts, &|e| progress(output, &e))
            .await
            .map_err(Failure::operational)
    })?;
    finish(output, &report)
}

pub fn delete(args: &DeleteArgs) -> Outcome {
    let opts = options(&args.target);
    let output = args.target.output;
    let report = block_on(async {
        let target = connect(&args.target).await?;
        driftless_kube::delete_app(&target, &opts, &|e| progress(output, &e))
            .await
            .map_err(Failure::operational)
    })?;
    finish(output, &report)
}

fn rendered_objects(args: &ClusterArgs) -> Result<Vec<serde_json::Value>, Failure> {
    let (set, _) = render_decrypted(&args.input, &args.decrypt)?;
    Ok(set.iter().cloned().collect())
}

fn options(args: &TargetArgs) -> ApplyOptions {
    let mut opts = ApplyOptions::new(&args.app);
    opts.namespace = args.namespace.clone();
    opts.impersonate = args.impersonate.clone();
    opts.inventory_namespace = args.inventory_namespace.clone();
    opts
}

async fn connect(args: &TargetArgs) -> Result<Target, Failure> {
    Target::connect(args.kubeconfig.as_deref(), args.context.as_deref())
        .await
        .map_err(Failure::input)
}

fn block_on<T>(future: impl Future<Output = Result<T, Failure>>) -> Result<T, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Failure::operational)?
        .block_on(future)
}

/// Progress goes to stderr so that stdout stays the result.
fn progress(output: SummaryOutput, event: &ApplyEvent) {
    let mut err = std::io::stderr().lock();
    let _ = match (output, event) {
        (SummaryOutput::Json, _) => Ok(()),
        (_, ApplyEvent::Applied { object, action }) => {
            writeln!(err, "{object} {}", format!("{action:?}").to_lowercase())
        }
        (_, ApplyEvent::Waiting { wave, objects }) => {
            writeln!(
                err,
                "waiting for {objects} objects of wave {wave} to become healthy"
            )
        }
        (
            _,
            ApplyEvent::Adopted {
                object,
                previous_managers,
            },
        ) => writeln!(
            err,
            "{object} adopted (previous field managers: {})",
            managers(previous_managers)
        ),
        (_, ApplyEvent::Deleted { object }) => writeln!(err, "{object} deleted"),
        (_, ApplyEvent::Health { object, health }) => writeln!(err, "{object} {health}"),
        (_, ApplyEvent::Hook(run)) => {
            let result = format!("{:?}", run.result).to_lowercase();
            match run.message.as_str() {
                "" => writeln!(err, "{} hook {} {result}", run.phase, run.object),
                why => writeln!(err, "{} hook {} {result}: {why}", run.phase, run.object),
            }
        }
    };
}

fn finish(output: SummaryOutput, report: &ApplyReport) -> Outcome {
    match output {
        SummaryOutput::Json => print_json(report)?,
        SummaryOutput::Text => {
            println!(
                "app {}: {} created, {} updated, {} unchanged, {} deleted",
                report.app,
                report.created.len(),
                report.updated.len(),
                report.unchanged.len(),
                report.deleted.len()
            );
            for a in &report.adopted {
                println!(
                    "  adopted: {} (previous field managers: {})",
                    a.object,
                    managers(&a.previous_managers)
                );
            }
            for s in report.skipped.iter().chain(&report.delete_failed) {
                println!("  left alone: {} ({})", s.object, s.reason);
            }
            if report.empty_set_not_pruned {
                println!("  nothing pruned: the set is empty (allow with --allow-empty-prune)");
            }
            if let Some(status) = &report.status {
                println!("health: {status:?}");
            }
        }
    }
    if report.delete_failed.is_empty() {
        Ok(0)
    } else {
        Ok(1)
    }
}

fn managers(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(Failure::operational)?;
    println!("{text}");
    Ok(())
}
