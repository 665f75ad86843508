//! What the browser tests share: Debian's Chromium driven over WebDriver by
//! chromedriver, a real `driftless serve` over a Git repository and the test
//! cluster, polling with deadlines, and screenshots.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use driftless_server::serve::{Desired, ServeOptions, run};
use driftless_testenv::git::GitRepo;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// The `operate` token of the test server.
pub const OPERATE_TOKEN: &str = "ui-operate-token-0123456789";
/// The `admin` token of the test server.
pub const ADMIN_TOKEN: &str = "ui-admin-token-0123456789";
/// How long a page may take to show what a test waits for.
pub const PAGE_DEADLINE: Duration = Duration::from_secs(60);

/// An executable called `name` on `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// chromedriver in a process group of its own, with the Chromium it
/// starts; dropping it (a passing test, or one that panicked) kills the
/// whole group, so no browser outlives its test.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A headless Chromium session.
pub struct Browser {
    pub client: Client,
    // Dropped in this order: the processes, then their profile.
    _driver: Driver,
    _profile: tempfile::TempDir,
}

/// A browser, or `None` (after saying so) when Chromium is not installed and
/// `CI` is unset; under `CI` a missing browser fails the test.
pub async fn browser() -> Option<Browser> {
    let (Some(chromium), Some(chromedriver)) = (on_path("chromium"), on_path("chromedriver"))
    else {
        let why =
            "chromium and chromedriver are not on PATH (scripts/ci/install-ui.sh installs them)";
        if std::env::var_os("CI").is_some() {
            panic!("{why}; CI is set, so the browser tests must run");
        }
        // One write straight to stderr: the harness hides the output of passing tests.
        use std::io::Write as _;
        let banner = format!("\n==========\nSKIPPED: {why}\n==========\n");
        let _ = std::io::stderr().write_all(banner.as_bytes());
        return None;
    };
    let port = driftless_testenv::servers::free_port();
    let profile = tempfile::tempdir().expect("browser profile directory");
    let child = Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver(child);
    tokio::task::spawn_blocking(move || driftless_testenv::servers::wait_for_port(port))
        .await
        .expect("waiting for chromedriver");
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000",
                     format!("--user-data-dir={}", profile.path().display())],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session in Chromium");
    Some(Browser {
        client,
        _driver: driver,
        _profile: profile,
    })
}

impl Browser {
    /// Text of the element `css` selects, once it contains `wanted`; panics
    /// with what it showed after [`PAGE_DEADLINE`].
    pub async fn wait_text(&self, css: &str, wanted: &str) -> String {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < PAGE_DEADLINE {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = element.text().await
            {
                if text.contains(wanted) {
                    return text;
                }
                last = text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} never showed {wanted:?} within {PAGE_DEADLINE:?}; it showed:\n{last}");
    }

    /// Text of the element `css` selects.
    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .expect("text")
    }

    /// Clicks the element `css` selects. A live update of the page may
    /// replace the element between finding and clicking it; then it is
    /// found again, for up to five seconds.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = self
                .client
                .find(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("{css}: {e}"));
            match found.click().await {
                Ok(_) => return,
                Err(e) if e.is_stale_element_reference() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("clicking {css}: {e}"),
            }
        }
    }

    /// Saves a PNG of the page as `target/ui-screenshots/{name}.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// Ends the session (Chromium exits; chromedriver stops on drop).
    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// `ui-screenshots/` in the target directory of this build: `CARGO_TARGET_DIR`
/// when set (relative to the workspace root), else the workspace's `target/`.
pub fn screenshot_dir() -> PathBuf {
    let root = driftless_testenv::repo_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| root.join("target"), |dir| root.join(dir));
    target.join("ui-screenshots")
}

/// A running `driftless serve` following a Git repository.
pub struct Served {
    pub base: String,
    pub repo: GitRepo,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<Result<(), driftless_server::serve::ServeError>>>,
    _dir: tempfile::TempDir,
}

impl Served {
    /// Serves `apps` (App documents) from a repository holding `files`, with
    /// the `operate` and `admin` tokens and reads open to anyone.
    pub async fn start(files: &[(&str, &str)], apps: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let bare = dir.path().join("platform.git");
        let repo = GitRepo::with_origin(&bare);
        for (path, text) in files {
            repo.write(path, text);
        }
        repo.push("Initial platform");
        std::fs::write(dir.path().join("operate-token"), OPERATE_TOKEN).expect("token file");
        std::fs::write(dir.path().join("admin-token"), ADMIN_TOKEN).expect("token file");
        let kubeconfig = driftless_testenv::shared()
            .kubeconfig()
            .display()
            .to_string();
        let config = format!(
            "apiVersion: driftless.dev/v1alpha1
kind: Server
metadata: {{name: server}}
spec:
  listen: 127.0.0.1:0
  dataDir: data
  api:
    anonymousRead: true
    tokens:
      - {{name: ci, role: operate, secret: {{file: operate-token}}}}
      - {{name: alice, role: admin, secret: {{file: admin-token}}}}
---
apiVersion: driftless.dev/v1alpha1
kind: Cluster
metadata: {{name: test}}
spec: {{kubeconfig: {{path: {kubeconfig}}}}}
---
apiVersion: driftless.dev/v1alpha1
kind: GitSource
metadata: {{name: platform}}
spec: {{url: \"file://{bare}\", ref: {{branch: main}}, interval: 1s}}
---
{apps}",
            bare = bare.display()
        );
        let path = dir.path().join("driftless.yaml");
        std::fs::write(&path, config).expect("write config");
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<SocketAddr>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let opts = ServeOptions {
            desired: Desired::Files(path),
            data_dir: None,
            listen: None,
            render_worker: None,
            concurrency: None,
            on_ready: Box::new(move |addr| {
                let _ = ready_tx.send(addr);
            }),
        };
        let server = tokio::spawn(run(opts, async move {
            let _ = stop_rx.await;
        }));
        let addr = tokio::time::timeout(Duration::from_secs(30), ready_rx)
            .await
            .expect("serve starts within 30s")
            .expect("serve reports its address");
        // The workspace's reqwest carries no crypto provider of its own.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            base: format!("http://{addr}"),
            repo,
            stop: Some(stop_tx),
            server: Some(server),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
        }
    }
}

/// The App document `name` deploying `path` of the repository into `namespace`.
pub fn app(name: &str, path: &str, namespace: &str, extra: &str) -> String {
    format!(
        "apiVersion: driftless.dev/v1alpha1
kind: App
metadata: {{name: {name}}}
spec:
  sourceRef: {{name: platform}}
  path: {path}
  destination: {{cluster: test, namespace: {namespace}}}
{extra}
---
"
    )
}

/// Polls `check` every 100 ms until it holds or `deadline` passes.
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within {deadline:?}");
}
