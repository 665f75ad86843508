//! Artifacts pushed to and pulled from a real OCI registry (distribution's
//! `registry`), with and without authentication.

use std::collections::BTreeMap;
use std::path::Path;

use driftless_source::Auth;
use driftless_source::oci::{self, Limits, OciError, Options, Reference, Registry, artifact};
use driftless_testenv::registry::Registry as TestRegistry;

fn insecure(auth: Auth) -> Options {
    Options {
        auth,
        insecure: true,
        ..Options::default()
    }
}

fn manifests(dir: &Path, value: &str) {
    std::fs::create_dir_all(dir.join("apps")).expect("test step");
    std::fs::write(
        dir.join("apps/cm.yaml"),
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  v: {value:?}\n"),
    )
    .expect("test step");
}

#[test]
fn an_artifact_round_trips_through_the_registry_with_its_annotations() {
    let server = TestRegistry::start();
    let src = tempfile::tempdir().expect("test step");
    manifests(src.path(), "one");
    let reference = Reference::parse(&format!("oci://{}/team/manifests:v1.0.0", server.host()))
        .expect("test step");
    let registry = Registry::new(&reference, &insecure(Auth::None)).expect("test step");
    let annotations = BTreeMap::from([(
        artifact::REVISION_ANNOTATION.to_owned(),
        "main@sha1:abc".to_owned(),
    )]);
    let pushed = artifact::push(&registry, &reference, src.path(), annotations).expect("test step");
    // The same files pushed again make the same manifest: nothing new to trigger on.
    let again = artifact::push(
        &registry,
        &reference,
        src.path(),
        BTreeMap::from([(
            artifact::REVISION_ANNOTATION.to_owned(),
            "main@sha1:abc".to_owned(),
        )]),
    )
    .expect("test step");
    assert_eq!(pushed, again);

    let out = tempfile::tempdir().expect("test step");
    let pulled = artifact::pull(
        &registry,
        &reference,
        &out.path().join("a"),
        Limits::default(),
    )
    .expect("test step");
    assert_eq!(pulled.digest, pushed.digest);
    assert_eq!(
        pulled.annotations[artifact::REVISION_ANNOTATION],
        "main@sha1:abc"
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("a/apps/cm.yaml")).expect("test step"),
        std::fs::read_to_string(src.path().join("apps/cm.yaml")).expect("test step")
    );

    // By digest, and a digest that is not the content's is refused.
    let by_digest = Reference::parse(&format!("{}@{}", reference.repository_url(), pushed.digest))
        .expect("test step");
    artifact::pull(
        &registry,
        &by_digest,
        &out.path().join("b"),
        Limits::default(),
    )
    .expect("test step");
}

#[test]
fn a_version_range_picks_the_highest_matching_tag() {
    let server = TestRegistry::start();
    let src = tempfile::tempdir().expect("test step");
    let base = format!("oci://{}/app", server.host());
    let registry = Registry::new(
        &Reference::parse(&base).expect("test step"),
        &insecure(Auth::None),
    )
    .expect("test step");
    for tag in ["1.0.0", "1.1.0", "1.2.3", "v2.0.0", "latest"] {
        manifests(src.path(), tag);
        let r = Reference::parse(&format!("{base}:{tag}")).expect("test step");
        artifact::push(&registry, &r, src.path(), BTreeMap::new()).expect("test step");
    }
    let repo = Reference::parse(&base).expect("test step");
    assert_eq!(
        oci::highest_tag(&registry, &repo, ">=1.0.0 <2.0.0").expect("test step"),
        "1.2.3"
    );
    assert_eq!(
        oci::highest_tag(&registry, &repo, "^2").expect("test step"),
        "v2.0.0"
    );
    let out = tempfile::tempdir().expect("test step");
    artifact::pull(
        &registry,
        &repo.with_tag("1.2.3"),
        &out.path().join("x"),
        Limits::default(),
    )
    .expect("test step");
    assert!(
        std::fs::read_to_string(out.path().join("x/apps/cm.yaml"))
            .expect("test step")
            .contains("1.2.3")
    );
    let e = oci::highest_tag(&registry, &repo, ">=3").expect_err("must fail");
    assert!(matches!(e, OciError::NoVersion { seen: 5, .. }), "{e}");
    assert!(
        e.to_string().contains(&base) && e.to_string().contains(">=3"),
        "{e}"
    );
}

#[test]
fn a_registry_with_basic_auth_needs_the_credentials_and_never_shows_them() {
    let server = TestRegistry::with_basic_auth("ci", "s3cret-pass");
    let src = tempfile::tempdir().expect("test step");
    manifests(src.path(), "x");
    let reference =
        Reference::parse(&format!("oci://{}/private/app:1.0.0", server.host())).expect("test step");

    let anonymous = Registry::new(&reference, &insecure(Auth::None)).expect("test step");
    let e =
        artifact::push(&anonymous, &reference, src.path(), BTreeMap::new()).expect_err("must fail");
    assert!(matches!(e, OciError::Unauthorized { .. }), "{e}");
    assert!(e.to_string().contains("none are configured"), "{e}");

    let wrong = Auth::Basic {
        username: "ci".into(),
        password: "wrong-pass".into(),
    };
    let e = artifact::push(
        &Registry::new(&reference, &insecure(wrong)).expect("test step"),
        &reference,
        src.path(),
        BTreeMap::new(),
    )
    .expect_err("must fail");
    assert!(e.to_string().contains("refused the credentials"), "{e}");
    assert!(!e.to_string().contains("wrong-pass"), "{e}");

    let right = Auth::Basic {
        username: "ci".into(),
        password: "s3cret-pass".into(),
    };
    let registry = Registry::new(&reference, &insecure(right)).expect("test step");
    let pushed =
        artifact::push(&registry, &reference, src.path(), BTreeMap::new()).expect("test step");
    let out = tempfile::tempdir().expect("test step");
    let pulled = artifact::pull(
        &registry,
        &reference,
        &out.path().join("a"),
        Limits::default(),
    )
    .expect("test step");
    assert_eq!(pulled.digest, pushed.digest);
}

#[test]
fn a_tampered_layer_is_refused_and_a_registry_that_is_down_is_named() {
    let mut server = TestRegistry::start();
    let src = tempfile::tempdir().expect("test step");
    manifests(src.path(), "x");
    let reference =
        Reference::parse(&format!("oci://{}/app:1.0.0", server.host())).expect("test step");
    let registry = Registry::new(&reference, &insecure(Auth::None)).expect("test step");
    let pushed =
        artifact::push(&registry, &reference, src.path(), BTreeMap::new()).expect("test step");
    let out = tempfile::tempdir().expect("test step");

    let blob = server.blob_path(&pushed.layer);
    let mut bytes = std::fs::read(&blob).expect("test step");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, &bytes).expect("test step");
    let e = artifact::pull(
        &registry,
        &reference,
        &out.path().join("a"),
        Limits::default(),
    )
    .expect_err("must fail");
    assert!(matches!(e, OciError::Digest { .. }), "{e}");
    assert!(e.to_string().contains(&pushed.layer), "{e}");
    assert!(
        !out.path().join("a").exists(),
        "nothing unpacked from a tampered layer"
    );

    server.stop();
    let e = artifact::pull(
        &registry,
        &reference,
        &out.path().join("b"),
        Limits::default(),
    )
    .expect_err("must fail");
    assert!(matches!(e, OciError::Request { .. }), "{e}");
    assert!(e.to_string().contains(&server.host()), "{e}");
}
