//! What a commit that changes one App costs the render cache, at many Apps
//! in one repository: every App looked up in the commit's checkout, one
//! rendered, the others reused; against rendering every App, which is what a
//! cache keyed by the whole tree did on each commit (measured in the same run).
//!
//! Run: `cargo bench -p driftless-render --bench read_cache [-- APPS]`
//! (default 10000 Apps: nine plain directories in ten, the tenth a kustomize
//! overlay of a shared base). The cache is set up as the engine's: 256 sets
//! in memory, the rest on disk.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use driftless_render::{RenderCache, RenderOptions, Served};

/// The directory of App `i`, relative to the checkout.
fn app_dir(i: usize) -> String {
    if i % 10 == 9 {
        format!("overlays/app{i:05}")
    } else {
        format!("apps/app{i:05}")
    }
}

fn config_map(name: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: \"{value}\"\n")
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// A checkout of `apps` Apps at `root`.
fn checkout(root: &Path, apps: usize) {
    write(root, "base/kustomization.yaml", "resources:\n- cm.yaml\n");
    write(root, "base/cm.yaml", &config_map("settings", "1"));
    for i in 0..apps {
        let dir = app_dir(i);
        if i % 10 == 9 {
            let k = format!("resources:\n- ../../base\nnamePrefix: app{i:05}-\n");
            write(root, &format!("{dir}/kustomization.yaml"), &k);
        } else {
            write(
                root,
                &format!("{dir}/cm.yaml"),
                &config_map(&format!("app{i:05}"), "1"),
            );
        }
    }
}

/// A copy of the checkout at `from` made of hard links, as snapshots of
/// successive commits share their unchanged files.
fn link_copy(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            link_copy(&entry.path(), &target);
        } else {
            std::fs::hard_link(entry.path(), &target).expect("link");
        }
    }
}

fn engine_cache(disk: &Path) -> RenderCache {
    RenderCache::new(256).with_read_sets(16_384).with_disk(disk)
}

/// Looks up every App of the checkout at `root` but `skip`; returns the
/// time and how many were rendered.
fn look_up_all(
    cache: &RenderCache,
    root: &Path,
    apps: usize,
    skip: Option<usize>,
) -> (Duration, usize) {
    let opts = RenderOptions::new(root);
    let start = Instant::now();
    let mut rendered = 0;
    for i in (0..apps).filter(|i| Some(*i) != skip) {
        let got = cache
            .get_or_render(&root.join(app_dir(i)), &opts)
            .expect("renders");
        rendered += usize::from(got.served == Served::Rendered);
    }
    (start.elapsed(), rendered)
}

fn main() {
    let apps: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let work = tempfile::tempdir().expect("temp dir");
    let (one, two, disk): (PathBuf, PathBuf, PathBuf) = (
        work.path().join("commit-1"),
        work.path().join("commit-2"),
        work.path().join("renders"),
    );
    checkout(&one, apps);
    let cache = engine_cache(&disk);
    let (all, rendered) = look_up_all(&cache, &one, apps, None);
    assert_eq!(rendered, apps);
    println!(
        "{apps} Apps, every one rendered (each commit, keyed by the whole tree): {:>8.1} ms, {:>6.0} µs each",
        all.as_secs_f64() * 1e3,
        all.as_secs_f64() * 1e6 / apps as f64
    );

    // The next commit changes one App's file.
    let changed = apps / 2 - apps / 2 % 10;
    std::fs::create_dir_all(&two).expect("mkdir");
    link_copy(&one, &two);
    let file = two.join(app_dir(changed)).join("cm.yaml");
    std::fs::remove_file(&file).expect("unlink the shared file");
    write(
        &two,
        &format!("{}/cm.yaml", app_dir(changed)),
        &config_map("changed", "2"),
    );

    let opts = RenderOptions::new(&two);
    let start = Instant::now();
    let got = cache
        .get_or_render(&two.join(app_dir(changed)), &opts)
        .expect("renders");
    let one_app = start.elapsed();
    assert_eq!(got.served, Served::Rendered);
    println!(
        "the changed App, rendered first:                             {:>8.2} ms",
        one_app.as_secs_f64() * 1e3
    );
    let (rest, rendered) = look_up_all(&cache, &two, apps, Some(changed));
    assert_eq!(rendered, 0, "only the changed App renders");
    println!(
        "the other {} Apps, reused (256 sets in memory, the rest from disk): {:>8.1} ms, {:>6.0} µs each",
        apps - 1,
        rest.as_secs_f64() * 1e3,
        rest.as_secs_f64() * 1e6 / (apps - 1) as f64
    );
    let incremental = one_app + rest;
    println!(
        "a commit changing one App: {:.1} ms against {:.1} ms: {:.1}x less",
        incremental.as_secs_f64() * 1e3,
        all.as_secs_f64() * 1e3,
        all.as_secs_f64() / incremental.as_secs_f64()
    );

    // After a restart: nothing in memory, everything from disk.
    let fresh = engine_cache(&disk);
    let (restart, rendered) = look_up_all(&fresh, &two, apps, None);
    assert_eq!(rendered, 0, "everything on disk");
    println!(
        "after a restart, every App from disk:                        {:>8.1} ms, {:>6.0} µs each",
        restart.as_secs_f64() * 1e3,
        restart.as_secs_f64() * 1e6 / apps as f64
    );
}
