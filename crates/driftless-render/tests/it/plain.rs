//! Plain manifest directories: order, globs, recursion, lists, bad input.

use driftless_render::{Error, PlainError, PlainOptions, RenderKind, render};

use crate::{Repo, config_map, names};

#[test]
fn files_are_read_in_sorted_order_with_multi_documents_and_lists() {
    let repo = Repo::new();
    repo.write(
        "app/b.yaml",
        &format!("{}---\n{}", config_map("b1", "x"), config_map("b2", "y")),
    );
    repo.write("app/a.yml", &config_map("a", "x"));
    repo.write(
        "app/c.json",
        r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"c"}}]}"#,
    );
    repo.write("app/README.md", "not a manifest");
    repo.write("app/.hidden.yaml", &config_map("hidden", "x"));
    repo.write("app/sub/d.yaml", &config_map("d", "x"));
    let set = render(&repo.path("app"), &repo.opts()).expect("render");
    assert_eq!(names(&set), ["a", "b1", "b2", "c"]);
    assert_eq!(set.items()[3].origin, "app/c.json#0 item 0");

    let mut opts = repo.opts();
    opts.plain.recursive = true;
    let set = render(&repo.path("app"), &opts).expect("render");
    assert_eq!(names(&set), ["a", "b1", "b2", "c", "d"]);
}

#[test]
fn include_and_exclude_globs() {
    let repo = Repo::new();
    for f in [
        "app/web.yaml",
        "app/db.yaml",
        "app/sub/web-extra.yaml",
        "app/sub/test.yaml",
    ] {
        let name = f
            .rsplit('/')
            .next()
            .expect("file")
            .trim_end_matches(".yaml");
        repo.write(f, &config_map(name, "x"));
    }
    let mut opts = repo.opts();
    opts.plain = PlainOptions {
        recursive: true,
        include: vec!["**/web*.yaml".into(), "db.yaml".into()],
        exclude: vec!["sub/web-*".into()],
    };
    let set = render(&repo.path("app"), &opts).expect("render");
    assert_eq!(names(&set), ["db", "web"]);

    opts.plain.include = vec!["[".into()];
    let err = render(&repo.path("app"), &opts).expect_err("bad glob");
    assert!(
        matches!(err, Error::Plain(PlainError::Glob { .. })),
        "{err}"
    );
}

#[test]
fn output_is_deterministic_and_digest_tracks_content() {
    let repo = Repo::new();
    for i in (0..30).rev() {
        repo.write(
            &format!("app/cm-{i:02}.yaml"),
            &config_map(&format!("cm-{i:02}"), "x"),
        );
    }
    let first = render(&repo.path("app"), &repo.opts()).expect("render");
    let second = render(&repo.path("app"), &repo.opts()).expect("render");
    assert_eq!(
        first.to_yaml().expect("yaml"),
        second.to_yaml().expect("yaml")
    );
    assert_eq!(first.digest(), second.digest());
    assert_eq!(names(&first)[0], "cm-00");
    repo.write("app/cm-07.yaml", &config_map("cm-07", "changed"));
    let third = render(&repo.path("app"), &repo.opts()).expect("render");
    assert_ne!(first.digest(), third.digest());
}

#[test]
fn invalid_objects_name_file_and_document() {
    let repo = Repo::new();
    repo.write(
        "app/x.yaml",
        &format!(
            "{}---\napiVersion: v1\nmetadata:\n  name: nokind\n",
            config_map("ok", "x")
        ),
    );
    let err = render(&repo.path("app"), &repo.opts()).expect_err("missing kind");
    assert_eq!(
        err.to_string(),
        "app/x.yaml#1: kind is missing or not a non-empty string"
    );

    repo.write(
        "app/x.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {}\n",
    );
    let err = render(&repo.path("app"), &repo.opts()).expect_err("missing name");
    assert_eq!(
        err.to_string(),
        "app/x.yaml#0: metadata.name is missing or not a non-empty string"
    );

    repo.write("app/x.yaml", "kind: ConfigMap\nmetadata:\n  name: a\n");
    let err = render(&repo.path("app"), &repo.opts()).expect_err("missing apiVersion");
    assert!(err.to_string().contains("apiVersion is missing"), "{err}");

    repo.write("app/x.yaml", "key: [unclosed\n");
    let err = render(&repo.path("app"), &repo.opts()).expect_err("syntax");
    assert!(err.to_string().starts_with("app/x.yaml:"), "{err}");
}

#[test]
fn duplicate_identities_name_both_files() {
    let repo = Repo::new();
    repo.write("app/one.yaml", &config_map("same", "1"));
    repo.write(
        "app/two.yaml",
        &format!(
            "{}---\n{}",
            config_map("other", "2"),
            config_map("same", "2")
        ),
    );
    let err = render(&repo.path("app"), &repo.opts()).expect_err("duplicate");
    assert_eq!(
        err.to_string(),
        "duplicate object ConfigMap same: defined at app/one.yaml#0 and at app/two.yaml#1"
    );
}

#[test]
fn yaml_bombs_deep_nesting_and_huge_files_fail_fast() {
    let repo = Repo::new();
    let mut bomb = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\ndata:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for i in 1..12 {
        let prev = i - 1;
        bomb.push_str(&format!("  a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"));
    }
    repo.write("bomb/x.yaml", &bomb);
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    repo.write("deep/x.yaml", &deep);
    let big = repo.mkdir("big").join("x.yaml");
    let file = std::fs::File::create(&big).expect("create");
    // A sparse file: its size is over the limit without writing 64 MiB.
    file.set_len(driftless_kustomize::yaml::MAX_INPUT_BYTES as u64 + 1)
        .expect("set_len");

    for dir in ["bomb", "deep", "big"] {
        let started = std::time::Instant::now();
        let err = render(&repo.path(dir), &repo.opts()).expect_err(dir);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{dir} took too long"
        );
        let msg = err.to_string();
        assert!(msg.contains("x.yaml"), "{dir}: {msg}");
        if dir == "big" {
            assert!(
                matches!(err, Error::Plain(PlainError::TooLarge { .. })),
                "{msg}"
            );
        }
    }
}

#[test]
fn explicit_kind_overrides_detection() {
    let repo = Repo::new();
    repo.write(
        "app/kustomization.yaml",
        "resources: [cm.yaml]\nnamePrefix: p-\n",
    );
    repo.write("app/cm.yaml", &config_map("a", "x"));
    let mut opts = repo.opts();
    opts.kind = Some(RenderKind::Plain);
    // As plain files, the kustomization file itself is a document without a kind.
    let err = render(&repo.path("app"), &opts).expect_err("kustomization is not an object");
    assert!(err.to_string().contains("kustomization.yaml#0"), "{err}");
    opts.plain.exclude = vec!["kustomization.yaml".into()];
    assert_eq!(
        names(&render(&repo.path("app"), &opts).expect("plain")),
        ["a"]
    );
    opts.kind = None;
    assert_eq!(
        names(&render(&repo.path("app"), &opts).expect("kustomize")),
        ["p-a"]
    );
}
