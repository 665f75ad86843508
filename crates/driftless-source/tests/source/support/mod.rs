//! Test helpers: fixture repositories made with real git, and real servers.
#![allow(dead_code, unused_imports)]

pub mod daemon;

pub use driftless_testenv::git::{git, git_with};
pub use driftless_testenv::servers::{Server, free_port, port_of, wait_for_port};
pub use driftless_testenv::{git_http as http, sshd, tls};

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

/// A working repository plus a bare "server" copy it pushes to.
pub struct Fixture {
    /// Keeps the temporary directory alive.
    pub tmp: tempfile::TempDir,
    /// Working repository where commits are made.
    pub work: PathBuf,
    /// Directory served by test servers; holds `repo.git`.
    pub served: PathBuf,
    /// The bare repository.
    pub bare: PathBuf,
}

impl Fixture {
    /// An empty fixture with a `main` branch holding `files`.
    pub fn new(files: &[(&str, &str)]) -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let work = tmp.path().join("work");
        let served = tmp.path().join("srv");
        let bare = served.join("repo.git");
        std::fs::create_dir_all(&work).expect("mkdir work");
        std::fs::create_dir_all(&served).expect("mkdir srv");
        git(&work, &["init", "-q", "-b", "main"]);
        git(&served, &["init", "-q", "--bare", "repo.git"]);
        // The server must hand out unadvertised commits only when the test asks.
        git(
            &bare,
            &["config", "uploadpack.allowReachableSHA1InWant", "true"],
        );
        git(&bare, &["config", "http.receivepack", "false"]);
        let bare_str = bare.to_str().expect("utf-8 path");
        git(&work, &["remote", "add", "origin", bare_str]);
        let fixture = Fixture {
            tmp,
            work,
            served,
            bare,
        };
        fixture.commit(files, "Initial commit\n\nWith a body line.");
        fixture.push();
        fixture
    }

    /// Writes `files` and commits them; returns the commit id.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        for (path, content) in files {
            let full = self.work.join(path);
            std::fs::create_dir_all(full.parent().expect("file has a parent")).expect("mkdir");
            std::fs::write(&full, content).expect("write fixture file");
        }
        git(&self.work, &["add", "-A"]);
        git(
            &self.work,
            &["commit", "-q", "--allow-empty", "-m", message],
        );
        self.head()
    }

    /// Current commit of the working repository.
    pub fn head(&self) -> String {
        git(&self.work, &["rev-parse", "HEAD"])
    }

    /// Pushes all branches and tags, forcing, so moved refs move on the server.
    pub fn push(&self) {
        git(&self.work, &["push", "-q", "--force", "origin", "--all"]);
        git(&self.work, &["push", "-q", "--force", "origin", "--tags"]);
    }

    /// Absolute path of the bare repository as a string.
    pub fn bare_url(&self) -> String {
        self.bare.to_str().expect("utf-8 path").to_string()
    }
}

/// A loopback listener that accepts connections and never answers (a hung
/// server); it holds them open until dropped.
pub struct SilentServer {
    /// The port it listens on.
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<usize>>,
}

impl SilentServer {
    /// Listens on `port` (0 picks a free one).
    pub fn start(port: u16) -> SilentServer {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => held.push(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            held.len()
        });
        SilentServer {
            port,
            stop,
            handle: Some(handle),
        }
    }

    /// Stops listening; returns how many connections it accepted.
    pub fn stop(mut self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.handle
            .take()
            .map_or(0, |h| h.join().expect("listener thread"))
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The ref-listing error inside a fetch error, if that is what failed.
pub fn remote_error(
    err: &driftless_source::FetchError,
) -> Option<&driftless_source::remote::RemoteError> {
    match err {
        driftless_source::FetchError::Remote { source, .. } => Some(source),
        _ => None,
    }
}
