//! A loopback HTTP server that records every request and answers with the
//! statuses it is told, and a sample event.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use driftless_api::{EventKind, NotifierSpec, Time};
use driftless_notify::{Commit, Dispatcher, Drift, Event, RetryPolicy, Target};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
    pub raw: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The recording server.
pub struct Recorder {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Statuses to answer, in order; 200 once they run out.
    answers: Arc<Mutex<Vec<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    pub async fn start() -> Self {
        Self::answering(Vec::new()).await
    }

    pub async fn answering(answers: Vec<u16>) -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let answers = Arc::new(Mutex::new(answers));
        let (s, a) = (seen.clone(), answers.clone());
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (seen, answers) = (s.clone(), a.clone());
                async move {
                    seen.lock().expect("lock").push(Seen {
                        method,
                        path: uri.to_string(),
                        headers,
                        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
                        raw: body.to_vec(),
                    });
                    let mut answers = answers.lock().expect("lock");
                    let code = if answers.is_empty() {
                        200
                    } else {
                        answers.remove(0)
                    };
                    StatusCode::from_u16(code).expect("a status code")
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Self {
            addr,
            seen,
            answers,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    /// Waits until `n` requests arrived (at most 10 s).
    pub async fn wait_for(&self, n: usize) -> Vec<Seen> {
        for _ in 0..200 {
            let seen = self.seen();
            if seen.len() >= n {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} requests, got {:?}", self.seen());
    }

    pub fn left_answers(&self) -> usize {
        self.answers.lock().expect("lock").len()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A policy fast enough for tests: 3 tries 50 ms apart.
pub fn quick() -> RetryPolicy {
    RetryPolicy {
        tries: 3,
        first_wait: Duration::from_millis(50),
        timeout: Duration::from_secs(5),
        min_gap: Duration::from_millis(1),
        queue: 100,
        resend: Duration::from_secs(60),
    }
}

/// A target from a spec written as JSON, with `secret`.
pub fn target(name: &str, spec: serde_json::Value, secret: Option<&str>) -> Target {
    let spec: NotifierSpec = serde_json::from_value(spec).expect("a spec");
    Target::new(name.to_owned(), spec, secret.map(str::to_owned)).expect("a target")
}

/// A dispatcher with one target.
pub fn dispatcher(target: Target) -> Dispatcher {
    let d = Dispatcher::new(quick());
    d.configure(vec![Ok(target)]);
    d
}

pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// A failed sync of `web-prod` at [`SHA`].
pub fn failed_sync() -> Event {
    Event {
        kind: EventKind::SyncFailed,
        app: "web-prod".into(),
        cluster: "default".into(),
        namespace: Some("web".into()),
        revision: Some(Commit {
            sha: SHA.into(),
            subject: "Raise replicas to 3".into(),
            author: "Ada Lovelace <ada@example.com>".into(),
        }),
        message: "apply failed at revision 0123456789ab".into(),
        error: Some("Deployment/web/web: spec.replicas: Invalid value: -1".into()),
        drift: None,
        url: Some("https://driftless.example.com/apps/web-prod".into()),
        time: Time::from_unix_ms(1_780_000_000_000),
    }
}

/// A reverted hand edit of `web-prod`.
pub fn reverted_drift() -> Event {
    Event {
        kind: EventKind::DriftReverted,
        error: None,
        message: "a change made in the cluster was reverted to Git's state".into(),
        drift: Some(Drift {
            object: "apps/v1/Deployment/web/web".into(),
            fields: vec!["spec.replicas".into()],
            manager: Some("kubectl-edit".into()),
        }),
        ..failed_sync()
    }
}
