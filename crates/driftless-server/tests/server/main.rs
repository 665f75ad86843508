//! Server tests over real HTTP on 127.0.0.1, with the real store, queue and control.

mod api;
mod app_list;
mod hooks;
mod limits;
mod openapi;
mod serve;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use driftless_api::history::Revision;
use driftless_api::status::{
    Artifact, ClusterStatus, Condition, ConditionStatus, GitSourceStatus, Named, NotifierStatus,
};
use driftless_api::{HttpLimits, Time};
use driftless_engine::control::EngineControl;
use driftless_engine::metrics::Metrics;
use driftless_engine::queue::{Outcome, QueueConfig, WorkQueue};
use driftless_engine::store::{Store, SyncTrigger};
use driftless_server::router::{bind, serve};
use driftless_server::webhook::{Provider, Push};
use driftless_server::{Receiver, ServerState};

/// The API token the test server requires.
pub const TOKEN: &str = "test-token-0123456789";
/// The one GitSource the test engine knows.
pub const SOURCE_URL: &str = "https://github.com/acme/platform.git";

/// A running server and what its engine side saw.
pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub pushes: Arc<Mutex<Vec<(String, Push)>>>,
    pub runs: Arc<Mutex<Vec<(String, SyncTrigger)>>>,
    pub metrics: Arc<Metrics>,
    pub state: ServerState,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(HttpLimits::default()).await
    }

    /// A server within `limits`.
    pub async fn start_with(limits: HttpLimits) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open store");
        let runs: Arc<Mutex<Vec<(String, SyncTrigger)>>> = Arc::default();
        let seen = runs.clone();
        let (queue, _) = WorkQueue::start(QueueConfig::default(), move |job| {
            seen.lock().expect("lock").push((job.key, job.trigger));
            async { Outcome::Succeeded }
        });
        let metrics = Arc::new(Metrics::default());
        let pushes: Arc<Mutex<Vec<(String, Push)>>> = Arc::default();
        let recorded = pushes.clone();
        let hook_queue = queue.clone();
        let depth_queue = queue.clone();
        let state = ServerState::new(
            store.clone(),
            Arc::new(EngineControl::new(store.clone(), queue)),
            metrics.clone(),
        )
        .api_token(TOKEN)
        .receiver(
            "gh",
            Receiver {
                provider: Provider::Github,
                secret: b"gh-secret".to_vec(),
                events: Vec::new(),
            },
        )
        .receiver(
            "gl",
            Receiver {
                provider: Provider::Gitlab,
                secret: b"gl-token".to_vec(),
                events: Vec::new(),
            },
        )
        .receiver(
            "gt",
            Receiver {
                provider: Provider::Gitea,
                secret: b"gt-secret".to_vec(),
                events: Vec::new(),
            },
        )
        .receiver(
            "any",
            Receiver {
                provider: Provider::GenericHmac,
                secret: b"any-secret".to_vec(),
                events: Vec::new(),
            },
        )
        .receiver(
            "releases",
            Receiver {
                provider: Provider::Github,
                secret: b"gh-secret".to_vec(),
                events: vec!["release".into(), "ping".into()],
            },
        )
        .limits(limits)
        .on_push(move |receiver, push| {
            recorded
                .lock()
                .expect("lock")
                .push((receiver.to_owned(), push.clone()));
            // The engine's source matcher: the platform source feeds App "web".
            if push.matches(SOURCE_URL) {
                hook_queue
                    .trigger("web", SyncTrigger::Webhook)
                    .map_or(0, |()| 1)
            } else {
                0
            }
        })
        .queue_depth(move || depth_queue.depth())
        .sources(sources)
        .notifiers(notifiers)
        .clusters(|| async { clusters() });
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        // As serve does once its engine runs.
        state
            .readiness()
            .store(true, std::sync::atomic::Ordering::Release);
        tokio::spawn(serve(listener, state.clone(), std::future::pending()));
        // The workspace's reqwest carries no crypto provider of its own; a
        // client without a TLS config takes the process default.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            store,
            pushes,
            runs,
            metrics,
            state,
            _dir: dir,
        }
    }

    /// The address the server listens on, for raw socket tests.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Lets the queue dispatch what a request triggered.
    pub async fn settle(&self) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// What the test engine reports of its GitSource: fetched once, failing now.
fn sources() -> Vec<Named<GitSourceStatus>> {
    let status = GitSourceStatus {
        url: SOURCE_URL.to_owned(),
        artifact: Some(Artifact {
            revision: Revision {
                ref_label: "main".to_owned(),
                sha: "bbb222".to_owned(),
                chart: None,
            },
            author: "Ada <ada@example.com>".to_owned(),
            subject: "release bbb222".to_owned(),
        }),
        last_fetch_time: Some(Time::from_unix_ms(1_796_000_000_000)),
        last_error: Some("fetching: connection refused".to_owned()),
        ..GitSourceStatus::default()
    };
    vec![Named::new("platform", status)]
}

/// What the test engine reports of its Notifiers: one gave a message up.
fn notifiers() -> Vec<Named<NotifierStatus>> {
    let status = NotifierStatus {
        conditions: vec![Condition::new(
            "Ready",
            ConditionStatus::False,
            "DeliveryFailed",
            "POST to https://hooks.example.com: HTTP 500 Internal Server Error",
        )],
        delivered: 4,
        failed: 1,
        last_error: Some(
            "POST to https://hooks.example.com: HTTP 500 Internal Server Error".to_owned(),
        ),
        last_delivery_time: Some(Time::from_unix_ms(1_796_000_000_000)),
        ..NotifierStatus::default()
    };
    vec![Named::new("team-chat", status)]
}

/// What the test engine reports of its Clusters: one answers, one does not.
fn clusters() -> Vec<Named<ClusterStatus>> {
    let up = ClusterStatus {
        conditions: vec![Condition::new(
            "Ready",
            ConditionStatus::True,
            "Connected",
            "API server v1.36.0 answered",
        )],
        server_version: Some("v1.36.0".to_owned()),
    };
    let down = ClusterStatus {
        conditions: vec![Condition::new(
            "Ready",
            ConditionStatus::False,
            "Unreachable",
            "no answer within 5s",
        )],
        server_version: None,
    };
    vec![Named::new("prod", up), Named::new("edge", down)]
}
