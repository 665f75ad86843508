//! Remote entries through a caller's resolver: Git bases map to
//! directories of a test tree, HTTP files to fixed bodies. The real
//! fetching (Git servers, HTTP) is tested where a resolver is implemented.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use driftless_kustomize::remote::{FetchFailure, HttpAnswer, RemoteTree};
use driftless_kustomize::{Error, Options, RemoteResolver, RepoSpec, build};

use crate::support::TempTree;

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n";

/// Clone URLs to checkout directories, URLs to HTTP answers; records what
/// was asked for.
#[derive(Debug, Default)]
pub struct Fixed {
    pub repos: BTreeMap<String, PathBuf>,
    pub files: BTreeMap<String, HttpAnswer>,
    pub asked: Mutex<Vec<String>>,
}

impl RemoteResolver for Fixed {
    fn git(&self, spec: &RepoSpec) -> Result<RemoteTree, FetchFailure> {
        let url = spec.clone_url();
        let reference = spec.reference.clone().unwrap_or_default();
        self.asked
            .lock()
            .expect("not poisoned")
            .push(format!("git {url}@{reference}"));
        let dir = self
            .repos
            .get(&url)
            .ok_or_else(|| format!("fetching {url}: connection refused"))?;
        Ok(RemoteTree {
            dir: dir.clone(),
            commit: "c0ffee".into(),
        })
    }

    fn http(&self, url: &str) -> Result<HttpAnswer, FetchFailure> {
        self.asked
            .lock()
            .expect("not poisoned")
            .push(format!("http {url}"));
        self.files
            .get(url)
            .cloned()
            .ok_or_else(|| format!("GET {url}: connection refused").into())
    }
}

/// The output of a build that must succeed.
pub fn built(dir: &std::path::Path, opts: &Options) -> String {
    build(dir, opts).expect("builds").to_yaml().expect("yaml")
}

pub fn options(resolver: Fixed) -> (Options, Arc<Fixed>) {
    let resolver = Arc::new(resolver);
    let opts = Options {
        remote: Some(resolver.clone()),
        ..Options::default()
    };
    (opts, resolver)
}

/// A repository `remote/` with a base that itself names a second remote,
/// and an app whose overlay names the first.
fn trees() -> TempTree {
    TempTree::new(
        "remote",
        &[
            (
                "app/kustomization.yaml",
                "namePrefix: app-\nresources:\n- https://git.example.com/org/platform//base?ref=v1\n- https://files.example.com/extra.yaml\n",
            ),
            (
                "platform/base/kustomization.yaml",
                "resources:\n- cm.yaml\n- git@git.example.com:org/shared.git//common?ref=main\n",
            ),
            ("platform/base/cm.yaml", CM),
            (
                "shared/common/kustomization.yaml",
                "resources:\n- svc.yaml\n",
            ),
            (
                "shared/common/svc.yaml",
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc\n",
            ),
            ("outside.yaml", CM),
        ],
    )
}

fn resolver(t: &TempTree) -> Fixed {
    let mut r = Fixed::default();
    r.repos.insert(
        "https://git.example.com/org/platform".into(),
        t.0.join("platform"),
    );
    r.repos.insert(
        "git@git.example.com:org/shared.git".into(),
        t.0.join("shared"),
    );
    r.files.insert(
        "https://files.example.com/extra.yaml".into(),
        HttpAnswer::Body(b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: extra\n".to_vec()),
    );
    r
}

#[test]
fn remote_bases_nest_and_http_files_are_read() {
    let t = trees();
    let (opts, resolver) = options(resolver(&t));
    let out = built(&t.0.join("app"), &opts);
    assert_eq!(
        out,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-cm\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-extra\n---\n\
         apiVersion: v1\nkind: Service\nmetadata:\n  name: app-svc\n"
    );
    assert_eq!(
        *resolver.asked.lock().expect("not poisoned"),
        [
            "git https://git.example.com/org/platform@v1",
            "git git@git.example.com:org/shared.git@main",
            "http https://files.example.com/extra.yaml",
        ]
    );
}

#[test]
fn without_a_resolver_a_remote_entry_names_the_kustomization_and_url() {
    let t = trees();
    let err = build(&t.0.join("app"), &Options::default()).expect_err("refused");
    let text = err.to_string();
    assert!(matches!(err, Error::Remote { .. }), "{err:?}");
    assert!(text.contains("app/kustomization.yaml"), "{text}");
    assert!(
        text.contains("'https://git.example.com/org/platform//base?ref=v1'"),
        "{text}"
    );
    assert!(text.contains("turned off"), "{text}");
}

#[test]
fn a_remote_that_is_down_fails_naming_the_url() {
    let t = trees();
    let mut r = resolver(&t);
    r.repos.remove("git@git.example.com:org/shared.git");
    let (opts, _) = options(r);
    let text = build(&t.0.join("app"), &opts)
        .expect_err("down")
        .to_string();
    assert!(text.contains("platform/base/kustomization.yaml"), "{text}");
    assert!(
        text.contains("'git@git.example.com:org/shared.git//common?ref=main'"),
        "{text}"
    );
    assert!(text.contains("connection refused"), "{text}");
}

#[test]
fn an_http_error_status_is_named() {
    let t = TempTree::new(
        "remote-http",
        &[(
            "app/kustomization.yaml",
            "resources:\n- https://files.example.com/missing.yaml\n",
        )],
    );
    let mut r = Fixed::default();
    r.files.insert(
        "https://files.example.com/missing.yaml".into(),
        HttpAnswer::Status(404),
    );
    let (opts, _) = options(r);
    let text = build(&t.0.join("app"), &opts).expect_err("404").to_string();
    assert!(
        text.ends_with(
            "app/kustomization.yaml: remote resource 'https://files.example.com/missing.yaml': \
             HTTP status code 404"
        ),
        "{text}"
    );
}

#[test]
fn a_remote_base_cannot_read_outside_its_checkout() {
    let t = trees();
    // The remote base climbs out of its checkout with `..`.
    std::fs::write(
        t.0.join("platform/base/kustomization.yaml"),
        "resources:\n- ../../outside.yaml\n",
    )
    .expect("write");
    let (opts, _) = options(resolver(&t));
    let err = build(&t.0.join("app"), &opts).expect_err("refused");
    assert!(matches!(err, Error::OutsideRepository { .. }), "{err:?}");
    // And the URL itself may not leave the repository.
    std::fs::write(
        t.0.join("app/kustomization.yaml"),
        "resources:\n- https://git.example.com/org/platform//../x\n",
    )
    .expect("write");
    let (opts, resolver) = options(resolver(&t));
    let text = build(&t.0.join("app"), &opts)
        .expect_err("refused")
        .to_string();
    assert!(text.contains("url path exits repo"), "{text}");
    assert!(resolver.asked.lock().expect("not poisoned").is_empty());
}

#[test]
fn remote_components_and_missing_directories() {
    let t = TempTree::new(
        "remote-comp",
        &[
            (
                "app/kustomization.yaml",
                "resources:\n- cm.yaml\ncomponents:\n- https://git.example.com/org/comps//label\n",
            ),
            ("app/cm.yaml", CM),
            (
                "comps/label/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\ncommonLabels:\n  team: a\n",
            ),
        ],
    );
    let mut r = Fixed::default();
    r.repos.insert(
        "https://git.example.com/org/comps".into(),
        t.0.join("comps"),
    );
    let (opts, _) = options(r);
    let out = built(&t.0.join("app"), &opts);
    assert!(out.contains("team: a"), "{out}");
    std::fs::write(
        t.0.join("app/kustomization.yaml"),
        "resources:\n- https://git.example.com/org/comps//nothere\n",
    )
    .expect("write");
    let text = build(&t.0.join("app"), &opts)
        .expect_err("missing")
        .to_string();
    assert!(
        text.contains("'nothere' is not a directory of the repository"),
        "{text}"
    );
}
