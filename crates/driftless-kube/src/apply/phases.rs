//! A sync in phases: the hook objects of a set are taken out of it, and
//! when they are due run PreSync before the waves, Sync alongside them,
//! PostSync once everything is Healthy, and SyncFail when any of that fails.
//!
//! Hooks are due when the sync is asked for ([`HookRuns::Always`]) or when
//! it writes something ([`HookRuns::WhenChanged`]): an object of the set
//! missing, not as rendered, or owned by no App yet, or (with prune) an
//! object left the set. A resync that would write nothing runs none, so a
//! reconcile loop does not run migrations over and over.

use std::collections::HashSet;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde_json::Value;

use crate::hooks::{HookPhase, HookRun, HookRuns, HookSpec, describe, hook_spec};
use crate::intent::Intent;
use crate::inventory::InventoryStore;
use crate::object::{OWNER_LABEL, ObjectKey, ObjectRef, label};
use crate::sync_options::WriteMode;
use crate::target::{Resource, Target, typed};
use crate::wait::wait_healthy_with;

use super::error::{ApplyError, api_error};
use super::hooks::{Hook, run_phase};
use super::options::{ApplyOptions, destination, tenant};
use super::report::{ApplyEvent, ApplyReport};
use super::waves::{KnownUnlabelled, apply_set, ensure_namespace};

/// A hook's manifest with its spec.
type HookObject = (Value, HookSpec);

/// Reads in flight at once while deciding whether a sync writes anything.
const READS_IN_FLIGHT: usize = 16;

/// [`super::apply`] with hooks: see the module docs.
pub(crate) async fn apply_with(
    target: &Target,
    objects: &[Value],
    opts: &ApplyOptions,
    progress: &(dyn Fn(ApplyEvent) + Send + Sync),
    known: Option<KnownUnlabelled<'_>>,
) -> Result<ApplyReport, ApplyError> {
    let (objects, hooks) = split(objects)?;
    let runnable: Vec<HookObject> = hooks
        .into_iter()
        .filter(|(_, spec)| !spec.phases.is_empty())
        .collect();
    if runnable.is_empty() || opts.hooks == HookRuns::Never {
        return apply_set(target, &objects, opts, progress, known).await;
    }
    let tenant = tenant(target, opts)?;
    let namespace = destination(target, opts);
    if opts.hooks == HookRuns::WhenChanged && !writes(target, &tenant, &objects, opts).await? {
        return apply_set(target, &objects, opts, progress, known).await;
    }
    if opts.create_namespace {
        // PreSync hooks run before the first wave would create it.
        ensure_namespace(&tenant, namespace).await?;
    }
    let mut prepared = Vec::with_capacity(runnable.len());
    for (manifest, spec) in runnable {
        prepared.push(Hook::prepare(&tenant, manifest, spec, &opts.app, namespace).await?);
    }
    let mut runs = Vec::new();
    let set = (target, objects.as_slice());
    let result = phases(set, &tenant, &prepared, opts, progress, known, &mut runs).await;
    match result {
        Ok(mut report) => {
            report.hooks = runs;
            Ok(report)
        }
        Err(e) => {
            // What SyncFail hooks do is reported as they run; the sync's
            // own error is the one that tells why it failed.
            if let Err(fail) =
                run_phase(&tenant, &prepared, HookPhase::SyncFail, opts, progress).await
            {
                tracing::warn!(app = %opts.app, "{fail}");
            }
            Err(e)
        }
    }
}

/// PreSync, then the waves with the Sync hooks, then (everything Healthy)
/// PostSync; the hooks that ran are added to `runs`.
async fn phases(
    (target, objects): (&Target, &[Value]),
    tenant: &Target,
    hooks: &[Hook],
    opts: &ApplyOptions,
    progress: &(dyn Fn(ApplyEvent) + Send + Sync),
    known: Option<KnownUnlabelled<'_>>,
    runs: &mut Vec<HookRun>,
) -> Result<ApplyReport, ApplyError> {
    runs.extend(run_phase(tenant, hooks, HookPhase::PreSync, opts, progress).await?);
    let (applied, sync) = tokio::join!(
        apply_set(target, objects, opts, progress, known),
        run_phase(tenant, hooks, HookPhase::Sync, opts, progress),
    );
    let mut report = applied?;
    runs.extend(sync?);
    if report.health.is_empty() {
        // Not waited for by the apply: PostSync needs every object Healthy.
        let mut waited: Vec<(Resource, ObjectRef)> = Vec::new();
        for seen in &report.observed {
            waited.push((tenant.resolve(&seen.object).await?, seen.object.clone()));
        }
        let on_change = |object: &ObjectRef, health: &crate::health::Health| {
            progress(ApplyEvent::Health {
                object: object.clone(),
                health: health.clone(),
            });
        };
        report.health = wait_healthy_with(tenant, &waited, opts.timeout, &on_change).await?;
        report.status = Some(crate::health::aggregate(
            report.health.iter().map(|h| &h.health),
        ));
    }
    runs.extend(run_phase(tenant, hooks, HookPhase::PostSync, opts, progress).await?);
    Ok(report)
}

/// Splits a set into the objects applied as usual and the hooks, each with
/// its spec; a hook annotation that cannot be read fails the whole sync
/// before anything is written.
pub(super) fn split(objects: &[Value]) -> Result<(Vec<Value>, Vec<HookObject>), ApplyError> {
    let mut plain = Vec::with_capacity(objects.len());
    let mut hooks = Vec::new();
    for obj in objects {
        match hook_spec(obj)? {
            Some(spec) => {
                check_hook(obj)?;
                hooks.push((obj.clone(), spec));
            }
            None => plain.push(obj.clone()),
        }
    }
    Ok((plain, hooks))
}

/// A hook needs a kind and a name or a generateName.
fn check_hook(obj: &Value) -> Result<(), ApplyError> {
    let named = ["name", "generateName"].iter().any(|f| {
        obj.pointer(&format!("/metadata/{f}"))
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    });
    let typed = ["apiVersion", "kind"]
        .iter()
        .all(|f| obj.get(f).and_then(Value::as_str).is_some());
    if named && typed {
        return Ok(());
    }
    Err(ApplyError::Hook {
        phase: HookPhase::PreSync,
        object: describe(obj),
        reason: "a hook needs apiVersion, kind and metadata.name or metadata.generateName"
            .to_owned(),
    })
}

/// Whether applying `objects` would write anything, or (with prune) delete
/// an object that left the set. A kind the cluster does not serve yet (a
/// custom resource of a CRD in the set) counts as a write.
async fn writes(
    target: &Target,
    tenant: &Target,
    objects: &[Value],
    opts: &ApplyOptions,
) -> Result<bool, ApplyError> {
    let namespace = destination(target, opts);
    let mut keys: HashSet<ObjectKey> = HashSet::new();
    let mut intents = Vec::with_capacity(objects.len());
    for obj in objects {
        let object = ObjectRef::from_object(obj)?;
        let Some(resource) = tenant.try_resolve(&object).await? else {
            return Ok(true);
        };
        let intent = Intent::new(obj, &opts.app, namespace, resource)?;
        keys.insert(intent.object.key());
        intents.push(intent);
    }
    // Collected first: a closure inside the stream type makes the future
    // fail the `Send` check of callers that spawn it (rust-lang/rust#102211).
    let reads: Vec<_> = intents
        .iter()
        .map(|intent| async move { would_write(tenant, intent, opts).await })
        .collect();
    let changed: Vec<bool> = stream::iter(reads)
        .buffer_unordered(READS_IN_FLIGHT)
        .try_collect()
        .await?;
    if changed.into_iter().any(|c| c) {
        return Ok(true);
    }
    if !opts.prune || (intents.is_empty() && !opts.allow_empty_prune) {
        return Ok(false);
    }
    let store = InventoryStore::new(&opts.app, &opts.inventory_namespace);
    let recorded = store.load(target).await?;
    Ok(recorded.objects.iter().any(|o| !keys.contains(&o.key())))
}

/// Whether the apply would write `intent`'s object.
async fn would_write(
    tenant: &Target,
    intent: &Intent,
    opts: &ApplyOptions,
) -> Result<bool, ApplyError> {
    let api = tenant.api(&intent.resource, intent.object.namespace.as_deref());
    let live = api
        .get_opt(&intent.object.name)
        .await
        .map_err(|e| api_error(tenant, &intent.object.to_string(), "read", e))?;
    let Some(live) = live.map(|l| typed(l, &intent.resource)) else {
        return Ok(true);
    };
    if label(&live, OWNER_LABEL) != Some(opts.app.as_str()) {
        return Ok(true);
    }
    if intent.options.write == WriteMode::CreateOnly {
        return Ok(false);
    }
    let ignored = opts
        .ignore
        .paths(&intent.object, &intent.manifest, Some(&live))?;
    let intent = intent.clone().ignoring(&ignored, Some(&live));
    Ok(!intent.satisfied_by(&live))
}
