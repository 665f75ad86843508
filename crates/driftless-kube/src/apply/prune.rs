//! Deleting what an App no longer declares (prune) or everything it owns
//! (delete), never touching objects that are not, or no longer, its own.

use kube::api::{DeleteParams, Preconditions, PropagationPolicy};
use serde_json::{Value, json};

use crate::inventory::{Inventory, InventoryStore};
use crate::object::{ObjectRef, owned_by, prune_disabled};
use crate::order::delete_order;
use crate::target::{Target, is_not_found};

use super::error::{ApplyError, api_error};
use super::options::{ApplyOptions, tenant};
use super::report::{ApplyEvent, ApplyReport, Skipped};

/// Deletes `objects` in delete order, each only when its live labels still
/// name `opts.app` and it is not marked `driftless.dev/prune: disabled`.
/// Returns the objects whose deletion failed, to be kept in the inventory.
pub(crate) async fn delete_objects(
    target: &Target,
    objects: &[ObjectRef],
    opts: &ApplyOptions,
    report: &mut ApplyReport,
    progress: &(dyn Fn(ApplyEvent) + Send + Sync),
) -> Result<Vec<ObjectRef>, ApplyError> {
    let stubs: Vec<Value> = objects.iter().map(stub).collect();
    let mut failed = Vec::new();
    for wave in delete_order(&stubs)? {
        for obj in wave.objects {
            let object = ObjectRef::from_object(obj)?;
            match delete_one(target, &object, &opts.app).await {
                Ok(Outcome::Deleted) => {
                    progress(ApplyEvent::Deleted {
                        object: object.clone(),
                    });
                    report.deleted.push(object);
                }
                Ok(Outcome::Gone) => {}
                Ok(Outcome::Kept(reason)) => report.skipped.push(Skipped { object, reason }),
                Err(e) => {
                    report.delete_failed.push(Skipped {
                        object: object.clone(),
                        reason: e.to_string(),
                    });
                    failed.push(object);
                }
            }
        }
    }
    Ok(failed)
}

enum Outcome {
    Deleted,
    Gone,
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

async fn delete_one(target: &Target, object: &ObjectRef, app: &str) -> Result<Outcome, ApplyError> {
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
    // The uid precondition keeps a same-named object created since the read safe.
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
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
    let failed = delete_objects(&tenant, &objects, opts, &mut report, progress).await?;
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
