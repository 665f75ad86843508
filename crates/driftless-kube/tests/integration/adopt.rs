//! Adoption of live objects no App owns: reported with their previous field
//! managers, or refused by a manifest annotation or the App.

use driftless_kube::{ApplyError, ApplyEvent, OWNER_LABEL, apply};
use serde_json::{Value, json};

use crate::cluster::{Events, app_in, config_map, get, kubectl, kubectl_stdin, quiet, target};

/// Creates ConfigMap `name` in `ns` as `kubectl create` does (field manager
/// `kubectl-create`), with one key.
fn create_by_hand(ns: &str, name: &str, value: &str) {
    kubectl(&[
        "create",
        "configmap",
        name,
        "-n",
        ns,
        &format!("--from-literal=k={value}"),
    ]);
}

/// Server-side applies ConfigMap `name` in `ns` with field manager `manager`.
fn apply_by_hand(ns: &str, name: &str, manager: &str, value: &str) {
    let manifest = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"{ns}\"}},\"data\":{{\"k\":\"{value}\"}}}}"
    );
    kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager",
            manager,
            "-f",
            "-",
        ],
        Some(&manifest),
    );
}

fn adopted_names(events: &Events) -> Vec<(String, Vec<String>)> {
    let events = events.0.lock().expect("events");
    events
        .iter()
        .filter_map(|e| match e {
            ApplyEvent::Adopted {
                object,
                previous_managers,
            } => Some((object.name.clone(), previous_managers.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn an_object_read_before_the_write_is_adopted_with_its_managers() {
    let (ns, opts) = app_in("adopt-read").await;
    let t = target().await;
    apply_by_hand(ns.name(), "ops", "ops-team", "v");
    let events = Events::default();
    let set = [config_map("ops", json!({"k": "v"}))];
    let report = apply(&t, &set, &opts, &events.sink())
        .await
        .expect("adopting apply");
    assert_eq!(report.adopted.len(), 1, "{report:?}");
    assert_eq!(report.adopted[0].object.name, "ops");
    assert_eq!(report.adopted[0].previous_managers, ["ops-team"]);
    assert_eq!(report.updated.len(), 1, "an adoption is an update");
    assert_eq!(
        adopted_names(&events),
        [("ops".to_owned(), vec!["ops-team".to_owned()])]
    );
    let live = get("configmap", ns.name(), "ops").expect("ops");
    assert_eq!(live["metadata"]["labels"][OWNER_LABEL], "adopt-read");

    let again = apply(&t, &set, &opts, &quiet).await.expect("re-apply");
    assert!(again.adopted.is_empty(), "adopted once only: {again:?}");
}

#[tokio::test]
async fn listed_objects_are_adopted_with_the_managers_a_forced_write_would_hide() {
    let (ns, mut opts) = app_in("adopt-list").await;
    // As the engine applies: fields changed by hand are taken back.
    opts.force_conflicts = true;
    let t = target().await;
    create_by_hand(ns.name(), "same", "v");
    // A forced write would take ops-team's only field and with it every
    // trace of ops-team in managedFields.
    apply_by_hand(ns.name(), "edited", "ops-team", "theirs");
    // More than eight of a kind are listed by owner label: the two
    // unlabelled ones are not read before they are written.
    let mut set: Vec<Value> = (0..8)
        .map(|i| config_map(&format!("new-{i}"), json!({"k": "v"})))
        .collect();
    set.push(config_map("same", json!({"k": "v"})));
    set.push(config_map("edited", json!({"k": "ours"})));
    let report = apply(&t, &set, &opts, &quiet)
        .await
        .expect("adopting apply");
    assert_eq!(report.created.len(), 8, "{report:?}");
    let mut adopted: Vec<(String, Vec<String>)> = report
        .adopted
        .iter()
        .map(|a| (a.object.name.clone(), a.previous_managers.clone()))
        .collect();
    adopted.sort();
    assert_eq!(
        adopted,
        [
            ("edited".to_owned(), vec!["ops-team".to_owned()]),
            ("same".to_owned(), vec!["kubectl-create".to_owned()])
        ]
    );
    let edited = get("configmap", ns.name(), "edited").expect("edited");
    assert_eq!(edited["data"]["k"], "ours");
    assert_eq!(edited["metadata"]["labels"][OWNER_LABEL], "adopt-list");
}

#[tokio::test]
async fn the_adopt_annotation_refuses_and_nothing_is_pruned() {
    let (ns, mut opts) = app_in("adopt-no").await;
    opts.prune = true;
    let t = target().await;
    apply(&t, &[config_map("old", json!({}))], &opts, &quiet)
        .await
        .expect("first apply");
    create_by_hand(ns.name(), "theirs", "v");
    let mut refused = config_map("theirs", json!({"k": "mine"}));
    refused["metadata"]["annotations"] = json!({"driftless.dev/adopt": "false"});
    let err = apply(&t, &[refused], &opts, &quiet)
        .await
        .expect_err("adoption refused");
    match &err {
        ApplyError::AdoptionRefused {
            object, managers, ..
        } => {
            assert!(object.ends_with("/theirs"), "{object}");
            assert_eq!(managers, &["kubectl-create"]);
        }
        other => panic!("expected a refused adoption, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("driftless.dev/adopt") && message.contains("kubectl-create"),
        "{message}"
    );
    let live = get("configmap", ns.name(), "theirs").expect("theirs");
    assert_eq!(live["data"]["k"], "v", "not written");
    assert!(live["metadata"]["labels"].get(OWNER_LABEL).is_none());
    assert!(
        get("configmap", ns.name(), "old").is_some(),
        "nothing pruned"
    );
}

#[tokio::test]
async fn an_app_that_adopts_nothing_refuses_existing_objects_only() {
    let (ns, mut opts) = app_in("adopt-off").await;
    opts.adopt_existing = false;
    opts.force_conflicts = true;
    let t = target().await;
    // Its own objects and missing ones are applied as always.
    apply(&t, &[config_map("own", json!({"k": "1"}))], &opts, &quiet)
        .await
        .expect("create");
    create_by_hand(ns.name(), "theirs", "v");
    // Listed by label (more than eight), yet the unlabelled one is read.
    let mut set: Vec<Value> = (0..8)
        .map(|i| config_map(&format!("new-{i}"), json!({})))
        .collect();
    set.push(config_map("own", json!({"k": "2"})));
    set.push(config_map("theirs", json!({"k": "v"})));
    let err = apply(&t, &set, &opts, &quiet)
        .await
        .expect_err("adoption refused");
    assert!(
        matches!(&err, ApplyError::AdoptionRefused { object, .. } if object.ends_with("/theirs")),
        "{err}"
    );
    assert!(err.to_string().contains("adoptExisting: false"), "{err}");
    let live = get("configmap", ns.name(), "theirs").expect("theirs");
    assert!(live["metadata"]["labels"].get(OWNER_LABEL).is_none());

    set.pop();
    let report = apply(&t, &set, &opts, &quiet)
        .await
        .expect("without the foreign object");
    assert!(report.adopted.is_empty(), "{report:?}");
    assert_eq!(
        get("configmap", ns.name(), "own").expect("own")["data"]["k"],
        "2"
    );
}
