//! Error messages name the file at fault, and the load restrictor holds.

use std::path::Path;

use driftless_kustomize::{LoadRestrictor, Options, build};

use crate::support::TempTree;

fn error_of(dir: &Path, opts: &Options) -> String {
    match build(dir, opts) {
        Ok(list) => panic!("expected an error, got {} resources", list.len()),
        Err(e) => e.to_string(),
    }
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n";

#[test]
fn unknown_field_names_the_kustomization_file() {
    let t = TempTree::new(
        "unknown",
        &[("kustomization.yaml", "resources: []\nnameprefx: a-\n")],
    );
    let msg = error_of(&t.0, &Options::default());
    assert!(
        msg.contains("kustomization.yaml") && msg.contains("nameprefx"),
        "{msg}"
    );
}

#[test]
fn missing_resource_names_the_missing_path() {
    let t = TempTree::new(
        "missing",
        &[("kustomization.yaml", "resources:\n- gone.yaml\n")],
    );
    let msg = error_of(&t.0, &Options::default());
    assert!(
        msg.contains("gone.yaml") && msg.contains("kustomization.yaml"),
        "{msg}"
    );
}

#[test]
fn external_plugins_are_refused_naming_the_kustomization() {
    let function = "apiVersion: fn.example.com/v1\nkind: SetTeam\nmetadata:\n  name: t\n  \
                    annotations:\n    config.kubernetes.io/function: |\n      \
                    container:\n        image: example.com/set-team:1\n";
    let t = TempTree::new(
        "plugins",
        &[
            ("cm.yaml", CM),
            ("fn.yaml", function),
            (
                "base/kustomization.yaml",
                "resources:\n- ../cm.yaml\ntransformers:\n- ../fn.yaml\n",
            ),
            ("kustomization.yaml", "resources:\n- base\n"),
        ],
    );
    let opts = Options {
        load_restrictor: LoadRestrictor::None,
        ..Options::default()
    };
    let msg = error_of(&t.0, &opts);
    assert!(
        msg.starts_with(&format!(
            "{}: ",
            t.0.join("base/kustomization.yaml").display()
        )) && msg.contains("external transformer plugins are not supported")
            && msg.contains("container KRM function"),
        "{msg}"
    );
    let exec_generator = TempTree::new(
        "plugins-exec",
        &[(
            "kustomization.yaml",
            "generators:\n- |-\n  apiVersion: fn.example.com/v1\n  kind: MakeThings\n  \
             metadata:\n    name: g\n    annotations:\n      \
             config.kubernetes.io/function: \"exec:\\n  path: ./gen\"\n",
        )],
    );
    let msg = error_of(&exec_generator.0, &Options::default());
    assert!(
        msg.contains("kustomization.yaml: external generator plugins are not supported")
            && msg.contains("exec KRM function"),
        "{msg}"
    );
}

#[test]
fn a_component_of_the_wrong_api_version_is_refused_naming_its_file() {
    let t = TempTree::new(
        "component-version",
        &[
            ("cm.yaml", CM),
            (
                "kustomization.yaml",
                "resources:\n- cm.yaml\ncomponents:\n- comp\n",
            ),
            (
                "comp/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Component\nnamePrefix: a-\n",
            ),
        ],
    );
    let msg = error_of(&t.0, &Options::default());
    assert!(
        msg.contains("comp/kustomization.yaml")
            && msg.contains("apiVersion for Component should be kustomize.config.k8s.io/v1alpha1"),
        "{msg}"
    );
}

#[test]
fn a_file_listed_as_a_component_is_refused_in_kustomizes_words() {
    let t = TempTree::new(
        "component-file",
        &[
            ("cm.yaml", CM),
            ("kustomization.yaml", "components:\n- cm.yaml\n"),
        ],
    );
    let msg = error_of(&t.0, &Options::default());
    let expected = format!(
        "'{}' must be a directory to be a root",
        t.0.join("cm.yaml").display()
    );
    assert!(msg.contains(&expected), "{msg}");
}

#[test]
fn cycles_are_reported() {
    let t = TempTree::new(
        "cycle",
        &[
            ("a/kustomization.yaml", "resources:\n- ../b\n"),
            ("b/kustomization.yaml", "resources:\n- ../a\n"),
        ],
    );
    let msg = error_of(&t.0.join("a"), &Options::default());
    assert!(msg.contains("cycle"), "{msg}");
}

#[test]
fn files_outside_the_root_need_load_restrictions_none() {
    let t = TempTree::new(
        "restrict",
        &[
            ("app/kustomization.yaml", "resources:\n- ../outside.yaml\n"),
            ("outside.yaml", CM),
        ],
    );
    let msg = error_of(&t.0.join("app"), &Options::default());
    assert!(
        msg.contains("outside.yaml") && msg.contains("LoadRestrictionsNone"),
        "{msg}"
    );
    let opts = Options {
        load_restrictor: LoadRestrictor::None,
        ..Options::default()
    };
    let list = build(&t.0.join("app"), &opts).expect("allowed without restrictions");
    assert_eq!(list.iter().map(|r| r.name()).collect::<Vec<_>>(), vec!["x"]);
}

#[cfg(unix)]
#[test]
fn symlinks_escaping_the_root_are_refused() {
    let t = TempTree::new(
        "symlink",
        &[
            ("app/kustomization.yaml", "resources:\n- link.yaml\n"),
            ("secret.yaml", CM),
        ],
    );
    std::os::unix::fs::symlink(t.0.join("secret.yaml"), t.0.join("app/link.yaml"))
        .expect("symlink");
    let msg = error_of(&t.0.join("app"), &Options::default());
    assert!(
        msg.contains("secret.yaml") && msg.contains("security"),
        "{msg}"
    );
}

#[test]
fn helm_charts_need_helm_enabled() {
    let t = TempTree::new(
        "helm",
        &[(
            "kustomization.yaml",
            "helmCharts:\n- name: app\n  repo: https://charts.example.com\n",
        )],
    );
    let msg = error_of(&t.0, &Options::default());
    assert!(
        msg.contains("enable-helm") && msg.contains("kustomization.yaml"),
        "{msg}"
    );
}

#[test]
fn resources_expose_identity_and_json() {
    let t = TempTree::new(
        "api",
        &[
            (
                "kustomization.yaml",
                "namespace: ns\nresources:\n- cm.yaml\n",
            ),
            ("cm.yaml", CM),
        ],
    );
    let list = build(&t.0, &Options::default()).expect("builds");
    let r = list.iter().next().expect("one resource");
    assert_eq!(
        (r.api_version(), r.kind(), r.name(), r.namespace()),
        ("v1", "ConfigMap", "x", Some("ns"))
    );
    assert_eq!(r.to_json()["metadata"]["namespace"], "ns");
    assert_eq!(
        list.to_yaml().expect("yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: ns\n"
    );
}
