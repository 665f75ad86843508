//! gix and git as backends: the same revisions and byte-identical snapshots
//! from either, caches written by one read and updated by the other, and
//! gix used wherever it can serve the remote.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use driftless_source::{Backend, Fetcher, RefSpec, SourceSpec};

use crate::support::{Fixture, git, http};

/// Every entry below `dir`: relative path -> (mode bits, content or link target).
fn tree_of(dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (u32, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).expect("read snapshot dir") {
            let path = entry.expect("dir entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            let name = path
                .strip_prefix(root)
                .expect("below root")
                .to_string_lossy()
                .into_owned();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).expect("link target");
                out.insert(name, (0, target.into_os_string().into_encoded_bytes()));
            } else if meta.is_dir() {
                out.insert(format!("{name}/"), (mode, Vec::new()));
                walk(root, &path, out);
            } else {
                out.insert(name, (mode, std::fs::read(&path).expect("read file")));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn fixture() -> Fixture {
    let fx = Fixture::new(&[
        ("apps/web/deploy.yaml", "kind: Deployment\n"),
        ("apps/web/svc.yaml", "kind: Service\n"),
        ("apps/db/.driftlessignore", "*.md\n"),
        ("apps/db/README.md", "notes\n"),
        ("apps/db/sts.yaml", "kind: StatefulSet\n"),
        ("a-b.txt", "dash sorts before slash\n"),
        ("a.b/c.txt", "dot sorts before slash\n"),
        ("empty", ""),
    ]);
    let script = fx.work.join("tools/render.sh");
    std::fs::create_dir_all(script.parent().expect("parent")).expect("mkdir");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").expect("write script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::os::unix::fs::symlink("../web/svc.yaml", fx.work.join("apps/db/svc.yaml"))
        .expect("symlink");
    let blob: String = (0..200_000)
        .map(|i| char::from(b'a' + (i % 23) as u8))
        .collect();
    fx.commit(
        &[("data/big.txt", blob.as_str())],
        "Tools, links and a big file",
    );
    fx.push();
    fx
}

/// The fixture served over smart HTTP, and a spec following its `main`.
fn served() -> (Fixture, http::HttpServer, SourceSpec) {
    let fx = fixture();
    let server = http::start(&fx.served, http::Options::default());
    let spec = SourceSpec::new(
        format!("{}/repo.git", server.url),
        RefSpec::Branch("main".into()),
    );
    (fx, server, spec)
}

/// [`served`], fetched once by gix into a fresh cache.
fn fetched_once() -> (
    Fixture,
    http::HttpServer,
    SourceSpec,
    tempfile::TempDir,
    Fetcher,
) {
    let (fx, server, spec) = served();
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::with_backend(cache.path(), Backend::Gix);
    fetcher.fetch(&spec).expect("first fetch");
    (fx, server, spec, cache, fetcher)
}

#[test]
fn both_backends_give_the_same_revision_and_identical_snapshots() {
    let (_fx, _server, spec) = served();
    let caches = [
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    ];
    let gix = Fetcher::with_backend(caches[0].path(), Backend::Gix);
    let git_only = Fetcher::with_backend(caches[1].path(), Backend::Git);
    let by_gix = gix.fetch(&spec).expect("gix fetch");
    let by_git = git_only.fetch(&spec).expect("git fetch");
    assert_eq!(by_gix, by_git);
    for subpath in ["", "apps", "apps/web"] {
        let a = gix.snapshot(&spec, &by_gix, subpath).expect("gix export");
        let b = git_only
            .snapshot(&spec, &by_git, subpath)
            .expect("git export");
        assert_eq!(a.tree, b.tree, "{subpath}");
        let (a, b) = (tree_of(&a.dir), tree_of(&b.dir));
        assert_eq!(a, b, "snapshots of `{subpath}` differ");
        if subpath.is_empty() {
            assert_eq!(a["tools/render.sh"].0, 0o555, "executable kept");
            assert!(!a.contains_key("apps/db/README.md"), "ignore file applied");
            assert_eq!(a["apps/db/svc.yaml"].1, b"../web/svc.yaml");
        }
    }
    let gix_counts = gix.backend_counts();
    assert_eq!((gix_counts.gix_transfers, gix_counts.git_transfers), (1, 0));
    assert!(gix_counts.gix_reads > 0);
    assert_eq!(gix_counts.git_reads, 0, "gix read every tree and blob");
    let git_counts = git_only.backend_counts();
    assert_eq!((git_counts.gix_transfers, git_counts.gix_reads), (0, 0));
    assert_eq!(git_counts.git_transfers, 1);
    assert!(git_counts.git_reads > 0);

    // Refusals read the same through either (a missing path, odd spellings
    // of a path), and so does a link leaving the exported sub-path.
    for fetcher in [&gix, &git_only] {
        for path in ["apps/missing", "apps//web", "apps/./web", "a-b.txt"] {
            let err = fetcher
                .snapshot(&spec, &by_gix, path)
                .expect_err("no such directory");
            assert!(err.to_string().contains(path), "{err}");
        }
        // A link leaving the exported sub-path is written as a link to itself
        // by either backend, so nothing reads through it out of the export.
        let snap = fetcher
            .snapshot(&spec, &by_gix, "apps/db")
            .expect("a link leading out does not fail the export");
        let link = std::fs::read_link(snap.dir.join("svc.yaml")).expect("link kept");
        assert_eq!(link.to_str(), Some("svc.yaml"), "a link to itself");
    }
}

#[test]
fn a_cache_written_by_one_backend_is_updated_by_the_other() {
    let (fx, _server, spec) = served();
    let cache = tempfile::tempdir().expect("tempdir");
    let first = Fetcher::with_backend(cache.path(), Backend::Git)
        .fetch(&spec)
        .expect("git fetch");
    assert_eq!(first.sha, fx.head());

    // gix deepens nothing and fetches the new commit into git's shallow cache.
    let second = fx.commit(&[("apps/web/deploy.yaml", "kind: Deployment # 2\n")], "Two");
    fx.push();
    let gix = Fetcher::with_backend(cache.path(), Backend::Gix);
    let rev = gix.fetch(&spec).expect("gix update");
    assert_eq!(rev.sha, second);
    assert_eq!(gix.backend_counts().gix_transfers, 1);
    let snap = gix.snapshot(&spec, &rev, "apps/web").expect("export");
    assert_eq!(
        std::fs::read_to_string(snap.dir.join("deploy.yaml")).expect("read"),
        "kind: Deployment # 2\n"
    );

    // And git reads and updates what gix wrote.
    let third = fx.commit(&[("apps/web/svc.yaml", "kind: Service # 3\n")], "Three");
    fx.push();
    let git_only = Fetcher::with_backend(cache.path(), Backend::Git);
    assert_eq!(git_only.fetch(&spec).expect("git update").sha, third);
    let repo = gix.repo_dir(&spec.url);
    git(&repo, &["fsck", "--no-progress", "--connectivity-only"]);
    assert_eq!(
        git(&repo, &["rev-parse", "--is-shallow-repository"]),
        "true",
        "the cache stays shallow"
    );
}

#[test]
fn gix_fetches_local_paths_file_urls_and_commits_by_id() {
    let fx = fixture();
    let first = fx.head();
    let second = fx.commit(&[("a-b.txt", "2\n")], "Second");
    fx.push();
    for url in [fx.bare_url(), format!("file://{}", fx.bare_url())] {
        let cache = tempfile::tempdir().expect("tempdir");
        let fetcher = Fetcher::with_backend(cache.path(), Backend::Gix);
        let tip = SourceSpec::new(url.as_str(), RefSpec::Branch("main".into()));
        assert_eq!(fetcher.fetch(&tip).expect("tip").sha, second);
        // An old commit is not advertised: it is asked for by id.
        let old = SourceSpec::new(url.as_str(), RefSpec::Commit(first.clone()));
        assert_eq!(fetcher.fetch(&old).expect("old commit").sha, first);
        let counts = fetcher.backend_counts();
        assert_eq!(
            (counts.gix_transfers, counts.git_transfers),
            (2, 0),
            "{url}: {:?}",
            counts.last_fallback
        );
    }
}

#[test]
fn packs_from_many_gix_transfers_are_merged_and_nothing_is_lost() {
    let fx = Fixture::new(&[("a.txt", "0\n")]);
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::with_backend(cache.path(), Backend::Gix);
    let spec = SourceSpec::new(fx.bare_url(), RefSpec::Branch("main".into()));
    let first = fetcher.fetch(&spec).expect("first fetch").sha;
    let pack_dir = fetcher.repo_dir(&spec.url).join("objects/pack");
    let packs = || {
        std::fs::read_dir(&pack_dir)
            .expect("pack dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "pack"))
            })
            .count()
    };
    let mut most = 0;
    for round in 1..=55 {
        let sha = fx.commit(
            &[("a.txt", &format!("{round}\n"))],
            &format!("Round {round}"),
        );
        fx.push();
        assert_eq!(fetcher.fetch(&spec).expect("fetch").sha, sha);
        most = most.max(packs());
    }
    assert_eq!(fetcher.backend_counts().gix_transfers, 56);
    assert!(most <= 51, "{most} packs piled up");
    assert!(packs() < 10, "packs were merged: {}", packs());
    // The first commit is no longer pinned by any ref, and is still there.
    let repo = fetcher.repo_dir(&spec.url);
    git(&repo, &["cat-file", "-e", &format!("{first}^{{commit}}")]);
}

/// Writes `object` (raw bytes) into `repo` as `kind`, through a file in `fx`.
fn write_object(fx: &Fixture, repo: &Path, kind: &str, object: &[u8]) -> String {
    let file = fx.tmp.path().join("object");
    std::fs::write(&file, object).expect("write object");
    let file = file.to_str().expect("utf-8 path");
    git(
        repo,
        &["hash-object", "--literally", "-t", kind, "-w", file],
    )
}

#[test]
fn odd_file_modes_export_as_git_reads_them() {
    // Old tools wrote modes like 100664 and 100775; git reads them as
    // 100644 and 100755, and so must a snapshot, whichever backend reads.
    let fx = Fixture::new(&[("keep.txt", "keep\n")]);
    let mut tree = Vec::new();
    for (mode, name, content) in [
        ("100600", "a.txt", "a\n"),
        ("100664", "b.txt", "b\n"),
        ("100775", "c.sh", "#!/bin/sh\n"),
        ("100644", "keep.txt", "keep\n"),
    ] {
        let blob = write_object(&fx, &fx.bare, "blob", content.as_bytes());
        tree.extend_from_slice(format!("{mode} {name}\0").as_bytes());
        let raw: Vec<u8> = (0..20)
            .map(|i| u8::from_str_radix(&blob[2 * i..2 * i + 2], 16).expect("hex"))
            .collect();
        tree.extend_from_slice(&raw);
    }
    let tree = write_object(&fx, &fx.bare, "tree", &tree);
    let commit = git(&fx.bare, &["commit-tree", &tree, "-m", "Odd modes"]);
    git(&fx.bare, &["update-ref", "refs/heads/odd", &commit]);
    let spec = SourceSpec::new(fx.bare_url(), RefSpec::Branch("odd".into()));
    let mut trees = Vec::new();
    for backend in [Backend::Gix, Backend::Git] {
        let cache = tempfile::tempdir().expect("tempdir");
        let fetcher = Fetcher::with_backend(cache.path(), backend);
        let rev = fetcher.fetch(&spec).expect("fetch");
        let snap = fetcher.snapshot(&spec, &rev, "").expect("export");
        trees.push(tree_of(&snap.dir));
    }
    assert_eq!(trees[0], trees[1]);
    let names: Vec<&str> = trees[0].keys().map(String::as_str).collect();
    assert_eq!(names, ["a.txt", "b.txt", "c.sh", "keep.txt"]);
    assert_eq!(trees[0]["c.sh"].0, 0o555, "100775 is executable");
    assert_eq!(trees[0]["b.txt"].0, 0o444);
}

#[test]
fn leftovers_of_a_process_killed_mid_transfer_do_not_block_the_next() {
    let (fx, _server, spec, cache, fetcher) = fetched_once();
    // What a transfer killed half-way leaves behind: locks and a pack
    // still marked as being moved into place.
    let repo = fetcher.repo_dir(&spec.url);
    let incoming = std::fs::read_dir(repo.join("refs/driftless"))
        .expect("pins")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-incoming"))
        .expect("incoming ref");
    for leftover in [
        repo.join("shallow.lock"),
        incoming.with_extension("lock"),
        repo.join("objects/pack/pack-0000000000000000000000000000000000000000.keep"),
    ] {
        std::fs::write(&leftover, "").expect("write leftover");
    }
    for backend in [Backend::Gix, Backend::Git] {
        let next = fx.commit(&[("empty", &format!("{backend:?}\n"))], "Next");
        fx.push();
        let fetcher = Fetcher::with_backend(cache.path(), backend);
        assert_eq!(fetcher.fetch(&spec).expect("fetch after a crash").sha, next);
        assert_eq!(fetcher.backend_counts().gix_fallbacks, 0);
        std::fs::write(repo.join("shallow.lock"), "").expect("write leftover");
    }
}

#[test]
fn local_refs_are_read_in_process_as_git_lists_them() {
    let fx = Fixture::new(&[("a.txt", "1\n")]);
    git(&fx.work, &["tag", "-a", "v1.0.0", "-m", "Release 1.0.0"]);
    let second = fx.commit(&[("a.txt", "2\n")], "Second");
    git(&fx.work, &["tag", "v1.1.0"]);
    git(&fx.work, &["update-ref", "refs/pull/7/head", &second]);
    fx.commit(&[("a.txt", "3\n")], "Third");
    fx.push();
    git(&fx.work, &["push", "-q", "origin", "refs/pull/7/head"]);
    let caches = [
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    ];
    let gix = Fetcher::with_backend(caches[0].path(), Backend::Gix);
    let git_only = Fetcher::with_backend(caches[1].path(), Backend::Git);
    let specs = [
        "branch:main".to_string(),
        "tag:v1.0.0".into(),
        "tag:v1.1.0".into(),
        "semver:>=1.0.0".into(),
        "name:refs/pull/7/head".into(),
        format!("commit:{}", &second[..8]),
    ];
    for text in &specs {
        let reference = RefSpec::parse(text).expect("ref spec");
        for url in [fx.bare_url(), format!("file://{}", fx.bare_url())] {
            let spec = SourceSpec::new(url.as_str(), reference.clone());
            let by_gix = gix.fetch(&spec).expect("gix");
            let by_git = git_only.fetch(&spec).expect("git");
            assert_eq!(by_gix, by_git, "{text} from {url}");
        }
    }
    // A no-change poll of a local repository is one in-process listing.
    let spec = SourceSpec::new(fx.bare_url(), RefSpec::Branch("main".into()));
    let before = gix.backend_counts();
    gix.fetch(&spec).expect("poll");
    let after = gix.backend_counts();
    assert_eq!(after.gix_reads, before.gix_reads + 1);
    assert_eq!(after.git_reads, before.git_reads);
    assert_eq!(after.git_transfers, 0);
    // Missing refs and repositories read the same through either.
    for fetcher in [&gix, &git_only] {
        let missing = SourceSpec::new(fx.bare_url(), RefSpec::Branch("nope".into()));
        let err = fetcher.fetch(&missing).expect_err("no such branch");
        assert!(err.to_string().contains("branch:nope"), "{err}");
        let gone = SourceSpec::new("/nonexistent/repo.git", RefSpec::Branch("main".into()));
        let err = fetcher.fetch(&gone).expect_err("no such repository");
        assert!(err.to_string().contains("/nonexistent/repo.git"), "{err}");
    }
}

#[test]
fn a_commit_cached_without_its_tree_is_fetched_again() {
    // What a transfer cut short, or a server sending an incomplete pack,
    // can leave: the commit object alone. It must not pass for fetched.
    let (fx, _server, spec, _cache, fetcher) = fetched_once();
    let next = fx.commit(&[("apps/web/svc.yaml", "kind: Service # 2\n")], "Next");
    fx.push();
    let raw = git(&fx.bare, &["cat-file", "commit", &next]);
    let repo = fetcher.repo_dir(&spec.url);
    let copied = write_object(&fx, &repo, "commit", format!("{raw}\n").as_bytes());
    assert_eq!(copied, next, "the commit object alone is in the cache");
    let rev = fetcher.fetch(&spec).expect("fetch again");
    assert_eq!(rev.sha, next);
    let snap = fetcher.snapshot(&spec, &rev, "apps/web").expect("export");
    assert_eq!(
        std::fs::read_to_string(snap.dir.join("svc.yaml")).expect("read"),
        "kind: Service # 2\n"
    );
}
