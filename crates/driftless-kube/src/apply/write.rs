//! Writing one object: the ownership and adoption checks against its live
//! state, the server-side apply, and the delete and re-create of objects
//! whose immutable fields changed (with force).

use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PropagationPolicy};
use serde_json::Value;

use crate::FIELD_MANAGER;
use crate::health::assess;
use crate::intent::Intent;
use crate::object::{OWNER_LABEL, label};
use crate::sync_options::WriteMode;
use crate::target::{Target, is_not_found, typed};
use crate::wait::WaitError;

use super::adopt::{Adoption, other_managers, refusal};
use super::error::{ApplyError, api_error};
use super::modes::write_with_mode;
use super::options::ApplyOptions;
use super::report::{Action, Written};

/// Applies one object unless `live` already is as intended. `live` is the
/// object as read just before; `None` when it was not read (known missing or
/// unlabelled) or not found. Objects whose sync options choose another way
/// of writing are always read first and written that way.
pub(super) async fn apply_one(
    target: &Target,
    intent: &Intent,
    live: Option<&Value>,
    opts: &ApplyOptions,
) -> Result<Written, ApplyError> {
    match (intent.options.write, live) {
        (WriteMode::Apply, Some(live)) => apply_over(target, intent, live, opts).await,
        (WriteMode::Apply, None) => apply_unread(target, intent, opts).await,
        (_, live) => write_with_mode(target, intent, live, opts).await,
    }
}

/// Whether a write over `live` may go ahead: another App's object is
/// refused (unless forced), and so is a refused adoption. Returns the
/// adoption when no App owned the object yet.
pub(super) fn ownership(
    intent: &Intent,
    live: &Value,
    opts: &ApplyOptions,
) -> Result<Option<Adoption>, ApplyError> {
    match label(live, OWNER_LABEL) {
        Some(owner) if owner != opts.app && !opts.force => Err(ApplyError::OwnedByOtherApp {
            object: intent.object.to_string(),
            owner: owner.to_owned(),
        }),
        Some(_) => Ok(None),
        None => match refusal(&intent.manifest, opts) {
            Some(reason) => Err(ApplyError::AdoptionRefused {
                object: intent.object.to_string(),
                managers: other_managers(live),
                reason,
            }),
            None => Ok(Some(Adoption::of(&intent.object, live))),
        },
    }
}

/// Whether fields other managers hold may be taken over for this object.
fn takes_over(intent: &Intent, opts: &ApplyOptions) -> bool {
    opts.force || opts.force_conflicts || intent.options.force
}

/// Whether a change of an immutable field may delete and re-create it.
fn recreates(intent: &Intent, opts: &ApplyOptions) -> bool {
    opts.force || intent.options.force
}

/// Applies over a live object read before: refuses another App's object
/// and refused adoptions, skips the write when nothing would change.
async fn apply_over(
    target: &Target,
    intent: &Intent,
    live: &Value,
    opts: &ApplyOptions,
) -> Result<Written, ApplyError> {
    let adopted = ownership(intent, live, opts)?;
    if adopted.is_none() && intent.satisfied_by(live) {
        return Ok(Written::unchanged(live, adopted));
    }
    let (action, written) = match write(target, intent, takes_over(intent, opts)).await {
        Ok(written) => (Action::Updated, written),
        Err(ApplyError::Immutable { .. }) if recreates(intent, opts) => {
            remove(target, intent, opts.timeout).await?;
            (Action::Recreated, write(target, intent, true).await?)
        }
        Err(e) => return Err(e),
    };
    Ok(Written {
        action,
        health: assess(&written),
        adopted,
    })
}

/// Applies an object not read before. The first write never forces, so no
/// other field manager loses a field before driftless knows the object
/// existed: an existing object then keeps every previous manager in the
/// response, which names them for the adoption record. When forcing is
/// needed (a conflict, or an immutable field with force), the object is read
/// and applied over as any other.
async fn apply_unread(
    target: &Target,
    intent: &Intent,
    opts: &ApplyOptions,
) -> Result<Written, ApplyError> {
    let err = match write(target, intent, false).await {
        Ok(written) => return Ok(created_or_adopted(intent, &written)),
        Err(e) => e,
    };
    let retry = match err {
        ApplyError::Conflict { .. } => takes_over(intent, opts),
        ApplyError::Immutable { .. } => recreates(intent, opts),
        _ => false,
    };
    if !retry {
        return Err(err);
    }
    let api = target.api(&intent.resource, intent.object.namespace.as_deref());
    let live = api
        .get_opt(&intent.object.name)
        .await
        .map_err(|e| api_error(target, &intent.object.to_string(), "read", e))?;
    match live {
        Some(live) => apply_over(target, intent, &typed(live, &intent.resource), opts).await,
        // Deleted since the conflict: nobody else holds a field any more.
        None => {
            let written = write(target, intent, true).await?;
            Ok(created_or_adopted(intent, &written))
        }
    }
}

/// The result of a write to an object not read before: created, or (when
/// the response shows it existed) adopted.
fn created_or_adopted(intent: &Intent, written: &Value) -> Written {
    let adopted = (!is_fresh(written)).then(|| Adoption::of(&intent.object, written));
    Written {
        action: if adopted.is_some() {
            Action::Updated
        } else {
            Action::Created
        },
        health: assess(written),
        adopted,
    }
}

/// Server-side applies the intent; `force` takes over fields other managers
/// hold. Returns the object as written.
async fn write(target: &Target, intent: &Intent, force: bool) -> Result<Value, ApplyError> {
    let api = target.api(&intent.resource, intent.object.namespace.as_deref());
    let mut params = PatchParams::apply(FIELD_MANAGER);
    params.force = force;
    let written = api
        .patch(
            &intent.object.name,
            &params,
            &Patch::Apply(&intent.manifest),
        )
        .await
        .map_err(|e| api_error(target, &intent.object.to_string(), "apply", e))?;
    Ok(typed(written, &intent.resource))
}

/// Whether an object just written was created by that write: its only field
/// manager is driftless, at the creation time. (An unlabelled object that
/// existed before has other managers or an older creation.)
fn is_fresh(obj: &Value) -> bool {
    let created = obj.pointer("/metadata/creationTimestamp");
    let managers = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array);
    managers.is_some_and(|m| {
        m.iter()
            .all(|e| e.get("manager").and_then(Value::as_str) == Some(FIELD_MANAGER))
            && m.iter()
                .any(|e| e.get("time") == created || created.is_none())
    })
}

/// Deletes the object and waits until it is gone, so that it can be
/// created again.
pub(super) async fn remove(
    target: &Target,
    intent: &Intent,
    timeout: Duration,
) -> Result<(), ApplyError> {
    let api = target.api(&intent.resource, intent.object.namespace.as_deref());
    let describe = intent.object.to_string();
    delete_and_wait(target, &api, &intent.object.name, &describe, timeout).await
}

/// Deletes object `name` of `api` (its dependents in the background) and
/// waits until it is gone; `describe` names it in errors.
pub(super) async fn delete_and_wait(
    target: &Target,
    api: &Api<DynamicObject>,
    name: &str,
    describe: &str,
    timeout: Duration,
) -> Result<(), ApplyError> {
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(api_error(target, describe, "delete", e)),
    }
    let start = std::time::Instant::now();
    loop {
        match api.get_opt(name).await {
            Ok(None) => return Ok(()),
            Ok(Some(_)) if start.elapsed() < timeout => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(Some(_)) => {
                return Err(WaitError::Timeout {
                    timeout,
                    pending: vec![(describe.to_owned(), "still being deleted".to_owned())],
                }
                .into());
            }
            Err(e) => return Err(api_error(target, describe, "read", e)),
        }
    }
}
