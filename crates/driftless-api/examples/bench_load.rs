//! Measures `load_config` on a generated config of many Apps.
//!
//! `cargo run --release -p driftless-api --example bench_load -- [APPS]`

use std::fmt::Write as _;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let apps: usize = std::env::args().nth(1).map_or(Ok(2000), |a| a.parse())?;
    let sources = apps / 10 + 1;
    let mut text = String::new();
    for s in 0..sources {
        write!(
            text,
            "apiVersion: driftless.dev/v1alpha1\nkind: GitSource\nmetadata: {{name: src-{s}}}\nspec:\n  url: https://git.example.com/org/repo-{s}.git\n  ref: {{branch: main}}\n---\n"
        )?;
    }
    for a in 0..apps {
        // Each App depends on the previous one of its source: long dependency chains.
        let dep = if a >= sources {
            format!("  dependsOn: [app-{}]\n", a - sources)
        } else {
            String::new()
        };
        write!(
            text,
            "apiVersion: driftless.dev/v1alpha1\nkind: App\nmetadata: {{name: app-{a}}}\nspec:\n  sourceRef: {{name: src-{}}}\n  path: apps/app-{a}/overlays/prod\n  destination: {{namespace: ns-{a}}}\n  prune: true\n  interval: 10m\n{dep}---\n",
            a % sources
        )?;
    }
    let dir = std::env::temp_dir().join(format!("driftless-bench-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("config.yaml");
    std::fs::write(&file, &text)?;
    let runs = 5;
    let mut best = f64::MAX;
    for _ in 0..runs {
        let start = Instant::now();
        let config = driftless_api::load_config(&file)?;
        let order = config.apps_in_dependency_order();
        best = best.min(start.elapsed().as_secs_f64());
        assert_eq!(order.len(), apps);
    }
    std::fs::remove_dir_all(&dir)?;
    let objects = apps + sources;
    println!(
        "load_config: {objects} objects ({} KiB) in {:.1} ms (best of {runs}), {:.1} µs per object",
        text.len() / 1024,
        best * 1e3,
        best * 1e6 / objects as f64
    );
    Ok(())
}
