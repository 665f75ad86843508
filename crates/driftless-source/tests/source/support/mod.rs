//! Test helpers: fixture repositories made with real git, and real servers.
#![allow(dead_code)]

pub mod daemon;
pub mod http;
pub mod sshd;
pub mod tls;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs git with a fixed identity and no user configuration; panics on failure.
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
        .env("GIT_AUTHOR_NAME", "Ada Author")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Cy Committer")
        .env("GIT_COMMITTER_EMAIL", "cy@example.com")
        .env("GIT_AUTHOR_DATE", "2024-05-01T12:00:00+02:00")
        .env("GIT_COMMITTER_DATE", "2024-05-01T12:30:00+02:00")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} in {dir:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

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

/// A free loopback port (racy by nature, but the window is tiny).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.local_addr().expect("local addr").port()
}

/// The loopback port of a test server's base URL.
pub fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port in URL")
}

/// Waits until something accepts connections on `port`, for at most 30 seconds
/// (CI machines can be heavily loaded).
pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listened on 127.0.0.1:{port} within 30s");
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

/// A child process killed when dropped.
pub struct Server(pub std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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
