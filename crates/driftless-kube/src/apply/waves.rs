//! Making a cluster match an object set: server-side apply in sync-wave and
//! kind order, no write for objects already as intended, health waits between
//! waves, then prune and inventory.
//!
//! The inventory is written before the first write with the objects it
//! listed and the objects about to be applied, so an apply that fails or is
//! stopped part way leaves every object it may have created recorded; after
//! a successful apply (and prune) it shrinks to the new set.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use crate::FIELD_MANAGER;
use crate::health::{Health, aggregate};
use crate::intent::Intent;
use crate::inventory::{Inventory, InventoryError, InventoryStore};
use crate::object::{OWNER_LABEL, ObjectKey, ObjectRef};
use crate::order::{apply_order, kind_rank};
use crate::sync_options::{SyncOptions, WriteMode};
use crate::target::{Resource, Target, typed};
use crate::wait::{wait_healthy, wait_healthy_with};

use super::adopt;
use super::error::{ApplyError, api_error};
use super::options::{ApplyOptions, destination, tenant};
use super::prune::{Removal, delete_objects};
use super::report::{ApplyEvent, ApplyReport, Written};
use super::write::apply_one;

/// Writes in flight at once.
const WRITES_IN_FLIGHT: usize = 32;

/// Applies `objects` as App `opts.app`, running their hooks when due; see
/// the crate docs for the steps.
pub async fn apply(
    target: &Target,
    objects: &[Value],
    opts: &ApplyOptions,
    progress: &(dyn Fn(ApplyEvent) + Send + Sync),
) -> Result<ApplyReport, ApplyError> {
    super::phases::apply_with(target, objects, opts, progress, None).await
}

/// Says of an object (by its resource type and key) that it is known to be
/// missing or unlabelled, so it need not be read before it is applied.
pub(crate) type KnownUnlabelled<'a> = &'a (dyn Fn(&Resource, &ObjectKey) -> bool + Send + Sync);

/// [`apply`] of a set without hooks, skipping the read of objects `known`
/// says are missing or carry no owner label (a watch of every labelled
/// object knows this).
pub(super) async fn apply_set(
    target: &Target,
    objects: &[Value],
    opts: &ApplyOptions,
    progress: &(dyn Fn(ApplyEvent) + Send + Sync),
    known: Option<KnownUnlabelled<'_>>,
) -> Result<ApplyReport, ApplyError> {
    let tenant = tenant(target, opts)?;
    let namespace = destination(target, opts);
    let store = InventoryStore::new(&opts.app, &opts.inventory_namespace);
    check_objects(objects)?;
    let waves = apply_order(objects)?;
    let planned = planned(&tenant, objects, namespace).await?;
    let mut recorded = record_planned(&store, target, planned).await?;
    // A Namespace the set holds is applied in the first wave as it is written.
    let declared = objects.iter().any(|o| {
        o.get("kind").and_then(Value::as_str) == Some("Namespace")
            && o.pointer("/metadata/name").and_then(Value::as_str) == Some(namespace)
    });
    if opts.create_namespace && !declared {
        ensure_namespace(&tenant, namespace).await?;
    }
    let mut report = ApplyReport {
        app: opts.app.clone(),
        ..ApplyReport::default()
    };
    let mut applied: Vec<(Resource, ObjectRef)> = Vec::new();
    let report_health = |object: &ObjectRef, health: &Health| {
        progress(ApplyEvent::Health {
            object: object.clone(),
            health: health.clone(),
        });
    };
    for (index, wave) in waves.iter().enumerate() {
        let wave_start = applied.len();
        // Objects of one kind rank go together; a rank waits for the one before.
        let mut steps: Vec<Vec<&Value>> = Vec::new();
        let mut last_rank = None;
        for obj in &wave.objects {
            let rank = obj.get("kind").and_then(Value::as_str).map(kind_rank);
            if rank != last_rank || steps.is_empty() {
                steps.push(Vec::new());
                last_rank = rank;
            }
            steps.last_mut().expect("a step was just pushed").push(obj);
        }
        for step in steps {
            let mut intents = Vec::with_capacity(step.len());
            for obj in step {
                let object = ObjectRef::from_object(obj)?;
                let resource = tenant.resolve(&object).await?;
                intents.push(Intent::new(obj, &opts.app, namespace, resource)?);
            }
            // Kinds of CRDs applied a step earlier are only known now.
            let objects = intents.iter().map(|i| i.object.clone());
            record_ahead(&store, target, &mut recorded, objects).await?;
            let results = apply_step(&tenant, &intents, opts, progress, known).await?;
            for (intent, written) in intents.iter().zip(results) {
                report.record(intent.object.clone(), written);
                applied.push((intent.resource.clone(), intent.object.clone()));
            }
            wait_for_definitions(&tenant, &intents, opts.timeout).await?;
        }
        let last = index + 1 == waves.len();
        if !last {
            let objects = &applied[wave_start..];
            progress(ApplyEvent::Waiting {
                wave: wave.number,
                objects: objects.len(),
            });
            wait_healthy_with(&tenant, objects, opts.timeout, &report_health).await?;
        }
    }
    if opts.wait {
        if let Some(wave) = waves.last() {
            progress(ApplyEvent::Waiting {
                wave: wave.number,
                objects: applied.len(),
            });
        }
        report.health = wait_healthy_with(&tenant, &applied, opts.timeout, &report_health).await?;
        report.status = Some(aggregate(report.health.iter().map(|h| &h.health)));
    }
    let current: BTreeSet<ObjectRef> = applied.into_iter().map(|(_, o)| o).collect();
    let keys: HashSet<ObjectKey> = current.iter().map(ObjectRef::key).collect();
    // What the inventory lists beyond the set: pruned when asked, else kept.
    let left: Vec<ObjectRef> = recorded
        .objects
        .iter()
        .filter(|o| !keys.contains(&o.key()))
        .cloned()
        .collect();
    let mut next = Inventory { objects: current };
    if opts.prune && (!next.objects.is_empty() || opts.allow_empty_prune) {
        let failed =
            delete_objects(&tenant, &left, opts, Removal::Prune, &mut report, progress).await?;
        next.objects.extend(failed);
    } else {
        report.empty_set_not_pruned = opts.prune && next.objects.is_empty();
        // Without prune, what earlier syncs created stays owned and recorded.
        next.objects.extend(left);
    }
    if next != recorded {
        store.save(target, &next).await?;
    }
    Ok(report)
}

/// The objects of the set as the inventory records them (namespace
/// defaulted), for the kinds served now. A kind defined by a CRD of the same
/// set is recorded just before its own step.
async fn planned(
    tenant: &Target,
    objects: &[Value],
    namespace: &str,
) -> Result<Vec<ObjectRef>, ApplyError> {
    let mut planned = Vec::with_capacity(objects.len());
    for obj in objects {
        let mut object = ObjectRef::from_object(obj)?;
        let Some(resource) = tenant.try_resolve(&object).await? else {
            continue;
        };
        if resource.namespaced && object.namespace.is_none() {
            object.namespace = Some(namespace.to_owned());
        }
        planned.push(object);
    }
    Ok(planned)
}

/// Reads the inventory and writes the `planned` objects into it before any
/// is applied. When the inventory changed since this process last saw it
/// (another process wrote it), it is read again from the API server and the
/// write made once more.
async fn record_planned(
    store: &InventoryStore,
    target: &Target,
    planned: Vec<ObjectRef>,
) -> Result<Inventory, ApplyError> {
    let mut recorded = store.load(target).await?;
    match record_ahead(store, target, &mut recorded, planned.iter().cloned()).await {
        Err(ApplyError::Inventory(e)) if matches!(*e, InventoryError::Changed { .. }) => {
            let mut recorded = store.load(target).await?;
            record_ahead(store, target, &mut recorded, planned).await?;
            Ok(recorded)
        }
        done => done.map(|()| recorded),
    }
}

/// Writes `objects` into the inventory before they are applied, unless it
/// lists them already, so that an apply that fails or is stopped part way
/// leaves everything it may have created recorded for a later prune.
async fn record_ahead(
    store: &InventoryStore,
    target: &Target,
    recorded: &mut Inventory,
    objects: impl IntoIterator<Item = ObjectRef>,
) -> Result<(), ApplyError> {
    let merged = recorded.with(objects);
    if merged != *recorded {
        store.save(target, &merged).await?;
        *recorded = merged;
    }
    Ok(())
}

/// Refuses a set with an object twice or an unreadable sync options annotation.
fn check_objects(objects: &[Value]) -> Result<(), ApplyError> {
    let mut seen = HashSet::new();
    for obj in objects {
        let r = ObjectRef::from_object(obj)?;
        // Read up front, so that a bad annotation fails the sync before any write.
        SyncOptions::of(obj).map_err(crate::object::ObjectError::from)?;
        if !seen.insert(r.key()) {
            return Err(ApplyError::Duplicate(r.to_string()));
        }
    }
    Ok(())
}

/// Server-side applies the namespace objects without one go to.
pub(super) async fn ensure_namespace(target: &Target, namespace: &str) -> Result<(), ApplyError> {
    let object = ObjectRef {
        group: String::new(),
        version: "v1".into(),
        kind: "Namespace".into(),
        namespace: None,
        name: namespace.to_owned(),
    };
    let resource = target.resolve(&object).await?;
    let api = target.api(&resource, None);
    // Only a missing one is written: applying this bare manifest over an
    // existing Namespace would take back labels the same manager set on it.
    // (An identity that may not read Namespaces applies as before.)
    if let Ok(Some(_)) = api.get_metadata_opt(namespace).await {
        return Ok(());
    }
    let manifest =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
    api.patch(
        namespace,
        &PatchParams::apply(FIELD_MANAGER),
        &Patch::Apply(&manifest),
    )
    .await
    .map_err(|e| api_error(target, &object.to_string(), "apply", e))?;
    Ok(())
}

/// Applies one step's intents concurrently; results (what was done and the
/// health seen) follow the input order.
async fn apply_step(
    target: &Target,
    intents: &[Intent],
    opts: &ApplyOptions,
    progress: &(dyn Fn(ApplyEvent) + Send + Sync),
    known: Option<KnownUnlabelled<'_>>,
) -> Result<Vec<Written>, ApplyError> {
    // An object whose adoption would be refused is always read: whether it
    // exists must be known before the write.
    // So is one written other than by server-side apply: its way of writing
    // depends on whether it exists.
    // So are objects with ignored fields: the live values are sent for them.
    let must_read = |intent: &Intent| {
        adopt::refusal(&intent.manifest, opts).is_some()
            || intent.options.write != WriteMode::Apply
            || opts.ignore.applies_to(&intent.object)
    };
    let live = fetch_managed(target, intents, known, &must_read).await?;
    // Collected first: a closure inside the stream type makes the future
    // fail the `Send` check of callers that spawn it (rust-lang/rust#102211).
    // Every object's ignored fields are known before the first write: a rule
    // that gives no answer stops the step with nothing of it written.
    let ignored = intents
        .iter()
        .map(|intent| {
            let live = live.get(&intent.object.key());
            opts.ignore.paths(&intent.object, &intent.manifest, live)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let writes: Vec<_> = intents
        .iter()
        .zip(ignored)
        .map(|(intent, ignored)| {
            let live = live.get(&intent.object.key());
            async move {
                let adjusted;
                let intent = if ignored.is_empty() {
                    intent
                } else {
                    adjusted = intent.clone().ignoring(&ignored, live);
                    &adjusted
                };
                let written = apply_one(target, intent, live, opts).await?;
                if let Some(adoption) = &written.adopted {
                    progress(ApplyEvent::Adopted {
                        object: adoption.object.clone(),
                        previous_managers: adoption.previous_managers.clone(),
                    });
                }
                progress(ApplyEvent::Applied {
                    object: intent.object.clone(),
                    action: written.action,
                });
                Ok::<_, ApplyError>(written)
            }
        })
        .collect();
    stream::iter(writes)
        .buffered(WRITES_IN_FLIGHT)
        .try_collect()
        .await
}

/// Above this many objects of one kind in one namespace, the live objects
/// are listed at once rather than read one by one.
const LIST_ABOVE: usize = 8;

/// The live objects of the intents that exist. A few objects of a kind are
/// read by name; many are listed by owner label, so that objects already as
/// intended cost no request of their own. Reading by name keeps the cost of
/// a small App independent of how many other Apps share its namespace.
/// Objects `must_read` names are read even when `known` or a list says they
/// are missing or unlabelled.
async fn fetch_managed(
    target: &Target,
    intents: &[Intent],
    known: Option<KnownUnlabelled<'_>>,
    must_read: &(dyn Fn(&Intent) -> bool + Sync),
) -> Result<HashMap<ObjectKey, Value>, ApplyError> {
    let mut groups: HashMap<(String, Option<String>), Vec<&Intent>> = HashMap::new();
    for intent in intents {
        let scope = intent.object.namespace.clone();
        groups
            .entry((
                intent.resource.api.api_version.clone() + "/" + &intent.resource.api.plural,
                scope,
            ))
            .or_default()
            .push(intent);
    }
    let mut live = HashMap::new();
    let mut singles = Vec::new();
    for ((_, namespace), members) in groups {
        if members.len() <= LIST_ABOVE {
            // Missing or unlabelled objects are applied without a look:
            // what the apply needs from a live object is its owner label.
            singles.extend(members.into_iter().filter(|i| {
                must_read(i) || !known.is_some_and(|k| k(&i.resource, &i.object.key()))
            }));
            continue;
        }
        let intent = members[0];
        let api = target.api(&intent.resource, namespace.as_deref());
        let list = api
            .list(&ListParams::default().labels(OWNER_LABEL))
            .await
            .map_err(|e| {
                let what = format!(
                    "{} in {}",
                    intent.resource.api.plural,
                    namespace.as_deref().unwrap_or("the cluster")
                );
                api_error(target, &what, "list", e)
            })?;
        for item in list.items {
            let value = typed(item, &intent.resource);
            if let Ok(r) = ObjectRef::from_object(&value) {
                live.insert(r.key(), value);
            }
        }
        // The list holds labelled objects only.
        singles.extend(
            members
                .into_iter()
                .filter(|i| must_read(i) && !live.contains_key(&i.object.key())),
        );
    }
    // Collected first, as in `apply_step`.
    let reads: Vec<_> = singles
        .into_iter()
        .map(|intent| async move {
            let api = target.api(&intent.resource, intent.object.namespace.as_deref());
            let found = api
                .get_opt(&intent.object.name)
                .await
                .map_err(|e| api_error(target, &intent.object.to_string(), "read", e))?;
            Ok::<_, ApplyError>(
                found.map(|item| (intent.object.key(), typed(item, &intent.resource))),
            )
        })
        .collect();
    let found: Vec<_> = stream::iter(reads)
        .buffer_unordered(WRITES_IN_FLIGHT)
        .try_collect()
        .await?;
    live.extend(found.into_iter().flatten());
    Ok(live)
}

/// Custom resources need their definitions established, and their kinds
/// discovered afresh, before they can be applied.
async fn wait_for_definitions(
    target: &Target,
    intents: &[Intent],
    timeout: Duration,
) -> Result<(), ApplyError> {
    let crds: Vec<&Intent> = intents
        .iter()
        .filter(|i| i.object.kind == "CustomResourceDefinition")
        .collect();
    if crds.is_empty() {
        return Ok(());
    }
    let objects: Vec<(Resource, ObjectRef)> = crds
        .iter()
        .map(|i| (i.resource.clone(), i.object.clone()))
        .collect();
    let start = std::time::Instant::now();
    wait_healthy(target, &objects, timeout).await?;
    for crd in crds {
        let group = crd.manifest.pointer("/spec/group").and_then(Value::as_str);
        let kind = crd
            .manifest
            .pointer("/spec/names/kind")
            .and_then(Value::as_str);
        let versions = crd
            .manifest
            .pointer("/spec/versions")
            .and_then(Value::as_array);
        let (Some(group), Some(kind), Some(versions)) = (group, kind, versions) else {
            continue;
        };
        let served = versions
            .iter()
            .filter(|v| v.get("served") != Some(&Value::Bool(false)));
        for version in served.filter_map(|v| v.get("name")?.as_str()) {
            let api_version = format!("{group}/{version}");
            let left = timeout.saturating_sub(start.elapsed());
            // An unserved kind after the wait surfaces as UnknownKind when
            // its objects are resolved, naming the object.
            target
                .wait_served(&api_version, kind, left)
                .await
                .map_err(ApplyError::from)?;
        }
    }
    Ok(())
}
