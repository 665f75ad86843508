//! `Options::repository_root`: whatever a kustomization names (absolute
//! paths, `..`, symlinks), and whatever the load restrictor, nothing outside
//! the repository is opened.

use std::os::unix::fs::symlink;
use std::path::Path;

use driftless_kustomize::{Error, LoadRestrictor, Options, build};

use crate::support::TempTree;

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n";

/// Files beside the repository that a build must never read.
const OUTSIDE: &[(&str, &str)] = &[
    ("outside/secret.yaml", CM),
    ("outside/dir/kustomization.yaml", "resources:\n- cm.yaml\n"),
    ("outside/dir/cm.yaml", CM),
    (
        "outside/patch.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  leaked: 'yes'\n",
    ),
    (
        "outside/comp/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources:\n- cm.yaml\n",
    ),
    ("outside/comp/cm.yaml", CM),
    ("outside/schema.json", "{\"definitions\": {}}\n"),
    (
        "outside/repl.yaml",
        "- source: {kind: ConfigMap, name: cm, fieldPath: metadata.name}\n  targets: []\n",
    ),
    ("outside/conf.yaml", "namePrefix:\n- path: metadata/name\n"),
    ("outside/values.yaml", "leaked: yes\n"),
    ("outside/env", "LEAKED=yes\n"),
    (
        "outside/charts/demo/Chart.yaml",
        "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    ),
];

fn options(t: &TempTree, restrictor: LoadRestrictor) -> Options {
    Options {
        load_restrictor: restrictor,
        enable_helm: true,
        // Never run: every case is refused before helm would start.
        helm_command: Some("/nonexistent/helm".into()),
        repository_root: Some(t.0.join("repo")),
        ..Options::default()
    }
}

/// Builds `repo/app` whose kustomization is `kustomization`, expecting the
/// repository confinement to refuse it; returns the message.
fn refused(name: &str, kustomization: &str, restrictor: LoadRestrictor) -> String {
    let t = TempTree::new(name, OUTSIDE);
    let body = kustomization.replace("{outside}", &t.0.join("outside").display().to_string());
    let app = t.0.join("repo/app");
    std::fs::create_dir_all(app.join("charts/demo")).expect("app dir");
    std::fs::write(app.join("kustomization.yaml"), body).expect("kustomization");
    std::fs::write(
        app.join("charts/demo/Chart.yaml"),
        "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    )
    .expect("chart");
    refusal(&app, &options(&t, restrictor))
}

fn refusal(dir: &Path, opts: &Options) -> String {
    match build(dir, opts) {
        Err(e @ Error::OutsideRepository { .. }) => e.to_string(),
        Err(other) => panic!("expected a refusal, got: {other}"),
        Ok(list) => panic!("expected a refusal, built {} resources", list.len()),
    }
}

#[test]
fn every_kind_of_path_is_kept_inside_the_repository() {
    use LoadRestrictor::{None as Unrestricted, RootOnly};
    let cases: &[(&str, &str, LoadRestrictor)] = &[
        ("abs-dir", "resources:\n- {outside}/dir\n", RootOnly),
        ("dotdot-dir", "resources:\n- ../../outside/dir\n", RootOnly),
        (
            "abs-file",
            "resources:\n- {outside}/secret.yaml\n",
            Unrestricted,
        ),
        (
            "environ",
            "configMapGenerator:\n- name: env\n  files:\n  - environ=/proc/self/environ\n",
            Unrestricted,
        ),
        (
            "env-file",
            "configMapGenerator:\n- name: env\n  envs:\n  - ../../outside/env\n",
            Unrestricted,
        ),
        (
            "patches",
            "resources: []\npatches:\n- path: ../../outside/patch.yaml\n",
            Unrestricted,
        ),
        (
            "patches-sm",
            "patchesStrategicMerge:\n- ../../outside/patch.yaml\n",
            Unrestricted,
        ),
        (
            "components",
            "components:\n- ../../outside/comp\n",
            RootOnly,
        ),
        (
            "openapi",
            "openapi:\n  path: ../../outside/schema.json\n",
            Unrestricted,
        ),
        (
            "replacements",
            "replacements:\n- path: ../../outside/repl.yaml\n",
            Unrestricted,
        ),
        (
            "configurations",
            "configurations:\n- ../../outside/conf.yaml\n",
            Unrestricted,
        ),
        ("crds", "crds:\n- ../../outside/secret.yaml\n", Unrestricted),
        ("generators", "generators:\n- ../../outside/dir\n", RootOnly),
        ("transformers", "transformers:\n- {outside}/dir\n", RootOnly),
        (
            "helm-values",
            "helmCharts:\n- name: demo\n  valuesFile: ../../outside/values.yaml\n",
            Unrestricted,
        ),
        (
            "helm-more-values",
            "helmCharts:\n- name: demo\n  additionalValuesFiles:\n  - {outside}/values.yaml\n",
            Unrestricted,
        ),
        (
            "helm-home",
            "helmGlobals:\n  chartHome: ../../outside/charts\nhelmCharts:\n- name: demo\n",
            RootOnly,
        ),
    ];
    for (name, kustomization, restrictor) in cases {
        let msg = refused(&format!("confine-{name}"), kustomization, *restrictor);
        assert!(
            msg.contains("app/kustomization.yaml") && msg.contains("outside the repository"),
            "{name}: {msg}"
        );
    }
}

#[test]
fn a_symlink_leading_out_is_named_as_found_in_the_repository() {
    let t = TempTree::new("confine-links", OUTSIDE);
    let app = t.0.join("repo/app");
    std::fs::create_dir_all(&app).expect("app dir");
    symlink(t.0.join("outside/secret.yaml"), app.join("link.yaml")).expect("file link");
    symlink("../../outside/dir", app.join("base")).expect("dir link");
    symlink("loop", app.join("loop")).expect("self link");
    let opts = options(&t, LoadRestrictor::None);
    for (entry, link) in [
        ("link.yaml", "app/link.yaml"),
        ("base", "app/base"),
        ("base/cm.yaml", "app/base"),
        ("loop/cm.yaml", "app/loop"),
    ] {
        std::fs::write(
            app.join("kustomization.yaml"),
            format!("resources:\n- {entry}\n"),
        )
        .expect("kustomization");
        let first = refusal(&app, &opts);
        assert!(
            first.contains(&format!("symlink '{link}'")) && first.contains(entry),
            "{entry}: {first}"
        );
        assert_eq!(first, refusal(&app, &opts), "{entry}: the same every time");
    }
}

#[test]
fn a_kustomization_file_linked_from_outside_is_refused() {
    let t = TempTree::new("confine-kfile", OUTSIDE);
    let app = t.0.join("repo/app");
    std::fs::create_dir_all(&app).expect("app dir");
    symlink(
        t.0.join("outside/dir/kustomization.yaml"),
        app.join("kustomization.yaml"),
    )
    .expect("link");
    let msg = refusal(&app, &options(&t, LoadRestrictor::None));
    assert!(msg.contains("symlink 'app/kustomization.yaml'"), "{msg}");
}

#[test]
fn a_chart_holding_a_link_out_is_refused_before_helm_runs() {
    let t = TempTree::new("confine-chart", OUTSIDE);
    let app = t.0.join("repo/app");
    std::fs::create_dir_all(app.join("charts/demo/templates")).expect("chart dir");
    std::fs::write(
        app.join("charts/demo/Chart.yaml"),
        "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    )
    .expect("chart");
    symlink(
        t.0.join("outside/secret.yaml"),
        app.join("charts/demo/templates/cm.yaml"),
    )
    .expect("link");
    std::fs::write(
        app.join("kustomization.yaml"),
        "helmCharts:\n- name: demo\n",
    )
    .expect("kustomization");
    let msg = refusal(&app, &options(&t, LoadRestrictor::None));
    assert!(
        msg.contains("symlink 'app/charts/demo/templates/cm.yaml'")
            && msg.contains("helmCharts demo"),
        "{msg}"
    );
}

#[test]
fn reads_inside_the_repository_still_work() {
    let t = TempTree::new(
        "confine-inside",
        &[
            ("repo/base/kustomization.yaml", "resources:\n- cm.yaml\n"),
            ("repo/base/cm.yaml", CM),
            ("repo/shared/file.txt", "shared\n"),
            (
                "repo/overlay/kustomization.yaml",
                "resources:\n- ../base\nnamePrefix: p-\n",
            ),
            (
                "repo/loose/kustomization.yaml",
                "resources:\n- ../base\nconfigMapGenerator:\n- name: g\n  files:\n  - ../shared/file.txt\n",
            ),
        ],
    );
    let opts = options(&t, LoadRestrictor::RootOnly);
    let names = |dir: &str, opts: &Options| -> Vec<String> {
        let list = build(&t.0.join(dir), opts).expect("builds");
        list.iter().map(|r| r.name().to_string()).collect()
    };
    // A base directory beside the overlay is its own root, as in kustomize.
    assert_eq!(names("repo/overlay", &opts), vec!["p-cm"]);
    // `none` means outside the kustomization directory, inside the repository.
    let loose = Options {
        load_restrictor: LoadRestrictor::None,
        ..opts.clone()
    };
    assert_eq!(names("repo/loose", &loose).len(), 2);
    // The root-only restrictor keeps its kustomize meaning inside the repository.
    match build(&t.0.join("repo/loose"), &opts) {
        Err(Error::Restricted { path, .. }) => assert!(path.ends_with("shared/file.txt")),
        other => panic!("expected the root-only refusal, got {other:?}"),
    }
    // A path that leaves and comes back in is fine; a missing one is named.
    std::fs::write(
        t.0.join("repo/overlay/kustomization.yaml"),
        "resources:\n- ../../repo/base\n- gone.yaml\n",
    )
    .expect("rewrite");
    let msg = build(&t.0.join("repo/overlay"), &opts)
        .expect_err("gone.yaml is missing")
        .to_string();
    assert!(
        msg.contains("gone.yaml") && msg.contains("does not exist"),
        "{msg}"
    );
}
