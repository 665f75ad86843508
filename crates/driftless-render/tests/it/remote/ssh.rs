//! `ssh://` remote bases served by a real sshd, rendered by driftless with
//! the App's SSH credentials and by kustomize v5.5.0 through the system git
//! and ssh with the same key and known_hosts: the outputs are the same bytes.

use std::path::Path;
use std::sync::Arc;

use driftless_render::{HostCredentials, RemoteSources, render_with_reads};
use driftless_source::{Auth, Fetcher, Tls};
use driftless_testenv::sshd::Sshd;

use super::{bare_repo, cm, used};
use crate::Repo;

/// What kustomize prints for `dir`, cloning over SSH with the test key.
fn kustomize_over_ssh(dir: &Path, sshd_dir: &Path, known_hosts: &Path) -> String {
    let ssh = format!(
        "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} \
         -o StrictHostKeyChecking=yes -o BatchMode=yes",
        sshd_dir.join("client").display(),
        known_hosts.display()
    );
    super::kustomize_build_with(dir, &[("GIT_SSH_COMMAND", ssh)])
}

fn credentials(server: &Sshd) -> HostCredentials {
    HostCredentials {
        host: "127.0.0.1".into(),
        auth: Auth::Ssh {
            private_key: server.client_key.clone(),
            passphrase: None,
            known_hosts: server.known_hosts.clone(),
        },
        tls: Tls::default(),
    }
}

#[test]
fn ssh_remote_bases_nest_and_match_kustomize_byte_for_byte() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sshd_dir = dir.path().join("sshd");
    let server = driftless_testenv::sshd::start(&sshd_dir);
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, &server.known_hosts).expect("write known_hosts");

    let (shared_bare, shared) = bare_repo(dir.path(), "shared");
    shared.write("net/kustomization.yaml", "resources:\n- svc.yaml\n");
    shared.write(
        "net/svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: api\nspec:\n  ports:\n  - port: 80\n",
    );
    let shared_head = shared.push("shared");
    shared.git(&["tag", "v2"]);
    shared.git(&["push", "-q", "origin", "v2"]);
    let nested = format!("{}//net?ref=v2", server.url(&shared_bare));

    let (bare, platform) = bare_repo(dir.path(), "platform");
    platform.write(
        "base/kustomization.yaml",
        &format!("resources:\n- cm.yaml\n- {nested}\ncommonLabels:\n  tier: platform\n"),
    );
    platform.write("base/cm.yaml", &cm("over-ssh"));
    let head = platform.push("platform");
    let url = format!("{}//base?ref=main", server.url(&bare));

    let app = Repo::new();
    app.write(
        "app/kustomization.yaml",
        &format!("namePrefix: prod-\nnamespace: web\nresources:\n- {url}\n"),
    );
    let cache = tempfile::tempdir().expect("temp dir");
    let fetcher = Arc::new(Fetcher::new(cache.path()));
    let mut sources = RemoteSources::new(fetcher.clone());
    sources.credentials = vec![credentials(&server)];
    let mut opts = app.opts();
    opts.remote = Some(sources);
    let (set, reads) = render_with_reads(&app.path("app"), &opts).expect("renders");
    let yaml = set.to_yaml().expect("yaml");
    assert!(yaml.contains("name: prod-api"), "{yaml}");
    assert_eq!(
        yaml,
        kustomize_over_ssh(&app.path("app"), &sshd_dir, &known_hosts)
    );
    assert_eq!(
        reads.remotes(),
        [used(&url, &head), used(&nested, &shared_head)]
    );
    fetcher.close_ssh_connections();
}
