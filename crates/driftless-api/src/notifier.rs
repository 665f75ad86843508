//! `Notifier`: where the events of Apps go: chat, a JSON webhook,
//! Alertmanager, or the commit status of a Git host.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::meta::{AGE_COLUMN, Kind, LocalRef, Object, PrinterColumn, READY_COLUMN};
use crate::receiver::check_secret_source;
use crate::status::NotifierStatus;
use crate::validate::FieldProblem;

/// A `Notifier` object.
pub type Notifier = Object<NotifierSpec>;

/// Where events go, which ones, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifierSpec {
    /// The receiving service and its message format.
    #[serde(rename = "type")]
    pub type_: NotifierType,
    /// Webhook URL, or the API base URL of Telegram, Alertmanager and Git hosts.
    /// A secret holding a URL (chat webhooks) takes its place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Environment variable of the server process holding the secret
    /// (standalone): the webhook URL of chat types, the token of Telegram and
    /// Git hosts, the bearer token of Alertmanager, the HMAC key of `webhook`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// Secret in the Notifier's namespace (in-cluster): its `address` key holds a
    /// URL, its `token` key a token or HMAC key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalRef>,
    /// Channel of Slack and Mattermost (overrides the webhook's own); chat id of Telegram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Apps whose events are sent; empty: every App.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<String>,
    /// Events sent; empty: every error event and `HealthRecovered`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventKind>,
    /// `info`: every event chosen; `error`: only error events among them.
    #[serde(default)]
    pub severity: Severity,
    /// Repository of commit-status types: `owner/name` (GitLab: the project's
    /// path or numeric id); default: derived from the App's GitSource URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Sends nothing while true.
    #[serde(default)]
    pub suspend: bool,
}

/// Services a Notifier can send to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotifierType {
    /// Slack incoming webhook.
    Slack,
    /// Microsoft Teams workflow webhook, with an Adaptive Card.
    Msteams,
    /// Discord webhook.
    Discord,
    /// Google Chat space webhook.
    Googlechat,
    /// Mattermost incoming webhook.
    Mattermost,
    /// Telegram bot API `sendMessage`.
    Telegram,
    /// A JSON document of driftless's own schema, HMAC-signed when a key is set.
    Webhook,
    /// Prometheus Alertmanager API v2.
    Alertmanager,
    /// GitHub commit status.
    Github,
    /// GitLab commit status.
    Gitlab,
    /// Gitea or Forgejo commit status.
    Gitea,
}

impl NotifierType {
    /// The name used in configs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Msteams => "msteams",
            Self::Discord => "discord",
            Self::Googlechat => "googlechat",
            Self::Mattermost => "mattermost",
            Self::Telegram => "telegram",
            Self::Webhook => "webhook",
            Self::Alertmanager => "alertmanager",
            Self::Github => "github",
            Self::Gitlab => "gitlab",
            Self::Gitea => "gitea",
        }
    }

    /// Whether it sets commit statuses rather than sending messages.
    pub fn is_commit_status(self) -> bool {
        matches!(self, Self::Github | Self::Gitlab | Self::Gitea)
    }

    /// Whether its secret is the webhook URL itself.
    pub fn secret_is_url(self) -> bool {
        matches!(
            self,
            Self::Slack | Self::Msteams | Self::Discord | Self::Googlechat | Self::Mattermost
        )
    }
}

/// What happened to an App (or to the GitSource it follows).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum EventKind {
    /// A sync applied a revision.
    SyncSucceeded,
    /// A sync failed.
    SyncFailed,
    /// The App's health turned Degraded.
    HealthDegraded,
    /// The App is Healthy again after being Degraded.
    HealthRecovered,
    /// A change made in the cluster was reverted to Git's state.
    DriftReverted,
    /// A change made in the cluster was seen and, self-heal being off, left.
    DriftDetected,
    /// The App was suspended.
    Suspended,
    /// The App was resumed.
    Resumed,
    /// The App was rolled back to an earlier revision.
    RolledBack,
    /// The App's GitSource could not be fetched.
    SourceFailed,
}

impl EventKind {
    /// Every event.
    pub const ALL: [Self; 10] = [
        Self::SyncSucceeded,
        Self::SyncFailed,
        Self::HealthDegraded,
        Self::HealthRecovered,
        Self::DriftReverted,
        Self::DriftDetected,
        Self::Suspended,
        Self::Resumed,
        Self::RolledBack,
        Self::SourceFailed,
    ];

    /// The name used in configs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SyncSucceeded => "SyncSucceeded",
            Self::SyncFailed => "SyncFailed",
            Self::HealthDegraded => "HealthDegraded",
            Self::HealthRecovered => "HealthRecovered",
            Self::DriftReverted => "DriftReverted",
            Self::DriftDetected => "DriftDetected",
            Self::Suspended => "Suspended",
            Self::Resumed => "Resumed",
            Self::RolledBack => "RolledBack",
            Self::SourceFailed => "SourceFailed",
        }
    }

    /// Error events: something needs a person (a failure, or the cluster
    /// differing from Git and left so). The rest are information.
    pub fn is_error(self) -> bool {
        matches!(
            self,
            Self::SyncFailed | Self::HealthDegraded | Self::DriftDetected | Self::SourceFailed
        )
    }
}

/// Which of the chosen events are sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Every event chosen.
    #[default]
    Info,
    /// Only error events.
    Error,
}

impl NotifierSpec {
    /// Whether an event of `kind` about `app` is sent.
    pub fn wants(&self, kind: EventKind, app: &str) -> bool {
        if self.suspend || (!self.apps.is_empty() && !self.apps.iter().any(|a| a == app)) {
            return false;
        }
        let chosen = if self.events.is_empty() {
            kind.is_error() || kind == EventKind::HealthRecovered
        } else {
            self.events.contains(&kind)
        };
        chosen && (self.severity == Severity::Info || kind.is_error())
    }

    /// Whether the App's events reach this Notifier at all (commit statuses follow
    /// every sync of a chosen App).
    pub fn follows(&self, app: &str) -> bool {
        !self.suspend && (self.apps.is_empty() || self.apps.iter().any(|a| a == app))
    }

    fn has_secret(&self) -> bool {
        self.secret_env.is_some() || self.secret_ref.is_some()
    }
}

impl Kind for NotifierSpec {
    const KIND: &'static str = "Notifier";
    const PLURAL: &'static str = "notifiers";
    const SHORT_NAMES: &'static [&'static str] = &[];
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        PrinterColumn {
            name: "Type",
            type_: "string",
            json_path: ".spec.type",
        },
        READY_COLUMN,
        AGE_COLUMN,
    ];
    type Status = NotifierStatus;

    fn validate(&self, problems: &mut Vec<FieldProblem>) {
        let type_ = self.type_;
        check_secret_source(
            self.secret_ref.as_ref(),
            self.secret_env.as_deref(),
            problems,
        );
        if let Some(address) = &self.address
            && !(address.starts_with("https://") || address.starts_with("http://"))
        {
            problems.push(FieldProblem::new(
                "spec.address",
                "must be an http:// or https:// URL",
            ));
        }
        let needs_address = matches!(
            type_,
            NotifierType::Webhook | NotifierType::Alertmanager | NotifierType::Gitea
        ) || (type_.secret_is_url() && !self.has_secret());
        if needs_address && self.address.is_none() {
            let why = if type_.secret_is_url() {
                "required unless spec.secretEnv or spec.secretRef holds the webhook URL"
            } else {
                "required for this type"
            };
            problems.push(FieldProblem::new("spec.address", why));
        }
        let needs_token = type_.is_commit_status() || type_ == NotifierType::Telegram;
        if needs_token && !self.has_secret() {
            problems.push(FieldProblem::new(
                "spec",
                format!(
                    "{} needs a token: set spec.secretEnv (standalone) or spec.secretRef",
                    type_.as_str()
                ),
            ));
        }
        if type_ == NotifierType::Telegram && self.channel.is_none() {
            problems.push(FieldProblem::new(
                "spec.channel",
                "required for telegram: the chat id messages go to",
            ));
        }
        if let Some(repository) = &self.repository {
            if !type_.is_commit_status() {
                problems.push(FieldProblem::new(
                    "spec.repository",
                    "only commit-status types (github, gitlab, gitea) use a repository",
                ));
            } else if type_ != NotifierType::Gitlab && repository.split('/').count() != 2 {
                problems.push(FieldProblem::new(
                    "spec.repository",
                    format!("{repository:?} is not owner/name"),
                ));
            }
        }
        for (i, app) in self.apps.iter().enumerate() {
            if app.trim().is_empty() {
                problems.push(FieldProblem::new(
                    format!("spec.apps[{i}]"),
                    "must not be empty",
                ));
            }
        }
        for (i, kind) in self.events.iter().enumerate() {
            if self.events[..i].contains(kind) {
                problems.push(FieldProblem::new(
                    format!("spec.events[{i}]"),
                    format!("{} is listed twice", kind.as_str()),
                ));
            }
        }
    }
}

/// How the server delivers notifications (the Server object's `notifications`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotificationDelivery {
    /// Tries of one message before it is given up on.
    #[serde(default = "default_tries")]
    pub tries: u32,
    /// Wait after the first failed try; each next wait doubles (20s: five
    /// tries span five minutes).
    #[serde(default = "default_retry_wait")]
    pub retry_wait: Duration,
    /// Least time between two messages of one Notifier.
    #[serde(default = "default_min_interval")]
    pub min_interval: Duration,
    /// Messages each Notifier's queue holds; more are dropped and counted.
    #[serde(default = "default_queue")]
    pub queue: u32,
}

impl Default for NotificationDelivery {
    fn default() -> Self {
        Self {
            tries: default_tries(),
            retry_wait: default_retry_wait(),
            min_interval: default_min_interval(),
            queue: default_queue(),
        }
    }
}

fn default_tries() -> u32 {
    5
}

fn default_retry_wait() -> Duration {
    Duration::from_secs(20)
}

fn default_min_interval() -> Duration {
    Duration::from_secs(1)
}

fn default_queue() -> u32 {
    1000
}

impl NotificationDelivery {
    pub(crate) fn validate(&self, problems: &mut Vec<FieldProblem>) {
        if !(1..=20).contains(&self.tries) {
            problems.push(FieldProblem::new(
                "spec.notifications.tries",
                format!("{} is out of range: 1 to 20", self.tries),
            ));
        }
        if !(1..=100_000).contains(&self.queue) {
            problems.push(FieldProblem::new(
                "spec.notifications.queue",
                format!("{} is out of range: 1 to 100000", self.queue),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(value: serde_json::Value) -> NotifierSpec {
        serde_json::from_value(value).expect("a valid spec")
    }

    fn problems(spec: &NotifierSpec) -> Vec<String> {
        let mut problems = Vec::new();
        spec.validate(&mut problems);
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_default_events_are_the_errors_and_recovery() {
        let s = spec(serde_json::json!({"type": "slack", "secretEnv": "URL"}));
        let sent: Vec<_> = EventKind::ALL
            .into_iter()
            .filter(|k| s.wants(*k, "web"))
            .collect();
        assert_eq!(
            sent,
            [
                EventKind::SyncFailed,
                EventKind::HealthDegraded,
                EventKind::HealthRecovered,
                EventKind::DriftDetected,
                EventKind::SourceFailed
            ]
        );
    }

    #[test]
    fn apps_severity_and_suspend_narrow_what_is_sent() {
        let mut s = spec(serde_json::json!({
            "type": "webhook", "address": "http://127.0.0.1:1/hook",
            "apps": ["web"], "events": ["SyncSucceeded", "SyncFailed"]
        }));
        assert!(s.wants(EventKind::SyncSucceeded, "web"));
        assert!(!s.wants(EventKind::SyncSucceeded, "api"));
        assert!(!s.wants(EventKind::HealthDegraded, "web"));
        s.severity = Severity::Error;
        assert!(!s.wants(EventKind::SyncSucceeded, "web"));
        assert!(s.wants(EventKind::SyncFailed, "web"));
        s.suspend = true;
        assert!(!s.wants(EventKind::SyncFailed, "web"));
        assert!(!s.follows("web"));
    }

    #[test]
    fn each_type_says_what_it_lacks() {
        let s = spec(serde_json::json!({"type": "slack"}));
        assert_eq!(
            problems(&s),
            [
                "spec.address: required unless spec.secretEnv or spec.secretRef holds the webhook URL"
            ]
        );
        let s = spec(serde_json::json!({"type": "github", "repository": "acme"}));
        assert_eq!(
            problems(&s),
            [
                "spec: github needs a token: set spec.secretEnv (standalone) or spec.secretRef",
                "spec.repository: \"acme\" is not owner/name"
            ]
        );
        let s = spec(serde_json::json!({"type": "telegram", "secretEnv": "1BAD"}));
        assert_eq!(
            problems(&s),
            [
                "spec.secretEnv: \"1BAD\" is not an environment variable name",
                "spec.channel: required for telegram: the chat id messages go to"
            ]
        );
        let s = spec(serde_json::json!({
            "type": "webhook", "address": "ftp://x", "repository": "a/b",
            "events": ["SyncFailed", "SyncFailed"]
        }));
        assert_eq!(
            problems(&s),
            [
                "spec.address: must be an http:// or https:// URL",
                "spec.repository: only commit-status types (github, gitlab, gitea) use a repository",
                "spec.events[1]: SyncFailed is listed twice"
            ]
        );
        let s =
            spec(serde_json::json!({"type": "gitlab", "secretEnv": "T", "repository": "g/sub/p"}));
        assert!(problems(&s).is_empty(), "{:?}", problems(&s));
    }

    #[test]
    fn an_unknown_event_is_refused_by_name() {
        let err = serde_json::from_value::<NotifierSpec>(serde_json::json!({
            "type": "slack", "address": "https://x", "events": ["SyncFail"]
        }))
        .expect_err("unknown event");
        assert!(err.to_string().contains("SyncFail"), "{err}");
    }
}
