//! The inventory records what an apply may create before its first write, so
//! an apply that fails or is stopped part way loses track of nothing: the
//! next successful apply prunes what Git no longer has.

use std::sync::atomic::{AtomicUsize, Ordering};

use driftless_kube::inventory::InventoryStore;
use driftless_kube::{ApplyEvent, Target, apply};
use serde_json::{Value, json};

use crate::cluster::{app_in, config_map, get, kubectl, owned_names, quiet, target};

/// The object names the stored inventory of `app` lists.
async fn recorded(t: &Target, app: &str, ns: &str) -> Vec<String> {
    let inventory = InventoryStore::new(app, ns)
        .load(t)
        .await
        .expect("inventory");
    inventory.objects.iter().map(|o| o.name.clone()).collect()
}

fn numbered(count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| config_map(&format!("cm-{i}"), json!({"i": i.to_string()})))
        .collect()
}

#[tokio::test]
async fn objects_created_before_a_rejected_one_are_recorded_and_pruned_later() {
    let (ns, mut opts) = app_in("inv-partial").await;
    opts.prune = true;
    let t = target().await;
    let mut set = numbered(9);
    // The API server rejects a data key with a space. In a later wave, it
    // fails the apply after the nine are written.
    let mut bad = config_map("bad", json!({"not a key": "x"}));
    bad["metadata"]["annotations"] = json!({"driftless.dev/sync-wave": "1"});
    set.push(bad);
    let err = apply(&t, &set, &opts, &quiet)
        .await
        .expect_err("the API server rejects bad");
    assert!(err.to_string().contains("/bad"), "{err}");
    let created = owned_names("configmaps", ns.name(), "inv-partial");
    assert_eq!(created.len(), 9, "{created:?}");
    let listed = recorded(&t, "inv-partial", ns.name()).await;
    for name in &created {
        assert!(listed.contains(name), "{name} is not in {listed:?}");
    }

    // The next commit drops all ten.
    let next = vec![config_map("kept", json!({}))];
    let report = apply(&t, &next, &opts, &quiet).await.expect("next commit");
    assert_eq!(report.deleted.len(), 9, "{report:?}");
    assert_eq!(
        owned_names("configmaps", ns.name(), "inv-partial"),
        ["kept"]
    );
    assert_eq!(recorded(&t, "inv-partial", ns.name()).await, ["kept"]);
}

#[tokio::test]
async fn objects_created_before_the_apply_is_stopped_are_recorded_and_pruned_later() {
    let (ns, mut opts) = app_in("inv-stopped").await;
    opts.prune = true;
    let t = target().await;
    let set = numbered(60);
    let written = AtomicUsize::new(0);
    let stop = tokio::sync::Notify::new();
    let progress = |e: ApplyEvent| {
        if matches!(e, ApplyEvent::Applied { .. }) && written.fetch_add(1, Ordering::SeqCst) == 2 {
            stop.notify_one();
        }
    };
    // Dropping the apply future is what a killed process does to it: no
    // code after the current write runs.
    tokio::select! {
        biased;
        () = stop.notified() => {}
        r = apply(&t, &set, &opts, &progress) => panic!("the apply ran to its end: {r:?}"),
    }
    // Writes in flight when it stopped may still land.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let created = owned_names("configmaps", ns.name(), "inv-stopped");
    assert!(
        (3..60).contains(&created.len()),
        "stopped mid-create: {created:?}"
    );
    let listed = recorded(&t, "inv-stopped", ns.name()).await;
    for name in &created {
        assert!(listed.contains(name), "{name} is not in {listed:?}");
    }

    let report = apply(&t, &[config_map("kept", json!({}))], &opts, &quiet)
        .await
        .expect("next commit");
    assert_eq!(report.deleted.len(), created.len(), "{report:?}");
    assert_eq!(
        owned_names("configmaps", ns.name(), "inv-stopped"),
        ["kept"]
    );
    assert!(get("configmap", ns.name(), "cm-0").is_none());
}

#[tokio::test]
async fn a_failed_or_empty_apply_prunes_nothing() {
    let (ns, mut opts) = app_in("inv-guard").await;
    opts.prune = true;
    let t = target().await;
    apply(&t, &numbered(2), &opts, &quiet)
        .await
        .expect("first apply");
    let mut bad = config_map("bad", json!({"not a key": "x"}));
    bad["metadata"]["annotations"] = json!({"driftless.dev/sync-wave": "1"});
    let failing = vec![config_map("other", json!({})), bad];
    apply(&t, &failing, &opts, &quiet)
        .await
        .expect_err("bad is rejected");
    let empty = apply(&t, &[], &opts, &quiet).await.expect("empty set");
    assert!(empty.empty_set_not_pruned && empty.deleted.is_empty());
    assert_eq!(
        owned_names("configmaps", ns.name(), "inv-guard"),
        ["cm-0", "cm-1", "other"]
    );
}

#[tokio::test]
async fn an_inventory_saved_into_a_missing_namespace_creates_it_first() {
    let (ns, mut opts) = app_in("inv-ns").await;
    // A namespace nobody created; the inventory's first save creates it.
    let inventories = format!("{}-inv", ns.name());
    opts.inventory_namespace = inventories.clone();
    let t = target().await;
    let set = numbered(2);
    let applied = apply(&t, &set, &opts, &quiet).await;
    let listed = InventoryStore::new("inv-ns", &inventories).load(&t).await;
    let _ = kubectl(&["delete", "namespace", &inventories, "--wait=false"]);
    applied.expect("the apply creates the inventory's namespace");
    let mut listed: Vec<String> = listed
        .expect("inventory")
        .objects
        .iter()
        .map(|o| o.name.clone())
        .collect();
    listed.sort();
    assert_eq!(listed, ["cm-0", "cm-1"]);
}
