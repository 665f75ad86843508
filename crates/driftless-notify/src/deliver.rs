//! Delivery: one bounded queue and worker per Notifier. A worker sends in
//! order, paced, retries what failed with backoff, does not repeat a failure
//! it has told already, and keeps Alertmanager's firing alerts alive. The
//! caller never waits: [`Dispatcher::send`] drops and counts when a queue is full.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use driftless_api::status::{Condition, ConditionStatus, NotifierStatus, READY, set_condition};
use driftless_api::{EventKind, NotifierType, Time};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::event::{CommitState, Delivery, Event};
use crate::format::{self, Alert, Request};
use crate::target::{Target, TargetError};

/// Tries, waits and pace of delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries of one message before it is given up on.
    pub tries: u32,
    /// Wait after the first failed try; each next wait doubles.
    pub first_wait: Duration,
    /// Time limit of one request.
    pub timeout: Duration,
    /// Least time between two requests of one Notifier.
    pub min_gap: Duration,
    /// Messages a Notifier's queue holds; more are dropped and counted.
    pub queue: usize,
    /// How often firing Alertmanager alerts are sent again.
    pub resend: Duration,
}

impl Default for RetryPolicy {
    /// Five tries over five minutes (waits of 20, 40, 80 and 160 s), one
    /// request a second at most, 1000 messages queued.
    fn default() -> Self {
        Self {
            tries: 5,
            first_wait: Duration::from_secs(20),
            timeout: Duration::from_secs(10),
            min_gap: Duration::from_secs(1),
            queue: 1000,
            resend: Duration::from_secs(5 * 60),
        }
    }
}

/// Statuses of every Notifier, by name.
type Statuses = Arc<Mutex<BTreeMap<String, NotifierStatus>>>;

struct Worker {
    target: Target,
    tx: mpsc::Sender<Delivery>,
    handle: JoinHandle<()>,
}

/// Hands deliveries to each Notifier's worker. Cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    workers: Arc<Mutex<HashMap<String, Worker>>>,
    statuses: Statuses,
    client: reqwest::Client,
    policy: RetryPolicy,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = lock(&self.workers).keys().cloned().collect();
        f.debug_struct("Dispatcher")
            .field("notifiers", &names)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Dispatcher {
    /// A dispatcher with no Notifiers. Must be created inside a tokio runtime.
    pub fn new(policy: RetryPolicy) -> Self {
        // https:// services are reached with rustls on ring, the one TLS stack.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .user_agent(concat!("driftless/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            workers: Arc::default(),
            statuses: Arc::default(),
            client,
            policy,
        }
    }

    /// Makes `targets` the Notifiers in force: new and changed ones get a fresh
    /// worker, removed ones stop. A Notifier that could not be resolved shows
    /// its error in its status and sends nothing.
    pub fn configure(&self, targets: Vec<Result<Target, (String, TargetError)>>) {
        let mut workers = lock(&self.workers);
        let mut statuses = lock(&self.statuses);
        let mut keep = Vec::new();
        for target in targets {
            match target {
                Ok(target) => {
                    let name = target.name.clone();
                    keep.push(name.clone());
                    if workers.get(&name).is_some_and(|w| w.target == target) {
                        continue;
                    }
                    if let Some(old) = workers.remove(&name) {
                        old.handle.abort();
                    }
                    let status = statuses.entry(name.clone()).or_default();
                    let ready = Condition::new(READY, ConditionStatus::True, "Configured", "");
                    set_condition(&mut status.conditions, ready);
                    status.last_error = None;
                    workers.insert(name, self.spawn(target));
                }
                Err((name, error)) => {
                    if let Some(old) = workers.remove(&name) {
                        old.handle.abort();
                    }
                    let status = statuses.entry(name.clone()).or_default();
                    let message = error.to_string();
                    let not_ready =
                        Condition::new(READY, ConditionStatus::False, "InvalidSecret", &*message);
                    set_condition(&mut status.conditions, not_ready);
                    status.last_error = Some(message);
                    keep.push(name);
                }
            }
        }
        workers.retain(|name, worker| {
            let stays = keep.contains(name);
            if !stays {
                worker.handle.abort();
            }
            stays
        });
        statuses.retain(|name, _| keep.contains(name));
    }

    fn spawn(&self, target: Target) -> Worker {
        let (tx, rx) = mpsc::channel(self.policy.queue.max(1));
        let run = Run {
            target: target.clone(),
            client: self.client.clone(),
            policy: self.policy.clone(),
            statuses: self.statuses.clone(),
            told: HashMap::new(),
            commits: HashMap::new(),
            firing: BTreeMap::new(),
        };
        let handle = tokio::spawn(run.serve(rx));
        Worker { target, tx, handle }
    }

    /// Whether any Notifier is configured (the engine skips building
    /// deliveries when none is).
    pub fn is_empty(&self) -> bool {
        lock(&self.workers).is_empty()
    }

    /// Queues `delivery` for every Notifier that follows its App. Never waits.
    pub fn send(&self, delivery: &Delivery) {
        let workers = lock(&self.workers);
        for (name, worker) in workers.iter() {
            let spec = &worker.target.spec;
            let takes = match delivery {
                Delivery::Commit(_) => spec.type_.is_commit_status(),
                Delivery::Event(_) => !spec.type_.is_commit_status(),
            };
            if !takes || !delivery.followed_by(|app| spec.follows(app)) {
                continue;
            }
            if worker.tx.try_send(delivery.clone()).is_err() {
                let mut statuses = lock(&self.statuses);
                statuses.entry(name.clone()).or_default().dropped += 1;
                tracing::warn!(notifier = %name, app = %delivery.app(), "notification queue full; message dropped");
            }
        }
    }

    /// Every Notifier's delivery counts and last error, by name.
    pub fn statuses(&self) -> Vec<(String, NotifierStatus)> {
        lock(&self.statuses)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// One Notifier's worker.
struct Run {
    target: Target,
    client: reqwest::Client,
    policy: RetryPolicy,
    statuses: Statuses,
    /// Per subject (App or GitSource) and error event: what was last told, so
    /// a repeat is not told again.
    told: HashMap<(String, EventKind), String>,
    /// Per App: the commit state last set.
    commits: HashMap<String, (String, CommitState)>,
    /// Firing Alertmanager alerts by key.
    firing: BTreeMap<String, Alert>,
}

impl Run {
    async fn serve(mut self, mut rx: mpsc::Receiver<Delivery>) {
        let mut resend = tokio::time::interval(self.policy.resend);
        resend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        resend.tick().await;
        loop {
            tokio::select! {
                delivery = rx.recv() => match delivery {
                    Some(delivery) => self.handle(delivery).await,
                    None => return,
                },
                _ = resend.tick(), if !self.firing.is_empty() => self.resend_firing().await,
            }
        }
    }

    async fn handle(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::Commit(update) => {
                let told = (update.sha.clone(), update.state);
                if self.commits.get(&update.app) == Some(&told) {
                    return;
                }
                self.commits.insert(update.app.clone(), told);
                match format::request(&self.target, &Delivery::Commit(update), Time::now()) {
                    Ok(Some(request)) => self.deliver(request).await,
                    Ok(None) => {}
                    Err(e) => self.give_up(e.to_string()),
                }
            }
            Delivery::Event(event) => self.handle_event(*event).await,
        }
    }

    async fn handle_event(&mut self, event: Event) {
        let spec = &self.target.spec;
        let wanted = event.concerns(|app| spec.wants(event.kind, app));
        let subject = event.subject();
        if event.kind.is_error() {
            let key = (subject, event.kind);
            let fingerprint = fingerprint(&event);
            if self.told.get(&key) == Some(&fingerprint) {
                if wanted {
                    self.status(|s| s.deduplicated += 1);
                }
                return;
            }
            self.told.insert(key, fingerprint);
        } else {
            // The App's state changed: its next failure is news again.
            self.told.retain(|(told, _), _| *told != subject);
        }
        let now = Time::now();
        if self.target.type_() == NotifierType::Alertmanager {
            let mut alerts = self.resolved_by(&event, now);
            if wanted {
                let alert = format::alert_for(&event, now);
                if event.kind.is_error() {
                    self.firing.insert(alert.key(), alert.clone());
                }
                alerts.push(alert);
            }
            if !alerts.is_empty() {
                let request = alertmanager_request(&self.target, &alerts);
                self.deliver(request).await;
            }
            return;
        }
        if !wanted {
            return;
        }
        match format::request(&self.target, &Delivery::Event(Box::new(event)), now) {
            Ok(Some(request)) => self.deliver(request).await,
            Ok(None) => {}
            Err(e) => self.give_up(e.to_string()),
        }
    }

    /// The firing alerts of the event's App that it ends, ended now.
    fn resolved_by(&mut self, event: &Event, now: Time) -> Vec<Alert> {
        let ends = format::resolves(event.kind);
        let keys: Vec<String> = self
            .firing
            .iter()
            .filter(|(_, a)| {
                a.labels.get("app") == Some(&event.app)
                    && ends
                        .iter()
                        .any(|k| a.labels.get("event").map(String::as_str) == Some(k.as_str()))
            })
            .map(|(k, _)| k.clone())
            .collect();
        keys.into_iter()
            .filter_map(|k| self.firing.remove(&k))
            .map(|mut alert| {
                alert.ends_at = now;
                alert
            })
            .collect()
    }

    async fn resend_firing(&mut self) {
        let now = Time::now();
        let alerts: Vec<Alert> = self
            .firing
            .values_mut()
            .map(|alert| {
                alert.ends_at = Time::from_unix_ms(now.unix_ms() + format::FIRING_MS);
                alert.clone()
            })
            .collect();
        let request = alertmanager_request(&self.target, &alerts);
        self.deliver(request).await;
    }

    /// Sends `request`, paced and retried; records the result.
    async fn deliver(&mut self, request: Request) {
        let mut wait = self.policy.first_wait;
        let mut last_error = String::new();
        for attempt in 1..=self.policy.tries.max(1) {
            tokio::time::sleep(self.policy.min_gap).await;
            match self.post(&request).await {
                Ok(()) => {
                    self.status(|s| {
                        s.delivered += 1;
                        s.last_delivery_time = Some(Time::now());
                        let ready = Condition::new(READY, ConditionStatus::True, "Delivered", "");
                        set_condition(&mut s.conditions, ready);
                    });
                    return;
                }
                Err(Failure { message, retry }) => {
                    tracing::warn!(
                        notifier = %self.target.name,
                        "delivery try {attempt} of {}: {message}",
                        self.policy.tries
                    );
                    last_error = message;
                    if !retry {
                        break;
                    }
                }
            }
            if attempt < self.policy.tries {
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
            }
        }
        self.give_up(last_error);
    }

    fn give_up(&self, message: String) {
        tracing::error!(notifier = %self.target.name, "notification given up on: {message}");
        self.status(|s| {
            s.failed += 1;
            let failed = Condition::new(READY, ConditionStatus::False, "DeliveryFailed", &*message);
            set_condition(&mut s.conditions, failed);
            s.last_error = Some(message);
        });
    }

    fn status(&self, change: impl FnOnce(&mut NotifierStatus)) {
        let mut statuses = lock(&self.statuses);
        change(statuses.entry(self.target.name.clone()).or_default());
    }

    async fn post(&self, request: &Request) -> Result<(), Failure> {
        let host = host_of(&request.url);
        let mut builder = self
            .client
            .post(&request.url)
            .header("Content-Type", "application/json")
            .body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        // reqwest's errors name the URL, which may hold a token: leave it out.
        let response = builder.send().await.map_err(|e| Failure {
            message: format!("POST to {host}: {}", e.without_url()),
            retry: true,
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry = status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408;
        Err(Failure {
            message: format!("POST to {host}: HTTP {status}"),
            retry,
        })
    }
}

struct Failure {
    message: String,
    retry: bool,
}

fn alertmanager_request(target: &Target, alerts: &[Alert]) -> Request {
    format::alertmanager_request(target, alerts)
}

/// What makes two failures the same: the commit and the error or drift.
fn fingerprint(event: &Event) -> String {
    let sha = event.revision.as_ref().map_or("", |c| c.sha.as_str());
    let detail = match (&event.error, &event.drift) {
        (Some(error), _) => error.clone(),
        (None, Some(drift)) => format!("{} {}", drift.object, drift.fields.join(",")),
        (None, None) => event.message.clone(),
    };
    format!("{sha}\n{detail}")
}

/// `scheme://host[:port]` of a URL: what errors may name of it.
fn host_of(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = host.rsplit('@').next().unwrap_or_default();
            format!("{scheme}://{host}")
        }
        None => "(no URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_only_the_host_of_a_url() {
        assert_eq!(
            host_of("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            host_of("http://user:pw@127.0.0.1:9093/api"),
            "http://127.0.0.1:9093"
        );
        assert_eq!(
            host_of("https://api.telegram.org/bot123:abc/sendMessage"),
            "https://api.telegram.org"
        );
    }
}
