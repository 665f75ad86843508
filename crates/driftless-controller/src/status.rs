//! Writes the engine's status into the custom resources' status subresource,
//! only when it changed, and records Events for what happened in between.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use driftless_api::HostStatus;
use driftless_api::history::{AuditEvent, DriftAction, SyncSummary};
use driftless_api::status::{
    AppStatus, ClusterStatus, Condition, ConditionStatus, GitSourceStatus, HealthStatus,
    HelmRepositoryStatus, NotifierStatus, READY, RECONCILING, ReceiverStatus, STALLED,
    set_condition,
};
use driftless_engine::metrics::Metrics;
use driftless_engine::runtime::Engine;
use futures_util::StreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource};
use serde_json::{Value, json};

use crate::desired::{Desired, ObjectKey, key_of};
use crate::objects::{CrKind, CrObject};

/// Field manager of the status the controller writes.
pub const FIELD_MANAGER: &str = "driftless-controller";
/// Syncs listed in an App's status.
pub const HISTORY_IN_STATUS: usize = 10;
/// Status writes in flight at once.
const PARALLEL_WRITES: usize = 16;
/// How long a passing App status (a sync running, health progressing) waits
/// before it is written: most are over sooner, and then only where they ended
/// is written. Anything that lasts longer is shown.
const HOLD: Duration = Duration::from_secs(2);
/// Longest Event note the API accepts.
const NOTE_LIMIT: usize = 1000;

/// Writes statuses and Events; remembers what it wrote.
pub struct StatusWriter {
    client: Client,
    recorder: Recorder,
    /// Per object: the status last written (or found equal), without its
    /// update time and history.
    written: HashMap<ObjectKey, Value>,
    /// The newest drift record seen.
    last_drift: Option<u64>,
    /// The store's latest App status change at the last pass.
    seen: u64,
    /// Objects left out of the config at the last pass.
    rejected: HashSet<ObjectKey>,
    /// Apps whose new status is passing (a sync or health on its way), and since
    /// when: such a status is written only once it lasted [`HOLD`].
    passing: HashMap<ObjectKey, Instant>,
}

/// One status to write, with the Events its change makes.
struct Write {
    object: CrObject,
    status: Value,
    events: Vec<Event>,
}

impl StatusWriter {
    /// A writer publishing Events as `instance` of the controller.
    pub fn new(client: Client, instance: &str) -> Self {
        let reporter = kube::runtime::events::Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance: Some(instance.to_owned()),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            written: HashMap::new(),
            last_drift: None,
            seen: 0,
            rejected: HashSet::new(),
            passing: HashMap::new(),
        }
    }

    /// The Event recorder.
    pub fn recorder(&self) -> Recorder {
        self.recorder.clone()
    }

    /// Brings every object's status up to date.
    /// `clusters` holds the last probe of each Cluster, by qualified name.
    pub async fn write_all(
        &mut self,
        objects: &[CrObject],
        desired: &Desired,
        engine: &Engine,
        clusters: &BTreeMap<String, ClusterStatus>,
    ) {
        let sources: BTreeMap<String, GitSourceStatus> = engine
            .sources()
            .into_iter()
            .map(|n| (n.name, n.status))
            .collect();
        let notifiers: BTreeMap<String, NotifierStatus> = engine
            .notifiers()
            .into_iter()
            .map(|n| (n.name, n.status))
            .collect();
        let oci_sources: BTreeMap<String, GitSourceStatus> = engine
            .oci_sources()
            .into_iter()
            .map(|n| (n.name, n.status))
            .collect();
        let helm_repositories: BTreeMap<String, HelmRepositoryStatus> = engine
            .helm_repositories()
            .into_iter()
            .map(|n| (n.name, n.status))
            .collect();
        let hosts: BTreeMap<String, HostStatus> = engine
            .hosts()
            .into_iter()
            .map(|n| (n.name, n.status))
            .collect();
        let (latest, changed) = engine.store().app_changes_since(self.seen);
        let changed: HashSet<String> = changed.into_iter().collect();
        let mut writes = Vec::new();
        for object in objects.iter().filter(|o| !o.deleting()) {
            let key = key_of(object);
            let settled = object.kind == CrKind::App
                && self.written.contains_key(&key)
                && !desired.rejected.contains_key(&key)
                && !self.rejected.contains(&key)
                && !changed.contains(&object.qualified())
                && !self.passing.contains_key(&key);
            if settled {
                // Written, and its status in the store did not change since.
                continue;
            }
            let generation = object.object.metadata.generation;
            let fresh = match (desired.rejected.get(&key), object.kind) {
                (Some(reasons), _) => Some((rejected_status(object, reasons), Vec::new())),
                (None, CrKind::App) => self.app_status(object, engine),
                (None, CrKind::GitSource) => sources.get(&object.qualified()).map(|s| {
                    let mut s = s.clone();
                    if s.last_fetch_time.is_some() {
                        s.observed_generation = generation;
                    }
                    (to_value(&s), Vec::new())
                }),
                (None, CrKind::Receiver) => Some((receiver_status(object), Vec::new())),
                (None, CrKind::Notifier) => notifiers
                    .get(&object.qualified())
                    .map(|s| (to_value(s), Vec::new())),
                (None, CrKind::Cluster) => clusters
                    .get(&object.qualified())
                    .map(|s| (to_value(s), Vec::new())),
                (None, CrKind::SyncWindow) => Some((window_status(object), Vec::new())),
                (None, CrKind::OciSource) => oci_sources.get(&object.qualified()).map(|s| {
                    let mut s = s.clone();
                    s.conditions = shown_since(object, s.conditions);
                    if s.last_fetch_time.is_some() {
                        s.observed_generation = generation;
                    }
                    (to_value(&s), Vec::new())
                }),
                (None, CrKind::HelmRepository) => {
                    helm_repositories.get(&object.qualified()).map(|s| {
                        let mut s = s.clone();
                        s.conditions = shown_since(object, s.conditions);
                        if s.last_fetch_time.is_some() {
                            s.observed_generation = generation;
                        }
                        (to_value(&s), Vec::new())
                    })
                }
                (None, CrKind::Host) => hosts.get(&object.qualified()).map(|s| {
                    let status = HostStatus {
                        conditions: shown_since(object, s.conditions.clone()),
                    };
                    (to_value(&status), Vec::new())
                }),
            };
            let Some((status, events)) = fresh else {
                continue;
            };
            let compared = comparable(&status);
            let before = self
                .written
                .get(&key)
                .cloned()
                .or_else(|| object.object.data.get("status").map(comparable));
            if before.as_ref() == Some(&compared) {
                self.passing.remove(&key);
                self.written.insert(key, compared);
                continue;
            }
            if object.kind == CrKind::App && passing(&compared) {
                let since = *self.passing.entry(key.clone()).or_insert_with(Instant::now);
                if since.elapsed() < HOLD {
                    continue;
                }
            }
            self.passing.remove(&key);
            let status = match object.kind {
                CrKind::App => with_history(status, engine, object),
                _ => status,
            };
            self.written.insert(key, compared);
            writes.push(Write {
                object: object.clone(),
                status,
                events,
            });
        }
        self.drift_events(objects, engine, &mut writes);
        let client = self.client.clone();
        let recorder = self.recorder.clone();
        let count = engine.metrics();
        let failed: Vec<ObjectKey> = futures_util::stream::iter(writes)
            .map(|w| {
                let (client, recorder, count) = (client.clone(), recorder.clone(), count.clone());
                async move {
                    let key = key_of(&w.object);
                    (!w.apply(client, &recorder, &count).await).then_some(key)
                }
            })
            .buffer_unordered(PARALLEL_WRITES)
            .filter_map(std::future::ready)
            .collect()
            .await;
        // Written again on the next pass.
        for key in failed {
            self.written.remove(&key);
        }
        let live: HashSet<ObjectKey> = objects.iter().map(key_of).collect();
        self.written.retain(|k, _| live.contains(k));
        self.passing.retain(|k, _| live.contains(k));
        self.seen = latest;
        self.rejected = desired.rejected.keys().cloned().collect();
    }

    /// The App's status from the store, and the Events of its change since the
    /// status the custom resource shows.
    fn app_status(&self, object: &CrObject, engine: &Engine) -> Option<(Value, Vec<Event>)> {
        let name = object.qualified();
        let status = engine.store().app(&name).ok().flatten()?;
        let news = AppStatus {
            last_update_time: None,
            ..status.clone()
        };
        if news == AppStatus::default() {
            // Nothing happened yet: no write for the empty status.
            return None;
        }
        let key = key_of(object);
        let before: Option<AppStatus> = self
            .written
            .get(&key)
            .or_else(|| object.object.data.get("status"))
            .and_then(|v| serde_json::from_value(v.clone()).ok());
        // A first status counts as news against the empty one.
        let events = transitions(&before.unwrap_or_default(), &status);
        Some((to_value(&status), events))
    }

    /// Events for manual changes self-heal reverted since the last look.
    fn drift_events(&mut self, objects: &[CrObject], engine: &Engine, writes: &mut Vec<Write>) {
        let Ok(recent) = engine.store().audit(None, 100) else {
            return;
        };
        let newest = recent.iter().map(|e| e.id).max();
        let Some(seen) = self
            .last_drift
            .replace(newest.unwrap_or(0).max(self.last_drift.unwrap_or(0)))
        else {
            // The first look: what happened before this instance ran is history.
            return;
        };
        let apps: HashMap<String, &CrObject> = objects
            .iter()
            .filter(|o| o.kind == CrKind::App)
            .map(|o| (o.qualified(), o))
            .collect();
        let reported = |e: &&AuditEvent| {
            e.id > seen && matches!(e.action, DriftAction::Reverted | DriftAction::Reported)
        };
        for event in recent.iter().filter(reported) {
            let Some(object) = apps.get(&event.app) else {
                continue;
            };
            writes.push(Write {
                object: (*object).clone(),
                status: Value::Null,
                events: vec![drift_event(event)],
            });
        }
    }
}

impl Write {
    /// Writes the status and records the Events; false if the status write failed.
    async fn apply(self, client: Client, recorder: &Recorder, metrics: &Metrics) -> bool {
        let resource = self.object.kind.resource();
        let ns = self.object.namespace();
        let name = self.object.name();
        if !self.status.is_null() {
            let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &resource);
            let patch = json!({
                "apiVersion": driftless_api::API_VERSION,
                "kind": self.object.kind.kind(),
                "status": self.status,
            });
            let params = PatchParams::apply(FIELD_MANAGER).force();
            match api
                .patch_status(&name, &params, &Patch::Apply(&patch))
                .await
            {
                Ok(_) => metrics.count_status_write(),
                Err(e) => {
                    tracing::warn!(
                        "{}/{ns}/{name}: writing its status: {e}",
                        self.object.kind.plural()
                    );
                    return false;
                }
            }
        }
        let reference = self.object.object.object_ref(&resource);
        for event in self.events {
            if let Err(e) = recorder.publish(&event, &reference).await {
                tracing::warn!(
                    "{}/{ns}/{name}: recording Event {}: {e}",
                    self.object.kind.plural(),
                    event.reason
                );
            }
        }
        true
    }
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A status without the fields that change without news: the update time, the
/// time of a fetch that found nothing new, and the history (which changes only
/// with a sync, which changes the rest).
fn comparable(status: &Value) -> Value {
    let mut status = status.clone();
    if let Some(map) = status.as_object_mut() {
        map.remove("lastUpdateTime");
        map.remove("lastFetchTime");
        map.remove("history");
    }
    status
}

/// Whether an App status is on its way somewhere: a sync running, or the
/// health of what was applied still progressing.
fn passing(status: &Value) -> bool {
    let reconciling = status
        .get("conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == RECONCILING && c["status"] == "True");
    reconciling || status.get("health").and_then(Value::as_str) == Some("Progressing")
}

/// Adds the App's last syncs to its status: this instance's, then older ones the
/// custom resource lists (written by an earlier leader with a store of its own).
fn with_history(mut status: Value, engine: &Engine, object: &CrObject) -> Value {
    let ours: Vec<SyncSummary> = engine
        .store()
        .history(&object.qualified(), HISTORY_IN_STATUS)
        .unwrap_or_default()
        .iter()
        .map(SyncSummary::from)
        .collect();
    let listed: Vec<SyncSummary> = object
        .object
        .data
        .pointer("/status/history")
        .and_then(|h| serde_json::from_value(h.clone()).ok())
        .unwrap_or_default();
    let history = merge_history(ours, listed);
    if !history.is_empty()
        && let Some(map) = status.as_object_mut()
    {
        map.insert("history".to_owned(), to_value(&history));
    }
    status
}

/// This instance's syncs (newest first), then the listed ones older than them.
fn merge_history(mut ours: Vec<SyncSummary>, listed: Vec<SyncSummary>) -> Vec<SyncSummary> {
    let oldest = ours.last().map(|h| h.start_time);
    let earlier = listed
        .into_iter()
        .filter(|h| oldest.is_none_or(|oldest| h.start_time < oldest));
    ours.extend(earlier);
    ours.truncate(HISTORY_IN_STATUS);
    ours
}

/// The status of an object left out of the config.
fn rejected_status(object: &CrObject, reasons: &[String]) -> Value {
    let message = reasons.join("; ");
    let conditions = shown_since(
        object,
        vec![
            Condition::new(READY, ConditionStatus::False, "InvalidSpec", &message),
            Condition::new(STALLED, ConditionStatus::True, "InvalidSpec", &message),
        ],
    );
    match object.kind {
        CrKind::App | CrKind::GitSource | CrKind::HelmRepository | CrKind::OciSource => json!({
            "observedGeneration": object.object.metadata.generation,
            "conditions": conditions,
        }),
        CrKind::Cluster
        | CrKind::Receiver
        | CrKind::Notifier
        | CrKind::Host
        | CrKind::SyncWindow => {
            json!({ "conditions": conditions })
        }
    }
}

/// A SyncWindow's status: accepted (its schedule, duration and zone are valid).
fn window_status(object: &CrObject) -> Value {
    let message = "holds or lets through the syncs of the Apps it selects";
    let ready = Condition::new(READY, ConditionStatus::True, "Accepted", message);
    json!({ "conditions": shown_since(object, vec![ready]) })
}

/// A Receiver's status: where its webhook is served.
fn receiver_status(object: &CrObject) -> Value {
    let path = format!("/hooks/{}", object.qualified());
    let message = format!("receiving webhooks at {path}");
    let status = ReceiverStatus {
        conditions: shown_since(
            object,
            vec![Condition::new(
                READY,
                ConditionStatus::True,
                "Succeeded",
                &message,
            )],
        ),
        webhook_path: Some(path),
    };
    to_value(&status)
}

/// `conditions` computed now, each keeping the transition time the resource
/// already shows for the same type and status: a condition that did not
/// change is no news, and no write.
fn shown_since(object: &CrObject, conditions: Vec<Condition>) -> Vec<Condition> {
    let mut shown: Vec<Condition> = object
        .object
        .data
        .get("status")
        .and_then(|s| s.get("conditions"))
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .unwrap_or_default();
    let types: HashSet<String> = conditions.iter().map(|c| c.type_.clone()).collect();
    shown.retain(|c| types.contains(&c.type_));
    for condition in conditions {
        set_condition(&mut shown, condition);
    }
    shown
}

/// The Events of an App's status change.
fn transitions(before: &AppStatus, after: &AppStatus) -> Vec<Event> {
    let mut out = Vec::new();
    let mut health_told = false;
    if after.last_sync_time != before.last_sync_time
        && after.last_error.is_none()
        && let Some(rev) = &after.last_applied
    {
        let mut note = format!("applied {} ({})", rev.ref_label, short(&rev.sha));
        // The first health of an App that was just applied is part of that news.
        if before.health == HealthStatus::Unknown && good(after.health) {
            note.push_str(&format!("; health {}", after.health));
            health_told = true;
        }
        out.push(event(EventType::Normal, "SyncSucceeded", "Sync", note));
    }
    if let Some(error) = &after.last_error
        && before.last_error.as_ref() != Some(error)
    {
        out.push(event(
            EventType::Warning,
            "SyncFailed",
            "Sync",
            error.clone(),
        ));
    }
    if after.health != before.health && after.health != HealthStatus::Unknown && !health_told {
        let kind = if good(after.health) {
            EventType::Normal
        } else {
            EventType::Warning
        };
        let ready = driftless_api::status::find_condition(&after.conditions, READY);
        let detail = ready
            .map(|c| format!(": {}", c.message))
            .unwrap_or_default();
        let note = format!("{} -> {}{detail}", before.health, after.health);
        out.push(event(kind, "HealthChanged", "Health", note));
    }
    if let Some(pin) = &after.pinned
        && before.pinned.as_ref() != Some(pin)
    {
        let note = format!("rolled back to {} ({})", pin.ref_label, short(&pin.sha));
        out.push(event(EventType::Normal, "RolledBack", "Rollback", note));
    }
    out
}

/// Whether a health is not worth a warning.
fn good(health: HealthStatus) -> bool {
    !matches!(health, HealthStatus::Degraded | HealthStatus::Missing)
}

/// The Event of one drift record.
fn drift_event(drift: &AuditEvent) -> Event {
    let by = drift
        .manager
        .as_deref()
        .map(|m| format!(" by {m}"))
        .unwrap_or_default();
    let fields = drift.fields.join(", ");
    let (kind, reason, done) = match drift.action {
        DriftAction::Reverted => (EventType::Normal, "DriftReverted", "reverted"),
        _ => (
            EventType::Warning,
            "DriftDetected",
            "not reverted (self-heal is off)",
        ),
    };
    let note = format!("{}: {fields} changed{by}; {done}", drift.object);
    event(kind, reason, "Drift", note)
}

fn event(type_: EventType, reason: &str, action: &str, note: String) -> Event {
    let mut note = note;
    if note.len() > NOTE_LIMIT {
        let mut end = NOTE_LIMIT;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
    }
    Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: action.to_owned(),
        secondary: None,
    }
}

fn short(sha: &str) -> &str {
    driftless_api::history::short_id(sha, 7)
}

#[cfg(test)]
mod tests {
    use driftless_api::history::{Revision, SyncResult, SyncStart, SyncTrigger};
    use driftless_api::time::Time;

    use super::*;

    fn sync(at_ms: u64, subject: &str) -> SyncSummary {
        SyncSummary {
            start: SyncStart {
                revision: Revision {
                    ref_label: "main".into(),
                    sha: "0".repeat(40),
                    chart: None,
                },
                author: "A <a@example.com>".into(),
                subject: subject.into(),
                trigger: SyncTrigger::Interval,
                remotes: Vec::new(),
            },
            start_time: Time::from_unix_ms(at_ms),
            finish_time: None,
            result: SyncResult::Succeeded,
        }
    }

    fn synced(at_ms: u64, health: HealthStatus) -> AppStatus {
        AppStatus {
            last_applied: Some(Revision {
                ref_label: "main".into(),
                sha: "abcdef0123".into(),
                chart: None,
            }),
            last_sync_time: Some(Time::from_unix_ms(at_ms)),
            health,
            ..AppStatus::default()
        }
    }

    fn told(events: &[Event]) -> Vec<(String, String)> {
        events
            .iter()
            .map(|e| (e.reason.clone(), e.note.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn a_first_sync_and_its_first_health_are_one_event_unless_the_health_is_bad() {
        let first = transitions(&AppStatus::default(), &synced(1000, HealthStatus::Healthy));
        assert_eq!(
            told(&first),
            [(
                "SyncSucceeded".to_owned(),
                "applied main (abcdef0); health Healthy".to_owned()
            )]
        );
        let degraded = transitions(&AppStatus::default(), &synced(1000, HealthStatus::Degraded));
        let reasons: Vec<String> = told(&degraded).into_iter().map(|(r, _)| r).collect();
        assert_eq!(reasons, ["SyncSucceeded", "HealthChanged"]);
        assert_eq!(degraded[1].type_, EventType::Warning);
        // A later health change has its own Event; a status without news has none.
        let before = synced(1000, HealthStatus::Progressing);
        let later = transitions(&before, &synced(1000, HealthStatus::Healthy));
        assert_eq!(
            told(&later),
            [(
                "HealthChanged".to_owned(),
                "Progressing -> Healthy".to_owned()
            )]
        );
        assert!(transitions(&before, &before).is_empty());
    }

    #[test]
    fn a_new_leader_keeps_the_older_syncs_the_resource_lists() {
        let listed = (0..10)
            .rev()
            .map(|i| sync(i * 1000, &format!("old {i}")))
            .collect();
        let ours = vec![sync(20_000, "new")];
        let merged = merge_history(ours, listed);
        assert_eq!(merged.len(), HISTORY_IN_STATUS);
        assert_eq!(merged[0].start.subject, "new");
        assert_eq!(merged[1].start.subject, "old 9");
        assert_eq!(merged[9].start.subject, "old 1");
    }

    #[test]
    fn syncs_already_in_the_store_are_not_listed_twice() {
        let ours = vec![sync(3000, "c"), sync(2000, "b")];
        let listed = vec![sync(3000, "c"), sync(2000, "b"), sync(1000, "a")];
        let subjects: Vec<String> = merge_history(ours, listed)
            .into_iter()
            .map(|s| s.start.subject)
            .collect();
        assert_eq!(subjects, ["c", "b", "a"]);
    }

    fn receiver(status: Value) -> CrObject {
        let resource = CrKind::Receiver.resource();
        let mut o = kube::api::DynamicObject::new("github", &resource).within("team");
        o.data = json!({"spec": {"type": "github"}, "status": status});
        CrObject {
            kind: CrKind::Receiver,
            object: std::sync::Arc::new(o),
        }
    }

    #[test]
    fn a_condition_that_did_not_change_keeps_its_time_and_makes_no_new_status() {
        let first = receiver_status(&receiver(Value::Null));
        std::thread::sleep(Duration::from_millis(5));
        // The resource shows what was written: computed again, nothing differs.
        let again = receiver_status(&receiver(first.clone()));
        assert_eq!(comparable(&again), comparable(&first));
        let reasons = ["spec.type: unknown".to_owned()];
        let rejected = rejected_status(&receiver(first.clone()), &reasons);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(
            rejected_status(&receiver(rejected.clone()), &reasons),
            rejected
        );
        // A condition whose status changed gets the time of the change.
        let ready = |status: &Value| status["conditions"][0]["lastTransitionTime"].clone();
        assert_ne!(ready(&rejected), ready(&first));
    }
}
