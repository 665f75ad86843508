//! The render cache with remote bases and files: a branch is fetched again
//! on every lookup and a render reused only while it points at the same
//! commit; a pinned commit is reused without asking the server. Read sets
//! survive a restart on disk, so the first lookup after one only asks a
//! branch where it points, or a file whether it changed.

use std::sync::atomic::Ordering;

use driftless_render::{RenderCache, Served};
use driftless_testenv::git_http::{GitServer, ServedRepo};

use super::file_server::FileServer;
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

#[test]
fn a_branch_is_reused_from_disk_after_a_restart_with_a_ref_listing_only() {
    let server = GitServer::start();
    let platform = platform(&server);
    let first = platform.push("first");
    let app = Repo::new();
    let url = format!("{}//base?ref=main", platform.url);
    app.write("app/kustomization.yaml", &format!("resources:\n- {url}\n"));
    let disk = tempfile::tempdir().expect("temp dir");
    // The source cache is on disk too, and survives the restart with it.
    let sources = tempfile::tempdir().expect("temp dir");
    let opts = remote_opts(&app, sources.path());
    let render = || {
        RenderCache::new(8)
            .with_disk(disk.path())
            .get_or_render(&app.path("app"), &opts)
            .expect("renders")
    };
    assert_eq!(render().served, Served::Rendered);

    // A new process: the branch is asked where it points, nothing fetched.
    let packs = server.http.pack_requests.load(Ordering::SeqCst);
    let requests = server.http.requests.load(Ordering::SeqCst);
    let cached = render();
    assert_eq!(cached.served, Served::Disk);
    assert_eq!(cached.remotes, [used(&url, &first)]);
    assert_eq!(crate::names(&cached.set), ["first"]);
    assert_eq!(server.http.pack_requests.load(Ordering::SeqCst), packs);
    assert!(server.http.requests.load(Ordering::SeqCst) > requests);

    // The branch moved while the process was down: rendered again.
    platform.write("base/cm.yaml", &cm("second"));
    let second = platform.push("second");
    let moved = render();
    assert_eq!(moved.served, Served::Rendered);
    assert_eq!(moved.remotes, [used(&url, &second)]);
    assert_eq!(crate::names(&moved.set), ["second"]);
}

#[test]
fn a_file_is_reused_from_disk_after_a_restart_with_one_conditional_request() {
    let server = FileServer::start(vec![("/cm.yaml".to_owned(), cm("first"))]);
    let app = Repo::new();
    let url = format!("{}/cm.yaml", server.url);
    app.write("app/kustomization.yaml", &format!("resources:\n- {url}\n"));
    let disk = tempfile::tempdir().expect("temp dir");
    let sources = tempfile::tempdir().expect("temp dir");
    let opts = remote_opts(&app, sources.path());
    let render = || {
        RenderCache::new(8)
            .with_disk(disk.path())
            .get_or_render(&app.path("app"), &opts)
            .expect("renders")
    };
    let rendered = render();
    assert_eq!(rendered.served, Served::Rendered);
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);

    // A new process: one request, answered without the file.
    let cached = render();
    assert_eq!(cached.served, Served::Disk);
    assert_eq!(cached.remotes, rendered.remotes);
    assert_eq!(crate::names(&cached.set), ["first"]);
    assert_eq!(server.requests.load(Ordering::SeqCst), 2);
    assert_eq!(server.not_modified.load(Ordering::SeqCst), 1);

    // The file changed while the process was down: rendered again.
    server.set("/cm.yaml", &cm("second"));
    let changed = render();
    assert_eq!(changed.served, Served::Rendered);
    assert_eq!(crate::names(&changed.set), ["second"]);
    assert_eq!(server.not_modified.load(Ordering::SeqCst), 1);
}
