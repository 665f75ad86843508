//! Remote kustomize resources fetched through driftless-source from local
//! servers (smart HTTP, `file://`, SSH) and a loopback HTTP file server;
//! outputs compared with kustomize v5.5.0 where it reaches the same servers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use driftless_render::{
    Error, HostCredentials, RemoteSources, RemoteUse, RenderCache, RenderOptions, render_with_reads,
};
use driftless_source::{Auth, Fetcher, Tls};
use driftless_testenv::git::{GitRepo, init_bare};
use driftless_testenv::git_http::{GitServer, ServedRepo};

use crate::Repo;

mod cache;
mod file_server;
mod files;
mod helm_values;
mod origin;
mod ssh;
mod submodules;

use file_server::FileServer;

pub(crate) fn cm(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n")
}

/// Options for `app` with remote resources fetched into `cache`.
pub(crate) fn remote_opts(app: &Repo, cache: &Path) -> RenderOptions {
    let mut opts = app.opts();
    opts.remote = Some(RemoteSources::new(Arc::new(Fetcher::new(cache))));
    opts
}

/// What kustomize v5.5.0 prints for `dir` (it clones with the system git).
pub(crate) fn kustomize_build(dir: &Path) -> String {
    kustomize_build_with(dir, &[])
}

/// [`kustomize_build`] with extra environment for the git it runs.
pub(crate) fn kustomize_build_with(dir: &Path, env: &[(&str, String)]) -> String {
    let out = Command::new(driftless_testenv::tools::kustomize())
        .arg("build")
        .arg(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("kustomize runs");
    assert!(
        out.status.success(),
        "kustomize build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// A bare repository at `dir/NAME.git` with a clone that pushes to it.
pub(crate) fn bare_repo(dir: &Path, name: &str) -> (PathBuf, GitRepo) {
    let bare = dir.join(format!("{name}.git"));
    init_bare(&bare);
    let work = GitRepo::with_origin(&bare);
    (bare, work)
}

pub(crate) fn used(url: &str, revision: &str) -> RemoteUse {
    RemoteUse {
        url: url.to_owned(),
        revision: revision.to_owned(),
    }
}

#[test]
fn http_remote_base_at_a_tag_matches_kustomize_and_is_cached() {
    let server = GitServer::start();
    let platform = ServedRepo::new(&server, "platform");
    platform.write("base/kustomization.yaml", "resources:\n- cm.yaml\n");
    platform.write("base/cm.yaml", &cm("platform"));
    let v1 = platform.push("v1");
    platform.work.git(&["tag", "v1"]);
    platform.work.git(&["push", "-q", "origin", "v1"]);
    // The branch moves on; the tag stays.
    platform.write("base/cm.yaml", &cm("later"));
    platform.push("later");

    let app = Repo::new();
    let url = format!("{}//base?ref=v1", platform.url);
    app.write(
        "app/kustomization.yaml",
        &format!("namePrefix: app-\nresources:\n- {url}\n"),
    );
    let cache = tempfile::tempdir().expect("temp dir");
    let opts = remote_opts(&app, cache.path());
    let (set, reads) = render_with_reads(&app.path("app"), &opts).expect("renders");
    let yaml = set.to_yaml().expect("yaml");
    assert!(yaml.contains("name: app-platform"), "{yaml}");
    assert_eq!(yaml, kustomize_build(&app.path("app")));
    assert_eq!(reads.remotes(), [used(&url, &v1)]);

    // A tag that did not move: the second render is reused.
    let renders = RenderCache::new(8);
    for reused in [false, true] {
        let cached = renders
            .get_or_render(&app.path("app"), &opts)
            .expect("renders");
        assert_eq!(cached.reused(), reused);
        assert_eq!(cached.remotes, [used(&url, &v1)]);
    }
}

#[test]
fn file_remote_bases_nest_and_match_kustomize() {
    let servers = tempfile::tempdir().expect("temp dir");
    let (shared_bare, shared) = bare_repo(servers.path(), "shared");
    shared.write("common/kustomization.yaml", "resources:\n- svc.yaml\n");
    shared.write(
        "common/svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc\nspec:\n  ports:\n  - port: 80\n",
    );
    let shared_head = shared.push("shared");
    let (platform_bare, platform) = bare_repo(servers.path(), "platform");
    let nested = format!("file://{}//common", shared_bare.display());
    platform.write(
        "base/kustomization.yaml",
        &format!("resources:\n- cm.yaml\n- {nested}\n"),
    );
    platform.write("base/cm.yaml", &cm("platform"));
    let platform_head = platform.push("platform");

    let app = Repo::new();
    let url = format!("file://{}//base?ref=main", platform_bare.display());
    app.write(
        "app/kustomization.yaml",
        &format!("namespace: web\nresources:\n- {url}\n"),
    );
    let cache = tempfile::tempdir().expect("temp dir");
    let (set, reads) =
        render_with_reads(&app.path("app"), &remote_opts(&app, cache.path())).expect("renders");
    assert_eq!(
        set.to_yaml().expect("yaml"),
        kustomize_build(&app.path("app"))
    );
    assert_eq!(
        reads.remotes(),
        [used(&url, &platform_head), used(&nested, &shared_head)]
    );
}

#[test]
fn a_remote_base_reads_nothing_outside_its_checkout() {
    let servers = tempfile::tempdir().expect("temp dir");
    let (bare, platform) = bare_repo(servers.path(), "platform");
    platform.write(
        "base/kustomization.yaml",
        "resources:\n- ../../../secret.yaml\n",
    );
    platform.push("escape");
    let app = Repo::new();
    app.write("secret.yaml", &cm("secret"));
    let url = format!("file://{}//base", bare.display());
    app.write("app/kustomization.yaml", &format!("resources:\n- {url}\n"));
    let cache = tempfile::tempdir().expect("temp dir");
    let opts = remote_opts(&app, cache.path());
    let err = render_with_reads(&app.path("app"), &opts).expect_err("refused");
    assert!(
        matches!(
            &err,
            Error::Kustomize {
                source: driftless_kustomize::Error::OutsideRepository { .. },
                ..
            }
        ),
        "{err}"
    );
    // A URL whose directory climbs out of the repository is never fetched.
    let url = format!("file://{}//base/../../x", bare.display());
    app.write("app/kustomization.yaml", &format!("resources:\n- {url}\n"));
    let text = render_with_reads(&app.path("app"), &opts)
        .expect_err("refused")
        .to_string();
    assert!(text.contains("url path exits repo"), "{text}");
}

#[test]
fn a_remote_that_is_down_fails_naming_the_url() {
    let port = driftless_testenv::servers::free_port();
    let url = format!("http://127.0.0.1:{port}/platform.git//base?ref=v1");
    let app = Repo::new();
    app.write("app/kustomization.yaml", &format!("resources:\n- {url}\n"));
    let cache = tempfile::tempdir().expect("temp dir");
    let renders = RenderCache::new(8);
    let err = renders
        .get_or_render(&app.path("app"), &remote_opts(&app, cache.path()))
        .expect_err("down");
    let text = err.to_string();
    assert!(text.contains(&format!("remote resource '{url}'")), "{text}");
    assert!(text.contains("app/kustomization.yaml"), "{text}");
    assert_eq!(renders.stats().misses, 1);
}

#[test]
fn with_remote_resources_off_an_entry_fails_naming_the_url() {
    let app = Repo::new();
    let url = "https://git.example.com/org/platform//base?ref=v1";
    app.write("app/kustomization.yaml", &format!("resources:\n- {url}\n"));
    let err = render_with_reads(&app.path("app"), &app.opts()).expect_err("off");
    let text = err.to_string();
    assert!(text.contains(&format!("remote resource '{url}'")), "{text}");
    assert!(text.contains("turned off"), "{text}");
}

#[test]
fn http_files_are_read_and_error_statuses_named() {
    let server = FileServer::start(vec![("/cm.yaml".into(), cm("remote-file"))]);
    let app = Repo::new();
    let url = format!("{}/cm.yaml", server.url);
    app.write(
        "app/kustomization.yaml",
        &format!("namePrefix: x-\nresources:\n- {url}\n"),
    );
    let cache = tempfile::tempdir().expect("temp dir");
    let opts = remote_opts(&app, cache.path());
    let (set, reads) = render_with_reads(&app.path("app"), &opts).expect("renders");
    assert_eq!(
        set.to_yaml().expect("yaml"),
        kustomize_build(&app.path("app"))
    );
    let [remote] = reads.remotes() else {
        panic!("one remote: {:?}", reads.remotes());
    };
    assert_eq!(remote.url, url);
    assert!(remote.revision.starts_with("sha256:"), "{remote:?}");

    let missing = format!("{}/missing.yaml", server.url);
    app.write(
        "app/kustomization.yaml",
        &format!("resources:\n- {missing}\n"),
    );
    let text = render_with_reads(&app.path("app"), &opts)
        .expect_err("404")
        .to_string();
    assert!(
        text.contains(&format!(
            "remote resource '{missing}': HTTP status code 404"
        )),
        "{text}"
    );
}

#[test]
fn ssh_remote_bases_use_the_credentials_of_their_host() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = driftless_testenv::sshd::start(&dir.path().join("sshd"));
    let (bare, platform) = bare_repo(dir.path(), "platform");
    platform.write("base/kustomization.yaml", "resources:\n- cm.yaml\n");
    platform.write("base/cm.yaml", &cm("over-ssh"));
    let head = platform.push("ssh");
    let url = format!("{}//base?ref=main", server.url(&bare));
    let app = Repo::new();
    app.write("app/kustomization.yaml", &format!("resources:\n- {url}\n"));
    let cache = tempfile::tempdir().expect("temp dir");
    let fetcher = Arc::new(Fetcher::new(cache.path()));
    let mut sources = RemoteSources::new(fetcher.clone());
    let mut opts = app.opts();
    // Credentials of another host are not offered.
    sources.credentials = vec![HostCredentials {
        host: "git.example.com".into(),
        auth: Auth::Ssh {
            private_key: server.client_key.clone(),
            passphrase: None,
            known_hosts: server.known_hosts.clone(),
        },
        tls: Tls::default(),
    }];
    opts.remote = Some(sources.clone());
    let text = render_with_reads(&app.path("app"), &opts)
        .expect_err("no credentials")
        .to_string();
    assert!(text.contains(&format!("remote resource '{url}'")), "{text}");
    sources.credentials[0].host = "127.0.0.1".into();
    opts.remote = Some(sources);
    let (set, reads) = render_with_reads(&app.path("app"), &opts).expect("renders");
    assert_eq!(crate::names(&set), ["over-ssh"]);
    assert_eq!(reads.remotes(), [used(&url, &head)]);
    fetcher.close_ssh_connections();
}

#[test]
fn remotes_per_render_are_bounded() {
    let servers = tempfile::tempdir().expect("temp dir");
    let (shared_bare, shared) = bare_repo(servers.path(), "shared");
    shared.write("common/kustomization.yaml", "resources:\n- cm.yaml\n");
    shared.write("common/cm.yaml", &cm("shared"));
    shared.push("shared");
    let (platform_bare, platform) = bare_repo(servers.path(), "platform");
    let nested = format!("file://{}//common", shared_bare.display());
    platform.write(
        "base/kustomization.yaml",
        &format!("resources:\n- {nested}\n"),
    );
    platform.push("platform");
    let app = Repo::new();
    let url = format!("file://{}//base", platform_bare.display());
    app.write("app/kustomization.yaml", &format!("resources:\n- {url}\n"));
    let cache = tempfile::tempdir().expect("temp dir");
    let mut opts = remote_opts(&app, cache.path());
    if let Some(sources) = &mut opts.remote {
        sources.max_remotes = 1;
    }
    let text = render_with_reads(&app.path("app"), &opts)
        .expect_err("over the bound")
        .to_string();
    assert!(
        text.contains(&format!(
            "remote resource '{nested}': more than 1 remote resources in one render"
        )),
        "{text}"
    );
}

#[test]
fn the_timeout_parameter_bounds_a_fetch() {
    let server = GitServer::start_with(driftless_testenv::git_http::Options {
        stall_fetch: Some(std::time::Duration::from_secs(30)),
        ..Default::default()
    });
    let platform = ServedRepo::new(&server, "platform");
    platform.write("base/kustomization.yaml", "resources: []\n");
    platform.push("base");
    let app = Repo::new();
    let url = format!("{}//base?ref=main&timeout=2", platform.url);
    app.write("app/kustomization.yaml", &format!("resources:\n- {url}\n"));
    let cache = tempfile::tempdir().expect("temp dir");
    let started = std::time::Instant::now();
    let text = render_with_reads(&app.path("app"), &remote_opts(&app, cache.path()))
        .expect_err("stalled")
        .to_string();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{text}"
    );
    assert!(text.contains(&format!("remote resource '{url}'")), "{text}");
    assert!(text.contains("2s"), "{text}");
}
