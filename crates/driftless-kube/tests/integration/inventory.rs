//! The inventory records what an apply may create before its first write, so
//! an apply that fails or is stopped part way loses track of nothing: the
//! next successful apply prunes what Git no longer has.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

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

/// A target keeping inventories in memory, as `serve` and the controller do.
async fn cached(relist: Duration) -> Target {
    target().await.with_inventory_cache(relist)
}

#[tokio::test]
async fn a_cached_inventory_never_overwrites_what_another_process_recorded() {
    let (ns, mut opts) = app_in("inv-cached").await;
    opts.prune = true;
    let t = cached(Duration::from_secs(300)).await;
    let other = target().await;
    apply(&t, &[config_map("a", json!({}))], &opts, &quiet)
        .await
        .expect("first apply");
    // Another process syncs the same App and records b.
    let with_b = [config_map("a", json!({})), config_map("b", json!({}))];
    apply(&other, &with_b, &opts, &quiet)
        .await
        .expect("the other process");
    // The cache still holds the inventory without b: its write is refused,
    // the inventory read again and the write made again, so b is known and
    // pruned as the set no longer has it.
    let with_c = [config_map("a", json!({})), config_map("c", json!({}))];
    let report = apply(&t, &with_c, &opts, &quiet)
        .await
        .expect("apply after the other process");
    let deleted: Vec<&str> = report.deleted.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(deleted, ["b"], "{report:?}");
    assert_eq!(
        owned_names("configmaps", ns.name(), "inv-cached"),
        ["a", "c"]
    );
    assert_eq!(recorded(&other, "inv-cached", ns.name()).await, ["a", "c"]);
}

#[tokio::test]
async fn a_cache_listing_again_finds_an_inventory_deleted_by_hand_and_records_the_set() {
    let (ns, opts) = app_in("inv-relist").await;
    // Listed again at every read.
    let t = cached(Duration::ZERO).await;
    let set = [config_map("a", json!({}))];
    apply(&t, &set, &opts, &quiet).await.expect("first apply");
    kubectl(&[
        "delete",
        "configmap",
        "-n",
        ns.name(),
        "inventory.inv-relist",
    ]);
    apply(&t, &set, &opts, &quiet).await.expect("second apply");
    let fresh = target().await;
    assert_eq!(recorded(&fresh, "inv-relist", ns.name()).await, ["a"]);
}

#[tokio::test]
async fn a_cached_target_names_a_config_map_in_the_way_of_an_inventory() {
    let (ns, opts) = app_in("inv-taken").await;
    // Not an inventory (no label): not listed, so first taken for absent.
    kubectl(&[
        "create",
        "configmap",
        "inventory.inv-taken",
        "-n",
        ns.name(),
        "--from-literal=objects=[]",
    ]);
    let t = cached(Duration::from_secs(300)).await;
    let err = apply(&t, &[config_map("a", json!({}))], &opts, &quiet)
        .await
        .expect_err("the ConfigMap is not this App's inventory");
    let text = err.to_string();
    assert!(
        text.contains("is not the inventory of app inv-taken"),
        "{text}"
    );
    assert!(
        get("configmap", ns.name(), "a").is_none(),
        "nothing applied"
    );
}
