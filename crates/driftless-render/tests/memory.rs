//! Memory after large renders: tens of MiB of plain manifests and the same
//! through Kustomize, rendered many times in one process (as `serve` does),
//! leave the resident set at a bounded level that does not grow per render.
//!
//! A test binary of its own: no other test allocates beside it while the
//! resident set is read.

use std::path::Path;

use driftless_render::{RenderLimits, RenderOptions, render};

const MIB: u64 = 1024 * 1024;
/// Manifest files of the App and ConfigMaps in each.
const FILES: usize = 4;
const OBJECTS_PER_FILE: usize = 400;
/// Bytes of data in each ConfigMap: 4 x 400 x 24 KiB is about 38 MiB of YAML.
const DATA_BYTES: usize = 24 * 1024;
/// Renders of each kind after the first.
const RENDERS: usize = 5;

/// This process's resident set, from `/proc/self/status`.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}

/// Writes the manifests into `dir`; returns their size in bytes.
fn write_manifests(dir: &Path) -> u64 {
    std::fs::create_dir_all(dir).expect("mkdir");
    let filler: String = "abcdefghijklmnopqrstuvwxyz012345"
        .chars()
        .cycle()
        .take(DATA_BYTES)
        .collect();
    let mut total = 0;
    for file in 0..FILES {
        let mut text = String::new();
        for i in 0..OBJECTS_PER_FILE {
            text.push_str(&format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{file}-{i}\n  \
                 labels: {{app: big, part: \"{i}\"}}\ndata:\n  blob: {filler}{i}\n---\n"
            ));
        }
        std::fs::write(dir.join(format!("part-{file}.yaml")), &text).expect("write");
        total += text.len() as u64;
    }
    total
}

fn options(root: &Path) -> RenderOptions {
    let mut opts = RenderOptions::new(root);
    opts.limits = RenderLimits {
        max_input_bytes: 64 * MIB,
        ..RenderLimits::default()
    };
    opts
}

/// Renders `dir` once and then [`RENDERS`] times, returning the resident set
/// after the first render and after each later one, every object set dropped.
fn settled_after_renders(dir: &Path, opts: &RenderOptions) -> (u64, Vec<u64>) {
    let expected = FILES * OBJECTS_PER_FILE;
    let once = || {
        let set = render(dir, opts).expect("renders");
        assert_eq!(set.len(), expected);
        drop(set);
        rss()
    };
    let first = once();
    let later = (0..RENDERS).map(|_| once()).collect();
    (first, later)
}

#[test]
fn large_plain_and_kustomize_renders_give_their_memory_back() {
    let tree = tempfile::tempdir().expect("temp dir");
    let plain = tree.path().join("plain");
    let input = write_manifests(&plain);
    let kustomized = tree.path().join("kustomized");
    write_manifests(&kustomized);
    let resources: String = (0..FILES).map(|f| format!("- part-{f}.yaml\n")).collect();
    std::fs::write(
        kustomized.join("kustomization.yaml"),
        format!("namePrefix: big-\ncommonLabels: {{team: a}}\nresources:\n{resources}"),
    )
    .expect("write kustomization");
    assert!(input > 32 * MIB, "{input} bytes of manifests");
    let opts = options(tree.path());
    let start = rss();

    for dir in [&plain, &kustomized] {
        let (first, later) = settled_after_renders(dir, &opts);
        let last = *later.last().expect("renders ran");
        let most = later.iter().copied().max().unwrap_or(last);
        eprintln!(
            "{}: {} MiB of input; resident at start {} MiB, after the first render {} MiB, \
             after the next {RENDERS}: {:?} MiB",
            dir.display(),
            input / MIB,
            start / MIB,
            first / MIB,
            later.iter().map(|b| b / MIB).collect::<Vec<_>>()
        );
        // Bounded: what stays after a render is a small multiple of what it
        // read, never the many times over that a leak or a kept copy gives.
        assert!(
            most < start + 3 * input,
            "{} MiB resident after renders of {} MiB, {} MiB at start",
            most / MIB,
            input / MIB,
            start / MIB
        );
        // Not growing: the later renders reuse what the first one freed.
        assert!(
            most < first + input / 2,
            "resident grew from {} MiB to {} MiB over {RENDERS} renders",
            first / MIB,
            most / MIB
        );
    }
}
