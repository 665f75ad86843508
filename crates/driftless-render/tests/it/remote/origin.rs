//! `buildMetadata: [originAnnotations]` on objects of remote bases: the
//! `repo:` and `ref:` fields as kustomize v5.5.0 writes them.

use driftless_render::render_with_reads;
use driftless_testenv::git_http::{GitServer, ServedRepo};

use super::{bare_repo, cm, kustomize_build, remote_opts};
use crate::Repo;

#[test]
fn remote_objects_name_their_repository_and_ref_as_kustomize_does() {
    let server = GitServer::start();
    let platform = ServedRepo::new(&server, "platform");
    platform.write(
        "base/kustomization.yaml",
        "resources:\n- cm.yaml\n- ../common\n",
    );
    platform.write("base/cm.yaml", &cm("platform"));
    platform.write("common/kustomization.yaml", "resources:\n- cm.yaml\n");
    platform.write("common/cm.yaml", &cm("common"));
    platform.push("v1");
    platform.work.git(&["tag", "v1"]);
    platform.work.git(&["push", "-q", "origin", "v1"]);

    let servers = tempfile::tempdir().expect("temp dir");
    let (bare, shared) = bare_repo(servers.path(), "shared");
    shared.write("kustomization.yaml", "resources:\n- svc.yaml\n");
    shared.write(
        "svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc\n",
    );
    shared.push("shared");

    let app = Repo::new();
    app.write("app/local.yaml", &cm("local"));
    app.write(
        "app/kustomization.yaml",
        &format!(
            "buildMetadata: [originAnnotations]\nnamePrefix: p-\nresources:\n\
             - {}//base?ref=v1\n- file://{}?submodules=false&timeout=40s\n- local.yaml\n",
            platform.url,
            bare.display()
        ),
    );
    let cache = tempfile::tempdir().expect("temp dir");
    let (set, _) =
        render_with_reads(&app.path("app"), &remote_opts(&app, cache.path())).expect("renders");
    let yaml = set.to_yaml().expect("yaml");
    assert!(yaml.contains("ref: v1"), "{yaml}");
    assert!(yaml.contains("path: common/cm.yaml"), "{yaml}");
    assert_eq!(yaml, kustomize_build(&app.path("app")));
}
