//! HTTP(S) files named outside `resources:`: patches, generator files and
//! envs, replacements, configurations. kustomize GETs them wherever it
//! loads a file; a failure names the kustomization, the field and the URL.

use driftless_kustomize::remote::HttpAnswer;
use driftless_kustomize::{Error, Options, build};

use crate::remote::{Fixed, built, options};
use crate::support::TempTree;

const BASE: &str = "https://files.example.com/";

const PATCH: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  patched: \"yes\"\n";

fn served(files: &[(&str, &str)]) -> Fixed {
    let mut r = Fixed::default();
    for (name, body) in files {
        r.files.insert(
            format!("{BASE}{name}"),
            HttpAnswer::Body(body.as_bytes().to_vec()),
        );
    }
    r
}

fn app(kustomization: &str) -> TempTree {
    TempTree::new(
        "remote-files",
        &[
            ("app/kustomization.yaml", kustomization),
            (
                "app/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  k: v\n",
            ),
        ],
    )
}

#[test]
fn patches_generator_files_and_replacements_are_fetched() {
    let t = app(&format!(
        "resources:\n- cm.yaml\n\
         patches:\n- path: {BASE}patch.yaml\n- path: {BASE}op.yaml\n  target:\n    kind: ConfigMap\n\
         patchesStrategicMerge:\n- {BASE}patch.yaml\n\
         configMapGenerator:\n- name: gen\n  files:\n  - {BASE}dir/file.txt\n  - key={BASE}dir/file.txt\n  envs:\n  - {BASE}vars.env\n\
         replacements:\n- path: {BASE}repl.yaml\n"
    ));
    let (opts, resolver) = options(served(&[
        ("patch.yaml", PATCH),
        ("op.yaml", "- op: add\n  path: /data/op\n  value: x\n"),
        ("dir/file.txt", "hello\n"),
        ("vars.env", "A=1\n"),
        (
            "repl.yaml",
            "source:\n  kind: ConfigMap\n  name: cm\n  fieldPath: data.k\ntargets:\n- select:\n    name: gen\n  fieldPaths: [data.A]\n",
        ),
    ]));
    let out = built(&t.0.join("app"), &opts);
    // What kustomize v5.5.0 prints with the same files served over HTTP.
    assert_eq!(
        out,
        "apiVersion: v1\ndata:\n  k: v\n  op: x\n  patched: \"yes\"\nkind: ConfigMap\nmetadata:\n  name: cm\n---\n\
         apiVersion: v1\ndata:\n  A: v\n  file.txt: |\n    hello\n  key: |\n    hello\n  op: x\nkind: ConfigMap\nmetadata:\n  name: gen-24hd6m565f\n"
    );
    let asked = resolver.asked.lock().expect("not poisoned");
    assert!(asked.iter().all(|a| a.starts_with("http ")), "{asked:?}");
}

#[test]
fn a_failed_file_names_the_kustomization_field_and_url() {
    let t = app(&format!(
        "resources:\n- cm.yaml\npatches:\n- path: {BASE}missing.yaml\n"
    ));
    let mut r = Fixed::default();
    r.files
        .insert(format!("{BASE}missing.yaml"), HttpAnswer::Status(404));
    let (opts, _) = options(r);
    let err = build(&t.0.join("app"), &opts).expect_err("404");
    assert!(matches!(err, Error::RemoteFile { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.ends_with(&format!(
            "app/kustomization.yaml: patches: remote file '{BASE}missing.yaml': HTTP status code 404"
        )),
        "{text}"
    );

    // A Git URL is no file: kustomize refuses it outside resources and components.
    let git = "https://git.example.com/org/repo//env/a.env?ref=v1";
    std::fs::write(
        t.0.join("app/kustomization.yaml"),
        format!("secretGenerator:\n- name: s\n  envs:\n  - {git}\n"),
    )
    .expect("write");
    let mut r = Fixed::default();
    r.files.insert(git.into(), HttpAnswer::Status(404));
    let (opts, resolver) = options(r);
    let text = build(&t.0.join("app"), &opts)
        .expect_err("a repository")
        .to_string();
    assert!(
        text.contains(&format!("secretGenerator: remote file '{git}'")),
        "{text}"
    );
    assert!(text.contains("names a Git repository"), "{text}");
    assert_eq!(
        *resolver.asked.lock().expect("not poisoned"),
        [format!("http {git}")]
    );

    // Without a resolver nothing is fetched.
    let text = build(&t.0.join("app"), &Options::default())
        .expect_err("off")
        .to_string();
    assert!(
        text.contains(&format!(
            "app/kustomization.yaml: secretGenerator: remote file '{git}': remote resources are turned off"
        )),
        "{text}"
    );
}

#[test]
fn configurations_by_url() {
    let t = app(&format!(
        "resources:\n- cm.yaml\nconfigurations:\n- {BASE}conf.yaml\ncommonLabels:\n  team: a\n"
    ));
    // A label field spec for the data, as kustomize v5.5.0 applies it.
    let conf = "commonLabels:\n- path: data\n  create: true\n  kind: ConfigMap\n";
    let (opts, _) = options(served(&[("conf.yaml", conf)]));
    let out = built(&t.0.join("app"), &opts);
    assert_eq!(
        out,
        "apiVersion: v1\ndata:\n  k: v\n  team: a\nkind: ConfigMap\nmetadata:\n  labels:\n    team: a\n  name: cm\n"
    );
}
