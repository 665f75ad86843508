//! Ordering, CRDs, health waits, immutable fields and impersonation.

use std::time::{Duration, Instant};

use driftless_kube::{Action, ApplyError, ApplyEvent, WaitError, apply};
use serde_json::json;

use crate::cluster::{Events, app_in, config_map, deployment, get, kubectl, quiet, target};

#[tokio::test]
async fn waves_apply_in_order_each_healthy_before_the_next() {
    let (ns, mut opts) = app_in("waves").await;
    let t = target().await;
    let mut late = config_map("after-web", json!({}));
    late["metadata"]["annotations"] = json!({"driftless.dev/sync-wave": "1"});
    let set = vec![late, deployment("web", 1)];
    let events = Events::default();
    opts.wait = true;
    let report = apply(&t, &set, &opts, &events.sink()).await.expect("apply");
    assert_eq!(report.status, Some(driftless_kube::HealthStatus::Healthy));
    let seen: Vec<String> = events
        .0
        .lock()
        .expect("events")
        .iter()
        .map(|e| match e {
            ApplyEvent::Applied { object, .. } => format!("applied {}", object.name),
            ApplyEvent::Waiting { wave, .. } => format!("wait {wave}"),
            ApplyEvent::Adopted { object, .. } => format!("adopted {}", object.name),
            ApplyEvent::Deleted { object } => format!("deleted {}", object.name),
            ApplyEvent::Health { object, health } => format!("{:?} {}", health.status, object.name),
            ApplyEvent::Hook(run) => format!("hook {}", run.object),
        })
        .collect();
    // Health readings come in poll order, so they are checked apart from the sequence.
    let (health, steps): (Vec<&String>, Vec<&String>) = seen
        .iter()
        .partition(|s| !s.starts_with("applied") && !s.starts_with("wait"));
    assert_eq!(
        steps,
        ["applied web", "wait 0", "applied after-web", "wait 1"]
    );
    let position = |s: &str| seen.iter().position(|x| x == s);
    let healthy_web = position("Healthy web").expect("web reported healthy");
    assert!(
        healthy_web < position("applied after-web").expect("second wave"),
        "{seen:?}"
    );
    assert!(
        health.contains(&&"Healthy after-web".to_owned()),
        "{seen:?}"
    );
    // The deployment was available when the next wave started.
    let web = get("deployment", ns.name(), "web").expect("web");
    let cm = get("configmap", ns.name(), "after-web").expect("cm");
    let available = web["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|c| c["type"] == "Available")
        .expect("Available condition")["lastTransitionTime"]
        .as_str()
        .expect("time")
        .to_owned();
    let created = cm["metadata"]["creationTimestamp"].as_str().expect("time");
    assert!(available.as_str() <= created, "{available} <= {created}");
}

#[tokio::test]
async fn crd_and_its_custom_resources_in_one_set() {
    let (ns, opts) = app_in("crd").await;
    let t = target().await;
    let group = format!("{}.example.com", ns.name());
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("gadgets.{group}")},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    });
    let gadget = json!({"apiVersion": format!("{group}/v1"), "kind": "Gadget",
        "metadata": {"name": "g1"}, "spec": {"size": 3}});
    let set = vec![gadget, crd];
    let report = apply(&t, &set, &opts, &quiet)
        .await
        .expect("apply CRD and CR");
    assert_eq!(report.created.len(), 2, "{report:?}");
    assert_eq!(report.created[0].kind, "CustomResourceDefinition");
    let live = get(&format!("gadgets.{group}"), ns.name(), "g1").expect("gadget exists");
    assert_eq!(live["spec"]["size"], 3);
    let again = apply(&t, &set, &opts, &quiet).await.expect("re-apply");
    assert!(!again.changed(), "{again:?}");
    kubectl(&["delete", "crd", &format!("gadgets.{group}"), "--wait=false"]);
}

#[tokio::test]
async fn immutable_field_change_is_named_or_recreated_with_force() {
    let (ns, mut opts) = app_in("immutable").await;
    let t = target().await;
    apply(&t, &[deployment("api", 1)], &opts, &quiet)
        .await
        .expect("apply");
    let mut changed = deployment("api", 1);
    changed["spec"]["selector"]["matchLabels"] = json!({"app": "api", "tier": "back"});
    changed["spec"]["template"]["metadata"]["labels"] = json!({"app": "api", "tier": "back"});
    let err = apply(&t, std::slice::from_ref(&changed), &opts, &quiet)
        .await
        .expect_err("selector is immutable");
    match &err {
        ApplyError::Immutable { object, field, .. } => {
            assert!(object.ends_with("/api"), "{object}");
            assert_eq!(field, "spec.selector");
        }
        other => panic!("expected an immutable-field error, got {other}"),
    }
    let uid = get("deployment", ns.name(), "api").expect("api")["metadata"]["uid"].clone();
    opts.force = true;
    let events = Events::default();
    apply(&t, &[changed], &opts, &events.sink())
        .await
        .expect("recreate");
    assert!(events.0.lock().expect("events").iter().any(|e| matches!(
        e,
        ApplyEvent::Applied {
            action: Action::Recreated,
            ..
        }
    )));
    let live = get("deployment", ns.name(), "api").expect("api");
    assert_ne!(live["metadata"]["uid"], uid, "a new object");
    assert_eq!(live["spec"]["selector"]["matchLabels"]["tier"], "back");
}

#[tokio::test]
async fn unschedulable_deployment_fails_with_its_reason() {
    let (_ns, mut opts) = app_in("unready").await;
    let t = target().await;
    let mut stuck = deployment("stuck", 1);
    stuck["spec"]["progressDeadlineSeconds"] = json!(2);
    stuck["spec"]["template"]["spec"]["nodeSelector"] = json!({"disk": "none-such"});
    opts.wait = true;
    opts.timeout = Duration::from_secs(30);
    let start = Instant::now();
    let err = apply(&t, &[stuck], &opts, &quiet)
        .await
        .expect_err("never ready");
    assert!(start.elapsed() < Duration::from_secs(35));
    match &err {
        ApplyError::Wait(WaitError::Failed { object, reason }) => {
            assert!(object.ends_with("/stuck"), "{object}");
            assert!(reason.contains("timed out progressing"), "{reason}");
        }
        other => panic!("expected a terminal failure, got {other}"),
    }
}

#[tokio::test]
async fn impersonated_service_account_without_rights_is_denied() {
    let (ns, mut opts) = app_in("tenant").await;
    let t = target().await;
    kubectl(&["create", "serviceaccount", "deployer", "-n", ns.name()]);
    opts.impersonate = Some("deployer".into());
    let err = apply(&t, &[config_map("c", json!({}))], &opts, &quiet)
        .await
        .expect_err("no RBAC for the account");
    match &err {
        ApplyError::Forbidden { user, .. } => {
            assert_eq!(
                user,
                &format!("system:serviceaccount:{}:deployer", ns.name())
            );
        }
        other => panic!("expected forbidden, got {other}"),
    }
    assert!(err.to_string().contains("forbidden"), "{err}");
    // Granting edit rights in the namespace lets the same apply through.
    kubectl(&[
        "create",
        "rolebinding",
        "deployer-edit",
        "-n",
        ns.name(),
        "--clusterrole=edit",
        &format!("--serviceaccount={}:deployer", ns.name()),
    ]);
    let report = apply(&t, &[config_map("c", json!({}))], &opts, &quiet)
        .await
        .expect("allowed now");
    assert_eq!(report.created.len(), 1);
}
