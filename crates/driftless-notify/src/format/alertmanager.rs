//! Alertmanager API v2: `POST /api/v2/alerts` with a list of alerts. An
//! alert is keyed by its labels (App and event); it fires until driftless
//! resolves it by sending it again with `endsAt` now.

use std::collections::BTreeMap;

use driftless_api::{EventKind, Time};
use serde::Serialize;

use super::Request;
use crate::event::{ERROR_EXCERPT, Event, excerpt};
use crate::target::Target;

/// How long an information event (a sync, a revert) shows as an alert.
const INFO_MS: u64 = 5 * 60 * 1000;
/// How long a firing alert lasts unless sent again: the dispatcher sends
/// firing alerts again well within it, and a stopped driftless lets them end.
pub const FIRING_MS: u64 = 15 * 60 * 1000;

/// One alert in Alertmanager's format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// Identity: `alertname`, `app`, `event`, `cluster`, `namespace`, `severity`.
    pub labels: BTreeMap<String, String>,
    /// `summary`, `description`, `revision`.
    pub annotations: BTreeMap<String, String>,
    /// When it began.
    pub starts_at: Time,
    /// When it ends (resolved when not in the future).
    pub ends_at: Time,
    /// Link back to the App's page, when known.
    #[serde(rename = "generatorURL", skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
}

impl Alert {
    /// The key that tells alerts apart: their labels.
    pub fn key(&self) -> String {
        self.labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The alert of `event`: an error event fires until resolved; any other
/// event shows for five minutes.
pub fn alert_for(event: &Event, now: Time) -> Alert {
    let mut labels = BTreeMap::new();
    labels.insert(
        "alertname".to_owned(),
        format!("Driftless{}", event.kind.as_str()),
    );
    labels.insert("app".to_owned(), event.app.clone());
    labels.insert("event".to_owned(), event.kind.as_str().to_owned());
    labels.insert("cluster".to_owned(), event.cluster.clone());
    if let Some(ns) = &event.namespace {
        labels.insert("namespace".to_owned(), ns.clone());
    }
    let severity = if event.kind.is_error() {
        "error"
    } else {
        "info"
    };
    labels.insert("severity".to_owned(), severity.to_owned());
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "summary".to_owned(),
        format!("{}: {}", event.title(), event.message),
    );
    let mut description = event.text();
    if let Some(error) = &event.error {
        description = description.replace(error, &excerpt(error, ERROR_EXCERPT));
    }
    annotations.insert("description".to_owned(), description);
    if let Some(commit) = &event.revision {
        annotations.insert("revision".to_owned(), commit.sha.clone());
    }
    let lasts = if event.kind.is_error() {
        FIRING_MS
    } else {
        INFO_MS
    };
    Alert {
        labels,
        annotations,
        starts_at: now,
        ends_at: Time::from_unix_ms(now.unix_ms() + lasts),
        generator_url: event.url.clone(),
    }
}

/// The error events an event of `kind` ends for the same App.
pub fn resolves(kind: EventKind) -> &'static [EventKind] {
    match kind {
        EventKind::SyncSucceeded => &[
            EventKind::SyncFailed,
            EventKind::DriftDetected,
            EventKind::SourceFailed,
        ],
        EventKind::HealthRecovered => &[EventKind::HealthDegraded],
        _ => &[],
    }
}

/// `POST <address>/api/v2/alerts` of `alerts`, with the bearer token when set.
pub fn request(target: &Target, alerts: &[Alert]) -> Request {
    let headers = target
        .token
        .as_ref()
        .map(|t| vec![("Authorization", format!("Bearer {}", t.expose()))])
        .unwrap_or_default();
    Request {
        url: format!("{}/api/v2/alerts", target.url.expose()),
        headers,
        body: serde_json::to_vec(alerts).expect("alerts always serialise"),
    }
}
