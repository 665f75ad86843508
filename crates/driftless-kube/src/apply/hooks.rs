//! Running the hooks of one phase: each hook object is created (its earlier
//! instance deleted first under BeforeHookCreation), waited for until it
//! completes, deleted as its policy says, and reported. A failed hook stops
//! the phase with an error naming it and why it failed.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams, LogParams, PostParams};
use serde_json::Value;

use crate::FIELD_MANAGER;
use crate::health::{HealthStatus, assess, is_terminal_failure};
use crate::hooks::{
    DeletePolicy, HOOK_OF_LABEL, HookPhase, HookResult, HookRun, HookSpec, describe, hook_name,
};
use crate::object::{ObjectError, ObjectRef};
use crate::order::kind_rank;
use crate::target::{Resource, Target, is_not_found, typed};

use super::error::{ApplyError, api_error};
use super::options::ApplyOptions;
use super::report::ApplyEvent;
use super::write::delete_and_wait;

/// How often a running hook is read again.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Log lines of a failed pod quoted in the error.
const LOG_LINES: i64 = 10;
/// How long the API server is given to return a failed pod's log.
const LOG_TIMEOUT: Duration = Duration::from_secs(5);

/// A hook ready to run: its manifest with the namespace filled in and the
/// hook label set, its kind's resource and how it runs.
#[derive(Debug, Clone)]
pub(crate) struct Hook {
    pub manifest: Value,
    pub resource: Resource,
    pub spec: HookSpec,
}

impl Hook {
    /// `manifest` (a hook of `spec`) as App `app` creates it in `namespace`.
    pub(crate) async fn prepare(
        target: &Target,
        mut manifest: Value,
        spec: HookSpec,
        app: &str,
        namespace: &str,
    ) -> Result<Self, ApplyError> {
        let text = |f: &str| manifest.get(f).and_then(Value::as_str).unwrap_or_default();
        let api_version = text("apiVersion").to_owned();
        let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
        let kind = ObjectRef {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: text("kind").to_owned(),
            namespace: None,
            name: hook_name(&manifest),
        };
        let resource = target.resolve(&kind).await?;
        let Some(meta) = manifest["metadata"].as_object_mut() else {
            return Err(ApplyError::Object(ObjectError::NotAMapping {
                field: "metadata",
                context: kind.name,
            }));
        };
        if resource.namespaced && meta.get("namespace").and_then(Value::as_str).is_none() {
            meta.insert("namespace".to_owned(), Value::String(namespace.to_owned()));
        }
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Value::Object(labels) = labels {
            labels.insert(HOOK_OF_LABEL.to_owned(), Value::String(app.to_owned()));
        }
        Ok(Self {
            manifest,
            resource,
            spec,
        })
    }

    fn namespace(&self) -> Option<&str> {
        self.manifest
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }

    fn meta(&self, field: &str) -> Option<&str> {
        self.manifest
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The order inside a phase: wave, weight, kind, then name.
    fn sort_key(&self) -> (i64, i64, u8, String) {
        let kind = self.resource.api.kind.as_str();
        (
            self.spec.order.0,
            self.spec.order.1,
            kind_rank(kind),
            describe(&self.manifest),
        )
    }
}

/// Runs the hooks of `phase` one after the other in their order, reporting
/// each; the first failure ends the phase with its error.
pub(crate) async fn run_phase(
    target: &Target,
    hooks: &[Hook],
    phase: HookPhase,
    opts: &ApplyOptions,
    progress: &(dyn Fn(ApplyEvent) + Send + Sync),
) -> Result<Vec<HookRun>, ApplyError> {
    let mut due: Vec<&Hook> = hooks
        .iter()
        .filter(|h| h.spec.phases.contains(&phase))
        .collect();
    due.sort_by_key(|h| h.sort_key());
    let mut runs = Vec::with_capacity(due.len());
    for hook in due {
        let run = run_one(target, hook, phase, opts, progress).await?;
        if run.result == HookResult::Failed {
            return Err(ApplyError::Hook {
                phase,
                object: run.object,
                reason: run.message,
            });
        }
        runs.push(run);
    }
    Ok(runs)
}

/// Creates one hook, waits until it completes and applies its delete
/// policy. A hook that fails is returned as such (and reported); errors of
/// the API server are errors.
async fn run_one(
    target: &Target,
    hook: &Hook,
    phase: HookPhase,
    opts: &ApplyOptions,
    progress: &(dyn Fn(ApplyEvent) + Send + Sync),
) -> Result<HookRun, ApplyError> {
    let api = target.api(&hook.resource, hook.namespace());
    let what = describe(&hook.manifest);
    if hook.spec.deletes(DeletePolicy::BeforeHookCreation) {
        remove_previous(target, &api, hook, &opts.app, opts.timeout).await?;
    }
    let object: DynamicObject = serde_json::from_value(hook.manifest.clone())
        .map_err(|e| hook_failed(phase, &what, format!("not a valid object: {e}")))?;
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    let created = match api.create(&params, &object).await {
        Ok(created) => typed(created, &hook.resource),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let why = "an object of this name already exists (give the hook the \
                       BeforeHookCreation delete policy or a generateName)";
            return Err(hook_failed(phase, &what, why.to_owned()));
        }
        Err(e) => return Err(api_error(target, &what, "create", e)),
    };
    let object = ObjectRef::from_object(&created)?;
    let mut run = HookRun {
        phase,
        object: object.to_string(),
        result: HookResult::Running,
        message: String::new(),
    };
    progress(ApplyEvent::Hook(run.clone()));
    let (result, message) = wait_done(target, hook, &object, opts.timeout).await?;
    run.result = result;
    run.message = message;
    let policy = match result {
        HookResult::Failed => DeletePolicy::HookFailed,
        _ => DeletePolicy::HookSucceeded,
    };
    if hook.spec.deletes(policy) {
        delete_and_wait(target, &api, &object.name, &run.object, opts.timeout).await?;
    }
    progress(ApplyEvent::Hook(run.clone()));
    Ok(run)
}

fn hook_failed(phase: HookPhase, object: &str, reason: String) -> ApplyError {
    ApplyError::Hook {
        phase,
        object: object.to_owned(),
        reason,
    }
}

/// Deletes the earlier instance of a hook: the object of its name, or for
/// a `generateName` hook every object of the App's hooks with that prefix.
async fn remove_previous(
    target: &Target,
    api: &Api<DynamicObject>,
    hook: &Hook,
    app: &str,
    timeout: Duration,
) -> Result<(), ApplyError> {
    let what = describe(&hook.manifest);
    if let Some(name) = hook.meta("name") {
        return delete_and_wait(target, api, name, &what, timeout).await;
    }
    let Some(prefix) = hook.meta("generateName") else {
        return Ok(());
    };
    let selector = format!("{HOOK_OF_LABEL}={app}");
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| api_error(target, &what, "list", e))?;
    for item in list.items {
        let same = item.metadata.generate_name.as_deref() == Some(prefix);
        if let (true, Some(name)) = (same, item.metadata.name.as_deref()) {
            delete_and_wait(target, api, name, &what, timeout).await?;
        }
    }
    Ok(())
}

/// Polls a created hook until it succeeded or failed: a Job by its
/// conditions, a Pod by its phase, any other kind by its health.
async fn wait_done(
    target: &Target,
    hook: &Hook,
    object: &ObjectRef,
    timeout: Duration,
) -> Result<(HookResult, String), ApplyError> {
    let api = target.api(&hook.resource, object.namespace.as_deref());
    let start = Instant::now();
    let describe = object.to_string();
    loop {
        let live = match api.get_opt(&object.name).await {
            Ok(Some(live)) => typed(live, &hook.resource),
            Ok(None) => return Ok((HookResult::Failed, "deleted before it completed".into())),
            Err(e) if is_not_found(&e) => {
                return Ok((HookResult::Failed, "deleted before it completed".into()));
            }
            Err(e) => return Err(api_error(target, &describe, "read", e)),
        };
        match outcome(&live) {
            Some((HookResult::Failed, reason)) => {
                let pods = failed_pods(target, &live).await;
                let message = if pods.is_empty() {
                    reason
                } else {
                    format!("{reason}; {pods}")
                };
                return Ok((HookResult::Failed, message));
            }
            Some(done) => return Ok(done),
            None if start.elapsed() >= timeout => {
                let health = assess(&live);
                let why = format!("did not complete within {timeout:?} ({health})");
                return Ok((HookResult::Failed, why));
            }
            None => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }
}

/// Whether a live hook object is done, and how.
fn outcome(live: &Value) -> Option<(HookResult, String)> {
    let kind = live.get("kind").and_then(Value::as_str).unwrap_or_default();
    if kind == "Pod" {
        return match live.pointer("/status/phase").and_then(Value::as_str) {
            Some("Succeeded") => Some((HookResult::Succeeded, "pod succeeded".to_owned())),
            Some("Failed") => Some((HookResult::Failed, "pod failed".to_owned())),
            _ => None,
        };
    }
    if kind == "Job" {
        let condition = |t: &str| {
            live.pointer("/status/conditions")
                .and_then(Value::as_array)?
                .iter()
                .find(|c| c["type"] == t && c["status"] == "True")
                .cloned()
        };
        if let Some(c) = condition("Failed").or_else(|| condition("FailureTarget")) {
            let text = |f: &str| {
                c.get(f)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let (reason, message) = (text("reason"), text("message"));
            return Some((
                HookResult::Failed,
                format!("job failed: {reason}: {message}"),
            ));
        }
        return condition("Complete").map(|_| (HookResult::Succeeded, "job completed".to_owned()));
    }
    let health = assess(live);
    if is_terminal_failure(&health) {
        return Some((HookResult::Failed, health.message));
    }
    (health.status == HealthStatus::Healthy).then_some((HookResult::Succeeded, health.message))
}

/// What the failed pods of a failed Job (or the failed Pod itself) say: the
/// state of each container that ended in error, and its last log lines
/// when the API server can give them.
async fn failed_pods(target: &Target, live: &Value) -> String {
    let Some(namespace) = live.pointer("/metadata/namespace").and_then(Value::as_str) else {
        return String::new();
    };
    let pods: Api<Pod> = Api::namespaced(target.client().clone(), namespace);
    let name = live
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let found: Vec<Value> = if live["kind"] == "Pod" {
        vec![live.clone()]
    } else {
        let selector = format!("job-name={name}");
        match pods.list(&ListParams::default().labels(&selector)).await {
            Ok(list) => list
                .items
                .into_iter()
                .filter_map(|p| serde_json::to_value(p).ok())
                .filter(|p| p.pointer("/status/phase").and_then(Value::as_str) == Some("Failed"))
                .collect(),
            Err(_) => Vec::new(),
        }
    };
    let mut parts = Vec::new();
    for pod in found.iter().take(3) {
        parts.push(describe_pod(&pods, pod).await);
    }
    parts.join("; ")
}

/// One failed pod: `pod NAME: container C terminated (Error, exit code 1):
/// MESSAGE`, then its last log lines if any.
async fn describe_pod(pods: &Api<Pod>, pod: &Value) -> String {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut text = format!("pod {name}");
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for status in &statuses {
        let Some(done) = status.pointer("/state/terminated") else {
            continue;
        };
        let container = status["name"].as_str().unwrap_or_default();
        let reason = done["reason"].as_str().unwrap_or("terminated");
        let code = done["exitCode"].as_i64().unwrap_or_default();
        text.push_str(&format!(
            ": container {container} {reason} (exit code {code})"
        ));
        if let Some(message) = done["message"].as_str().filter(|m| !m.is_empty()) {
            text.push_str(&format!(": {message}"));
        }
        let params = LogParams {
            container: Some(container.to_owned()),
            tail_lines: Some(LOG_LINES),
            ..LogParams::default()
        };
        if let Ok(Ok(log)) = tokio::time::timeout(LOG_TIMEOUT, pods.logs(name, &params)).await {
            let log = log.trim();
            if !log.is_empty() {
                text.push_str(&format!("; last log lines:\n{log}"));
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn jobs_pods_and_other_kinds_complete_as_they_should() {
        let job = |conditions: Value| {
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
                   "status": {"conditions": conditions}})
        };
        assert_eq!(outcome(&job(json!([]))), None);
        let done = job(json!([{"type": "Complete", "status": "True"}]));
        assert_eq!(outcome(&done).map(|o| o.0), Some(HookResult::Succeeded));
        let failed = job(json!([{"type": "Failed", "status": "True",
            "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]));
        assert_eq!(
            outcome(&failed),
            Some((
                HookResult::Failed,
                "job failed: BackoffLimitExceeded: Job has reached the specified backoff limit"
                    .to_owned()
            ))
        );
        let pod = |phase: &str| {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                       "status": {"phase": phase}})
        };
        assert_eq!(outcome(&pod("Running")), None);
        assert_eq!(
            outcome(&pod("Succeeded")).map(|o| o.0),
            Some(HookResult::Succeeded)
        );
        assert_eq!(
            outcome(&pod("Failed")).map(|o| o.0),
            Some(HookResult::Failed)
        );
        let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert_eq!(outcome(&config).map(|o| o.0), Some(HookResult::Succeeded));
    }
}
