//! Sync hooks against the local control plane with real Jobs: the
//! controller-manager runs them and the simulated kubelet ends their pods
//! (in failure for pods labelled `testenv.driftless.dev/exit: fail`).

use driftless_kube::hooks::HookResult;
use driftless_kube::hooks::{HOOK_ANNOTATION, HOOK_DELETE_POLICY_ANNOTATION, HookPhase, HookRuns};
use driftless_kube::inventory::InventoryStore;
use driftless_kube::{ApplyError, ApplyEvent, OWNER_LABEL, apply, diff};
use serde_json::{Value, json};

use crate::cluster::{Events, app_in, config_map, deployment, get, kubectl, quiet, target};

/// A Job hook of `phase` whose pod succeeds, or fails when `fail`.
fn job(name: &str, phase: &str, fail: bool) -> Value {
    let exit = if fail { "fail" } else { "succeed" };
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "annotations": {HOOK_ANNOTATION: phase}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"testenv.driftless.dev/exit": exit}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox:1.36"}]
                }
            }
        }
    })
}

fn with_policy(mut obj: Value, policy: &str) -> Value {
    obj["metadata"]["annotations"][HOOK_DELETE_POLICY_ANNOTATION] = json!(policy);
    obj
}

fn uid(ns: &str, kind: &str, name: &str) -> Option<String> {
    get(kind, ns, name).map(|o| o["metadata"]["uid"].as_str().expect("uid").to_owned())
}

/// Index of the first event `pick` selects.
fn position(events: &[ApplyEvent], pick: impl Fn(&ApplyEvent) -> bool) -> usize {
    events
        .iter()
        .position(pick)
        .unwrap_or_else(|| panic!("no such event in {events:#?}"))
}

fn hook_ended(e: &ApplyEvent, phase: HookPhase, name: &str, result: HookResult) -> bool {
    matches!(e, ApplyEvent::Hook(run) if run.phase == phase && run.result == result
        && run.object.ends_with(&format!("/{name}")))
}

fn applied(e: &ApplyEvent, name: &str) -> bool {
    matches!(e, ApplyEvent::Applied { object, .. } if object.name == name)
}

#[tokio::test]
async fn a_pre_sync_job_completes_before_the_deployment_is_written_and_post_sync_after_healthy() {
    let (ns, opts) = app_in("hook-order").await;
    let t = target().await;
    let set = [
        deployment("web", 1),
        job("migrate", "PreSync", false),
        job("smoke", "PostSync", false),
    ];
    let events = Events::default();
    let report = apply(&t, &set, &opts, &events.sink()).await.expect("sync");
    let events = events.0.lock().expect("events").clone();
    let migrated = position(&events, |e| {
        hook_ended(e, HookPhase::PreSync, "migrate", HookResult::Succeeded)
    });
    let written = position(&events, |e| applied(e, "web"));
    assert!(migrated < written, "{events:#?}");
    let healthy = position(&events, |e| {
        matches!(e, ApplyEvent::Health { object, health } if object.name == "web"
            && health.status == driftless_kube::HealthStatus::Healthy)
    });
    let smoke = position(
        &events,
        |e| matches!(e, ApplyEvent::Hook(run) if run.object.ends_with("/smoke")),
    );
    assert!(healthy < smoke, "{events:#?}");
    let runs: Vec<_> = report
        .hooks
        .iter()
        .map(|r| (r.phase, r.object.clone(), r.result))
        .collect();
    let job_ref = |name: &str| format!("batch/v1/Job/{}/{name}", ns.name());
    assert_eq!(
        runs,
        [
            (
                HookPhase::PreSync,
                job_ref("migrate"),
                HookResult::Succeeded
            ),
            (HookPhase::PostSync, job_ref("smoke"), HookResult::Succeeded),
        ]
    );
    // Hooks are not App objects: no owner label, not in the inventory, not in a diff.
    let live = get("job", ns.name(), "migrate").expect("kept under BeforeHookCreation");
    assert!(
        live["metadata"]["labels"].get(OWNER_LABEL).is_none(),
        "{live}"
    );
    let inventory = InventoryStore::new(&opts.app, &opts.inventory_namespace)
        .load(&t)
        .await
        .expect("inventory");
    let names: Vec<_> = inventory.objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["web"]);
    let summary = diff(&t, &set, &opts).await.expect("diff");
    assert!(!summary.has_changes(), "{}", summary.patch());
}

#[tokio::test]
async fn a_failing_pre_sync_job_stops_the_sync_names_its_reason_and_runs_sync_fail() {
    let (ns, opts) = app_in("hook-fail").await;
    let t = target().await;
    let set = [
        config_map("settings", json!({"a": "1"})),
        job("migrate", "PreSync", true),
        job("cleanup", "SyncFail", false),
        job("never", "PostSync", false),
    ];
    let events = Events::default();
    let err = apply(&t, &set, &opts, &events.sink())
        .await
        .expect_err("the migration fails");
    let message = err.to_string();
    assert!(
        matches!(
            &err,
            ApplyError::Hook {
                phase: HookPhase::PreSync,
                ..
            }
        ),
        "{message}"
    );
    assert!(
        message.starts_with(&format!(
            "PreSync hook batch/v1/Job/{}/migrate failed: job failed: BackoffLimitExceeded",
            ns.name()
        )),
        "{message}"
    );
    assert!(
        message.contains("container main Error (exit code 1)"),
        "{message}"
    );
    assert!(
        get("configmap", ns.name(), "settings").is_none(),
        "nothing applied"
    );
    assert!(get("job", ns.name(), "never").is_none(), "no PostSync");
    let cleanup = get("job", ns.name(), "cleanup").expect("SyncFail hook ran");
    assert_eq!(cleanup["status"]["succeeded"], 1, "{cleanup}");
    let events = events.0.lock().expect("events").clone();
    position(&events, |e| {
        hook_ended(e, HookPhase::SyncFail, "cleanup", HookResult::Succeeded)
    });
    position(&events, |e| {
        hook_ended(e, HookPhase::PreSync, "migrate", HookResult::Failed)
    });
}

#[tokio::test]
async fn a_failing_pod_hook_fails_the_sync_with_its_container_state() {
    let (ns, opts) = app_in("hook-pod").await;
    let t = target().await;
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "check", "annotations": {HOOK_ANNOTATION: "Sync"},
                     "labels": {"testenv.driftless.dev/exit": "fail"}},
        "spec": {"restartPolicy": "Never",
                 "containers": [{"name": "probe", "image": "busybox:1.36"}]}
    });
    let err = apply(
        &t,
        &[config_map("c", json!({"a": "1"})), pod],
        &opts,
        &quiet,
    )
    .await
    .expect_err("the pod fails");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("Sync hook v1/Pod/{}/check failed: pod failed; pod check: container probe Error (exit code 1)", ns.name())),
        "{message}"
    );
}

#[tokio::test]
async fn delete_policies_remove_hooks_as_they_say() {
    let (ns, mut opts) = app_in("hook-policy").await;
    let t = target().await;
    let base = config_map("c", json!({"a": "1"}));
    let succeeded = with_policy(job("gone-on-success", "PreSync", false), "HookSucceeded");
    let kept = job("kept", "PreSync", false);
    apply(
        &t,
        &[base.clone(), succeeded.clone(), kept.clone()],
        &opts,
        &quiet,
    )
    .await
    .expect("sync");
    assert!(get("job", ns.name(), "gone-on-success").is_none());
    let first = uid(ns.name(), "job", "kept").expect("kept");

    // BeforeHookCreation (the default): the next run replaces the object.
    opts.hooks = HookRuns::Always;
    apply(&t, &[base.clone(), kept.clone()], &opts, &quiet)
        .await
        .expect("sync again");
    let second = uid(ns.name(), "job", "kept").expect("kept");
    assert_ne!(first, second, "created anew");

    let failed = with_policy(job("gone-on-failure", "PostSync", true), "HookFailed");
    apply(&t, &[base.clone(), failed], &opts, &quiet)
        .await
        .expect_err("the hook fails");
    assert!(get("job", ns.name(), "gone-on-failure").is_none());

    // Without BeforeHookCreation an existing object of the name is an error.
    let once = with_policy(job("kept", "PreSync", false), "HookFailed");
    let err = apply(&t, &[base, once], &opts, &quiet)
        .await
        .expect_err("the name is taken");
    assert!(err.to_string().contains("already exists"), "{err}");
}

#[tokio::test]
async fn generate_name_hooks_get_a_new_name_each_run_and_replace_the_last() {
    let (ns, mut opts) = app_in("hook-generate").await;
    let t = target().await;
    let mut hook = job("unused", "Sync", false);
    hook["metadata"] = json!({"generateName": "seed-", "annotations": {HOOK_ANNOTATION: "Sync"}});
    opts.hooks = HookRuns::Always;
    let set = [config_map("c", json!({"a": "1"})), hook];
    let first = apply(&t, &set, &opts, &quiet).await.expect("sync");
    let second = apply(&t, &set, &opts, &quiet).await.expect("sync again");
    let name =
        |r: &driftless_kube::ApplyReport| r.hooks[0].object.rsplit('/').next().map(str::to_owned);
    let (a, b) = (name(&first).expect("a run"), name(&second).expect("a run"));
    assert!(
        a.starts_with("seed-") && b.starts_with("seed-") && a != b,
        "{a} {b}"
    );
    let listed = kubectl(&[
        "get",
        "jobs",
        "-n",
        ns.name(),
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    assert_eq!(listed.split_whitespace().collect::<Vec<_>>(), [b.as_str()]);
}

#[tokio::test]
async fn hooks_run_only_when_the_sync_writes_and_are_never_pruned() {
    let (ns, mut opts) = app_in("hook-noop").await;
    opts.prune = true;
    let t = target().await;
    let set = |value: &str| {
        [
            config_map("c", json!({"a": value})),
            job("migrate", "PreSync", false),
        ]
    };
    let first = apply(&t, &set("1"), &opts, &quiet).await.expect("sync");
    assert_eq!(first.hooks.len(), 1);
    let ran = uid(ns.name(), "job", "migrate").expect("ran");

    // A resync that finds everything as rendered runs no hook.
    let resync = apply(&t, &set("1"), &opts, &quiet).await.expect("resync");
    assert!(resync.hooks.is_empty() && !resync.changed(), "{resync:?}");
    assert_eq!(uid(ns.name(), "job", "migrate"), Some(ran.clone()));

    // A change of the set runs it again.
    let changed = apply(&t, &set("2"), &opts, &quiet).await.expect("change");
    assert_eq!(changed.hooks.len(), 1);
    let again = uid(ns.name(), "job", "migrate").expect("ran again");
    assert_ne!(ran, again);

    // The hook left the set: prune leaves its object alone.
    let pruned = apply(&t, &[config_map("c", json!({"a": "2"}))], &opts, &quiet)
        .await
        .expect("sync without the hook");
    assert!(pruned.deleted.is_empty(), "{pruned:?}");
    assert_eq!(uid(ns.name(), "job", "migrate"), Some(again));
}
