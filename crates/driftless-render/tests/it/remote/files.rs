//! HTTP(S) files in patches, generators and configuration fields, fetched
//! from a loopback server and compared with kustomize v5.5.0 reading the
//! same server.

use driftless_render::{RenderCache, render_with_reads};

use super::file_server::FileServer;
use super::{cm, kustomize_build, remote_opts};
use crate::Repo;

fn served() -> FileServer {
    let patch =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  patched: \"yes\"\n";
    FileServer::start(
        [
            ("/patch.yaml", patch),
            ("/op.yaml", "- op: add\n  path: /data/op\n  value: x\n"),
            ("/conf/settings.ini", "[main]\nmode = fast\n"),
            ("/vars.env", "A=1\nB=two\n"),
        ]
        .into_iter()
        .map(|(p, b)| (p.to_owned(), b.to_owned()))
        .collect(),
    )
}

#[test]
fn patch_and_generator_files_by_url_match_kustomize() {
    let server = served();
    let u = &server.url;
    let app = Repo::new();
    app.write("app/cm.yaml", &cm("app"));
    app.write(
        "app/kustomization.yaml",
        &format!(
            "resources:\n- cm.yaml\n\
             patches:\n- path: {u}/patch.yaml\n- path: {u}/op.yaml\n  target:\n    kind: ConfigMap\n    name: app\n\
             configMapGenerator:\n- name: gen\n  files:\n  - {u}/conf/settings.ini\n  - renamed={u}/conf/settings.ini\n  envs:\n  - {u}/vars.env\n\
             secretGenerator:\n- name: sec\n  files:\n  - {u}/conf/settings.ini\n"
        ),
    );
    let cache = tempfile::tempdir().expect("temp dir");
    let opts = remote_opts(&app, cache.path());
    let (set, reads) = render_with_reads(&app.path("app"), &opts).expect("renders");
    let yaml = set.to_yaml().expect("yaml");
    assert!(yaml.contains("patched: \"yes\""), "{yaml}");
    assert_eq!(yaml, kustomize_build(&app.path("app")));
    // Each file once (the settings file is read three times), with the
    // digest of its body.
    let mut urls: Vec<&str> = reads.remotes().iter().map(|r| r.url.as_str()).collect();
    urls.sort_unstable();
    let want: Vec<String> = ["conf/settings.ini", "op.yaml", "patch.yaml", "vars.env"]
        .iter()
        .map(|f| format!("{u}/{f}"))
        .collect();
    assert_eq!(urls, want);
    assert!(
        reads
            .remotes()
            .iter()
            .all(|r| r.revision.starts_with("sha256:")),
        "{:?}",
        reads.remotes()
    );
}

#[test]
fn a_missing_patch_file_fails_as_in_kustomize_naming_the_field() {
    let server = served();
    let missing = format!("{}/missing.yaml", server.url);
    let app = Repo::new();
    app.write("app/cm.yaml", &cm("app"));
    app.write(
        "app/kustomization.yaml",
        &format!("resources:\n- cm.yaml\npatches:\n- path: {missing}\n"),
    );
    let out = std::process::Command::new(driftless_testenv::tools::kustomize())
        .arg("build")
        .arg(app.path("app"))
        .output()
        .expect("kustomize runs");
    assert!(!out.status.success(), "kustomize refuses it too");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("status code 404"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cache = tempfile::tempdir().expect("temp dir");
    let renders = RenderCache::new(4);
    let text = renders
        .get_or_render(&app.path("app"), &remote_opts(&app, cache.path()))
        .expect_err("404")
        .to_string();
    assert!(
        text.contains(&format!(
            "app/kustomization.yaml: patches: remote file '{missing}': HTTP status code 404"
        )),
        "{text}"
    );

    // With remote resources off, the file is refused before anything is asked.
    let text = render_with_reads(&app.path("app"), &app.opts())
        .expect_err("off")
        .to_string();
    assert!(
        text.contains(&format!(
            "patches: remote file '{missing}': remote resources are turned off"
        )),
        "{text}"
    );
}
