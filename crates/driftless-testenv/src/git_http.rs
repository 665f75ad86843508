//! A Git smart-HTTP server on loopback: a minimal HTTP/1.1 front that hands
//! each request to `git http-backend` (CGI), with optional basic auth (which
//! also lets the authenticated user push) and
//! knobs that make it misbehave (for timeout tests).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::git::GitRepo;

/// How the server behaves.
#[derive(Clone, Default)]
pub struct Options {
    /// Exact `Authorization` header value required; `None` serves anyone.
    pub authorization: Option<String>,
    /// Close upload-pack responses after this many body bytes (a dying server).
    pub cut_after: Option<usize>,
    /// Serve only the "dumb" protocol: static files, no upload-pack.
    pub dumb: bool,
    /// Answer ref listings, but stay silent this long on pack requests
    /// (`command=fetch`), then close: a server that hangs mid-fetch.
    pub stall_fetch: Option<Duration>,
    /// Wait this long before answering each pack request (a slow server).
    pub delay_packs: Option<Duration>,
    /// Send pack responses one byte per this interval (a server that keeps
    /// a transfer alive without ever finishing it).
    pub trickle_packs: Option<Duration>,
}

impl Options {
    /// Options requiring HTTP basic auth with `user` and `password`.
    pub fn basic_auth(user: &str, password: &str) -> Self {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Self {
            authorization: Some(format!("Basic {token}")),
            ..Self::default()
        }
    }
}

/// A running server; stopped when dropped.
pub struct HttpServer {
    /// Base URL, e.g. `http://127.0.0.1:PORT`.
    pub url: String,
    /// Number of HTTP requests served so far.
    pub requests: Arc<AtomicUsize>,
    /// Number of pack requests (protocol-v2 `command=fetch`) among them.
    pub pack_requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so that it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Serves every repository under `root` at `http://127.0.0.1:PORT/<name>`.
pub fn start(root: &Path, options: Options) -> HttpServer {
    // Accept blocks (no polling delay on each connection, as with a real
    // server); dropping the server wakes it with a connection of its own.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("addr").port();
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicUsize::new(0));
    let pack_requests = Arc::new(AtomicUsize::new(0));
    let root = root.to_path_buf();
    let handle = {
        let stop = stop.clone();
        let requests = requests.clone();
        let packs = pack_requests.clone();
        std::thread::spawn(move || {
            loop {
                let accepted = listener.accept();
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                match accepted {
                    Ok((stream, _)) => {
                        requests.fetch_add(1, Ordering::SeqCst);
                        let root = root.clone();
                        let options = options.clone();
                        let packs = packs.clone();
                        std::thread::spawn(move || {
                            let _ = serve(stream, &root, &options, &packs);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        })
    };
    HttpServer {
        url: format!("http://127.0.0.1:{port}"),
        requests,
        pack_requests,
        stop,
        handle: Some(handle),
    }
}

/// A temporary directory of bare repositories served over HTTP.
pub struct GitServer {
    /// The directory holding the bare repositories (`NAME.git`).
    pub root: tempfile::TempDir,
    /// Base URL, e.g. `http://127.0.0.1:PORT`.
    pub url: String,
    /// The server (its request counters).
    pub http: HttpServer,
}

impl GitServer {
    /// Serves a new empty directory to anyone.
    pub fn start() -> Self {
        Self::start_with(Options::default())
    }

    /// Serves a new empty directory with `options` (e.g. basic auth).
    pub fn start_with(options: Options) -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        let http = start(root.path(), options);
        Self {
            url: http.url.clone(),
            root,
            http,
        }
    }
}

/// A bare repository served by a [`GitServer`] and a working clone that pushes to it.
pub struct ServedRepo {
    /// The working clone, whose `origin` is the bare repository.
    pub work: GitRepo,
    /// The bare repository on disk.
    pub bare: PathBuf,
    /// The URL clients fetch.
    pub url: String,
}

impl ServedRepo {
    /// Creates `NAME.git` on `server` and a working clone of it.
    pub fn new(server: &GitServer, name: &str) -> Self {
        let bare = server.root.path().join(format!("{name}.git"));
        Self {
            work: GitRepo::with_origin(&bare),
            bare,
            url: format!("{}/{name}.git", server.url),
        }
    }

    /// Writes `text` to `path` in the working clone.
    pub fn write(&self, path: &str, text: &str) {
        self.work.write(path, text);
    }

    /// Removes `path` from the working clone.
    pub fn remove(&self, path: &str) {
        self.work.remove(path);
    }

    /// Commits everything and pushes; returns the commit id.
    pub fn push(&self, message: &str) -> String {
        self.work.push(message)
    }
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_request(stream: &TcpStream) -> std::io::Result<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut req = Request {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if req
        .header("Transfer-Encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            req.body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(len) = req.header("Content-Length") {
        let n: usize = len.parse().unwrap_or(0);
        req.body = vec![0; n];
        reader.read_exact(&mut req.body)?;
    }
    Ok(req)
}

fn serve(
    mut stream: TcpStream,
    root: &PathBuf,
    options: &Options,
    packs: &AtomicUsize,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let req = read_request(&stream)?;
    let is_fetch = req.body.windows(13).any(|w| w == b"command=fetch");
    if is_fetch {
        packs.fetch_add(1, Ordering::SeqCst);
        if let Some(stall) = options.stall_fetch {
            std::thread::sleep(stall);
            return Ok(());
        }
        if let Some(delay) = options.delay_packs {
            std::thread::sleep(delay);
        }
    }
    if let Some(expected) = &options.authorization
        && req.header("Authorization") != Some(expected.as_str())
    {
        let msg = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\n\
                   Content-Length: 0\r\nConnection: close\r\n\r\n";
        return stream.write_all(msg.as_bytes());
    }
    let (path, mut query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    if options.dumb {
        if req.method == "POST" {
            let msg = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            return stream.write_all(msg.as_bytes());
        }
        // Without `?service=` http-backend answers as a static file server.
        query = "";
    }
    let mut cmd = Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &req.method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_LENGTH", req.body.len().to_string());
    if options.authorization.is_some() {
        // An authenticated user may push (http-backend serves receive-pack only then).
        cmd.env("REMOTE_USER", "git");
    }
    for (header, var) in [
        ("Content-Type", "CONTENT_TYPE"),
        ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
        ("Git-Protocol", "GIT_PROTOCOL"),
    ] {
        if let Some(v) = req.header(header) {
            cmd.env(var, v);
        }
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let body = req.body;
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let out = child.wait_with_output()?;
    let _ = writer.join();
    let raw = out.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, 4))
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| (p, 2)));
    let (head, content) = match split {
        Some((p, n)) => (
            String::from_utf8_lossy(&raw[..p]).to_string(),
            &raw[p + n..],
        ),
        None => (String::new(), &raw[..]),
    };
    let mut status = "200 OK".to_string();
    let mut response = Vec::new();
    let mut header_lines = String::new();
    for line in head.lines() {
        if let Some(s) = line.strip_prefix("Status:") {
            status = s.trim().to_string();
        } else if !line.is_empty() {
            header_lines.push_str(line);
            header_lines.push_str("\r\n");
        }
    }
    write!(
        response,
        "HTTP/1.1 {status}\r\n{header_lines}Content-Length: {}\r\nConnection: close\r\n\r\n",
        content.len()
    )?;
    let cut = options
        .cut_after
        .filter(|_| path.ends_with("git-upload-pack"))
        .map_or(content.len(), |n| n.min(content.len()));
    response.extend_from_slice(&content[..cut]);
    if let Some(interval) = options.trickle_packs.filter(|_| is_fetch) {
        for byte in response {
            stream.write_all(&[byte])?;
            std::thread::sleep(interval);
        }
        return Ok(());
    }
    stream.write_all(&response)?;
    stream.flush()
}
