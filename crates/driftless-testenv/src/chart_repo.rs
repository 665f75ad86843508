//! A Helm chart repository on loopback: the files of a directory whose
//! charts the real `helm package` made and whose `index.yaml` the real
//! `helm repo index` wrote, served with an `ETag` (answering a matching
//! `If-None-Match` with 304), optional basic auth, and a log of every request.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::recorder::{Request, read_request};

/// One request the repository answered.
#[derive(Clone, Debug)]
pub struct Served {
    /// The request as read.
    pub request: Request,
    /// The status answered.
    pub status: u16,
}

/// A served chart repository; stops when dropped.
pub struct ChartRepo {
    /// The directory served (charts and `index.yaml`).
    pub dir: tempfile::TempDir,
    /// Base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Served>>>,
    stop: Arc<AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ChartRepo {
    /// Serves a new empty directory to anyone.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Serves a new empty directory to requests with basic auth of `user`
    /// and `password` only.
    pub fn with_basic_auth(user: &str, password: &str) -> Self {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Self::start_with(Some(format!("Basic {token}")))
    }

    fn start_with(authorization: Option<String>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let repo = Self {
            url: format!("http://{addr}"),
            dir,
            addr,
            log: Arc::default(),
            stop: Arc::default(),
        };
        let (root, log, stop) = (
            repo.dir.path().to_path_buf(),
            repo.log.clone(),
            repo.stop.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (root, log, auth) = (root.clone(), log.clone(), authorization.clone());
                std::thread::spawn(move || serve(stream, &root, auth.as_deref(), &log));
            }
        });
        repo
    }

    /// Packages the chart in `chart_dir` into the repository with the real
    /// `helm package` and re-indexes it with `helm repo index`.
    pub fn publish(&self, chart_dir: &Path) {
        let helm = crate::tools::helm();
        run(Command::new(&helm)
            .arg("package")
            .arg(chart_dir)
            .arg("--destination")
            .arg(self.dir.path()));
        self.reindex();
    }

    /// Rewrites `index.yaml` with `helm repo index` (chart URLs relative).
    pub fn reindex(&self) {
        run(Command::new(crate::tools::helm())
            .arg("repo")
            .arg("index")
            .arg(self.dir.path()));
    }

    /// The path of a file in the served directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Every request answered so far, in order.
    pub fn served(&self) -> Vec<Served> {
        lock(&self.log).clone()
    }
}

impl Drop for ChartRepo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so it sees the stop.
        let _ = TcpStream::connect(self.addr);
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run helm");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes a chart `name` at `version` into `dir/name` with one ConfigMap
/// template showing `.Values.greeting` and the chart version, and the
/// `Chart.yaml` `dependencies` given as YAML (empty for none); returns its
/// directory.
pub fn write_chart(dir: &Path, name: &str, version: &str, dependencies: &str) -> PathBuf {
    let chart = dir.join(name);
    std::fs::create_dir_all(chart.join("templates")).expect("chart dir");
    let deps = if dependencies.is_empty() {
        String::new()
    } else {
        format!("dependencies:\n{dependencies}")
    };
    let files = [
        (
            "Chart.yaml",
            format!("apiVersion: v2\nname: {name}\nversion: {version}\n{deps}"),
        ),
        ("values.yaml", "greeting: hello\nreplicas: 1\n".to_string()),
        (
            "templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-{{ .Chart.Name }}\n\
             data:\n  greeting: {{ .Values.greeting | quote }}\n  replicas: {{ .Values.replicas | quote }}\n\
             \x20 version: {{ .Chart.Version | quote }}\n"
                .to_string(),
        ),
    ];
    for (file, text) in files {
        std::fs::write(chart.join(file), text).expect("write chart file");
    }
    chart
}

fn serve(stream: TcpStream, root: &Path, authorization: Option<&str>, log: &Mutex<Vec<Served>>) {
    let Some(request) = read_request(&stream) else {
        return;
    };
    let (status, headers, body) = answer(&request, root, authorization);
    lock(log).push(Served { request, status });
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} Status\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(&body);
}

/// The status, extra header lines and body for `request`.
fn answer(request: &Request, root: &Path, authorization: Option<&str>) -> (u16, String, Vec<u8>) {
    if authorization.is_some_and(|a| request.header("authorization") != Some(a)) {
        let challenge = "WWW-Authenticate: Basic realm=\"charts\"\r\n".to_string();
        return (401, challenge, Vec::new());
    }
    let name = request.path.trim_start_matches('/');
    if request.method != "GET" || name.is_empty() || name.contains("..") {
        return (404, String::new(), Vec::new());
    }
    let Ok(body) = std::fs::read(root.join(name)) else {
        return (404, String::new(), Vec::new());
    };
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    let etag = format!("\"{:016x}\"", hasher.finish());
    let headers = format!("ETag: {etag}\r\n");
    if request.header("if-none-match") == Some(etag.as_str()) {
        return (304, headers, Vec::new());
    }
    (200, headers, body)
}
