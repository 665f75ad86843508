//! Deleting what an App no longer declares (prune) or everything it owns
//! (delete), never touching objects that are not, or no longer, its own.

use kube::api::{DeleteParams, Preconditions};
use serde_json::{Value, json};

use crate::inventory::{Inventory, InventoryStore};
use crate::object::{ObjectRef, owned_by, prune_disabled};
use crate::order::delete_order;
use crate::sync_options::{SyncOptions, policy};
use crate::target::{Target, is_not_found};

use super::error::{ApplyError, api_error};
use super::options::{ApplyOptions, tenant};
use super::report::{ApplyEvent, ApplyReport, Skipped};

/// Why objects are being deleted: their sync options may keep them in one
/// case and not the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    /// They left the App's set.
    Prune,
    /// The App is being deleted.
    DeleteApp,
}

/// Deletes `objects` in delete order, each only when its live labels still
/// name `opts.app`, it is not marked `driftless.dev/prune: disabled`, and its
/// sync options do not keep it. Objects marked `PruneLast=true` go after all
/// others. Returns the objects whose deletion failed, to be kept in the
/// inventory.
pub(crate) async fn delete_objects(
    target: &Target,
    objects: &[ObjectRef],
    opts: &ApplyOptions,
    removal: Removal,
    report: &mut ApplyReport,
    progress: &(dyn Fn(ApplyEvent) + Send + Sync),
) -> Result<Vec<ObjectRef>, ApplyError> {
    let stubs: Vec<Value> = objects.iter().map(stub).collect();
    let mut order: Vec<ObjectRef> = Vec::with_capacity(objects.len());
    for wave in delete_order(&stubs)? {
        for obj in wave.objects {
            order.push(ObjectRef::from_object(obj)?);
        }
    }
    let mut failed = Vec::new();
    let mut last = Vec::new();
    for object in order {
        let outcome = delete_one(target, &object, opts, removal, Pass::First).await;
        if let Some(object) = record(object, outcome, report, &mut failed, progress) {
            last.push(object);
        }
    }
    for object in last {
        let outcome = delete_one(target, &object, opts, removal, Pass::Last).await;
        record(object, outcome, report, &mut failed, progress);
    }
    Ok(failed)
}

/// Records what deleting one object did; returns the object when it waits
/// for the last pass.
fn record(
    object: ObjectRef,
    outcome: Result<Outcome, ApplyError>,
    report: &mut ApplyReport,
    failed: &mut Vec<ObjectRef>,
    progress: &(dyn Fn(ApplyEvent) + Send + Sync),
) -> Option<ObjectRef> {
    match outcome {
        Ok(Outcome::Deleted) => {
            progress(ApplyEvent::Deleted {
                object: object.clone(),
            });
            report.deleted.push(object);
        }
        Ok(Outcome::Gone) => {}
        Ok(Outcome::Later) => return Some(object),
        Ok(Outcome::Kept(reason)) => report.skipped.push(Skipped { object, reason }),
        Err(e) => {
            report.delete_failed.push(Skipped {
                object: object.clone(),
                reason: e.to_string(),
            });
            failed.push(object);
        }
    }
    None
}

/// The pass of a prune: `PruneLast=true` objects wait for the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    First,
    Last,
}

enum Outcome {
    Deleted,
    Gone,
    Later,
    Kept(String),
}

/// A minimal manifest carrying only identity, for ordering.
fn stub(object: &ObjectRef) -> Value {
    let mut metadata = json!({"name": object.name});
    if let Some(ns) = &object.namespace {
        metadata["namespace"] = json!(ns);
    }
    json!({"apiVersion": object.api_version(), "kind": object.kind, "metadata": metadata})
}

async fn delete_one(
    target: &Target,
    object: &ObjectRef,
    opts: &ApplyOptions,
    removal: Removal,
    pass: Pass,
) -> Result<Outcome, ApplyError> {
    let app = opts.app.as_str();
    let describe = object.to_string();
    let Some(resource) = target.try_resolve(object).await? else {
        // The kind is gone (its CRD was deleted), and its objects with it.
        return Ok(Outcome::Gone);
    };
    let api = target.api(&resource, object.namespace.as_deref());
    let live = match api.get_opt(&object.name).await {
        Ok(Some(live)) => live,
        Ok(None) => return Ok(Outcome::Gone),
        Err(e) if is_not_found(&e) => return Ok(Outcome::Gone),
        Err(e) => return Err(api_error(target, &describe, "read", e)),
    };
    let uid = live.metadata.uid.clone();
    let live = serde_json::to_value(live).expect("objects serialize");
    if !owned_by(&live, app) {
        return Ok(Outcome::Kept(format!(
            "its labels no longer name app {app}; it is not ours to delete"
        )));
    }
    if prune_disabled(&live) {
        return Ok(Outcome::Kept(
            "annotated driftless.dev/prune: disabled".to_owned(),
        ));
    }
    // The live object's options were applied from Git; an annotation that no
    // longer reads keeps the object rather than guess.
    let options = match SyncOptions::of(&live) {
        Ok(options) => options,
        Err(e) => return Ok(Outcome::Kept(e.problem)),
    };
    match removal {
        Removal::Prune if !options.prune => {
            return Ok(Outcome::Kept("sync option Prune=false".to_owned()));
        }
        Removal::DeleteApp if !options.delete => {
            return Ok(Outcome::Kept("sync option Delete=false".to_owned()));
        }
        Removal::Prune if options.prune_last && pass == Pass::First => return Ok(Outcome::Later),
        _ => {}
    }
    let propagation = options.propagation.unwrap_or(opts.propagation);
    // The uid precondition keeps a same-named object created since the read safe.
    let params = DeleteParams {
        propagation_policy: Some(policy(propagation)),
        preconditions: Some(Preconditions {
            uid,
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&object.name, &params).await {
        Ok(_) => Ok(Outcome::Deleted),
        Err(e) if is_not_found(&e) => Ok(Outcome::Gone),
        Err(e) => Err(api_error(target, &describe, "delete", e)),
    }
}

/// Deletes everything the inventory of `opts.app` lists and the App still
/// owns; the inventory is removed when nothing failed, else it keeps the
/// objects whose deletion failed.
pub async fn delete_app(
    target: &Target,
    opts: &ApplyOptions,
    progress: &(dyn Fn(ApplyEvent) + Send + Sync),
) -> Result<ApplyReport, ApplyError> {
    let tenant = tenant(target, opts)?;
    let store = InventoryStore::new(&opts.app, &opts.inventory_namespace);
    let inventory = store.load(target).await?;
    let mut report = ApplyReport {
        app: opts.app.clone(),
        ..ApplyReport::default()
    };
    let objects: Vec<ObjectRef> = inventory.objects.iter().cloned().collect();
    let failed = delete_objects(
        &tenant,
        &objects,
        opts,
        Removal::DeleteApp,
        &mut report,
        progress,
    )
    .await?;
    if failed.is_empty() {
        store.remove(target).await?;
    } else {
        let next = Inventory {
            objects: failed.into_iter().collect(),
        };
        store.save(target, &next).await?;
    }
    Ok(report)
}
