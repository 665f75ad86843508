//! Git repositories made with the real `git` program, for fixtures.
//!
//! Every command runs with a fixed identity and fixed dates and without the
//! user's or the system's configuration, so commits are the same on every
//! machine and a developer's `commit.gpgsign` or hooks cannot interfere.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Name of the author of every fixture commit.
pub const AUTHOR_NAME: &str = "Ada Author";
/// Email of the author of every fixture commit.
pub const AUTHOR_EMAIL: &str = "ada@example.com";
/// Author as driftless records it: `Name <email>`.
pub const AUTHOR: &str = "Ada Author <ada@example.com>";
/// Name of the committer of every fixture commit.
pub const COMMITTER_NAME: &str = "Cy Committer";
/// Email of the committer of every fixture commit.
pub const COMMITTER_EMAIL: &str = "cy@example.com";
/// Author date of every fixture commit.
pub const AUTHOR_DATE: &str = "2024-05-01T12:00:00+02:00";
/// Commit date of every fixture commit.
pub const COMMIT_DATE: &str = "2024-05-01T12:30:00+02:00";

/// Runs git in `dir` with the fixed identity; panics with its stderr on failure.
/// Returns stdout, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    git_with(dir, args, &[])
}

/// Like [`git`], with extra environment variables (e.g. `GNUPGHOME`).
pub fn git_with(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> String {
    let out = Command::new("git")
        .envs(env.iter().map(|(k, v)| (k, v.as_os_str())))
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", AUTHOR_NAME)
        .env("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL)
        .env("GIT_COMMITTER_NAME", COMMITTER_NAME)
        .env("GIT_COMMITTER_EMAIL", COMMITTER_EMAIL)
        .env("GIT_AUTHOR_DATE", AUTHOR_DATE)
        .env("GIT_COMMITTER_DATE", COMMIT_DATE)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} in {dir:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Creates an empty bare repository at `path` whose default branch is `main`.
pub fn init_bare(path: &Path) {
    std::fs::create_dir_all(path).expect("mkdir bare repository");
    git(path, &["init", "-q", "--bare", "-b", "main"]);
}

/// A working repository on a `main` branch in a temporary directory,
/// optionally pushing to a bare `origin`.
pub struct GitRepo {
    /// The temporary directory holding the working tree (removed on drop).
    pub dir: tempfile::TempDir,
}

impl Default for GitRepo {
    fn default() -> Self {
        Self::new()
    }
}

impl GitRepo {
    /// An empty repository.
    pub fn new() -> Self {
        let repo = Self {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    /// An empty repository whose `origin` is the bare repository at `bare`,
    /// created there when missing.
    pub fn with_origin(bare: &Path) -> Self {
        if !bare.join("HEAD").exists() {
            init_bare(bare);
        }
        let repo = Self::new();
        let url = bare.to_str().expect("utf-8 path");
        repo.git(&["remote", "add", "origin", url]);
        repo
    }

    /// The working tree.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs git in the working tree (see [`git`]).
    pub fn git(&self, args: &[&str]) -> String {
        git(self.path(), args)
    }

    /// Writes `text` to `path` (relative to the working tree), creating directories.
    pub fn write(&self, path: &str, text: &str) -> PathBuf {
        let file = self.path().join(path);
        std::fs::create_dir_all(file.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&file, text).expect("write");
        file
    }

    /// Removes the file at `path` (relative to the working tree).
    pub fn remove(&self, path: &str) {
        std::fs::remove_file(self.path().join(path)).expect("remove");
    }

    /// Commits everything; returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.head()
    }

    /// Commits everything and pushes `main` to `origin`; returns the commit id.
    pub fn push(&self, message: &str) -> String {
        let sha = self.commit(message);
        self.git(&["push", "-q", "--force", "origin", "main"]);
        sha
    }

    /// The current commit id.
    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }
}
