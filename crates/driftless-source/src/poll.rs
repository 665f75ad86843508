//! Periodic polling of a source, reporting new revisions and keeping the last good one.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use crate::fetch::{FetchError, Fetcher, SourceSpec};
use crate::revision::Revision;

/// Polls one source at an interval.
///
/// A failed poll (network, credentials, signature) leaves
/// [`Poller::current`] at the last accepted revision, so callers keep
/// deploying what was last known good.
#[derive(Debug)]
pub struct Poller {
    fetcher: Arc<Fetcher>,
    spec: SourceSpec,
    interval: Duration,
    current: Option<Revision>,
    last_error: Option<String>,
    failures: u32,
}

/// Outcome of one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollEvent {
    /// The source moved to a new commit (or was fetched for the first time).
    Changed(Box<Revision>),
    /// The source still points at the current commit.
    Unchanged,
}

impl Poller {
    /// A poller for `spec` sharing `fetcher` (and its de-duplication) with others.
    pub fn new(fetcher: Arc<Fetcher>, spec: SourceSpec, interval: Duration) -> Self {
        Poller {
            fetcher,
            spec,
            interval,
            current: None,
            last_error: None,
            failures: 0,
        }
    }

    /// The last accepted revision, if any poll succeeded.
    pub fn current(&self) -> Option<&Revision> {
        self.current.as_ref()
    }

    /// The message of the last failed poll, cleared by a successful one.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Fetches once and reports whether the revision changed.
    pub fn poll(&mut self) -> Result<PollEvent, FetchError> {
        match self.fetcher.fetch(&self.spec) {
            Ok(rev) => {
                self.last_error = None;
                self.failures = 0;
                let same = self.current.as_ref().is_some_and(|c| {
                    c.sha == rev.sha
                        && c.tag_object == rev.tag_object
                        && c.reference == rev.reference
                });
                if same {
                    return Ok(PollEvent::Unchanged);
                }
                self.current = Some(rev.clone());
                Ok(PollEvent::Changed(Box::new(rev)))
            }
            Err(e) => {
                self.last_error = Some(e.to_string());
                self.failures = self.failures.saturating_add(1);
                Err(e)
            }
        }
    }

    /// Delay before the next poll: the interval, doubled per consecutive
    /// failure up to eight times the interval, so a broken remote is not hammered.
    pub fn next_delay(&self) -> Duration {
        let factor = 1u32 << self.failures.min(3);
        self.interval.saturating_mul(factor)
    }

    /// Polls until told to stop: every [`Poller::next_delay`], and at once on
    /// [`PollCommand::Now`] (e.g. from a webhook). Calls `on_change` for each
    /// new revision and `on_error` for each failed poll. Returns when `commands`
    /// receives [`PollCommand::Stop`] or is disconnected.
    pub fn run(
        &mut self,
        commands: &Receiver<PollCommand>,
        mut on_change: impl FnMut(&Revision),
        mut on_error: impl FnMut(&FetchError),
    ) {
        loop {
            match self.poll() {
                Ok(PollEvent::Changed(rev)) => on_change(&rev),
                Ok(PollEvent::Unchanged) => {}
                Err(e) => on_error(&e),
            }
            match commands.recv_timeout(self.next_delay()) {
                Err(RecvTimeoutError::Timeout) | Ok(PollCommand::Now) => {}
                Ok(PollCommand::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

/// Instructions to a running [`Poller::run`] loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollCommand {
    /// Poll now instead of waiting for the interval.
    Now,
    /// Leave the loop.
    Stop,
}
