//! A loopback HTTP server of files, for remote kustomize files. Each file is
//! served with an `ETag` (a hash of its body) and a conditional GET whose
//! `If-None-Match` names it is answered `304 Not Modified`, as web servers do.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Serves its files (path, body) on loopback until dropped; others get 404.
pub(crate) struct FileServer {
    pub(crate) url: String,
    /// Requests answered so far.
    pub(crate) requests: Arc<AtomicUsize>,
    /// Requests among them answered `304 Not Modified`.
    pub(crate) not_modified: Arc<AtomicUsize>,
    files: Arc<Mutex<Vec<(String, String)>>>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

fn etag(body: &str) -> String {
    let mut h = DefaultHasher::new();
    body.hash(&mut h);
    format!("\"{:x}\"", h.finish())
}

impl FileServer {
    pub(crate) fn start(files: Vec<(String, String)>) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let stop = Arc::new(AtomicBool::new(false));
        let files = Arc::new(Mutex::new(files));
        let requests = Arc::new(AtomicUsize::new(0));
        let not_modified = Arc::new(AtomicUsize::new(0));
        let (flag, served, counted, unchanged) = (
            stop.clone(),
            files.clone(),
            requests.clone(),
            not_modified.clone(),
        );
        let handle = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                };
                stream.set_nonblocking(false).expect("blocking stream");
                let mut line = String::new();
                let mut reader = BufReader::new(&stream);
                let _ = reader.read_line(&mut line);
                let mut if_none_match = None;
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    if let Some((name, value)) = header.split_once(':')
                        && name.eq_ignore_ascii_case("if-none-match")
                    {
                        if_none_match = Some(value.trim().to_owned());
                    }
                    header.clear();
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let path = line.split_whitespace().nth(1).unwrap_or("");
                let body = served
                    .lock()
                    .expect("files")
                    .iter()
                    .find(|(p, _)| p == path)
                    .map(|(_, body)| body.clone());
                let answer = match body {
                    Some(body) if if_none_match.as_deref() == Some(etag(&body).as_str()) => {
                        unchanged.fetch_add(1, Ordering::SeqCst);
                        format!(
                            "HTTP/1.1 304 Not Modified\r\nETag: {}\r\nConnection: close\r\n\r\n",
                            etag(&body)
                        )
                    }
                    Some(body) => format!(
                        "HTTP/1.1 200 OK\r\nETag: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        etag(&body),
                        body.len()
                    ),
                    None => {
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_owned()
                    }
                };
                let _ = (&stream).write_all(answer.as_bytes());
            }
        });
        FileServer {
            url,
            requests,
            not_modified,
            files,
            stop,
            handle: Some(handle),
        }
    }

    /// Serves `body` at `path` from now on.
    pub(crate) fn set(&self, path: &str, body: &str) {
        let mut files = self.files.lock().expect("files");
        files.retain(|(p, _)| p != path);
        files.push((path.to_owned(), body.to_owned()));
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
