//! The render cache with remote bases: a branch is fetched again on every
//! lookup and a render reused only while it points at the same commit; a
//! pinned commit is reused without asking the server.

use driftless_render::{RenderCache, Served};
use driftless_testenv::git_http::{GitServer, ServedRepo};

use super::{cm, remote_opts, used};
use crate::Repo;

fn platform(server: &GitServer) -> ServedRepo {
    let platform = ServedRepo::new(server, "platform");
    platform.write("base/kustomization.yaml", "resources:\n- cm.yaml\n");
    platform.write("base/cm.yaml", &cm("first"));
    platform
}

#[test]
fn a_branch_that_moves_is_rendered_again_and_one_that_does_not_is_reused() {
    let server = GitServer::start();
    let platform = platform(&server);
    let first = platform.push("first");
    let app = Repo::new();
    let url = format!("{}//base?ref=main", platform.url);
    app.write("app/kustomization.yaml", &format!("resources:\n- {url}\n"));
    let cache = tempfile::tempdir().expect("temp dir");
    let opts = remote_opts(&app, cache.path());
    let renders = RenderCache::new(8);
    let render = || {
        renders
            .get_or_render(&app.path("app"), &opts)
            .expect("renders")
    };
    assert_eq!(render().served, Served::Rendered);
    let again = render();
    assert_eq!(again.served, Served::Memory);
    assert_eq!(again.remotes, [used(&url, &first)]);

    // The branch moves: fetched again, rendered again, with the new commit.
    platform.write("base/cm.yaml", &cm("second"));
    let second = platform.push("second");
    let moved = render();
    assert_eq!(moved.served, Served::Rendered);
    assert_eq!(moved.remotes, [used(&url, &second)]);
    assert_eq!(crate::names(&moved.set), ["second"]);
    assert!(render().reused());
    // A local change to the App's own files renders again too.
    app.write(
        "app/kustomization.yaml",
        &format!("namePrefix: p-\nresources:\n- {url}\n"),
    );
    assert_eq!(render().served, Served::Rendered);
}

#[test]
fn a_pinned_commit_is_reused_without_the_server() {
    let server = GitServer::start();
    let platform = platform(&server);
    let first = platform.push("first");
    let app = Repo::new();
    let url = format!("{}//base?ref={first}", platform.url);
    app.write("app/kustomization.yaml", &format!("resources:\n- {url}\n"));
    let cache = tempfile::tempdir().expect("temp dir");
    let opts = remote_opts(&app, cache.path());
    let renders = RenderCache::new(8);
    let cached = renders
        .get_or_render(&app.path("app"), &opts)
        .expect("renders");
    assert_eq!(cached.served, Served::Rendered);
    drop(platform);
    drop(server);
    let cached = renders
        .get_or_render(&app.path("app"), &opts)
        .expect("reused");
    assert_eq!(cached.served, Served::Memory);
    assert_eq!(cached.remotes, [used(&url, &first)]);
    assert_eq!(crate::names(&cached.set), ["first"]);
}

#[test]
fn a_pinned_commit_is_reused_from_disk_after_a_restart_with_the_server_down() {
    let server = GitServer::start();
    let platform = platform(&server);
    let first = platform.push("first");
    let app = Repo::new();
    let pinned = format!("{}//base?ref={first}", platform.url);
    let branch = format!("{}//base?ref=main", platform.url);
    app.write(
        "pinned/kustomization.yaml",
        &format!("resources:\n- {pinned}\n"),
    );
    app.write(
        "branch/kustomization.yaml",
        &format!("resources:\n- {branch}\n"),
    );
    let disk = tempfile::tempdir().expect("temp dir");
    let sources = tempfile::tempdir().expect("temp dir");
    let opts = remote_opts(&app, sources.path());
    let before = RenderCache::new(8).with_disk(disk.path());
    for dir in ["pinned", "branch"] {
        let cached = before
            .get_or_render(&app.path(dir), &opts)
            .expect("renders");
        assert_eq!(cached.served, Served::Rendered);
    }
    drop(before);
    drop(platform);
    drop(server);

    // A new process: empty memory, an empty source cache, the server down.
    let sources = tempfile::tempdir().expect("temp dir");
    let opts = remote_opts(&app, sources.path());
    let after = RenderCache::new(8).with_disk(disk.path());
    let cached = after
        .get_or_render(&app.path("pinned"), &opts)
        .expect("reused from disk");
    assert_eq!(cached.served, Served::Disk);
    assert_eq!(cached.remotes, [used(&pinned, &first)]);
    assert_eq!(crate::names(&cached.set), ["first"]);
    // A branch must be asked where it points now, and the server is down.
    let text = after
        .get_or_render(&app.path("branch"), &opts)
        .expect_err("server down")
        .to_string();
    assert!(
        text.contains(&format!("remote resource '{branch}'")),
        "{text}"
    );
}
