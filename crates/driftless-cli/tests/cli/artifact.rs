//! `driftless artifact push|pull` against a real OCI registry: a directory
//! pushed with annotations comes back byte for byte, a version range picks
//! the highest tag, and credentials are needed, used and never printed.

use std::process::Output;

use driftless_testenv::registry::Registry;

use crate::support::{driftless, text};

fn with_password(args: &[&str], password: &str) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(args)
        .env("REGISTRY_PASSWORD", password)
        .output()
        .expect("run driftless")
}

fn write_manifests(dir: &std::path::Path, value: &str) {
    std::fs::create_dir_all(dir).expect("test step");
    std::fs::write(
        dir.join("cm.yaml"),
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  v: {value:?}\n"),
    )
    .expect("test step");
}

#[test]
fn push_then_pull_by_range_returns_the_files_and_the_revision() {
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("test step");
    let base = format!("oci://{}/ci/manifests", registry.host());
    let mut digests = Vec::new();
    for tag in ["1.0.0", "1.4.2", "2.0.0"] {
        let src = work.path().join(format!("src-{tag}"));
        write_manifests(&src, tag);
        let out = driftless(&[
            "artifact",
            "push",
            &format!("{base}:{tag}"),
            "--path",
            src.to_str().expect("test step"),
            "--annotate",
            &format!("revision=main@sha1:{tag}"),
            "--annotate",
            "team=payments",
            "--insecure",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let digest = text(&out.stdout).trim().to_owned();
        assert!(
            digest.starts_with("sha256:") && digest.len() == 71,
            "{digest}"
        );
        digests.push(digest);
    }

    let dest = work.path().join("pulled");
    let out = driftless(&[
        "artifact",
        "pull",
        &base,
        "--semver",
        ">=1.0.0 <2.0.0",
        "--output",
        dest.to_str().expect("test step"),
        "--insecure",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(printed.contains(&format!("@{}", digests[1])), "{printed}");
    assert!(printed.contains("tag: 1.4.2"), "{printed}");
    assert!(
        printed.contains("org.opencontainers.image.revision: main@sha1:1.4.2"),
        "{printed}"
    );
    assert!(printed.contains("team: payments"), "{printed}");
    assert!(
        std::fs::read_to_string(dest.join("cm.yaml"))
            .expect("test step")
            .contains("\"1.4.2\"")
    );

    // The output directory must be new: nothing is written over.
    let out = driftless(&[
        "artifact",
        "pull",
        &format!("{base}:2.0.0"),
        "--output",
        dest.to_str().expect("test step"),
        "--insecure",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        std::fs::read_to_string(dest.join("cm.yaml"))
            .expect("test step")
            .contains("\"1.4.2\"")
    );

    // A range that does not parse is an input error naming it.
    let other = work.path().join("other");
    let out = driftless(&[
        "artifact",
        "pull",
        &base,
        "--semver",
        ">=banana",
        "--output",
        other.to_str().expect("test step"),
        "--insecure",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(">=banana"),
        "{}",
        text(&out.stderr)
    );
    assert!(!other.exists());

    // A bad reference is an input error naming it.
    let out = driftless(&[
        "artifact",
        "push",
        "oci://127.0.0.1:1/Bad/Name:1",
        "--path",
        ".",
        "--insecure",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("oci://127.0.0.1:1/Bad/Name:1"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_registry_with_credentials_refuses_without_them_and_the_password_is_never_printed() {
    let registry = Registry::with_basic_auth("ci", "registry-pass-123");
    let work = tempfile::tempdir().expect("test step");
    let src = work.path().join("src");
    write_manifests(&src, "x");
    let url = format!("oci://{}/private/app:1.0.0", registry.host());
    let push = |password: &str, extra: &[&str]| {
        let mut args = vec![
            "artifact",
            "push",
            url.as_str(),
            "--path",
            src.to_str().expect("test step"),
            "--insecure",
        ];
        args.extend_from_slice(extra);
        with_password(&args, password)
    };

    let out = push("", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("none are configured"),
        "{}",
        text(&out.stderr)
    );

    let out = push(
        "wrong-pass-456",
        &["--username", "ci", "--password-env", "REGISTRY_PASSWORD"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("refused the credentials"), "{stderr}");
    assert!(!stderr.contains("wrong-pass-456"), "{stderr}");

    let out = push(
        "registry-pass-123",
        &["--username", "ci", "--password-env", "REGISTRY_PASSWORD"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("registry-pass-123"));

    let dest = work.path().join("out");
    let out = with_password(
        &[
            "artifact",
            "pull",
            &url,
            "--output",
            dest.to_str().expect("test step"),
            "--insecure",
            "--digest-only",
            "--username",
            "ci",
            "--password-env",
            "REGISTRY_PASSWORD",
        ],
        "registry-pass-123",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(dest.join("cm.yaml").is_file());
}
