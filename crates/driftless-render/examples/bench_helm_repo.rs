//! Benchmark: a Helm chart repository with a large index, served on
//! 127.0.0.1, against the real `helm` in the same run:
//!
//! - a no-change poll: driftless's one conditional request (answered 304)
//!   vs `helm repo update REPO`, which downloads and loads the whole index;
//!   driftless's unconditional first fetch is shown beside them;
//! - rendering a chart whose archive is already cached (resolved from the
//!   index in memory, then `helm template` of the archive) vs
//!   `helm template REPO/CHART --version V`, which loads helm's cached index
//!   and downloads the archive; `helm template` of the local archive is the
//!   floor both pay.
//!
//! Usage: `bench_helm_repo DIR [ROUNDS]` where `DIR` holds chart archives
//! and the `index.yaml` that `helm repo index` wrote. Run through
//! `scripts/bench-helm-repo`, which makes them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use driftless_render::{RenderOptions, RepositoryChart, render_chart};
use driftless_source::{ChartRepository, HelmRepoSpec, IndexChange};
use driftless_testenv::chart_repo::ChartRepo;

fn helm() -> PathBuf {
    driftless_testenv::tools::helm()
}

/// Runs helm with its homes under `home`; fails on a non-zero exit.
fn helm_in(home: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new(helm())
        .args(args)
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .map_err(|e| format!("helm {args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "helm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn time(f: impl FnOnce() -> Result<(), String>) -> Result<Duration, String> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: bench_helm_repo DIR [ROUNDS]")?;
    let rounds: usize = args
        .next()
        .map_or(Ok(5), |r| r.parse())
        .map_err(|e| format!("ROUNDS: {e}"))?;
    let served = ChartRepo::start();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let to = served.path(&path.file_name().unwrap_or_default().to_string_lossy());
        std::fs::copy(&path, to).map_err(|e| e.to_string())?;
    }
    let index_bytes = std::fs::metadata(served.path("index.yaml"))
        .map_err(|e| e.to_string())?
        .len();
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let home = scratch.path().join("helm");
    helm_in(&home, &["repo", "add", "bench", &served.url])?;

    // (a) No-change polls.
    let spec = HelmRepoSpec::new(&served.url).map_err(|e| e.to_string())?;
    let (mut first, mut ours, mut theirs) = (vec![], vec![], vec![]);
    let mut repo = None;
    for round in 0..rounds {
        let charts = ChartRepository::new(&scratch.path().join(format!("c{round}")), spec.clone());
        let start = Instant::now();
        let change = charts.refresh().map_err(|e| e.to_string())?;
        first.push(start.elapsed());
        if !matches!(change, IndexChange::Changed(_)) {
            return Err("the first fetch saw no index".into());
        }
        let before = served.served().len();
        let start = Instant::now();
        let change = charts.refresh().map_err(|e| e.to_string())?;
        ours.push(start.elapsed());
        if change != IndexChange::Unchanged || served.served().len() != before + 1 {
            return Err("a no-change poll was not one conditional request".into());
        }
        theirs.push(time(|| helm_in(&home, &["repo", "update", "bench"]))?);
        repo = Some(charts);
    }
    let repo = repo.ok_or("ROUNDS must be at least 1")?;
    let versions = repo
        .index()
        .map_or(0, |i| i.entries.values().map(Vec::len).sum::<usize>());
    println!(
        "index: {versions} chart versions, {} KiB, {rounds} rounds, medians",
        index_bytes / 1024
    );
    let (p_ours, p_helm) = (median(ours), median(theirs));
    println!(
        "no-change poll: driftless {:.2} ms (one 304), helm repo update {:.1} ms: {:.0}x",
        ms(p_ours),
        ms(p_helm),
        ms(p_helm) / ms(p_ours)
    );
    println!(
        "  driftless first fetch (download and parse): {:.1} ms",
        ms(median(first))
    );

    // (b) Rendering a cached chart.
    let chosen = repo.resolve("web", "*").map_err(|e| e.to_string())?;
    let archive = repo.chart(&chosen).map_err(|e| e.to_string())?;
    let opts = RenderOptions {
        helm: driftless_render::HelmOptions {
            command: Some(helm()),
            release_name: Some("shop".into()),
            ..Default::default()
        },
        ..RenderOptions::new(scratch.path())
    };
    let (mut ours, mut theirs, mut floor) = (vec![], vec![], vec![]);
    for _ in 0..rounds {
        let before = served.served().len();
        ours.push(time(|| {
            let chosen = repo.resolve("web", "*").map_err(|e| e.to_string())?;
            let archive = repo.chart(&chosen).map_err(|e| e.to_string())?;
            let chart = RepositoryChart {
                archive: &archive,
                name: "web",
                version: &chosen.version,
                values_from: &[],
            };
            render_chart(&chart, &opts)
                .map(drop)
                .map_err(|e| e.to_string())
        })?);
        if served.served().len() != before {
            return Err("a render of a cached chart made a request".into());
        }
        theirs.push(time(|| {
            helm_in(
                &home,
                &[
                    "template",
                    "shop",
                    "bench/web",
                    "--version",
                    &chosen.version,
                ],
            )
        })?);
        let local = archive.to_string_lossy();
        floor.push(time(|| helm_in(&home, &["template", "shop", &local]))?);
    }
    let (r_ours, r_helm) = (median(ours), median(theirs));
    println!(
        "render of cached chart web {}: driftless {:.1} ms, helm template bench/web {:.1} ms: {:.2}x",
        chosen.version,
        ms(r_ours),
        ms(r_helm),
        ms(r_helm) / ms(r_ours)
    );
    println!(
        "  helm template of the local archive (the floor): {:.1} ms",
        ms(median(floor))
    );
    Ok(())
}
