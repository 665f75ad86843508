//! Submodules of remote bases: fetched by default, left out with
//! `?submodules=false`, as kustomize v5.5.0 does.

use std::process::Command;

use driftless_render::render_with_reads;

use super::{bare_repo, cm, remote_opts};
use crate::Repo;

/// What kustomize prints for `dir`, or its error; its git may clone
/// `file://` submodules (git refuses them by default).
fn kustomize(dir: &std::path::Path) -> Result<String, String> {
    let out = Command::new(driftless_testenv::tools::kustomize())
        .arg("build")
        .arg(dir)
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "protocol.file.allow")
        .env("GIT_CONFIG_VALUE_0", "always")
        .output()
        .expect("kustomize runs");
    match out.status.success() {
        true => Ok(String::from_utf8(out.stdout).expect("utf-8")),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

#[test]
fn submodules_are_fetched_unless_the_url_says_false() {
    let servers = tempfile::tempdir().expect("temp dir");
    let (_, shared) = bare_repo(servers.path(), "shared");
    shared.write("kustomization.yaml", "resources:\n- cm.yaml\n");
    shared.write("cm.yaml", &cm("from-submodule"));
    let shared_head = shared.push("shared");
    let (bare, platform) = bare_repo(servers.path(), "platform");
    platform.write(
        ".gitmodules",
        "[submodule \"shared\"]\n\tpath = shared\n\turl = ../shared.git\n",
    );
    platform.write("base/kustomization.yaml", "resources:\n- ../shared\n");
    // The gitlink goes in after `add -A`, which would drop it (no checkout of it here).
    platform.git(&["add", "-A"]);
    platform.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{shared_head},shared"),
    ]);
    platform.git(&["commit", "-q", "-m", "platform"]);
    platform.git(&["push", "-q", "origin", "main"]);

    let app = Repo::new();
    let url = format!("file://{}//base?ref=main", bare.display());
    app.write("app/kustomization.yaml", &format!("resources:\n- {url}\n"));
    let cache = tempfile::tempdir().expect("temp dir");
    let opts = remote_opts(&app, cache.path());
    let (set, _) = render_with_reads(&app.path("app"), &opts).expect("renders");
    let yaml = set.to_yaml().expect("yaml");
    assert!(yaml.contains("name: from-submodule"), "{yaml}");
    assert_eq!(Ok(yaml), kustomize(&app.path("app")));

    // Without submodules the base names a directory with nothing in it.
    let url = format!("{url}&submodules=false");
    app.write("app/kustomization.yaml", &format!("resources:\n- {url}\n"));
    let err = render_with_reads(&app.path("app"), &opts)
        .expect_err("no submodule")
        .to_string();
    assert!(err.contains("shared"), "{err}");
    let theirs = kustomize(&app.path("app")).expect_err("kustomize fails too");
    assert!(theirs.contains("shared"), "{theirs}");
}
