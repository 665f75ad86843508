//! Drift events from the clusters' watches: into the audit log, the metrics
//! and the App's status; a failed self-heal queues a full reconcile. Health
//! changes the watches see queue a look at the App's health. Adoptions of
//! existing objects by a sync go into the audit log too.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use driftless_kube::{ApplyEvent, DriftEvent, DriftKind};
use tokio::sync::broadcast;

use super::{Inner, lock};
use driftless_api::Time;

use crate::store::{AdoptedObject, AuditEvent, DriftAction, SyncStatus, SyncTrigger};

/// Handles the drift events of one cluster until its watch stops.
pub(crate) async fn listen(inner: Weak<Inner>, mut events: broadcast::Receiver<DriftEvent>) {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                if inner.strong_count() > 0 {
                    tracing::warn!(
                        missed,
                        "drift watch: {missed} events were dropped; a full resync catches up"
                    );
                }
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let inner = inner.clone();
        // Store writes wait for fsync: keep them off the event loop.
        tokio::task::spawn_blocking(move || record(&inner, event));
    }
}

/// Logs each failed list or watch of a cluster's drift watch (with the
/// kind and the cause), until the watch stops: a watch RBAC forbids must
/// not retry unseen.
pub(crate) async fn listen_failures(
    inner: Weak<Inner>,
    cluster: String,
    mut failures: broadcast::Receiver<driftless_kube::WatchFailure>,
) {
    loop {
        let failure = match failures.recv().await {
            Ok(failure) => failure,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if inner.strong_count() == 0 {
            return;
        }
        tracing::warn!(cluster = %cluster, "{cluster}: drift {failure}");
    }
}

/// Looks at an App's health again as soon as the watch saw one of its
/// objects change health, rather than at the next timed look.
pub(crate) async fn listen_health(inner: Weak<Inner>, mut changes: broadcast::Receiver<String>) {
    loop {
        let app = match changes.recv().await {
            Ok(app) => app,
            // The timed health looks catch up with what was missed.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(inner) = inner.upgrade() else {
            return;
        };
        // A failing App is left to its retry backoff: a look would re-apply.
        let failing = inner
            .store
            .app(&app)
            .ok()
            .flatten()
            .is_none_or(|s| s.last_error.is_some());
        if !failing {
            let _ = inner.queue.trigger(&app, SyncTrigger::Interval);
        }
    }
}

fn record(inner: &Arc<Inner>, event: DriftEvent) {
    let action = if event.healed {
        DriftAction::Reverted
    } else {
        DriftAction::Reported
    };
    let fields = match event.kind {
        DriftKind::Deleted => vec!["(deleted)".to_owned()],
        DriftKind::Modified => event.fields.clone(),
    };
    let audit = AuditEvent {
        id: 0,
        time: Time::now(),
        app: event.app.clone(),
        object: event.object.to_string(),
        fields,
        manager: (!event.managers.is_empty()).then(|| event.managers.join(", ")),
        action,
    };
    inner
        .metrics
        .count_drift(&event.app, &event.managers, action);
    let by = audit.manager.as_deref().unwrap_or("an unknown manager");
    let what = match (event.kind, event.healed) {
        (DriftKind::Deleted, true) => {
            format!("deleted by {by}; re-created in {} ms", event.heal_millis)
        }
        (DriftKind::Deleted, false) => format!("deleted by {by}"),
        (DriftKind::Modified, true) => format!(
            "{} changed by {by}; reverted in {} ms",
            audit.fields.join(", "),
            event.heal_millis
        ),
        (DriftKind::Modified, false) => format!("{} changed by {by}", audit.fields.join(", ")),
    };
    tracing::info!(
        app = %event.app,
        object = %event.object,
        healed = event.healed,
        "drift: {}: {what}",
        event.object
    );
    if let Err(e) = inner.store.record_audit(audit) {
        tracing::error!(app = %event.app, "recording drift: {e}");
    }
    if event.healed {
        return;
    }
    let object = &event.object;
    let namespace = object.namespace.as_deref().unwrap_or_default();
    let _ = inner.store.update_app(&event.app, |s| {
        s.sync = SyncStatus::OutOfSync;
        let drifted = s
            .resources
            .iter_mut()
            .filter(|r| r.kind == object.kind && r.name == object.name && r.namespace == namespace);
        for resource in drifted {
            resource.sync = SyncStatus::OutOfSync;
        }
    });
    if let Some(error) = &event.heal_error {
        tracing::warn!(app = %event.app, "self-heal failed: {error}; reconciling");
        let _ = inner.queue.trigger(&event.app, SyncTrigger::Drift);
    }
}

/// The adoptions an apply reports through its progress events: existing
/// objects no App owned that it took over.
#[derive(Default)]
pub(crate) struct Adoptions(Mutex<Vec<AdoptedObject>>);

impl Adoptions {
    /// The progress callback of an apply: keeps its adoptions.
    pub(crate) fn note(&self, event: ApplyEvent) {
        if let ApplyEvent::Adopted {
            object,
            previous_managers,
        } = event
        {
            lock(&self.0).push(AdoptedObject {
                object: object.to_string(),
                previous_managers,
            });
        }
    }

    /// Writes each adoption into the audit log and the log; returns them
    /// for the sync's history entry.
    pub(crate) fn record(self, inner: &Inner, app: &str) -> Vec<AdoptedObject> {
        let adopted = self.0.into_inner().unwrap_or_else(PoisonError::into_inner);
        for a in &adopted {
            let managers =
                (!a.previous_managers.is_empty()).then(|| a.previous_managers.join(", "));
            tracing::info!(
                app = %app,
                object = %a.object,
                "adopted {} (previous field managers: {})",
                a.object,
                managers.as_deref().unwrap_or("none")
            );
            let audit = AuditEvent {
                id: 0,
                time: Time::now(),
                app: app.to_owned(),
                object: a.object.clone(),
                fields: Vec::new(),
                manager: managers,
                action: DriftAction::Adopted,
            };
            if let Err(e) = inner.store.record_audit(audit) {
                tracing::error!(app = %app, "recording an adoption: {e}");
            }
        }
        adopted
    }
}
