//! Submodules: snapshots hold their content at the recorded commit, fetched
//! recursively from the URLs in `.gitmodules` with the source's credentials.

use std::path::{Path, PathBuf};

use base64::Engine;
use driftless_source::{Auth, Fetcher, RefSpec, SnapshotError, SourceSpec};

use crate::support::{git, http};

/// Repositories served from one directory, so relative URLs work.
struct Served {
    tmp: tempfile::TempDir,
}

impl Served {
    fn new() -> Served {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(tmp.path().join("srv")).expect("mkdir srv");
        Served { tmp }
    }

    fn root(&self) -> PathBuf {
        self.tmp.path().join("srv")
    }

    /// Commits `files` and `gitlinks` (path, commit) to repository `name`
    /// and pushes it to `srv/<name>.git`; returns the commit id.
    fn commit(&self, name: &str, files: &[(&str, &str)], gitlinks: &[(&str, &str)]) -> String {
        let work = self.tmp.path().join("work").join(name);
        let bare = self.root().join(format!("{name}.git"));
        if !work.exists() {
            std::fs::create_dir_all(&work).expect("mkdir work");
            git(&work, &["init", "-q", "-b", "main"]);
            git(
                &self.root(),
                &["init", "-q", "--bare", &format!("{name}.git")],
            );
        }
        for (path, content) in files {
            let full = work.join(path);
            std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
            std::fs::write(full, content).expect("write");
        }
        git(&work, &["add", "-A"]);
        for (path, commit) in gitlinks {
            let info = format!("160000,{commit},{path}");
            git(&work, &["update-index", "--add", "--cacheinfo", &info]);
        }
        git(&work, &["commit", "-q", "-m", "change"]);
        let bare = bare.to_str().expect("utf-8 path");
        git(&work, &["push", "-q", "--force", bare, "main"]);
        git(&work, &["rev-parse", "HEAD"])
    }
}

fn gitmodules(entries: &[(&str, &str)]) -> String {
    entries
        .iter()
        .map(|(path, url)| format!("[submodule \"{path}\"]\n\tpath = {path}\n\turl = {url}\n"))
        .collect()
}

fn read(dir: &Path, path: &str) -> String {
    std::fs::read_to_string(dir.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn nested_submodules_are_exported_at_the_recorded_commits_with_the_same_credentials() {
    let served = Served::new();
    let deep = served.commit("deep", &[("deep.txt", "v1\n")], &[]);
    let lib = served.commit(
        "lib",
        &[
            ("lib.txt", "lib\n"),
            (".gitmodules", &gitmodules(&[("deep", "../deep.git")])),
        ],
        &[("deep", &deep)],
    );
    served.commit(
        "app",
        &[
            ("app.txt", "app\n"),
            (".gitmodules", &gitmodules(&[("vendor/lib", "../lib.git")])),
        ],
        &[("vendor/lib", &lib)],
    );
    // The submodule moves on; the superproject still records the old commit.
    served.commit("deep", &[("deep.txt", "v2\n")], &[]);

    let header = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:s3cret")
    );
    let server = http::start(
        &served.root(),
        http::Options {
            authorization: Some(header),
            ..Default::default()
        },
    );
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::new(cache.path());
    let spec = SourceSpec {
        auth: Auth::Basic {
            username: "alice".into(),
            password: "s3cret".into(),
        },
        ..SourceSpec::new(
            format!("{}/app.git", server.url),
            RefSpec::Branch("main".into()),
        )
    };
    let rev = fetcher.fetch(&spec).expect("fetch app");
    let snap = fetcher.snapshot(&spec, &rev, "").expect("snapshot");
    assert_eq!(read(&snap.dir, "app.txt"), "app\n");
    assert_eq!(read(&snap.dir, "vendor/lib/lib.txt"), "lib\n");
    assert_eq!(read(&snap.dir, "vendor/lib/deep/deep.txt"), "v1\n");

    // A sub-path export takes the submodules below it.
    let part = fetcher.snapshot(&spec, &rev, "vendor").expect("sub-path");
    assert_eq!(read(&part.dir, "lib/deep/deep.txt"), "v1\n");

    // Submodules are fetched with the source's credentials: in a fresh
    // cache, a snapshot asked for without them fails, naming the submodule.
    let anonymous = SourceSpec {
        auth: Auth::None,
        ..spec.clone()
    };
    let other_cache = tempfile::tempdir().expect("tempdir");
    let own = Fetcher::new(other_cache.path());
    let rev = own.fetch(&spec).expect("fetch app again");
    let err = own
        .snapshot(&anonymous, &rev, "")
        .expect_err("submodules need the password too");
    assert!(
        matches!(&err, SnapshotError::Submodule { path, .. } if path == "vendor/lib"),
        "{err}"
    );
}

#[test]
fn local_submodule_url_of_a_remote_source_is_refused() {
    let served = Served::new();
    let secret = served.commit("secret", &[("key.txt", "private\n")], &[]);
    let local = served.root().join("secret.git");
    let local = local.to_str().expect("utf-8 path");
    served.commit(
        "app",
        &[
            ("app.txt", "app\n"),
            (".gitmodules", &gitmodules(&[("leak", local)])),
        ],
        &[("leak", &secret)],
    );
    let server = http::start(&served.root(), http::Options::default());
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::new(cache.path());
    let spec = SourceSpec::new(
        format!("{}/app.git", server.url),
        RefSpec::Branch("main".into()),
    );
    let rev = fetcher.fetch(&spec).expect("fetch");
    let err = fetcher.snapshot(&spec, &rev, "").expect_err("local URL");
    let message = err.to_string();
    assert!(message.contains("submodule `leak`"), "{message}");
    assert!(message.contains("local URL"), "{message}");
}
