//! Detection, kustomize through the pipeline, substitution and root escapes.

use std::collections::BTreeMap;

use driftless_kustomize::LoadRestrictor;
use driftless_render::{Error, PathError, RenderKind, RenderOptions, Substitution, detect, render};

use crate::{Repo, config_map, names};

#[test]
fn detection_by_marker_files() {
    let repo = Repo::new();
    repo.write("k1/kustomization.yaml", "resources: []\n");
    repo.write("k2/kustomization.yml", "resources: []\n");
    repo.write("k3/Kustomization", "resources: []\n");
    repo.write("h/Chart.yaml", "apiVersion: v2\nname: h\nversion: 0.1.0\n");
    repo.write("j/main.jsonnet", "{}");
    repo.write("p/x.yaml", &config_map("a", "x"));
    repo.mkdir("empty");
    let cases = [
        ("k1", RenderKind::Kustomize),
        ("k2", RenderKind::Kustomize),
        ("k3", RenderKind::Kustomize),
        ("h", RenderKind::Helm),
        ("j", RenderKind::Jsonnet),
        ("p", RenderKind::Plain),
        ("empty", RenderKind::Plain),
    ];
    for (dir, kind) in cases {
        assert_eq!(detect(&repo.path(dir)).expect(dir), kind, "{dir}");
    }
    let err = detect(&repo.path("missing")).expect_err("missing");
    assert!(matches!(err, Error::NotADirectory(_)), "{err}");
    assert_eq!("plain".parse::<RenderKind>(), Ok(RenderKind::Plain));
    assert!("ksonnet".parse::<RenderKind>().is_err());
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: ${REPLICAS:=1}
  template:
    spec:
      containers:
      - name: web
        image: nginx:${TAG}
";

fn overlay(repo: &Repo) {
    repo.write(
        "base/kustomization.yaml",
        "resources: [deploy.yaml, cm.yaml]\n",
    );
    repo.write("base/deploy.yaml", DEPLOYMENT);
    repo.write("base/cm.yaml", &config_map("settings", "${REGION}"));
    repo.write(
        "overlays/prod/kustomization.yaml",
        "resources: [../../base]\nnamespace: prod\nnamePrefix: prod-\n",
    );
}

#[test]
fn kustomize_output_equals_the_native_build() {
    let repo = Repo::new();
    overlay(&repo);
    let dir = repo.path("overlays/prod");
    let set = render(&dir, &repo.opts()).expect("render");
    let direct = driftless_kustomize::build(&dir, &driftless_kustomize::Options::default())
        .expect("direct build");
    assert_eq!(
        set.to_yaml().expect("yaml"),
        direct.to_yaml().expect("yaml")
    );
    assert_eq!(names(&set), ["prod-settings", "prod-web"]);
    assert!(set.ids().iter().all(|id| id.namespace == "prod"));
}

#[test]
fn substitution_after_kustomize_with_strict_mode() {
    let repo = Repo::new();
    overlay(&repo);
    let dir = repo.path("overlays/prod");
    let vars: BTreeMap<String, String> = [("TAG", "1.27"), ("REGION", "eu-west-1")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut opts = repo.opts();
    opts.substitute = Some(Substitution {
        vars: vars.clone(),
        strict: true,
    });
    let set = render(&dir, &opts).expect("render");
    let objects: Vec<_> = set.iter().collect();
    assert_eq!(objects[0]["data"]["v"], "eu-west-1");
    assert_eq!(objects[1]["spec"]["replicas"], 1);
    assert_eq!(
        objects[1]["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );

    let mut missing = vars;
    missing.remove("TAG");
    opts.substitute = Some(Substitution {
        vars: missing.clone(),
        strict: true,
    });
    let err = render(&dir, &opts).expect_err("TAG unset");
    let msg = err.to_string();
    assert!(msg.contains("variable TAG is not set"), "{msg}");
    assert!(msg.contains("(Deployment prod/prod-web)"), "{msg}");

    // Lenient mode writes an unset variable as nothing; the text is then read
    // back as YAML, so `image: nginx:` is no longer valid, exactly as in Flux.
    opts.substitute = Some(Substitution {
        vars: missing.clone(),
        strict: false,
    });
    let err = render(&dir, &opts).expect_err("image: nginx:");
    assert!(
        err.to_string()
            .contains("(Deployment prod/prod-web): after substitution"),
        "{err}"
    );
    missing.insert("TAG".into(), "1".into());
    missing.remove("REGION");
    opts.substitute = Some(Substitution {
        vars: missing,
        strict: false,
    });
    let set = render(&dir, &opts).expect("lenient");
    assert_eq!(
        set.iter().next().expect("cm")["data"]["v"],
        serde_json::Value::Null
    );

    // Without substitution the references stay as written.
    let set = render(&dir, &repo.opts()).expect("render");
    assert_eq!(set.iter().next().expect("cm")["data"]["v"], "${REGION}");
}

#[test]
fn directories_outside_the_root_are_refused() {
    let repo = Repo::new();
    let outside = Repo::new();
    outside.write("app/x.yaml", &config_map("a", "x"));
    repo.mkdir("apps");
    let opts = repo.opts();
    let err = render(&outside.path("app"), &opts).expect_err("outside");
    assert!(
        matches!(err, Error::Path(PathError::OutsideRoot { .. })),
        "{err}"
    );
    let err = render(&repo.path("apps/../../"), &opts).expect_err("climbs out");
    assert!(
        matches!(err, Error::Path(PathError::OutsideRoot { .. })),
        "{err}"
    );
}

#[test]
fn symlinks_leaving_the_root_are_refused() {
    let repo = Repo::new();
    let outside = Repo::new();
    outside.write("secret.yaml", &config_map("stolen", "x"));
    outside.write("dir/secret.yaml", &config_map("stolen", "x"));
    repo.write("app/ok.yaml", &config_map("ok", "x"));
    std::os::unix::fs::symlink(outside.path("secret.yaml"), repo.path("app/link.yaml"))
        .expect("symlink");
    let err = render(&repo.path("app"), &repo.opts()).expect_err("file link out");
    assert!(
        err.to_string().contains("outside the repository root"),
        "{err}"
    );
    assert!(err.to_string().contains("link.yaml"), "{err}");

    std::fs::remove_file(repo.path("app/link.yaml")).expect("rm");
    std::os::unix::fs::symlink(outside.path("dir"), repo.path("app/linkdir")).expect("symlink");
    let mut opts = repo.opts();
    opts.plain.recursive = true;
    let err = render(&repo.path("app"), &opts).expect_err("dir link out");
    assert!(
        err.to_string().contains("outside the repository root"),
        "{err}"
    );

    // Links that stay inside the root are followed, and a loop ends.
    std::fs::remove_file(repo.path("app/linkdir")).expect("rm");
    repo.write("shared/s.yaml", &config_map("shared", "x"));
    std::os::unix::fs::symlink(repo.path("shared"), repo.path("app/shared")).expect("symlink");
    std::os::unix::fs::symlink(repo.path("app"), repo.path("app/loop")).expect("symlink");
    assert_eq!(
        names(&render(&repo.path("app"), &opts).expect("inside")),
        ["ok", "shared"]
    );
}

#[test]
fn kustomize_keeps_its_load_restrictor() {
    let repo = Repo::new();
    repo.write("shared/cm.yaml", &config_map("a", "x"));
    repo.write("app/kustomization.yaml", "resources: [../shared/cm.yaml]\n");
    let err = render(&repo.path("app"), &repo.opts()).expect_err("restricted");
    assert!(matches!(err, Error::Kustomize { .. }), "{err}");
    assert!(err.to_string().contains("security"), "{err}");
}

#[test]
fn a_kustomization_cannot_reach_into_a_neighbouring_snapshot() {
    // Two snapshots side by side in one cache, as `serve` keeps them.
    let cache = Repo::new();
    cache.write(
        "1111/secret-app/kustomization.yaml",
        "resources:\n- secret.yaml\n",
    );
    cache.write(
        "1111/secret-app/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: theirs\nstringData:\n  token: s3cret\n",
    );
    let mine = cache.path("2222");
    let opts = RenderOptions::new(&mine);
    for (entry, restrictor) in [
        ("../../1111/secret-app", LoadRestrictor::RootOnly),
        (
            &*cache.path("1111/secret-app").display().to_string(),
            LoadRestrictor::RootOnly,
        ),
        ("../../1111/secret-app/secret.yaml", LoadRestrictor::None),
    ] {
        cache.write(
            "2222/app/kustomization.yaml",
            &format!("resources:\n- {entry}\n"),
        );
        let mut opts = opts.clone();
        opts.kustomize.load_restrictor = restrictor;
        let err = render(&mine.join("app"), &opts).expect_err("the other snapshot is refused");
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                Error::Kustomize {
                    source: driftless_kustomize::Error::OutsideRepository { .. },
                    ..
                }
            ),
            "{entry}: {msg}"
        );
        assert!(
            msg.contains("outside the repository root") && msg.contains(entry),
            "{msg}"
        );
    }
}

#[test]
fn empty_root_means_the_directory_itself() {
    let repo = Repo::new();
    repo.write("app/x.yaml", &config_map("a", "x"));
    let set = render(&repo.path("app"), &RenderOptions::default()).expect("render");
    assert_eq!(set.items()[0].origin, "x.yaml#0");
}

#[cfg(not(feature = "jsonnet"))]
#[test]
fn jsonnet_without_the_feature_is_a_clear_error() {
    let repo = Repo::new();
    repo.write("app/main.jsonnet", "[]");
    let err = render(&repo.path("app"), &repo.opts()).expect_err("no jsonnet");
    assert!(matches!(err, Error::JsonnetDisabled(_)), "{err}");
    assert!(err.to_string().contains("cargo feature `jsonnet`"), "{err}");
}
