//! What a notification tells: an App's event, or the state of a commit.

use driftless_api::{EventKind, Time};
use serde::Serialize;

/// A commit as messages name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Commit {
    /// Full commit id.
    pub sha: String,
    /// First line of the message.
    pub subject: String,
    /// `Name <email>`.
    pub author: String,
}

impl Commit {
    /// The first 12 characters of the id.
    pub fn short(&self) -> &str {
        &self.sha[..self.sha.len().min(12)]
    }
}

/// A change made in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    /// `apiVersion/kind/namespace/name` of the changed object.
    pub object: String,
    /// Changed field paths.
    pub fields: Vec<String>,
    /// The field manager that made the change, when the API server said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
}

/// Something that happened to an App.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The App.
    pub app: String,
    /// The cluster it deploys to (`default` for the default cluster).
    pub cluster: String,
    /// Its default namespace, when it sets one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The commit concerned, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<Commit>,
    /// One line saying what happened.
    pub message: String,
    /// The error, cut to an excerpt, for failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The change, for drift events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
    /// The App's page in the web UI, when the server's external URL is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// When it happened.
    pub time: Time,
}

/// Longest error excerpt a message carries.
pub const ERROR_EXCERPT: usize = 1000;

impl Event {
    /// The heading: `web-prod: SyncFailed at 1a2b3c4d5e6f`.
    pub fn title(&self) -> String {
        match &self.revision {
            Some(commit) => format!("{}: {} at {}", self.app, self.kind.as_str(), commit.short()),
            None => format!("{}: {}", self.app, self.kind.as_str()),
        }
    }

    /// `cluster/namespace`, or the cluster alone.
    pub fn place(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{ns}", self.cluster),
            None => self.cluster.clone(),
        }
    }

    /// Facts as (label, value) pairs, in the order messages show them.
    pub fn facts(&self) -> Vec<(&'static str, String)> {
        let mut facts = vec![("App", self.app.clone()), ("Cluster", self.place())];
        if let Some(commit) = &self.revision {
            facts.push(("Revision", format!("{} {}", commit.short(), commit.subject)));
            facts.push(("Author", commit.author.clone()));
        }
        if let Some(drift) = &self.drift {
            facts.push(("Object", drift.object.clone()));
            facts.push(("Fields", drift.fields.join(", ")));
            if let Some(manager) = &drift.manager {
                facts.push(("Changed by", manager.clone()));
            }
        }
        facts
    }

    /// The body as plain lines: the message, the facts, the error.
    pub fn text(&self) -> String {
        let mut out = self.message.clone();
        for (label, value) in self.facts() {
            out.push_str(&format!("\n{label}: {value}"));
        }
        if let Some(error) = &self.error {
            out.push_str(&format!("\nError: {error}"));
        }
        if let Some(url) = &self.url {
            out.push_str(&format!("\n{url}"));
        }
        out
    }
}

/// Cuts `text` to at most `max` characters, marking the cut.
pub fn excerpt(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The state a commit status reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CommitState {
    /// Being applied.
    Pending,
    /// Applied, Synced and Healthy.
    Success,
    /// The sync failed, or the App turned Degraded at this commit.
    Failure,
}

/// A commit status to set on the Git host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitUpdate {
    /// The App (the status's context is `driftless/<app>`).
    pub app: String,
    /// The commit.
    pub sha: String,
    /// Its state.
    pub state: CommitState,
    /// A short description (hosts cut it at 140 characters).
    pub description: String,
    /// The App's page in the web UI, when known.
    pub url: Option<String>,
    /// The URL of the App's GitSource, to derive the repository from.
    pub source_url: String,
}

/// What the engine hands to the dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// An App's event, for message types.
    Event(Box<Event>),
    /// A commit state, for commit-status types.
    Commit(Box<CommitUpdate>),
}

impl Delivery {
    /// The App concerned.
    pub fn app(&self) -> &str {
        match self {
            Self::Event(e) => &e.app,
            Self::Commit(c) => &c.app,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_cut_long_errors_and_keep_short_ones() {
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("0123456789abc", 5), "0123…");
    }
}
