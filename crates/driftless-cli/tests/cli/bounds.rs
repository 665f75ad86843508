//! `driftless render` within its resource bounds: a Jsonnet program that
//! allocates without end or loops fails that render alone, in its worker,
//! with the limit in the message.

use std::time::{Duration, Instant};

use crate::support::{driftless, text};

const GOOD: &str =
    "{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'fine'}, data: {n: '1'}}\n";

#[test]
fn a_memory_bomb_fails_that_render_with_the_limit_and_the_next_one_works() {
    let repo = tempfile::tempdir().expect("tempdir");
    let bomb = repo.path().join("apps/bomb");
    let good = repo.path().join("apps/good");
    for dir in [&bomb, &good] {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    std::fs::write(
        bomb.join("main.jsonnet"),
        "local f(s, n) = if n == 0 then s else f(s + s, n - 1);\n{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'x'}, data: {s: f('x', 33)}}\n",
    )
    .expect("write");
    std::fs::write(good.join("main.jsonnet"), GOOD).expect("write");
    let root = repo.path().to_str().expect("utf-8");
    let start = Instant::now();
    let out = driftless(&[
        "render",
        bomb.to_str().expect("utf-8"),
        "--root",
        root,
        "--memory-limit-mib",
        "512",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr).trim(),
        "error: jsonnet evaluation of apps/bomb/main.jsonnet exceeded the memory limit of 512 MiB"
    );
    assert!(start.elapsed() < Duration::from_secs(30));
    let out = driftless(&["render", good.to_str().expect("utf-8"), "--root", root]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("name: fine"));
}

#[test]
fn a_cpu_loop_is_stopped_at_the_render_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.jsonnet"),
        "{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'x'}, data: {s: std.toString(std.foldl(function(a, i) a + i, std.range(0, 2000000000), 0))}}\n",
    )
    .expect("write");
    let start = Instant::now();
    let out = driftless(&[
        "render",
        dir.path().to_str().expect("utf-8"),
        "--render-timeout",
        "2s",
    ]);
    let elapsed = start.elapsed();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("exceeded the time limit of 2s"), "{err}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}

#[test]
fn object_and_byte_limits_name_the_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let docs: Vec<String> = (0..5)
        .map(|i| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n"))
        .collect();
    std::fs::write(dir.path().join("all.yaml"), docs.join("---\n")).expect("write");
    let path = dir.path().to_str().expect("utf-8");
    let out = driftless(&["render", path, "--object-limit", "4"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(path) && err.contains("5 objects, over the limit of 4 per App"),
        "{err}"
    );
    let out = driftless(&["render", path, "--object-limit", "5"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let pad = "z".repeat(3 << 19);
    let big =
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  pad: {pad}\n");
    std::fs::write(dir.path().join("big.yaml"), big).expect("write");
    let out = driftless(&["render", path, "--input-limit-mib", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("{path}: reading big.yaml brings the render to"))
            && err.contains("over the limit of 1 MiB per render"),
        "{err}"
    );
}
