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
    /// The first 12 characters of the id (of the hex of an artifact digest).
    pub fn short(&self) -> &str {
        driftless_api::history::short_id(&self.sha, 12)
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
    /// The App; empty for an event of a GitSource.
    pub app: String,
    /// The GitSource, for `SourceFailed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// For an event of a GitSource: the Apps that follow it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<String>,
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

/// Apps a message lists by name; more are counted.
const LISTED_APPS: usize = 10;

impl Event {
    /// What the event is about: the App, or `GitSource/<name>`.
    pub fn subject(&self) -> String {
        match &self.source {
            Some(source) => format!("GitSource/{source}"),
            None => self.app.clone(),
        }
    }

    /// Whether an event of `kind` about this event's App (or any App of its
    /// GitSource) passes `test`.
    pub fn concerns(&self, test: impl Fn(&str) -> bool) -> bool {
        if self.source.is_some() {
            self.apps.iter().any(|a| test(a))
        } else {
            test(&self.app)
        }
    }

    /// The heading: `web-prod: SyncFailed at 1a2b3c4d5e6f`.
    pub fn title(&self) -> String {
        match &self.revision {
            Some(commit) => format!(
                "{}: {} at {}",
                self.subject(),
                self.kind.as_str(),
                commit.short()
            ),
            None => format!("{}: {}", self.subject(), self.kind.as_str()),
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
        let mut facts = match &self.source {
            Some(source) => {
                let mut apps = self
                    .apps
                    .iter()
                    .take(LISTED_APPS)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                if self.apps.len() > LISTED_APPS {
                    apps.push_str(&format!(" and {} more", self.apps.len() - LISTED_APPS));
                }
                vec![("GitSource", source.clone()), ("Apps", apps)]
            }
            None => vec![("App", self.app.clone()), ("Cluster", self.place())],
        };
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
    /// The App concerned (empty for an event of a GitSource).
    pub fn app(&self) -> &str {
        match self {
            Self::Event(e) => &e.app,
            Self::Commit(c) => &c.app,
        }
    }

    /// Whether a Notifier that follows the Apps `follows` accepts says takes it.
    pub fn followed_by(&self, follows: impl Fn(&str) -> bool) -> bool {
        match self {
            Self::Event(e) => e.concerns(follows),
            Self::Commit(c) => follows(&c.app),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_event_names_the_source_and_counts_its_apps() {
        let event = Event {
            kind: EventKind::SourceFailed,
            app: String::new(),
            source: Some("platform".into()),
            apps: (0..12).map(|i| format!("app-{i:02}")).collect(),
            cluster: "default".into(),
            namespace: None,
            revision: None,
            message: "fetching failed".into(),
            error: Some("connection refused".into()),
            drift: None,
            url: None,
            time: Time::from_unix_ms(0),
        };
        assert_eq!(event.title(), "GitSource/platform: SourceFailed");
        assert_eq!(
            event.facts(),
            [
                ("GitSource", "platform".to_owned()),
                (
                    "Apps",
                    "app-00, app-01, app-02, app-03, app-04, app-05, app-06, app-07, app-08, \
                     app-09 and 2 more"
                        .to_owned()
                )
            ]
        );
        assert!(event.concerns(|a| a == "app-11"));
        assert!(!event.concerns(|a| a == "web"));
    }

    #[test]
    fn excerpts_cut_long_errors_and_keep_short_ones() {
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("0123456789abc", 5), "0123…");
    }
}
