//! Sync hooks: objects that are not applied with the rest of a set but
//! created, run to completion and recorded, in a phase of the sync.
//!
//! An object is a hook when it carries `driftless.dev/hook`, Argo CD's
//! `argocd.argoproj.io/hook` or Helm's `helm.sh/hook`, read in that order:
//! the first present annotation decides (as Argo CD ignores Helm's
//! annotation when its own is present). Helm's install and upgrade hooks map
//! to PreSync and PostSync; its other hooks (`test`, `pre-delete`,
//! `post-delete`, `pre-rollback`, `post-rollback`, ...) have no phase here,
//! so such an object is never applied, which is what Argo CD does with them.
//! Helm's `crd-install` is not a hook: the object is applied as any other.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::object::{ObjectRef, SYNC_WAVE_ANNOTATION, annotation};
use crate::order::sync_wave;

/// The annotation naming an object's hook phases (comma-separated).
pub const HOOK_ANNOTATION: &str = "driftless.dev/hook";
/// The annotation naming when a hook object is deleted (comma-separated).
pub const HOOK_DELETE_POLICY_ANNOTATION: &str = "driftless.dev/hook-delete-policy";
/// Argo CD's hook annotation, read when ours is absent.
pub const ARGO_HOOK_ANNOTATION: &str = "argocd.argoproj.io/hook";
/// Argo CD's delete policy annotation, read when ours is absent.
pub const ARGO_HOOK_DELETE_POLICY_ANNOTATION: &str = "argocd.argoproj.io/hook-delete-policy";
/// Helm's hook annotation, read when neither of the above is present.
pub const HELM_HOOK_ANNOTATION: &str = "helm.sh/hook";
/// Helm's order of hooks inside a phase (an integer, default 0).
pub const HELM_HOOK_WEIGHT_ANNOTATION: &str = "helm.sh/hook-weight";
/// Helm's delete policy annotation (`before-hook-creation`, ...).
pub const HELM_HOOK_DELETE_POLICY_ANNOTATION: &str = "helm.sh/hook-delete-policy";
/// Label on every hook object driftless creates, naming its App. Hooks do
/// not carry the owner label: no watch, inventory or prune ever sees them.
pub const HOOK_OF_LABEL: &str = "app.driftless.dev/hook-of";

pub use driftless_api::history::{HookPhase, HookResult, HookRun};

/// When a hook object is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeletePolicy {
    /// The previous object of the hook is deleted before it is created again
    /// (the default).
    BeforeHookCreation,
    /// Deleted once it succeeded.
    HookSucceeded,
    /// Deleted once it failed.
    HookFailed,
}

/// When the hooks of a set run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HookRuns {
    /// When the sync writes or prunes something (a routine resync that
    /// finds everything as rendered runs none).
    #[default]
    WhenChanged,
    /// On every sync: one a user asked for.
    Always,
    /// Never: the hooks are only left out of the set.
    Never,
}

/// How one hook object runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSpec {
    /// The phases it runs in; empty for a hook this engine never runs
    /// (Helm's test and delete hooks, Argo CD's Skip and delete hooks).
    pub phases: Vec<HookPhase>,
    /// When it is deleted.
    pub delete: Vec<DeletePolicy>,
    /// Order inside a phase: the sync wave, then Helm's hook weight.
    pub order: (i64, i64),
}

impl HookSpec {
    /// Whether `policy` applies to this hook.
    pub fn deletes(&self, policy: DeletePolicy) -> bool {
        self.delete.contains(&policy)
    }
}

/// A hook annotation that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object}: annotation {annotation}: {problem}")]
pub struct HookError {
    /// The object.
    pub object: String,
    /// The annotation read.
    pub annotation: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// The name a hook object is known by: `metadata.name`, or its
/// `generateName` prefix followed by `*` before it is created.
pub fn hook_name(obj: &Value) -> String {
    let meta = |f: &str| {
        obj.pointer(&format!("/metadata/{f}"))
            .and_then(Value::as_str)
    };
    match (meta("name"), meta("generateName")) {
        (Some(name), _) if !name.is_empty() => name.to_owned(),
        (_, Some(prefix)) => format!("{prefix}*"),
        _ => String::new(),
    }
}

/// `kind namespace/name` of a hook object for messages, before or after creation.
pub fn describe(obj: &Value) -> String {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("object");
    let name = hook_name(obj);
    match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// Whether `obj` is a hook (run in phases, or never applied).
pub fn is_hook(obj: &Value) -> bool {
    annotation(obj, HOOK_ANNOTATION).is_some()
        || annotation(obj, ARGO_HOOK_ANNOTATION).is_some()
        || annotation(obj, HELM_HOOK_ANNOTATION).is_some_and(|h| h.trim() != "crd-install")
}

/// The hook spec of `obj`, `None` when it is no hook. An unknown phase or
/// delete policy in driftless's or Argo CD's annotation, or a weight that
/// is not an integer, is an error naming the object and the annotation.
pub fn hook_spec(obj: &Value) -> Result<Option<HookSpec>, HookError> {
    if !is_hook(obj) {
        return Ok(None);
    }
    let fail = |annotation: &'static str, problem: String| HookError {
        object: ObjectRef::from_object(obj).map_or_else(|_| describe(obj), |r| r.to_string()),
        annotation,
        problem,
    };
    let phases = if let Some(text) = annotation(obj, HOOK_ANNOTATION) {
        phases(text, false).map_err(|p| fail(HOOK_ANNOTATION, p))?
    } else if let Some(text) = annotation(obj, ARGO_HOOK_ANNOTATION) {
        phases(text, true).map_err(|p| fail(ARGO_HOOK_ANNOTATION, p))?
    } else {
        helm_phases(annotation(obj, HELM_HOOK_ANNOTATION).unwrap_or_default())
    };
    let delete = delete_policies(obj).map_err(|(a, p)| fail(a, p))?;
    let wave =
        sync_wave(obj).map_err(|_| fail(SYNC_WAVE_ANNOTATION, "not an integer".to_owned()))?;
    let weight = match annotation(obj, HELM_HOOK_WEIGHT_ANNOTATION) {
        None => 0,
        Some(text) => text.trim().parse().map_err(|_| {
            fail(
                HELM_HOOK_WEIGHT_ANNOTATION,
                format!("{text:?} is not an integer"),
            )
        })?,
    };
    Ok(Some(HookSpec {
        phases,
        delete,
        order: (wave, weight),
    }))
}

/// Reads a comma-separated phase list. Argo CD's own phases that have no
/// meaning here (Skip, PreDelete, PostDelete) are accepted and run nothing.
fn phases(text: &str, argo: bool) -> Result<Vec<HookPhase>, String> {
    let mut found = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let phase = match item {
            "PreSync" => HookPhase::PreSync,
            "Sync" => HookPhase::Sync,
            "PostSync" => HookPhase::PostSync,
            "SyncFail" => HookPhase::SyncFail,
            "Skip" | "PreDelete" | "PostDelete" if argo => continue,
            _ => {
                return Err(format!(
                    "unknown hook `{item}` (known: PreSync, Sync, PostSync, SyncFail)"
                ));
            }
        };
        if !found.contains(&phase) {
            found.push(phase);
        }
    }
    Ok(found)
}

/// Helm's install and upgrade hooks as phases; every other Helm hook is
/// ignored, as Argo CD ignores it.
fn helm_phases(text: &str) -> Vec<HookPhase> {
    let mut found = Vec::new();
    for item in text.split(',').map(str::trim) {
        let phase = match item {
            "pre-install" | "pre-upgrade" => HookPhase::PreSync,
            "post-install" | "post-upgrade" => HookPhase::PostSync,
            _ => continue,
        };
        if !found.contains(&phase) {
            found.push(phase);
        }
    }
    found
}

/// The delete policies of `obj`: ours, else Argo CD's, else Helm's;
/// BeforeHookCreation when none is given.
fn delete_policies(obj: &Value) -> Result<Vec<DeletePolicy>, (&'static str, String)> {
    let (name, text, helm) = if let Some(t) = annotation(obj, HOOK_DELETE_POLICY_ANNOTATION) {
        (HOOK_DELETE_POLICY_ANNOTATION, t, false)
    } else if let Some(t) = annotation(obj, ARGO_HOOK_DELETE_POLICY_ANNOTATION) {
        (ARGO_HOOK_DELETE_POLICY_ANNOTATION, t, false)
    } else if let Some(t) = annotation(obj, HELM_HOOK_DELETE_POLICY_ANNOTATION) {
        (HELM_HOOK_DELETE_POLICY_ANNOTATION, t, true)
    } else {
        return Ok(vec![DeletePolicy::BeforeHookCreation]);
    };
    let mut found = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let policy = match (item, helm) {
            ("BeforeHookCreation", false) | ("before-hook-creation", true) => {
                DeletePolicy::BeforeHookCreation
            }
            ("HookSucceeded", false) | ("hook-succeeded", true) => DeletePolicy::HookSucceeded,
            ("HookFailed", false) | ("hook-failed", true) => DeletePolicy::HookFailed,
            _ => {
                let known = if helm {
                    "before-hook-creation, hook-succeeded, hook-failed"
                } else {
                    "BeforeHookCreation, HookSucceeded, HookFailed"
                };
                return Err((name, format!("unknown policy `{item}` (known: {known})")));
            }
        };
        if !found.contains(&policy) {
            found.push(policy);
        }
    }
    if found.is_empty() {
        found.push(DeletePolicy::BeforeHookCreation);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn job(annotations: Value) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": "migrate", "namespace": "n", "annotations": annotations}})
    }

    fn spec(annotations: Value) -> Option<HookSpec> {
        hook_spec(&job(annotations)).expect("readable hook")
    }

    #[test]
    fn objects_without_hook_annotations_and_helm_crd_install_are_not_hooks() {
        assert_eq!(spec(json!({})), None);
        assert_eq!(spec(json!({HELM_HOOK_ANNOTATION: "crd-install"})), None);
    }

    #[test]
    fn driftless_phases_and_policies_are_read_in_a_list() {
        let s = spec(json!({
            HOOK_ANNOTATION: "PreSync, PostSync",
            HOOK_DELETE_POLICY_ANNOTATION: "HookSucceeded,HookFailed",
            "driftless.dev/sync-wave": "-2",
        }))
        .expect("a hook");
        assert_eq!(s.phases, [HookPhase::PreSync, HookPhase::PostSync]);
        assert_eq!(
            s.delete,
            [DeletePolicy::HookSucceeded, DeletePolicy::HookFailed]
        );
        assert_eq!(s.order, (-2, 0));
        let default = spec(json!({HOOK_ANNOTATION: "SyncFail"})).expect("a hook");
        assert_eq!(default.delete, [DeletePolicy::BeforeHookCreation]);
    }

    #[test]
    fn argo_cd_annotations_are_read_and_win_over_helm() {
        let s = spec(json!({
            ARGO_HOOK_ANNOTATION: "Sync",
            ARGO_HOOK_DELETE_POLICY_ANNOTATION: "HookSucceeded",
            HELM_HOOK_ANNOTATION: "post-install",
        }))
        .expect("a hook");
        assert_eq!(s.phases, [HookPhase::Sync]);
        assert_eq!(s.delete, [DeletePolicy::HookSucceeded]);
        let skipped = spec(json!({ARGO_HOOK_ANNOTATION: "Skip"})).expect("a hook");
        assert!(skipped.phases.is_empty());
    }

    #[test]
    fn helm_hooks_map_to_phases_and_unsupported_ones_run_nowhere() {
        let s = spec(json!({
            HELM_HOOK_ANNOTATION: "pre-install,pre-upgrade,post-upgrade",
            HELM_HOOK_WEIGHT_ANNOTATION: "5",
            HELM_HOOK_DELETE_POLICY_ANNOTATION: "before-hook-creation,hook-succeeded",
        }))
        .expect("a hook");
        assert_eq!(s.phases, [HookPhase::PreSync, HookPhase::PostSync]);
        assert_eq!(s.order, (0, 5));
        assert_eq!(
            s.delete,
            [
                DeletePolicy::BeforeHookCreation,
                DeletePolicy::HookSucceeded
            ]
        );
        for kind in [
            "test",
            "test-success",
            "pre-delete",
            "post-delete",
            "pre-rollback",
        ] {
            let s = spec(json!({HELM_HOOK_ANNOTATION: kind})).expect("a hook");
            assert!(s.phases.is_empty(), "{kind}");
        }
    }

    #[test]
    fn bad_annotations_name_the_object_and_annotation() {
        let cases = [
            (
                json!({HOOK_ANNOTATION: "PreApply"}),
                "annotation driftless.dev/hook: unknown hook `PreApply`",
            ),
            (json!({HOOK_ANNOTATION: "Skip"}), "unknown hook `Skip`"),
            (
                json!({HOOK_ANNOTATION: "PreSync", HOOK_DELETE_POLICY_ANNOTATION: "Never"}),
                "annotation driftless.dev/hook-delete-policy: unknown policy `Never`",
            ),
            (
                json!({HELM_HOOK_ANNOTATION: "pre-install", HELM_HOOK_WEIGHT_ANNOTATION: "high"}),
                "annotation helm.sh/hook-weight: \"high\" is not an integer",
            ),
        ];
        for (annotations, problem) in cases {
            let err = hook_spec(&job(annotations))
                .expect_err("refused")
                .to_string();
            assert!(err.starts_with("batch/v1/Job/n/migrate: "), "{err}");
            assert!(err.contains(problem), "{err}");
        }
    }

    #[test]
    fn generate_name_hooks_are_named_by_their_prefix() {
        let obj = json!({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"generateName": "smoke-", "namespace": "n"}});
        assert_eq!(hook_name(&obj), "smoke-*");
        assert_eq!(describe(&obj), "Pod n/smoke-*");
    }
}
