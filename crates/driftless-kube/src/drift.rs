//! Drift watch: one watch per resource type per cluster, shared by every App,
//! mapping events to Apps by their owner label. A managed object that leaves
//! its applied intent yields a [`DriftEvent`] naming the changed fields and
//! the field managers that changed them; with self-heal the intent is
//! applied again at once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::FIELD_MANAGER;
use crate::apply::{ApplyError, ApplyEvent, ApplyOptions, ApplyReport, destination, tenant};
use crate::health::{Health, assess};
use crate::ignore::{IgnoredDifferences, is_ignored};
use crate::intent::{Intent, drifted_paths};
use crate::object::{OWNER_LABEL, ObjectKey, ObjectRef, label};
use crate::sync_options::WriteMode;
use crate::target::{Resource, Target, TargetError, typed};
use crate::wait::ObjectHealth;

/// Server-side end of each watch request; shorter than the client's read
/// timeout, so a quiet watch ends cleanly and resumes where it was.
const WATCH_SECONDS: u32 = 25;
/// Pause before listing again after the first failed list or watch; it
/// doubles with each failure in a row up to [`RETRY_MAX`].
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// The longest pause between attempts of a failing watch.
const RETRY_MAX: Duration = Duration::from_secs(60);
/// Events kept for slow subscribers.
const CHANNEL_CAPACITY: usize = 1024;

/// Why an App could not be tracked.
#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    /// A kind could not be resolved or the identity not assumed.
    #[error("tracking app {app}: {source}")]
    Target {
        /// The App.
        app: String,
        /// What went wrong.
        source: TargetError,
    },
    /// An object of the set is malformed.
    #[error("tracking app {app}: {source}")]
    Object {
        /// The App.
        app: String,
        /// What went wrong.
        source: crate::object::ObjectError,
    },
}

/// A list or watch of one resource type that failed (RBAC, a removed
/// kind, an unreachable API server); the watch lists again after `retry_in`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchFailure {
    /// The resource type: `Kind` and `apiVersion`, e.g. `ConfigMap v1`.
    pub resource: String,
    /// What failed and why.
    pub error: String,
    /// Failures in a row, this one included.
    pub failures: u32,
    /// Pause before the next list.
    pub retry_in: Duration,
}

impl std::fmt::Display for WatchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "watching {}: {} (failure {} in a row; listing again in {:.1}s)",
            self.resource,
            self.error,
            self.failures,
            self.retry_in.as_secs_f64()
        )
    }
}

/// How a managed object drifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftKind {
    /// Fields changed away from the applied intent.
    Modified,
    /// The object was deleted.
    Deleted,
}

/// A managed object that no longer matches what its App applied.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftEvent {
    /// The App owning the object.
    pub app: String,
    /// The object.
    pub object: ObjectRef,
    /// Modified or deleted.
    pub kind: DriftKind,
    /// Dotted paths of the fields that differ from the intent.
    pub fields: Vec<String>,
    /// Field managers that own the changed fields now (e.g. `kubectl-edit`).
    pub managers: Vec<String>,
    /// Whether self-heal applied the intent again.
    pub healed: bool,
    /// Why self-heal failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heal_error: Option<String>,
    /// Milliseconds from receiving the event to the end of the heal.
    pub heal_millis: u64,
}

struct Tracked {
    tenant: Target,
    intents: HashMap<ObjectKey, Intent>,
    self_heal: bool,
    ignore: IgnoredDifferences,
}

struct Shared {
    apps: RwLock<HashMap<String, Tracked>>,
    events: broadcast::Sender<DriftEvent>,
    /// Every labelled live object the watches last saw: its App and health.
    health: RwLock<HashMap<ObjectKey, (String, Health)>>,
    /// Resource types (`apiVersion/plural`) whose watch has listed them once.
    listed: RwLock<HashSet<String>>,
    /// Names of tracked Apps one of whose objects changed health.
    health_changes: broadcast::Sender<String>,
    /// Failed lists and watches.
    failures: broadcast::Sender<WatchFailure>,
}

/// The drift watches of one cluster. Dropping it stops the watches.
pub struct DriftWatch {
    target: Target,
    shared: Arc<Shared>,
    watches: Mutex<HashMap<String, JoinHandle<()>>>,
}

impl std::fmt::Debug for DriftWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriftWatch")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Drop for DriftWatch {
    fn drop(&mut self) {
        for (_, task) in lock(&self.watches).drain() {
            task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl DriftWatch {
    /// Drift watching for `target`; watches start as Apps are tracked.
    pub fn start(target: Target) -> Self {
        let (events, _) = broadcast::channel(CHANNEL_CAPACITY);
        let (health_changes, _) = broadcast::channel(CHANNEL_CAPACITY);
        let (failures, _) = broadcast::channel(CHANNEL_CAPACITY);
        Self {
            target,
            shared: Arc::new(Shared {
                apps: RwLock::default(),
                events,
                health: RwLock::default(),
                listed: RwLock::default(),
                health_changes,
                failures,
            }),
            watches: Mutex::default(),
        }
    }

    /// Drift events of every tracked App, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DriftEvent> {
        self.shared.events.subscribe()
    }

    /// Failed lists and watches, from now on: without a subscriber a watch
    /// that RBAC forbids would only retry, unseen.
    pub fn subscribe_failures(&self) -> broadcast::Receiver<WatchFailure> {
        self.shared.failures.subscribe()
    }

    /// Names of tracked Apps whose objects changed health, from now on: a
    /// cue to look at the App's health again (see [`Self::cached_health`]).
    pub fn subscribe_health(&self) -> broadcast::Receiver<String> {
        self.shared.health_changes.subscribe()
    }

    /// Health of `objects` of `app` as the watches last saw them, without a
    /// request; `None` when a watch has not seen one of them (not watched
    /// yet, or missing), so the caller reads them from the cluster instead.
    pub fn cached_health(&self, app: &str, objects: &[ObjectRef]) -> Option<Vec<ObjectHealth>> {
        let cache = read(&self.shared.health);
        objects
            .iter()
            .map(|object| match cache.get(&object.key()) {
                Some((owner, health)) if owner == app => Some(ObjectHealth {
                    object: object.clone(),
                    health: health.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    /// True when the watch of `resource` has listed it and holds no labelled
    /// object `key`: the object is missing or carries no owner label, so
    /// reading it before an apply would tell nothing the apply needs.
    fn known_unlabelled(&self, resource: &Resource, key: &ObjectKey) -> bool {
        read(&self.shared.listed).contains(&watch_key(resource))
            && !read(&self.shared.health).contains_key(key)
    }

    /// Number of resource types watched (one watch each, whatever the App count).
    pub fn watch_count(&self) -> usize {
        lock(&self.watches).len()
    }

    /// Watches the objects of `objects` as App `opts.app` applied them,
    /// replacing what was tracked for the App before.
    pub async fn track(
        &self,
        objects: &[Value],
        opts: &ApplyOptions,
        self_heal: bool,
    ) -> Result<(), DriftError> {
        let app = &opts.app;
        let target_error = |source| DriftError::Target {
            app: app.clone(),
            source,
        };
        let tenant = tenant(&self.target, opts).map_err(target_error)?;
        let namespace = destination(&self.target, opts);
        let mut intents = HashMap::new();
        // Hooks run once per sync: never drift, never healed.
        for obj in objects.iter().filter(|o| !crate::hooks::is_hook(o)) {
            let object_error = |source| DriftError::Object {
                app: app.clone(),
                source,
            };
            let object = ObjectRef::from_object(obj).map_err(object_error)?;
            let resource = tenant.resolve(&object).await.map_err(target_error)?;
            let intent = Intent::new(obj, app, namespace, resource).map_err(object_error)?;
            self.ensure_watch(&intent.resource);
            intents.insert(intent.object.key(), intent);
        }
        let tracked = Tracked {
            tenant,
            intents,
            self_heal,
            ignore: opts.ignore.clone(),
        };
        write(&self.shared.apps).insert(app.clone(), tracked);
        Ok(())
    }

    /// Turns self-heal of `app` on or off (drift is still reported); false
    /// when the App is not tracked.
    pub fn set_self_heal(&self, app: &str, on: bool) -> bool {
        match write(&self.shared.apps).get_mut(app) {
            Some(tracked) => {
                tracked.self_heal = on;
                true
            }
            None => false,
        }
    }

    /// Stops reporting drift for `app`.
    pub fn untrack(&self, app: &str) {
        write(&self.shared.apps).remove(app);
    }

    /// Applies `objects` without reporting the apply's own changes as drift,
    /// then tracks the new set.
    pub async fn apply(
        &self,
        objects: &[Value],
        opts: &ApplyOptions,
        self_heal: bool,
        progress: &(dyn Fn(ApplyEvent) + Send + Sync),
    ) -> Result<ApplyReport, ApplyError> {
        self.untrack(&opts.app);
        let known = |resource: &Resource, key: &ObjectKey| self.known_unlabelled(resource, key);
        let report =
            crate::apply::apply_with(&self.target, objects, opts, progress, Some(&known)).await?;
        self.track(objects, opts, self_heal)
            .await
            .map_err(|e| match e {
                DriftError::Target { source, .. } => ApplyError::Target(source),
                DriftError::Object { source, .. } => ApplyError::Object(source),
            })?;
        Ok(report)
    }

    fn ensure_watch(&self, resource: &Resource) {
        let key = watch_key(resource);
        let mut watches = lock(&self.watches);
        if watches.contains_key(&key) {
            return;
        }
        let api: Api<DynamicObject> = Api::all_with(self.target.client().clone(), &resource.api);
        let task = tokio::spawn(watch_loop(api, resource.clone(), Arc::clone(&self.shared)));
        watches.insert(key, task);
    }
}

/// The key of a resource type's watch.
fn watch_key(resource: &Resource) -> String {
    format!("{}/{}", resource.api.api_version, resource.api.plural)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Lists, then watches from the list's version; lists again after errors,
/// with a growing, jittered pause while they go on, and reports each one.
/// Runs until the owning [`DriftWatch`] aborts it.
async fn watch_loop(api: Api<DynamicObject>, resource: Resource, shared: Arc<Shared>) {
    let selector = ListParams::default().labels(OWNER_LABEL);
    let mut failures = 0;
    loop {
        let list = match api.list(&selector).await {
            Ok(list) => list,
            Err(e) => {
                failures += 1;
                pause_after(&shared, &resource, failures, &format!("list: {e}")).await;
                continue;
            }
        };
        failures = 0;
        let items: Vec<Seen> = list
            .items
            .into_iter()
            .filter_map(|item| Seen::new(typed(item, &resource)))
            .collect();
        forget_unlisted(&shared, &resource, &items);
        write(&shared.listed).insert(watch_key(&resource));
        for seen in items {
            note_health(&shared, &seen, DriftKind::Modified);
            inspect(&shared, seen, DriftKind::Modified).await;
        }
        let mut version = list.metadata.resource_version.unwrap_or_default();
        let params = WatchParams::default()
            .labels(OWNER_LABEL)
            .timeout(WATCH_SECONDS);
        let failure: Option<String> = 'watch: loop {
            let stream = match api.watch(&params, &version).await {
                Ok(stream) => stream,
                Err(e) => break 'watch Some(format!("watch: {e}")),
            };
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                let (obj, kind) = match event {
                    Ok(WatchEvent::Added(o) | WatchEvent::Modified(o)) => (o, DriftKind::Modified),
                    Ok(WatchEvent::Deleted(o)) => (o, DriftKind::Deleted),
                    Ok(WatchEvent::Bookmark(b)) => {
                        version = b.metadata.resource_version;
                        continue;
                    }
                    // An expired version: list afresh, nothing failed.
                    Ok(WatchEvent::Error(status)) if status.code == 410 => break 'watch None,
                    Ok(WatchEvent::Error(status)) => {
                        break 'watch Some(format!("watch: {} ({})", status.message, status.code));
                    }
                    Err(e) => break 'watch Some(format!("watch stream: {e}")),
                };
                if let Some(v) = &obj.metadata.resource_version {
                    version.clone_from(v);
                }
                if let Some(seen) = Seen::new(typed(obj, &resource)) {
                    note_health(&shared, &seen, kind);
                    inspect(&shared, seen, kind).await;
                }
            }
        };
        match failure {
            Some(error) => {
                failures += 1;
                pause_after(&shared, &resource, failures, &error).await;
            }
            None => tokio::time::sleep(RETRY_PAUSE).await,
        }
    }
}

/// Reports the `failures`-th failure in a row of `resource`'s watch and
/// waits before the next attempt.
async fn pause_after(shared: &Shared, resource: &Resource, failures: u32, error: &str) {
    let retry_in = retry_delay(failures, jitter());
    let failure = WatchFailure {
        resource: format!("{} {}", resource.api.kind, resource.api.api_version),
        error: error.to_owned(),
        failures,
        retry_in,
    };
    // No subscriber is not an error: the watch still retries.
    let _ = shared.failures.send(failure);
    tokio::time::sleep(retry_in).await;
}

/// The pause after `failures` failures in a row: [`RETRY_PAUSE`] doubled for
/// each earlier one, at most [`RETRY_MAX`], stretched by `jitter` (0 to
/// 0.25) so that the watches of many kinds do not retry in step.
fn retry_delay(failures: u32, jitter: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let base = RETRY_PAUSE.saturating_mul(1 << doublings).min(RETRY_MAX);
    base.mul_f64(1.0 + jitter.clamp(0.0, 0.25))
}

/// A fraction in `[0, 0.25)` that differs from call to call.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    // Each RandomState is seeded afresh: enough randomness to spread retries.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(now);
    let bits = hasher.finish() >> 11;
    #[allow(clippy::cast_precision_loss)]
    let unit = bits as f64 / (1u64 << 53) as f64;
    unit * 0.25
}

/// A live object the watch received, with its owning App and key.
struct Seen {
    live: Value,
    app: String,
    key: ObjectKey,
}

impl Seen {
    /// `None` for an object without owner label or identity (nothing to track).
    fn new(live: Value) -> Option<Self> {
        let app = label(&live, OWNER_LABEL)?.to_owned();
        let key = ObjectRef::from_object(&live).ok()?.key();
        Some(Self { live, app, key })
    }
}

/// Drops cached health of objects of `resource`'s kind a fresh list no
/// longer holds (deleted while the watch was down).
fn forget_unlisted(shared: &Shared, resource: &Resource, items: &[Seen]) {
    let listed: HashSet<&ObjectKey> = items.iter().map(|seen| &seen.key).collect();
    let kind = &resource.api;
    write(&shared.health)
        .retain(|key, _| key.group != kind.group || key.kind != kind.kind || listed.contains(key));
}

/// Records the health of one live object (or forgets a deleted one) and
/// tells subscribers when the health of a tracked App's object changed.
fn note_health(shared: &Shared, seen: &Seen, kind: DriftKind) {
    let app = seen.app.as_str();
    let changed = {
        let mut cache = write(&shared.health);
        let (before, after) = match kind {
            DriftKind::Deleted => (cache.remove(&seen.key), None),
            DriftKind::Modified => {
                let health = assess(&seen.live);
                let status = health.status;
                (
                    cache.insert(seen.key.clone(), (app.to_owned(), health)),
                    Some(status),
                )
            }
        };
        // A change of owner counts as a change for the new owner.
        before.map(|(owner, h)| (owner == app, h.status)) != after.map(|s| (true, s))
    };
    if changed && read(&shared.apps).contains_key(app) {
        // No subscriber is not an error.
        let _ = shared.health_changes.send(app.to_owned());
    }
}

/// Compares one live object (or its deletion) with its App's intent.
async fn inspect(shared: &Shared, seen: Seen, kind: DriftKind) {
    let received = Instant::now();
    let Seen { live, app, key } = seen;
    // The rules are evaluated after the lock is let go: jq expressions run
    // in a worker process, which may take up to its time bound.
    let found = read(&shared.apps).get(&app).and_then(|t| {
        let intent = t.intents.get(&key)?.clone();
        let rules = t
            .ignore
            .applies_to(&intent.object)
            .then(|| t.ignore.clone());
        Some((intent, t.tenant.clone(), t.self_heal, rules))
    });
    let Some((intent, tenant, self_heal, rules)) = found else {
        return;
    };
    let ignored = match rules {
        Some(rules) => rules.paths(&intent.object, &intent.manifest, Some(&live)),
        None => Ok(Vec::new()),
    };
    let ignored = match ignored {
        Ok(ignored) => ignored,
        Err(e) => {
            // Neither drift nor in sync can be told: nothing is reverted.
            tracing::warn!(app = %app, object = %intent.object, "{e}");
            return;
        }
    };
    // Healing sends the live values of ignored fields, as an apply does.
    let intent = intent.ignoring(&ignored, Some(&live));
    if intent.options.write == WriteMode::CreateOnly {
        // Created once and never written again: what others do to it is theirs.
        return;
    }
    let (fields, managers) = match kind {
        DriftKind::Deleted => (Vec::new(), Vec::new()),
        DriftKind::Modified => {
            let mut paths = drifted_paths(&intent.manifest, &live);
            paths.retain(|p| !is_ignored(p, &ignored));
            if paths.is_empty() {
                return;
            }
            let managers = managers_of(&live, &paths);
            (paths.iter().map(|p| p.join(".")).collect(), managers)
        }
    };
    let mut event = DriftEvent {
        app,
        object: intent.object.clone(),
        kind,
        fields,
        managers,
        healed: false,
        heal_error: None,
        heal_millis: 0,
    };
    if self_heal {
        match heal(&tenant, &intent).await {
            Ok(()) => event.healed = true,
            Err(e) => event.heal_error = Some(e.to_string()),
        }
        event.heal_millis = u64::try_from(received.elapsed().as_millis()).unwrap_or(u64::MAX);
    }
    // No subscriber is not an error: drift is still healed.
    let _ = shared.events.send(event);
}

/// Managers other than driftless whose managed fields cover a drifted path;
/// when none does, the manager of the most recent foreign write.
fn managers_of(live: &Value, paths: &[Vec<String>]) -> Vec<String> {
    let entries: Vec<&Value> = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|e| e.get("manager").and_then(Value::as_str) != Some(FIELD_MANAGER))
                .collect()
        })
        .unwrap_or_default();
    let name = |e: &Value| {
        e.get("manager")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned()
    };
    let mut owners: Vec<String> = entries
        .iter()
        .filter(|e| {
            let fields = e.get("fieldsV1");
            paths.iter().any(|p| fields.is_some_and(|f| owns(f, p)))
        })
        .map(|e| name(e))
        .collect();
    owners.sort();
    owners.dedup();
    if owners.is_empty()
        && let Some(latest) = entries
            .iter()
            .max_by_key(|e| e.get("time").and_then(Value::as_str).unwrap_or(""))
    {
        owners.push(name(latest));
    }
    owners
}

/// Whether a `fieldsV1` set names `path` (or a field inside it).
fn owns(fields: &Value, path: &[String]) -> bool {
    let mut current = fields;
    for segment in path {
        match current.get(format!("f:{segment}")) {
            Some(next) => current = next,
            None => return false,
        }
    }
    true
}

/// Writes an object's intent again: a forced server-side apply takes back
/// fields others took over (that is self-heal's purpose); objects written
/// another way by their sync options are written that way.
async fn heal(tenant: &Target, intent: &Intent) -> Result<(), String> {
    if intent.options.write != WriteMode::Apply {
        return crate::apply::heal(tenant, intent)
            .await
            .map_err(|e| e.to_string());
    }
    let api = tenant.api(&intent.resource, intent.object.namespace.as_deref());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(
        &intent.object.name,
        &params,
        &Patch::Apply(&intent.manifest),
    )
    .await
    .map(drop)
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn retries_back_off_with_jitter_up_to_a_limit() {
        assert_eq!(retry_delay(1, 0.0), RETRY_PAUSE);
        assert_eq!(retry_delay(2, 0.0), RETRY_PAUSE * 2);
        assert_eq!(retry_delay(4, 0.0), RETRY_PAUSE * 8);
        assert_eq!(retry_delay(100, 0.0), RETRY_MAX);
        assert_eq!(retry_delay(1, 0.25), RETRY_PAUSE.mul_f64(1.25));
        // Even the largest jitter of one step stays below the next step.
        assert!(retry_delay(3, 0.25) < retry_delay(4, 0.0));
        let spread: HashSet<u64> = (0..20).map(|_| jitter().to_bits()).collect();
        assert!(spread.len() > 1, "jitter never changes");
        assert!((0..100).map(|_| jitter()).all(|j| (0.0..0.25).contains(&j)));
    }

    #[test]
    fn managers_owning_the_drifted_field_are_named() {
        let live = json!({"metadata": {"managedFields": [
            {"manager": "driftless", "operation": "Apply", "time": "2026-01-01T00:00:02Z",
             "fieldsV1": {"f:data": {"f:b": {}}}},
            {"manager": "kube-controller-manager", "operation": "Update", "time": "2026-01-01T00:00:03Z",
             "fieldsV1": {"f:status": {}}},
            {"manager": "kubectl-edit", "operation": "Update", "time": "2026-01-01T00:00:01Z",
             "fieldsV1": {"f:data": {"f:a": {}}}}]}});
        let path = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            managers_of(&live, &[path(&["data", "a"])]),
            ["kubectl-edit"]
        );
        // Nobody owns a removed field: the latest foreign writer is named.
        assert_eq!(
            managers_of(&live, &[path(&["data", "c"])]),
            ["kube-controller-manager"]
        );
    }
}
