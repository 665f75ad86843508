//! Apply, no-op re-apply, prune, ownership and diff against a real API server.

use driftless_kube::inventory::InventoryStore;
use driftless_kube::{ApplyError, OWNER_LABEL, apply, delete_app, diff};
use serde_json::json;

use crate::cluster::{app_in, config_map, get, kubectl, kubectl_stdin, quiet, target};

#[tokio::test]
async fn create_noop_update_and_prune() {
    let (ns, mut opts) = app_in("apply-prune").await;
    let t = target().await;
    let set = vec![
        config_map("a", json!({"k": "1"})),
        config_map("b", json!({"k": "2"})),
    ];
    let first = apply(&t, &set, &opts, &quiet).await.expect("first apply");
    assert_eq!(first.created.len(), 2, "{first:?}");
    let live = get("configmap", ns.name(), "a").expect("a exists");
    assert_eq!(live["metadata"]["labels"][OWNER_LABEL], "apply-prune");
    assert_eq!(live["metadata"]["namespace"], ns.name());
    let version = live["metadata"]["resourceVersion"].clone();

    let again = apply(&t, &set, &opts, &quiet).await.expect("no-op apply");
    assert!(!again.changed(), "{again:?}");
    assert_eq!(again.unchanged.len(), 2);
    let live = get("configmap", ns.name(), "a").expect("a exists");
    assert_eq!(live["metadata"]["resourceVersion"], version, "no write");

    opts.prune = true;
    let next = vec![config_map("a", json!({"k": "changed"}))];
    let report = apply(&t, &next, &opts, &quiet)
        .await
        .expect("update and prune");
    assert_eq!(report.updated.len(), 1);
    assert_eq!(report.deleted.len(), 1);
    assert_eq!(report.deleted[0].name, "b");
    assert!(get("configmap", ns.name(), "b").is_none(), "b pruned");
    assert_eq!(
        get("configmap", ns.name(), "a").expect("a")["data"]["k"],
        "changed"
    );
    let store = InventoryStore::new("apply-prune", ns.name());
    let inventory = store.load(&t).await.expect("inventory");
    let names: Vec<_> = inventory.objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["a"]);

    let gone = delete_app(&t, &opts, &quiet).await.expect("delete app");
    assert_eq!(gone.deleted.len(), 1);
    assert!(get("configmap", ns.name(), "a").is_none());
    assert!(store.load(&t).await.expect("inventory").objects.is_empty());
}

#[tokio::test]
async fn prune_spares_foreign_and_protected_objects_and_empty_sets() {
    let (ns, mut opts) = app_in("prune-guard").await;
    let t = target().await;
    let mut protected = config_map("keep", json!({}));
    protected["metadata"]["annotations"] = json!({"driftless.dev/prune": "disabled"});
    let set = vec![
        config_map("foreign", json!({})),
        protected,
        config_map("other", json!({})),
    ];
    apply(&t, &set, &opts, &quiet).await.expect("apply");
    // Someone replaces "foreign" with an object of their own, same name.
    kubectl(&["delete", "configmap", "foreign", "-n", ns.name()]);
    kubectl(&[
        "create",
        "configmap",
        "foreign",
        "-n",
        ns.name(),
        "--from-literal=x=y",
    ]);

    opts.prune = true;
    let empty = apply(&t, &[], &opts, &quiet).await.expect("empty apply");
    assert!(empty.empty_set_not_pruned);
    assert!(empty.deleted.is_empty());
    assert!(get("configmap", ns.name(), "other").is_some());

    opts.allow_empty_prune = true;
    let report = apply(&t, &[], &opts, &quiet).await.expect("prune all");
    let deleted: Vec<_> = report.deleted.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(deleted, ["other"]);
    let skipped: Vec<_> = report
        .skipped
        .iter()
        .map(|s| s.object.name.as_str())
        .collect();
    assert_eq!(skipped.len(), 2, "{:?}", report.skipped);
    assert!(skipped.contains(&"foreign") && skipped.contains(&"keep"));
    let foreign = get("configmap", ns.name(), "foreign").expect("foreign kept");
    assert_eq!(foreign["data"]["x"], "y");
    assert!(get("configmap", ns.name(), "keep").is_some());
}

#[tokio::test]
async fn objects_of_another_app_are_not_taken_over() {
    let (ns, opts) = app_in("owner-a").await;
    let t = target().await;
    apply(&t, &[config_map("shared", json!({}))], &opts, &quiet)
        .await
        .expect("first owner");
    let mut other = opts.clone();
    other.app = "owner-b".into();
    other.inventory_namespace = ns.name().to_owned();
    let err = apply(
        &t,
        &[config_map("shared", json!({"x": "1"}))],
        &other,
        &quiet,
    )
    .await
    .expect_err("owned by owner-a");
    assert!(matches!(err, ApplyError::OwnedByOtherApp { ref owner, .. } if owner == "owner-a"));
    assert!(err.to_string().contains("belongs to app owner-a"), "{err}");
}

#[tokio::test]
async fn conflicts_name_the_other_manager_and_force_takes_over() {
    let (ns, mut opts) = app_in("conflict").await;
    let t = target().await;
    apply(&t, &[config_map("c", json!({"k": "1"}))], &opts, &quiet)
        .await
        .expect("apply");
    let manifest = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"c\",\"namespace\":\"{}\"}},\"data\":{{\"k\":\"theirs\"}}}}",
        ns.name()
    );
    kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager",
            "ops-team",
            "-f",
            "-",
        ],
        Some(&manifest),
    );
    let set = [config_map("c", json!({"k": "2"}))];
    let err = apply(&t, &set, &opts, &quiet).await.expect_err("conflict");
    match &err {
        ApplyError::Conflict { managers, .. } => assert_eq!(managers, &["ops-team"]),
        other => panic!("expected a conflict, got {other}"),
    }
    assert!(err.to_string().contains(".data.k"), "{err}");
    opts.force = true;
    apply(&t, &set, &opts, &quiet).await.expect("forced apply");
    assert_eq!(
        get("configmap", ns.name(), "c").expect("c")["data"]["k"],
        "2"
    );
}

#[tokio::test]
async fn diff_reports_changes_with_secrets_masked() {
    let (ns, mut opts) = app_in("diff").await;
    let t = target().await;
    let secret = |value: &str| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "stringData": {"password": value}})
    };
    let set = vec![
        config_map("same", json!({"k": "1"})),
        config_map("gone", json!({})),
        secret("hunter2"),
    ];
    let before = diff(&t, &set, &opts).await.expect("diff before apply");
    assert_eq!((before.create, before.update), (3, 0), "{before}");
    apply(&t, &set, &opts, &quiet).await.expect("apply");
    let clean = diff(&t, &set, &opts).await.expect("diff after apply");
    assert!(!clean.has_changes(), "{}", clean.patch());
    assert_eq!(clean.unchanged, 3);

    opts.prune = true;
    let next = vec![config_map("same", json!({"k": "2"})), secret("swordfish")];
    let summary = diff(&t, &next, &opts).await.expect("diff");
    assert_eq!(
        (summary.create, summary.update, summary.delete),
        (0, 2, 1),
        "{summary}"
    );
    let patch = summary.patch();
    assert!(
        patch.contains("-  k: '1'") || patch.contains("-  k: \"1\""),
        "{patch}"
    );
    assert!(
        !patch.contains("hunter2") && !patch.contains("swordfish"),
        "{patch}"
    );
    assert!(
        !patch.contains("aHVudGVyMg"),
        "base64 of the secret leaked: {patch}"
    );
    assert!(
        get("configmap", ns.name(), "gone").is_some(),
        "diff writes nothing"
    );
}

#[tokio::test]
async fn a_namespace_created_for_the_set_and_declared_in_it_is_written_once() {
    let (ns, mut opts) = app_in("ns-declared").await;
    let t = target().await;
    let own = format!("{}-own", ns.name());
    opts.namespace = Some(own.clone());
    opts.create_namespace = true;
    let set = vec![
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": own, "labels": {"team": "payments"}}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "worker"},
               // The API server stores no empty list: absent is no drift.
               "imagePullSecrets": []}),
    ];
    apply(&t, &set, &opts, &quiet).await.expect("first apply");
    let version =
        get("namespace", ns.name(), &own).expect("namespace")["metadata"]["resourceVersion"]
            .clone();
    for _ in 0..2 {
        let again = apply(&t, &set, &opts, &quiet).await.expect("again");
        assert!(!again.changed(), "{again:?}");
    }
    let live = get("namespace", ns.name(), &own).expect("namespace");
    assert_eq!(live["metadata"]["labels"]["team"], "payments");
    assert_eq!(live["metadata"]["resourceVersion"], version, "no write");
    kubectl(&["delete", "namespace", &own, "--wait=false"]);
}
