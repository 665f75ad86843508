//! Per-object sync options (`driftless.dev/sync-options`) against the local
//! control plane: how an object is written, whether it is pruned or kept
//! when its App is deleted, and how its dependents go.

use std::time::Duration;

use driftless_kube::{ApplyError, ApplyEvent, DriftWatch, apply, delete_app, diff};
use serde_json::{Value, json};

use crate::cluster::{Events, app_in, config_map, deployment, get, kubectl, quiet, target};

const OPTIONS: &str = "driftless.dev/sync-options";

fn with_options(mut obj: Value, options: &str) -> Value {
    obj["metadata"]["annotations"] = json!({OPTIONS: options});
    obj
}

fn patch_by_hand(ns: &str, name: &str, patch: &str) {
    kubectl(&[
        "patch",
        "configmap",
        name,
        "-n",
        ns,
        "--field-manager=kubectl-edit",
        "--type=merge",
        "-p",
        patch,
    ]);
}

fn data(ns: &str, name: &str) -> Value {
    get("configmap", ns, name).expect(name)["data"].clone()
}

#[tokio::test]
async fn a_create_only_object_is_created_once_and_never_written_or_healed_again() {
    let (ns, opts) = app_in("opt-create-only").await;
    let t = target().await;
    let seed = |value: &str| {
        with_options(
            config_map("seed", json!({"password": value})),
            "CreateOnly=true",
        )
    };
    let first = apply(&t, &[seed("initial")], &opts, &quiet)
        .await
        .expect("create");
    assert_eq!(first.created.len(), 1, "{first:?}");

    patch_by_hand(ns.name(), "seed", r#"{"data":{"password":"rotated"}}"#);
    let again = apply(&t, &[seed("changed-in-git")], &opts, &quiet)
        .await
        .expect("second sync");
    assert_eq!(again.unchanged.len(), 1, "{again:?}");
    assert_eq!(data(ns.name(), "seed"), json!({"password": "rotated"}));
    let summary = diff(&t, &[seed("changed-in-git")], &opts)
        .await
        .expect("diff");
    assert!(!summary.has_changes(), "{}", summary.patch());

    // Self-heal leaves it alone too.
    let watch = DriftWatch::start(t.clone());
    let mut events = watch.subscribe();
    watch
        .apply(&[seed("changed-in-git")], &opts, true, &quiet)
        .await
        .expect("tracked");
    tokio::time::sleep(Duration::from_millis(500)).await;
    patch_by_hand(
        ns.name(),
        "seed",
        r#"{"data":{"password":"rotated-again"}}"#,
    );
    let event = tokio::time::timeout(Duration::from_secs(2), events.recv()).await;
    assert!(event.is_err(), "no drift event: {event:?}");
    assert_eq!(
        data(ns.name(), "seed"),
        json!({"password": "rotated-again"})
    );

    // Deleted by hand, it is created again at the next sync.
    kubectl(&["delete", "configmap", "seed", "-n", ns.name()]);
    let recreated = apply(&t, &[seed("changed-in-git")], &opts, &quiet)
        .await
        .expect("created again");
    assert_eq!(recreated.created.len(), 1, "{recreated:?}");
    assert_eq!(
        data(ns.name(), "seed"),
        json!({"password": "changed-in-git"})
    );
}

#[tokio::test]
async fn replace_writes_the_whole_object_and_drops_fields_others_added() {
    let (ns, opts) = app_in("opt-replace").await;
    let t = target().await;
    let obj =
        |value: &str| with_options(config_map("whole", json!({"mode": value})), "Replace=true");
    apply(&t, &[obj("a")], &opts, &quiet).await.expect("create");
    patch_by_hand(ns.name(), "whole", r#"{"data":{"theirs":"x"}}"#);
    let report = apply(&t, &[obj("b")], &opts, &quiet)
        .await
        .expect("replace");
    assert_eq!(report.updated.len(), 1, "{report:?}");
    assert_eq!(data(ns.name(), "whole"), json!({"mode": "b"}));
    let again = apply(&t, &[obj("b")], &opts, &quiet).await.expect("no-op");
    assert_eq!(again.unchanged.len(), 1, "nothing written when as intended");
}

#[tokio::test]
async fn client_side_apply_removes_what_it_applied_before_and_keeps_what_others_added() {
    let (ns, opts) = app_in("opt-csa").await;
    let t = target().await;
    let obj = |data: Value| with_options(config_map("merged", data), "ServerSideApply=false");
    apply(&t, &[obj(json!({"a": "1", "b": "2"}))], &opts, &quiet)
        .await
        .expect("create");
    let live = get("configmap", ns.name(), "merged").expect("merged");
    assert!(
        live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string(),
        "{live}"
    );
    patch_by_hand(ns.name(), "merged", r#"{"data":{"c":"theirs"}}"#);
    apply(&t, &[obj(json!({"a": "3"}))], &opts, &quiet)
        .await
        .expect("patch");
    assert_eq!(data(ns.name(), "merged"), json!({"a": "3", "c": "theirs"}));
    let out = kubectl(&[
        "get",
        "configmap",
        "merged",
        "-n",
        ns.name(),
        "-o",
        "json",
        "--show-managed-fields",
    ]);
    let live: Value = serde_json::from_str(&out).expect("json");
    let managers: Vec<(&str, &str)> = live["metadata"]["managedFields"]
        .as_array()
        .expect("managed fields")
        .iter()
        .map(|m| {
            (
                m["manager"].as_str().unwrap_or(""),
                m["operation"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        managers.contains(&("driftless", "Update")) && !managers.contains(&("driftless", "Apply")),
        "written by patches, not server-side apply: {managers:?}"
    );
}

#[tokio::test]
async fn force_on_one_object_takes_over_its_fields_and_recreates_it_on_an_immutable_change() {
    let (ns, opts) = app_in("opt-force").await;
    let t = target().await;
    let frozen = |value: &str, options: &str| {
        let mut obj = config_map("frozen", json!({"k": value}));
        obj["immutable"] = json!(true);
        with_options(obj, options)
    };
    apply(&t, &[frozen("1", "Force=true")], &opts, &quiet)
        .await
        .expect("create");
    let uid = get("configmap", ns.name(), "frozen").expect("frozen")["metadata"]["uid"].clone();

    let err = apply(&t, &[frozen("2", "")], &opts, &quiet)
        .await
        .expect_err("an immutable change without Force fails");
    assert!(matches!(err, ApplyError::Immutable { .. }), "{err}");

    let report = apply(&t, &[frozen("2", "Force=true")], &opts, &quiet)
        .await
        .expect("re-created");
    assert_eq!(report.updated.len(), 1, "{report:?}");
    let live = get("configmap", ns.name(), "frozen").expect("frozen");
    assert_eq!(live["data"]["k"], "2");
    assert_ne!(live["metadata"]["uid"], uid, "a new object");

    // A field another manager holds: refused without Force, taken with it.
    let plain =
        |value: &str, options: &str| with_options(config_map("held", json!({"k": value})), options);
    apply(&t, &[plain("mine", "")], &opts, &quiet)
        .await
        .expect("create held");
    let theirs = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"held","namespace":"{}"}},"data":{{"k":"theirs"}}}}"#,
        ns.name()
    );
    crate::cluster::kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager",
            "ops",
            "-f",
            "-",
        ],
        Some(&theirs),
    );
    let err = apply(&t, &[plain("mine-again", "")], &opts, &quiet)
        .await
        .expect_err("conflict");
    assert!(matches!(err, ApplyError::Conflict { .. }), "{err}");
    apply(&t, &[plain("mine-again", "Force=true")], &opts, &quiet)
        .await
        .expect("taken over");
    assert_eq!(data(ns.name(), "held"), json!({"k": "mine-again"}));
}

#[tokio::test]
async fn prune_keeps_prune_false_and_deletes_prune_last_objects_after_the_others() {
    let (ns, mut opts) = app_in("opt-prune").await;
    let t = target().await;
    let set = vec![
        with_options(config_map("kept", json!({})), "Prune=false"),
        with_options(config_map("last", json!({})), "PruneLast=true"),
        config_map("plain", json!({})),
        config_map("stays", json!({})),
    ];
    apply(&t, &set, &opts, &quiet).await.expect("apply");
    opts.prune = true;
    let events = Events::default();
    let report = apply(&t, &[config_map("stays", json!({}))], &opts, &events.sink())
        .await
        .expect("prune");
    let deleted: Vec<String> = events
        .0
        .lock()
        .expect("events")
        .iter()
        .filter_map(|e| match e {
            ApplyEvent::Deleted { object } => Some(object.name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(deleted, ["plain", "last"], "PruneLast goes last");
    assert_eq!(report.skipped.len(), 1, "{report:?}");
    assert_eq!(report.skipped[0].object.name, "kept");
    assert_eq!(report.skipped[0].reason, "sync option Prune=false");
    assert!(get("configmap", ns.name(), "kept").is_some());
    assert!(get("configmap", ns.name(), "last").is_none());
}

#[tokio::test]
async fn deleting_the_app_keeps_delete_false_objects() {
    let (ns, opts) = app_in("opt-delete").await;
    let t = target().await;
    let set = vec![
        with_options(config_map("volume-like", json!({})), "Delete=false"),
        config_map("goes", json!({})),
    ];
    apply(&t, &set, &opts, &quiet).await.expect("apply");
    let report = delete_app(&t, &opts, &quiet).await.expect("delete app");
    let deleted: Vec<_> = report.deleted.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(deleted, ["goes"]);
    assert_eq!(report.skipped[0].reason, "sync option Delete=false");
    assert!(get("configmap", ns.name(), "volume-like").is_some());
}

#[tokio::test]
async fn prune_propagation_orphan_leaves_the_dependents_in_place() {
    let (ns, mut opts) = app_in("opt-orphan").await;
    let t = target().await;
    let web = with_options(deployment("web", 1), "PrunePropagationPolicy=orphan");
    apply(&t, &[web, config_map("stays", json!({}))], &opts, &quiet)
        .await
        .expect("apply");
    let replica_sets = || {
        let out = kubectl(&[
            "get",
            "replicasets",
            "-n",
            ns.name(),
            "-l",
            "app=web",
            "-o",
            "json",
        ]);
        serde_json::from_str::<Value>(&out).expect("json")["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while replica_sets().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no ReplicaSet made");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    opts.prune = true;
    let report = apply(&t, &[config_map("stays", json!({}))], &opts, &quiet)
        .await
        .expect("prune");
    assert_eq!(report.deleted.len(), 1, "{report:?}");
    // The garbage collector removes owner references of orphans; give it time.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let sets = replica_sets();
        assert_eq!(sets.len(), 1, "the ReplicaSet stays");
        if sets[0]["metadata"]["ownerReferences"]
            .as_array()
            .is_none_or(Vec::is_empty)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still owned: {}",
            sets[0]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(get("deployment", ns.name(), "web").is_none());
}

#[tokio::test]
async fn an_unreadable_option_fails_the_sync_before_any_write() {
    let (ns, opts) = app_in("opt-bad").await;
    let t = target().await;
    let set = vec![
        config_map("fine", json!({})),
        with_options(config_map("bad", json!({})), "Prune=false,Bogus=true"),
    ];
    let err = apply(&t, &set, &opts, &quiet).await.expect_err("refused");
    let message = err.to_string();
    assert!(
        message.contains("ConfigMap/")
            && message.contains("/bad")
            && message.contains("annotation driftless.dev/sync-options")
            && message.contains("unknown option `Bogus`"),
        "{message}"
    );
    assert!(
        get("configmap", ns.name(), "fine").is_none(),
        "nothing written"
    );
}
