//! Writing one object other than by server-side apply, as its sync options
//! ask: created once and left alone (`CreateOnly=true`), replaced whole
//! (`Replace=true`), or patched by a three-way merge against the
//! configuration last applied that way (`ServerSideApply=false`, as
//! client-side apply does). Ownership and adoption are checked as for
//! server-side apply.

use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Map, Value};

use crate::FIELD_MANAGER;
use crate::health::assess;
use crate::intent::Intent;
use crate::sync_options::WriteMode;
use crate::target::{Target, typed};

use super::error::{ApplyError, api_error};
use super::options::ApplyOptions;
use super::report::{Action, Written};
use super::write::{ownership, remove};

/// Where client-side apply keeps the configuration it last applied.
pub(crate) const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Writes an object whose sync options choose another mode than
/// server-side apply. `live` was read just before (the mode makes it
/// always read), so `None` means the object is missing.
pub(super) async fn write_with_mode(
    target: &Target,
    intent: &Intent,
    live: Option<&Value>,
    opts: &ApplyOptions,
) -> Result<Written, ApplyError> {
    if let Some(live) = live {
        return write_over(target, intent, live, opts).await;
    }
    if let Some(written) = create(target, intent).await? {
        return Ok(Written {
            action: Action::Created,
            health: assess(&written),
            adopted: None,
        });
    }
    // Created by someone else since it was read: write over that one.
    match read(target, intent).await? {
        Some(live) => write_over(target, intent, &live, opts).await,
        None => Err(ApplyError::Api {
            object: intent.object.to_string(),
            action: "create",
            source: kube::Error::Service(
                "the object was reported to exist and then not found; retried at the next sync"
                    .into(),
            ),
        }),
    }
}

async fn write_over(
    target: &Target,
    intent: &Intent,
    live: &Value,
    opts: &ApplyOptions,
) -> Result<Written, ApplyError> {
    if intent.options.write == WriteMode::CreateOnly {
        // It exists: created once, it is never written again, whoever holds it.
        return Ok(Written::unchanged(live, None));
    }
    let adopted = ownership(intent, live, opts)?;
    if adopted.is_none() && intent.satisfied_by(live) {
        return Ok(Written::unchanged(live, adopted));
    }
    let (action, written) = match update(target, intent, live).await {
        Ok(written) => (Action::Updated, written),
        Err(ApplyError::Immutable { .. }) if opts.force || intent.options.force => {
            remove(target, intent, opts.timeout).await?;
            let written = match create(target, intent).await? {
                Some(written) => written,
                None => return Err(recreated_meanwhile(intent)),
            };
            (Action::Recreated, written)
        }
        Err(e) => return Err(e),
    };
    Ok(Written {
        action,
        health: assess(&written),
        adopted,
    })
}

fn recreated_meanwhile(intent: &Intent) -> ApplyError {
    ApplyError::Api {
        object: intent.object.to_string(),
        action: "create",
        source: kube::Error::Service(
            "another writer created the object again while it was being re-created".into(),
        ),
    }
}

/// Heals a drifted object the way its mode writes it: read, then replace or
/// patch. (Server-side applied objects heal by a forced apply instead;
/// created-only objects never drift.)
pub(crate) async fn heal(target: &Target, intent: &Intent) -> Result<(), ApplyError> {
    match read(target, intent).await? {
        Some(live) => update(target, intent, &live).await.map(drop),
        None => create(target, intent).await.map(drop),
    }
}

/// Replaces or patches an existing object, as the mode says.
async fn update(target: &Target, intent: &Intent, live: &Value) -> Result<Value, ApplyError> {
    let api = target.api(&intent.resource, intent.object.namespace.as_deref());
    let describe = intent.object.to_string();
    let written = match intent.options.write {
        WriteMode::ClientSide => {
            let desired = client_side_manifest(intent);
            let last = crate::object::annotation(live, LAST_APPLIED_ANNOTATION)
                .and_then(|text| serde_json::from_str::<Value>(text).ok());
            let patch = three_way_patch(last.as_ref(), &desired, live);
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PatchParams::default()
            };
            api.patch(&intent.object.name, &params, &Patch::Merge(&patch))
                .await
                .map_err(|e| api_error(target, &describe, "patch", e))?
        }
        _ => {
            let mut manifest = intent.manifest.clone();
            // The replace succeeds only over the version read: a write in
            // between fails it, and the next sync reads again.
            manifest["metadata"]["resourceVersion"] = live
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null);
            let object = dynamic(&manifest, &describe)?;
            api.replace(&intent.object.name, &post_params(), &object)
                .await
                .map_err(|e| api_error(target, &describe, "replace", e))?
        }
    };
    Ok(typed(written, &intent.resource))
}

/// Creates the object; `None` when it exists already.
async fn create(target: &Target, intent: &Intent) -> Result<Option<Value>, ApplyError> {
    let api = target.api(&intent.resource, intent.object.namespace.as_deref());
    let describe = intent.object.to_string();
    let manifest = match intent.options.write {
        WriteMode::ClientSide => client_side_manifest(intent),
        _ => intent.manifest.clone(),
    };
    let object = dynamic(&manifest, &describe)?;
    match api.create(&post_params(), &object).await {
        Ok(created) => Ok(Some(typed(created, &intent.resource))),
        Err(kube::Error::Api(status)) if status.code == 409 && status.reason == "AlreadyExists" => {
            Ok(None)
        }
        Err(e) => Err(api_error(target, &describe, "create", e)),
    }
}

async fn read(target: &Target, intent: &Intent) -> Result<Option<Value>, ApplyError> {
    let api = target.api(&intent.resource, intent.object.namespace.as_deref());
    let found = api
        .get_opt(&intent.object.name)
        .await
        .map_err(|e| api_error(target, &intent.object.to_string(), "read", e))?;
    Ok(found.map(|item| typed(item, &intent.resource)))
}

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    }
}

fn dynamic(manifest: &Value, describe: &str) -> Result<DynamicObject, ApplyError> {
    serde_json::from_value(manifest.clone()).map_err(|e| ApplyError::Api {
        object: describe.to_owned(),
        action: "encode",
        source: kube::Error::SerdeError(e),
    })
}

/// The intent with the configuration it stands for recorded in
/// [`LAST_APPLIED_ANNOTATION`], which the next three-way patch reads.
fn client_side_manifest(intent: &Intent) -> Value {
    let mut manifest = intent.manifest.clone();
    let text = serde_json::to_string(&intent.manifest).expect("JSON values always serialize");
    if let Some(annotations) = manifest
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.insert(LAST_APPLIED_ANNOTATION.to_owned(), Value::String(text));
    }
    manifest
}

/// The JSON merge patch that makes `live` hold `desired`, and removes what
/// `last` (the configuration applied before) set and `desired` no longer
/// does. Fields only `live` has (defaults, other writers' fields) stay.
/// Lists are replaced whole, as a merge patch does.
pub(crate) fn three_way_patch(last: Option<&Value>, desired: &Value, live: &Value) -> Value {
    let mut patch = Map::new();
    let (Some(desired), live) = (desired.as_object(), live.as_object()) else {
        return desired.clone();
    };
    if let Some(last) = last.and_then(Value::as_object) {
        for key in last.keys().filter(|k| !desired.contains_key(*k)) {
            if live.is_none_or(|l| l.contains_key(key)) {
                patch.insert(key.clone(), Value::Null);
            }
        }
    }
    for (key, want) in desired {
        let have = live.and_then(|l| l.get(key));
        if have == Some(want) {
            continue;
        }
        let before = last.and_then(|l| l.get(key));
        match (want, have) {
            (Value::Object(_), Some(have @ Value::Object(_))) => {
                let inner = three_way_patch(before, want, have);
                if inner.as_object().is_some_and(|m| !m.is_empty()) {
                    patch.insert(key.clone(), inner);
                }
            }
            _ => {
                patch.insert(key.clone(), want.clone());
            }
        }
    }
    Value::Object(patch)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_patch_sets_what_changed_and_removes_only_what_was_applied_before() {
        let last = json!({"data": {"a": "1", "gone": "x"}, "metadata": {"labels": {"old": "y"}}});
        let desired = json!({"data": {"a": "2", "b": "3"}, "metadata": {"labels": {}}});
        let live = json!({
            "data": {"a": "1", "gone": "x", "theirs": "z"},
            "metadata": {"labels": {"old": "y", "added-by-hand": "w"}, "uid": "u"}
        });
        let patch = three_way_patch(Some(&last), &desired, &live);
        assert_eq!(
            patch,
            json!({"data": {"a": "2", "b": "3", "gone": null}, "metadata": {"labels": {"old": null}}})
        );
    }

    #[test]
    fn without_a_previous_configuration_nothing_is_removed_and_lists_are_replaced() {
        let desired = json!({"spec": {"ports": [{"port": 80}], "type": "ClusterIP"}});
        let live = json!({"spec": {"ports": [{"port": 80}, {"port": 81}], "type": "ClusterIP", "clusterIP": "10.0.0.1"}});
        let patch = three_way_patch(None, &desired, &live);
        assert_eq!(patch, json!({"spec": {"ports": [{"port": 80}]}}));
    }

    #[test]
    fn an_object_already_as_desired_needs_an_empty_patch() {
        let desired = json!({"data": {"a": "1"}});
        let live = json!({"data": {"a": "1"}, "metadata": {"uid": "u"}});
        assert_eq!(three_way_patch(Some(&desired), &desired, &live), json!({}));
    }
}
