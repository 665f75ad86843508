//! The work queue: decides when each App reconciles.
//!
//! One dispatcher task owns all queue state, so there are no locks: callers send it
//! commands over a channel and workers report back through a `JoinSet`. Guarantees:
//!
//! - an App queued twice runs once; an App triggered while running runs once more after;
//! - at most `concurrency` workers run at a time;
//! - a failed run is retried with exponential backoff and jitter, reset by a success;
//! - an App with an interval is re-run that long (with jitter) after each run: polling as
//!   a safety net behind webhooks and watches;
//! - each run gets a [`CancellationToken`]; [`WorkQueue::preempt`] cancels it so a newer
//!   revision does not wait behind a health check of an older one;
//! - [`WorkQueue::shutdown`] cancels running work and waits for it to finish.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::store::SyncTrigger;
use crate::timing::{Backoff, jitter};

/// Errors of the work queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue was shut down; nothing more will run.
    #[error("work queue is shut down: cannot queue {key}")]
    Closed {
        /// Key that could not be queued.
        key: String,
    },
}

/// Tuning of a [`WorkQueue`].
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Most runs at once.
    pub concurrency: usize,
    /// Retry delays after failures.
    pub backoff: Backoff,
    /// Fraction by which interval and backoff delays are spread (0.1 = ±10%).
    pub jitter: f64,
    /// Seed of the jitter generator; `None` seeds from entropy. Tests fix it.
    pub seed: Option<u64>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            backoff: Backoff::default(),
            jitter: 0.1,
            seed: None,
        }
    }
}

/// One run handed to the worker.
#[derive(Debug, Clone)]
pub struct Job {
    /// The App (or other keyed item) to reconcile.
    pub key: String,
    /// Why it runs.
    pub trigger: SyncTrigger,
    /// Consecutive failures before this run (0 on a first try).
    pub failures: u32,
    /// Cancelled when a newer trigger preempts this run or the queue shuts down.
    pub cancel: CancellationToken,
}

/// How a run ended, as the worker reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done; resets backoff and schedules the next interval.
    Succeeded,
    /// Failed; retried after backoff.
    Failed,
    /// Stopped because its token was cancelled; no backoff.
    Cancelled,
}

enum Command {
    Trigger {
        key: String,
        trigger: SyncTrigger,
        preempt: bool,
    },
    Interval {
        key: String,
        every: Option<Duration>,
    },
    Backoff {
        key: String,
        backoff: Option<Backoff>,
    },
    Remove {
        key: String,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// Handle on a running work queue; cheap to clone.
#[derive(Clone, Debug)]
pub struct WorkQueue {
    commands: mpsc::UnboundedSender<Command>,
    depth: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
}

impl WorkQueue {
    /// Starts the dispatcher on the current tokio runtime; `worker` runs each [`Job`].
    pub fn start<F, Fut>(config: QueueConfig, worker: F) -> (Self, JoinHandle<()>)
    where
        F: Fn(Job) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let depth = Arc::new(AtomicUsize::new(0));
        let running = Arc::new(AtomicUsize::new(0));
        let rng = config
            .seed
            .map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
        let dispatcher = Dispatcher {
            config,
            worker: Arc::new(worker),
            rng,
            entries: HashMap::new(),
            ready: VecDeque::new(),
            timers: BTreeSet::new(),
            tasks: JoinSet::new(),
            task_keys: HashMap::new(),
            depth: depth.clone(),
            running: running.clone(),
        };
        let handle = tokio::spawn(dispatcher.run(rx));
        (
            Self {
                commands: tx,
                depth,
                running,
            },
            handle,
        )
    }

    fn send(&self, command: Command, key: &str) -> Result<(), QueueError> {
        self.commands.send(command).map_err(|_| QueueError::Closed {
            key: key.to_owned(),
        })
    }

    /// Queues `key` to run as soon as a worker is free (merged with a pending run).
    pub fn trigger(&self, key: &str, trigger: SyncTrigger) -> Result<(), QueueError> {
        self.send(
            Command::Trigger {
                key: key.to_owned(),
                trigger,
                preempt: false,
            },
            key,
        )
    }

    /// Like [`trigger`](Self::trigger), and cancels a run of `key` in progress so the new
    /// one starts as soon as that run returns.
    pub fn preempt(&self, key: &str, trigger: SyncTrigger) -> Result<(), QueueError> {
        self.send(
            Command::Trigger {
                key: key.to_owned(),
                trigger,
                preempt: true,
            },
            key,
        )
    }

    /// Runs `key` again `every` (with jitter) after each run; `None` stops polling.
    pub fn set_interval(&self, key: &str, every: Option<Duration>) -> Result<(), QueueError> {
        self.send(
            Command::Interval {
                key: key.to_owned(),
                every,
            },
            key,
        )
    }

    /// Retries of `key` after failures wait by `backoff` instead of the queue's.
    pub fn set_backoff(&self, key: &str, backoff: Option<Backoff>) -> Result<(), QueueError> {
        self.send(
            Command::Backoff {
                key: key.to_owned(),
                backoff,
            },
            key,
        )
    }

    /// Forgets `key`: drops pending runs and timers, cancels a run in progress.
    pub fn remove(&self, key: &str) -> Result<(), QueueError> {
        self.send(
            Command::Remove {
                key: key.to_owned(),
            },
            key,
        )
    }

    /// Items waiting for a worker.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Runs in progress.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// Stops starting runs, cancels those in progress and waits until they return.
    pub async fn shutdown(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Shutdown { done }).is_ok() {
            // An error means the dispatcher already finished: nothing left to wait for.
            let _ = wait.await;
        }
    }
}

#[derive(Default)]
struct Entry {
    interval: Option<Duration>,
    /// Overrides the queue's backoff for this key.
    backoff: Option<Backoff>,
    failures: u32,
    /// A run is wanted; the key sits in `ready` iff this is set and nothing runs.
    pending: Option<SyncTrigger>,
    /// Trigger of the last run, reused by its backoff retry.
    last_trigger: Option<SyncTrigger>,
    running: Option<CancellationToken>,
    /// Timer and the trigger it fires with.
    due: Option<(Instant, SyncTrigger)>,
    /// Removed while running: dropped when that run returns.
    removed: bool,
}

struct Dispatcher<F> {
    config: QueueConfig,
    worker: Arc<F>,
    rng: fastrand::Rng,
    entries: HashMap<String, Entry>,
    ready: VecDeque<String>,
    timers: BTreeSet<(Instant, String)>,
    tasks: JoinSet<Outcome>,
    task_keys: HashMap<tokio::task::Id, String>,
    depth: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
}

impl<F, Fut> Dispatcher<F>
where
    F: Fn(Job) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut shutdown: Option<Vec<oneshot::Sender<()>>> = None;
        let mut commands_open = true;
        loop {
            if shutdown.is_none() {
                self.dispatch();
            }
            self.depth.store(self.ready.len(), Ordering::Relaxed);
            self.running.store(self.tasks.len(), Ordering::Relaxed);
            if shutdown.is_some() && self.tasks.is_empty() {
                break;
            }
            let next_timer = self.timers.first().map(|(at, _)| *at);
            tokio::select! {
                command = commands.recv(), if commands_open => match command {
                    Some(Command::Shutdown { done }) => {
                        self.cancel_all();
                        shutdown.get_or_insert_with(Vec::new).push(done);
                    }
                    Some(command) if shutdown.is_none() => self.handle(command),
                    Some(_) => {}
                    None => {
                        // Every handle dropped: nobody can trigger work any more.
                        commands_open = false;
                        self.cancel_all();
                        shutdown.get_or_insert_with(Vec::new);
                    }
                },
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    let (id, outcome) = match joined {
                        Ok((id, outcome)) => (id, outcome),
                        // A panicking worker counts as a failure; the queue lives on.
                        Err(e) => (e.id(), Outcome::Failed),
                    };
                    if let Some(key) = self.task_keys.remove(&id) {
                        self.complete(key, outcome);
                    }
                },
                () = sleep_until(next_timer), if next_timer.is_some() && shutdown.is_none() => {
                    self.fire_timers();
                },
            }
        }
        for done in shutdown.unwrap_or_default() {
            let _ = done.send(());
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Trigger {
                key,
                trigger,
                preempt,
            } => self.trigger(key, trigger, preempt),
            Command::Interval { key, every } => {
                let entry = self.entries.entry(key.clone()).or_default();
                entry.interval = every;
                let idle = entry.running.is_none() && entry.pending.is_none();
                if idle && entry.due.is_none() {
                    if let Some(every) = every {
                        self.schedule(&key, every, SyncTrigger::Interval);
                    }
                } else if every.is_none()
                    && entry.due.is_some_and(|(_, t)| t == SyncTrigger::Interval)
                {
                    self.clear_timer(&key);
                }
            }
            Command::Backoff { key, backoff } => {
                self.entries.entry(key).or_default().backoff = backoff;
            }
            Command::Remove { key } => {
                self.clear_timer(&key);
                self.ready.retain(|k| *k != key);
                if let Some(entry) = self.entries.get_mut(&key) {
                    if let Some(token) = &entry.running {
                        token.cancel();
                        entry.removed = true;
                        entry.pending = None;
                    } else {
                        self.entries.remove(&key);
                    }
                }
            }
            Command::Shutdown { .. } => {}
        }
    }

    fn trigger(&mut self, key: String, trigger: SyncTrigger, preempt: bool) {
        self.clear_timer(&key);
        let entry = self.entries.entry(key.clone()).or_default();
        entry.removed = false;
        let already_pending = entry.pending.is_some();
        // A user's sync or rollback waiting to run is not turned into a
        // routine one by a later automatic trigger.
        let asked =
            |t: Option<SyncTrigger>| matches!(t, Some(SyncTrigger::Manual | SyncTrigger::Rollback));
        if !asked(entry.pending) || asked(Some(trigger)) {
            entry.pending = Some(trigger);
        }
        match &entry.running {
            Some(token) if preempt => token.cancel(),
            Some(_) => {}
            None if !already_pending => self.ready.push_back(key),
            None => {}
        }
    }

    fn dispatch(&mut self) {
        while self.tasks.len() < self.config.concurrency.max(1) {
            let Some(key) = self.ready.pop_front() else {
                return;
            };
            let Some(entry) = self.entries.get_mut(&key) else {
                continue;
            };
            let Some(trigger) = entry.pending.take() else {
                continue;
            };
            let cancel = CancellationToken::new();
            entry.running = Some(cancel.clone());
            entry.last_trigger = Some(trigger);
            let job = Job {
                key: key.clone(),
                trigger,
                failures: entry.failures,
                cancel,
            };
            let handle = self.tasks.spawn((self.worker)(job));
            self.task_keys.insert(handle.id(), key);
        }
    }

    fn complete(&mut self, key: String, outcome: Outcome) {
        let Some(entry) = self.entries.get_mut(&key) else {
            return;
        };
        entry.running = None;
        if entry.removed {
            self.entries.remove(&key);
            return;
        }
        match outcome {
            Outcome::Succeeded => entry.failures = 0,
            Outcome::Failed => entry.failures = entry.failures.saturating_add(1),
            Outcome::Cancelled => {}
        }
        if entry.pending.is_some() {
            self.ready.push_back(key);
        } else if outcome == Outcome::Failed {
            let backoff = entry.backoff.unwrap_or(self.config.backoff);
            let delay = backoff.delay(entry.failures);
            let retry = entry.last_trigger.unwrap_or(SyncTrigger::Interval);
            self.schedule(&key, delay, retry);
        } else if let Some(every) = entry.interval {
            self.schedule(&key, every, SyncTrigger::Interval);
        }
    }

    fn schedule(&mut self, key: &str, delay: Duration, trigger: SyncTrigger) {
        self.clear_timer(key);
        let at = Instant::now() + jitter(delay, self.config.jitter, &mut self.rng);
        if let Some(entry) = self.entries.get_mut(key) {
            entry.due = Some((at, trigger));
            self.timers.insert((at, key.to_owned()));
        }
    }

    fn clear_timer(&mut self, key: &str) {
        if let Some((at, _)) = self.entries.get_mut(key).and_then(|e| e.due.take()) {
            self.timers.remove(&(at, key.to_owned()));
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some((at, key)) = self.timers.first().cloned() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, key.clone()));
            let fired = self.entries.get_mut(&key).and_then(|e| e.due.take());
            if let Some((_, trigger)) = fired {
                self.trigger(key, trigger, false);
            }
        }
    }

    fn cancel_all(&mut self) {
        for token in self.entries.values().filter_map(|e| e.running.as_ref()) {
            token.cancel();
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
