//! Snapshot export: content addressing, ignore files, limits, symlink safety, GC.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use driftless_source::{Fetcher, Limits, RefSpec, Snapshot, SnapshotError, SourceSpec};

use crate::support::{Fixture, git};

fn setup(files: &[(&str, &str)]) -> (Fixture, tempfile::TempDir, Fetcher, SourceSpec) {
    let fx = Fixture::new(files);
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::new(cache.path());
    let spec = SourceSpec::new(fx.bare_url(), RefSpec::Branch("main".into()));
    (fx, cache, fetcher, spec)
}

fn take(fetcher: &Fetcher, spec: &SourceSpec, subpath: &str) -> Result<Snapshot, SnapshotError> {
    let rev = fetcher.fetch(spec).expect("fetch");
    fetcher.snapshot(spec, &rev, subpath)
}

#[test]
fn snapshot_is_read_only_and_shared_by_tree() {
    let (fx, _cache, fetcher, spec) =
        setup(&[("apps/web/a.yaml", "a\n"), ("run.sh", "#!/bin/sh\n")]);
    git(&fx.work, &["update-index", "--chmod=+x", "run.sh"]);
    git(&fx.work, &["commit", "-q", "-m", "exec"]);
    fx.push();
    let snap = take(&fetcher, &spec, "").expect("snapshot");
    assert_eq!(snap.tree, git(&fx.work, &["rev-parse", "HEAD^{tree}"]));
    assert!(
        snap.dir.ends_with(&snap.tree),
        "named by tree id: {:?}",
        snap.dir
    );
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&snap.dir.join("apps/web/a.yaml")), 0o444);
    assert_eq!(mode(&snap.dir.join("run.sh")), 0o555);
    assert_eq!(mode(&snap.dir.join("apps")), 0o555);

    // A new commit with the same tree of the sub-path reuses the same export.
    let sub = take(&fetcher, &spec, "apps/web").expect("sub-path");
    fx.commit(&[("other.txt", "x\n")], "Unrelated change");
    fx.push();
    let sub_again = take(&fetcher, &spec, "/apps/web/").expect("sub-path again");
    assert_ne!(sub.commit, sub_again.commit);
    assert_eq!(sub.dir, sub_again.dir);
    assert_eq!(
        std::fs::read_to_string(sub.dir.join("a.yaml")).expect("read"),
        "a\n"
    );

    let other = SourceSpec::new(
        fx.served.join("other.git").display().to_string(),
        spec.reference.clone(),
    );
    let rev = fetcher.fetch(&spec).expect("fetch");
    let err = fetcher
        .snapshot(&other, &rev, "")
        .expect_err("not fetched from that URL");
    assert!(
        matches!(err, SnapshotError::CommitNotCached { .. }),
        "{err}"
    );
    let err = take(&fetcher, &spec, "apps/missing").expect_err("missing path");
    assert!(
        err.to_string()
            .contains("`apps/missing` is not a directory"),
        "{err}"
    );
}

#[test]
fn ignore_file_and_extra_patterns_are_honoured() {
    let (_fx, _cache, fetcher, mut spec) = setup(&[
        (".driftlessignore", "# comment\n*.md\ndocs/\n!keep.md\n"),
        ("README.md", "readme\n"),
        ("keep.md", "kept\n"),
        ("docs/guide.txt", "guide\n"),
        ("app/deploy.yaml", "d\n"),
        ("app/test.yaml", "t\n"),
        ("app/.driftlessignore", "*.txt\n!notes.md\n"),
        ("app/notes.md", "n\n"),
        ("app/scratch.txt", "s\n"),
        ("top.txt", "t\n"),
    ]);
    let snap = take(&fetcher, &spec, "").expect("snapshot");
    assert!(!snap.dir.join("README.md").exists());
    assert!(!snap.dir.join("docs").exists());
    assert!(snap.dir.join("keep.md").is_file());
    assert!(snap.dir.join("app/test.yaml").is_file());
    // A nested ignore file applies below its directory and can re-include.
    assert!(!snap.dir.join("app/scratch.txt").exists());
    assert!(snap.dir.join("top.txt").is_file());
    assert!(snap.dir.join("app/notes.md").is_file());
    spec.ignore = vec!["app/test.yaml".into()];
    let filtered = take(&fetcher, &spec, "").expect("snapshot with extra ignore");
    assert_ne!(
        filtered.dir, snap.dir,
        "different patterns give a different export"
    );
    assert!(!filtered.dir.join("app/test.yaml").exists());
    assert!(filtered.dir.join("app/deploy.yaml").is_file());
}

#[test]
fn escaping_symlinks_are_written_as_links_to_themselves() {
    let (fx, _cache, fetcher, spec) = setup(&[("app/a.yaml", "a\n")]);
    std::os::unix::fs::symlink("a.yaml", fx.work.join("app/inner")).expect("symlink");
    // `here -> .` is harmless; `app/up -> ../here/..` climbs out through it.
    std::os::unix::fs::symlink(".", fx.work.join("here")).expect("symlink");
    std::os::unix::fs::symlink("../here/..", fx.work.join("app/up")).expect("symlink");
    fx.commit(&[], "Links");
    fx.push();
    let snap = take(&fetcher, &spec, "").expect("an escaping link does not fail the export");
    let target = |p: &str| std::fs::read_link(snap.dir.join(p)).expect("link kept");
    assert_eq!(target("app/inner").to_str(), Some("a.yaml"));
    assert_eq!(target("here").to_str(), Some("."));
    assert_eq!(target("app/up").to_str(), Some("up"), "a link to itself");
    assert!(snap.dir.join("app/up").canonicalize().is_err());

    // Exported alone, `app` holds `up` too, which now leaves at its first `..`.
    let sub = take(&fetcher, &spec, "app").expect("sub-path export");
    assert_eq!(
        std::fs::read_link(sub.dir.join("up"))
            .expect("link")
            .to_str(),
        Some("up")
    );
    assert_eq!(
        std::fs::read_link(sub.dir.join("inner"))
            .expect("link")
            .to_str(),
        Some("a.yaml")
    );
}

#[test]
fn links_leading_out_do_not_fail_the_export_of_the_other_apps() {
    let (fx, _cache, fetcher, spec) = setup(&[
        ("app-a/cm.yaml", "a\n"),
        ("app-b/kustomization.yaml", "resources: []\n"),
        ("app-c/kustomization.yaml", "resources: []\n"),
    ]);
    std::os::unix::fs::symlink("/etc/passwd", fx.work.join("app-b/passwd")).expect("symlink");
    std::os::unix::fs::symlink("../../shadow", fx.work.join("app-c/shadow.yaml")).expect("symlink");
    fx.commit(&[], "Links out");
    fx.push();
    for _ in 0..3 {
        let snap = take(&fetcher, &spec, "").expect("the export goes on");
        assert!(snap.dir.join("app-a/cm.yaml").is_file());
        for (link, own) in [
            ("app-b/passwd", "passwd"),
            ("app-c/shadow.yaml", "shadow.yaml"),
        ] {
            let target = std::fs::read_link(snap.dir.join(link)).expect("link written");
            assert_eq!(target.to_str(), Some(own), "{link} points at itself");
            assert!(
                snap.dir.join(link).canonicalize().is_err(),
                "{link} cannot be followed"
            );
        }
    }
}

#[test]
fn size_and_count_limits_are_enforced() {
    let (fx, _cache, fetcher, mut spec) = setup(&[("small.txt", "x\n")]);
    fx.commit(&[("data/big.bin", &"z".repeat(5000))], "Big file");
    fx.push();
    spec.limits = Limits {
        max_file_size: 4096,
        ..Limits::default()
    };
    let err = take(&fetcher, &spec, "").expect_err("over size");
    assert!(
        err.to_string().contains("`data/big.bin` is 5000 bytes"),
        "{err}"
    );
    spec.limits = Limits {
        max_files: 1,
        ..Limits::default()
    };
    let err = take(&fetcher, &spec, "").expect_err("too many files");
    assert!(
        err.to_string().contains("2 files, over the limit of 1"),
        "{err}"
    );
    spec.limits = Limits {
        max_total_size: 100,
        ..Limits::default()
    };
    let err = take(&fetcher, &spec, "").expect_err("too large in total");
    assert!(matches!(err, SnapshotError::TooLarge { .. }), "{err}");
    assert!(
        take(
            &fetcher,
            &SourceSpec {
                limits: Limits::default(),
                ..spec
            },
            ""
        )
        .is_ok()
    );
}

#[test]
fn gc_removes_unused_snapshots_only() {
    let (fx, _cache, fetcher, spec) = setup(&[("a.txt", "1\n")]);
    let old = take(&fetcher, &spec, "").expect("first");
    fx.commit(&[("a.txt", "2\n")], "Second");
    fx.push();
    let current = take(&fetcher, &spec, "").expect("second");
    let kept = fetcher
        .gc_snapshots(&[&current], Duration::from_secs(3600))
        .expect("gc with grace period");
    assert!(
        kept.is_empty(),
        "recently used snapshots survive the grace period"
    );
    let removed = fetcher
        .gc_snapshots(&[&current], Duration::ZERO)
        .expect("gc");
    assert_eq!(removed, vec![old.dir.clone()]);
    assert!(!old.dir.exists());
    assert!(current.dir.join("a.txt").is_file());

    // A snapshot asked for again after GC took it is exported again.
    let removed = fetcher.gc_snapshots(&[], Duration::ZERO).expect("gc all");
    assert_eq!(removed, vec![current.dir.clone()]);
    let again = take(&fetcher, &spec, "").expect("after gc");
    assert_eq!(again.dir, current.dir);
    assert_eq!(
        std::fs::read_to_string(again.dir.join("a.txt")).expect("read"),
        "2\n"
    );
}

#[test]
fn concurrent_requests_for_one_commit_get_one_complete_snapshot() {
    let files: Vec<(String, String)> = (0..200)
        .map(|i| (format!("apps/a{i}/x.yaml"), format!("n: {i}\n")))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let (_fx, _cache, fetcher, spec) = setup(&refs);
    let rev = fetcher.fetch(&spec).expect("fetch");
    let snapshots: Vec<Snapshot> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| fetcher.snapshot(&spec, &rev, "").expect("snapshot")))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert!(snapshots.iter().all(|s| s == &snapshots[0]));
    // One export directory, and no staging directory left behind.
    let root = snapshots[0].dir.parent().expect("root");
    let entries: Vec<_> = std::fs::read_dir(root)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        std::fs::read_to_string(snapshots[0].dir.join("apps/a7/x.yaml")).expect("read"),
        "n: 7\n"
    );
}

#[test]
fn unchanged_files_are_linked_from_the_previous_export() {
    use std::os::unix::fs::MetadataExt;
    let (fx, _cache, fetcher, spec) = setup(&[
        ("apps/web/a.yaml", "a\n"),
        ("apps/api/b.yaml", "b\n"),
        ("run.sh", "#!/bin/sh\n"),
    ]);
    let first = take(&fetcher, &spec, "").expect("first snapshot");
    fx.commit(
        &[("apps/web/a.yaml", "a2\n"), ("apps/new/c.yaml", "c\n")],
        "Change web",
    );
    fx.push();
    let second = take(&fetcher, &spec, "").expect("second snapshot");
    assert_ne!(first.dir, second.dir);
    let inode = |s: &Snapshot, p: &str| std::fs::metadata(s.dir.join(p)).expect("stat").ino();
    let read = |s: &Snapshot, p: &str| std::fs::read_to_string(s.dir.join(p)).expect("read");
    // Unchanged files share the earlier export's file; changed ones do not.
    assert_eq!(
        inode(&first, "apps/api/b.yaml"),
        inode(&second, "apps/api/b.yaml")
    );
    assert_eq!(inode(&first, "run.sh"), inode(&second, "run.sh"));
    assert_ne!(
        inode(&first, "apps/web/a.yaml"),
        inode(&second, "apps/web/a.yaml")
    );
    assert_eq!(read(&first, "apps/web/a.yaml"), "a\n");
    assert_eq!(read(&second, "apps/web/a.yaml"), "a2\n");
    assert_eq!(read(&second, "apps/new/c.yaml"), "c\n");
    assert_eq!(read(&second, "apps/api/b.yaml"), "b\n");

    // A damaged earlier export (a file gone) does not damage the next one:
    // it is written from the repository instead.
    let api = second.dir.join("apps/api");
    std::fs::set_permissions(&api, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::remove_file(api.join("b.yaml")).expect("remove");
    fx.commit(&[("apps/web/a.yaml", "a3\n")], "Change web again");
    fx.push();
    let third = take(&fetcher, &spec, "").expect("third snapshot");
    assert_eq!(read(&third, "apps/api/b.yaml"), "b\n");
    assert_eq!(read(&third, "apps/web/a.yaml"), "a3\n");
    assert_eq!(read(&third, "run.sh"), "#!/bin/sh\n");
}
