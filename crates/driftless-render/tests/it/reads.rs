//! What each renderer records as read: every file, listing and probe its
//! output depends on, relative to the repository root, and nothing else.

use driftless_render::{Access, HelmOptions, ReadSet, RenderOptions, render_with_reads};

use crate::{Repo, config_map};

fn reads(repo: &Repo, dir: &str, opts: &RenderOptions) -> ReadSet {
    render_with_reads(&repo.path(dir), opts).expect("render").1
}

fn paths(set: &ReadSet) -> Vec<(&str, Access)> {
    set.paths().collect()
}

#[test]
fn plain_records_its_listings_and_files() {
    let repo = Repo::new();
    repo.write("app/a.yaml", &config_map("a", "1"));
    repo.write("app/notes.txt", "not a manifest");
    repo.write("app/sub/b.yaml", &config_map("b", "1"));
    repo.write("other/c.yaml", &config_map("c", "1"));
    let flat = reads(&repo, "app", &repo.opts());
    assert_eq!(
        paths(&flat),
        [("app", Access::Entry), ("app/a.yaml", Access::Entry)]
    );
    let mut opts = repo.opts();
    opts.plain.recursive = true;
    let deep = reads(&repo, "app", &opts);
    assert_eq!(
        paths(&deep),
        [
            ("app", Access::Entry),
            ("app/a.yaml", Access::Entry),
            ("app/sub", Access::Entry),
            ("app/sub/b.yaml", Access::Entry),
        ]
    );
}

#[test]
fn plain_records_links_as_written() {
    let repo = Repo::new();
    repo.write("shared/a.yaml", &config_map("a", "1"));
    repo.mkdir("app");
    std::os::unix::fs::symlink("../shared/a.yaml", repo.path("app/a.yaml")).expect("link");
    let set = reads(&repo, "app", &repo.opts());
    assert_eq!(
        paths(&set),
        [("app", Access::Entry), ("app/a.yaml", Access::Entry)]
    );
    // The fingerprint follows the link to the file it reads.
    let root = repo.root().canonicalize().expect("canonical");
    let before = set.fingerprint(&root);
    repo.write("shared/a.yaml", &config_map("a", "2"));
    assert_ne!(before, set.fingerprint(&root));
}

#[test]
fn kustomize_records_bases_patches_generators_and_probes() {
    let repo = Repo::new();
    repo.write(
        "base/kustomization.yaml",
        "resources:\n- deploy.yaml\nconfigMapGenerator:\n- name: env\n  envs:\n  - app.env\n",
    );
    repo.write(
        "base/deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers: [{name: web, image: nginx}]\n",
    );
    repo.write("base/app.env", "MODE=base\n");
    repo.write("base/unused.yaml", &config_map("unused", "1"));
    repo.write(
        "overlays/prod/kustomization.yaml",
        "resources:\n- ../../base\npatches:\n- path: replicas.yaml\n",
    );
    repo.write(
        "overlays/prod/replicas.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 3}\n",
    );
    repo.write(
        "overlays/dev/kustomization.yaml",
        "resources:\n- ../../base\n",
    );
    let set = reads(&repo, "overlays/prod", &repo.opts());
    let read: Vec<&str> = set.paths().map(|(p, _)| p).collect();
    for expected in [
        "overlays/prod",
        "overlays/prod/kustomization.yaml",
        // Probed: had it existed, the build would have failed.
        "overlays/prod/kustomization.yml",
        "overlays/prod/Kustomization",
        "overlays/prod/replicas.yaml",
        "overlays/prod/../../base",
        "base/kustomization.yaml",
        "base/Kustomization",
        "base/deploy.yaml",
        "base/app.env",
    ] {
        assert!(read.contains(&expected), "{expected} not in {read:?}");
    }
    for unread in ["base/unused.yaml", "overlays/dev/kustomization.yaml"] {
        assert!(!read.contains(&unread), "{unread} in {read:?}");
    }
    assert!(set.paths().all(|(_, a)| a == Access::Entry));
}

const CHART: &str = "apiVersion: v2\nname: web\nversion: 1.0.0\n";
const TEMPLATE: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  v: {{ .Values.v | quote }}\n";

#[test]
fn helm_records_the_chart_whole_and_its_values_files() {
    let repo = Repo::new();
    repo.write("charts/web/Chart.yaml", CHART);
    repo.write("charts/web/values.yaml", "v: default\n");
    repo.write("charts/web/templates/cm.yaml", TEMPLATE);
    repo.write("env/prod.yaml", "v: prod\n");
    let mut opts = repo.opts();
    opts.helm = HelmOptions {
        command: Some(crate::helm::helm()),
        values_files: vec!["../../env/prod.yaml".into()],
        ..HelmOptions::default()
    };
    let set = reads(&repo, "charts/web", &opts);
    assert_eq!(
        paths(&set),
        [
            ("charts/web", Access::Tree),
            ("charts/web/../../env/prod.yaml", Access::Entry),
        ]
    );
    let root = repo.root().canonicalize().expect("canonical");
    let before = set.fingerprint(&root);
    repo.write("charts/web/templates/extra.yaml", "# a new template\n");
    assert_ne!(before, set.fingerprint(&root), "a file added to the chart");
}

#[test]
fn kustomize_helm_charts_record_the_chart_whole() {
    let repo = Repo::new();
    repo.write("app/charts/web/Chart.yaml", CHART);
    repo.write("app/charts/web/values.yaml", "v: default\n");
    repo.write("app/charts/web/templates/cm.yaml", TEMPLATE);
    repo.write("app/values-prod.yaml", "v: prod\n");
    repo.write(
        "app/kustomization.yaml",
        "helmCharts:\n- name: web\n  releaseName: shop\n  valuesFile: values-prod.yaml\n",
    );
    let mut opts = repo.opts();
    opts.kustomize.enable_helm = true;
    opts.kustomize.helm_command = Some(crate::helm::helm());
    let set = reads(&repo, "app", &opts);
    assert_eq!(set.access("app/charts/web"), Some(Access::Tree), "{set:?}");
    assert_eq!(set.access("app/values-prod.yaml"), Some(Access::Entry));
    assert_eq!(
        set.access("app/charts"),
        Some(Access::Entry),
        "the chart home"
    );
}

#[cfg(feature = "jsonnet")]
mod jsonnet {
    use std::path::PathBuf;

    use driftless_render::{JsonnetOptions, RenderWorker};

    use super::*;

    /// A program importing from beside it, from `../lib` and from a library path.
    fn program(repo: &Repo) -> RenderOptions {
        repo.write(
            "apps/web/main.jsonnet",
            "local a = import '../lib/a.libsonnet';\nlocal b = import 'b.libsonnet';\n[a.cm('a'), b.cm('b')]\n",
        );
        let lib =
            "{ cm(name):: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: name } } }\n";
        repo.write("apps/lib/a.libsonnet", lib);
        repo.write("vendor/b.libsonnet", lib);
        repo.write("vendor/unused.libsonnet", lib);
        let mut opts = repo.opts();
        opts.jsonnet = JsonnetOptions {
            lib_paths: vec!["vendor".into()],
            ..JsonnetOptions::default()
        };
        opts
    }

    #[test]
    fn jsonnet_records_imports_and_every_place_an_import_was_looked_for() {
        let repo = Repo::new();
        let opts = program(&repo);
        let set = reads(&repo, "apps/web", &opts);
        let read: Vec<&str> = set.paths().map(|(p, _)| p).collect();
        for expected in [
            "apps/web",
            "apps/web/main.jsonnet",
            "apps/web/../lib/a.libsonnet",
            // Looked for beside the main file first, then found in the library path.
            "apps/web/b.libsonnet",
            "vendor/b.libsonnet",
        ] {
            assert!(read.contains(&expected), "{expected} not in {read:?}");
        }
        assert_eq!(set.access("vendor"), Some(Access::Kind), "a library path");
        assert!(!read.contains(&"vendor/unused.libsonnet"), "{read:?}");

        // A file appearing where an import was looked for first changes the input.
        let root = repo.root().canonicalize().expect("canonical");
        let before = set.fingerprint(&root);
        repo.write(
            "apps/web/b.libsonnet",
            "{ cm(name):: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'near-' + name } } }\n",
        );
        assert_ne!(before, set.fingerprint(&root));
    }

    #[test]
    fn the_worker_tells_the_same_reads_as_the_process() {
        let repo = Repo::new();
        let mut opts = program(&repo);
        let here = render_with_reads(&repo.path("apps/web"), &opts).expect("in process");
        opts.worker = Some(RenderWorker {
            program: PathBuf::from(env!("CARGO_BIN_EXE_driftless-render-worker")),
            args: Vec::new(),
        });
        let there = render_with_reads(&repo.path("apps/web"), &opts).expect("in the worker");
        assert_eq!(here.0.digest(), there.0.digest());
        assert_eq!(here.1, there.1);
        assert!(here.1.len() >= 6, "{:?}", here.1);
    }
}
