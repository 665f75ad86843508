//! What an apply would change, computed by the API server: each object is
//! applied with dry-run and the result compared with the live object.

use std::collections::HashSet;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use kube::api::{Patch, PatchParams};
use serde_json::Value;

use crate::FIELD_MANAGER;
use crate::apply::{ApplyError, ApplyOptions, api_error, destination, tenant};
use crate::compare::{DiffSummary, SecretMasker, diff_sets};
use crate::hooks::is_hook;
use crate::ignore::IgnoredDifferences;
use crate::intent::Intent;
use crate::inventory::InventoryStore;
use crate::object::{ObjectRef, owned_by, prune_disabled, set_owner};
use crate::sync_options::{SyncOptions, WriteMode};
use crate::target::{Target, is_not_found};

/// Requests in flight at once.
const IN_FLIGHT: usize = 32;

/// The dry-run result and the live object of one desired object.
type Pair = (Value, Option<Value>);

/// Compares `objects` with the cluster as App `opts.app` would apply them:
/// per object a unified diff (Secrets masked) and a summary. With
/// `opts.prune`, objects of the inventory that left the set count as deletions.
pub async fn diff(
    target: &Target,
    objects: &[Value],
    opts: &ApplyOptions,
) -> Result<DiffSummary, ApplyError> {
    let tenant = tenant(target, opts)?;
    let namespace = destination(target, opts);
    // Hooks are run by a sync, not compared: they are never out of sync.
    let objects: Vec<&Value> = objects.iter().filter(|o| !is_hook(o)).collect();
    // Collected first: a stream holding the mapping closure is not `Send`
    // for every lifetime, which a spawned caller needs.
    let reads: Vec<_> = objects
        .iter()
        .map(|obj| dry_run(&tenant, obj, &opts.app, namespace, &opts.ignore))
        .collect();
    let pairs: Vec<Pair> = stream::iter(reads)
        .buffered(IN_FLIGHT)
        .try_collect()
        .await?;
    let mut live: Vec<Value> = pairs.iter().filter_map(|(_, l)| l.clone()).collect();
    if opts.prune && (!objects.is_empty() || opts.allow_empty_prune) {
        let keys: HashSet<_> = pairs
            .iter()
            .filter_map(|(d, _)| ObjectRef::from_object(d).ok().map(|r| r.key()))
            .collect();
        let store = InventoryStore::new(&opts.app, &opts.inventory_namespace);
        for object in store.load(target).await?.objects {
            if keys.contains(&object.key()) {
                continue;
            }
            if let Some(obj) = read(&tenant, &object).await?
                && owned_by(&obj, &opts.app)
                && !prune_disabled(&obj)
                && SyncOptions::of(&obj).is_ok_and(|o| o.prune)
            {
                live.push(obj);
            }
        }
    }
    let masker = SecretMasker::random()?.with_fields(opts.masked_fields.clone());
    Ok(diff_sets(pairs.iter().map(|(d, _)| d), &live, &masker)?)
}

/// The object as the API server would store it, and the live object.
async fn dry_run(
    target: &Target,
    obj: &Value,
    app: &str,
    namespace: &str,
    ignore: &IgnoredDifferences,
) -> Result<Pair, ApplyError> {
    let object = ObjectRef::from_object(obj)?;
    let Some(resource) = target.try_resolve(&object).await? else {
        // A kind defined by a CRD not yet applied: the manifest is the best guess.
        let mut manifest = obj.clone();
        set_owner(&mut manifest, app)?;
        return Ok((manifest, None));
    };
    let intent = Intent::new(obj, app, namespace, resource)?;
    let describe = intent.object.to_string();
    let api = target.api(&intent.resource, intent.object.namespace.as_deref());
    let live = match api.get_opt(&intent.object.name).await {
        Ok(live) => live.map(|l| serde_json::to_value(l).expect("objects serialize")),
        Err(e) if is_not_found(&e) => None,
        Err(e) => return Err(api_error(target, &describe, "read", e)),
    };
    let ignored = ignore.paths(&intent.object, &intent.manifest, live.as_ref())?;
    let intent = intent.ignoring(&ignored, live.as_ref());
    if intent.options.write == WriteMode::CreateOnly
        && let Some(live) = live
    {
        // It exists, so a sync leaves it as it is.
        return Ok((live.clone(), Some(live)));
    }
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    params.dry_run = true;
    let result = api
        .patch(
            &intent.object.name,
            &params,
            &Patch::Apply(&intent.manifest),
        )
        .await;
    let desired = match result {
        Ok(done) => serde_json::to_value(done).expect("objects serialize"),
        // The namespace is part of the same set and not created yet.
        Err(e) if is_not_found(&e) && live.is_none() => intent.manifest,
        Err(e) => return Err(api_error(target, &describe, "dry-run apply", e)),
    };
    Ok((desired, live))
}

async fn read(target: &Target, object: &ObjectRef) -> Result<Option<Value>, ApplyError> {
    let Some(resource) = target.try_resolve(object).await? else {
        return Ok(None);
    };
    let api = target.api(&resource, object.namespace.as_deref());
    match api.get_opt(&object.name).await {
        Ok(live) => Ok(live.map(|l| serde_json::to_value(l).expect("objects serialize"))),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(api_error(target, &object.to_string(), "read", e)),
    }
}
