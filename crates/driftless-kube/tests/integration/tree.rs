//! The objects a Deployment's controllers create, found beneath it through
//! their owner references, read a page at a time.

use driftless_kube::{ObjectRef, apply, owned_tree, owned_tree_paged};
use serde_json::json;

use crate::cluster::{app_in, quiet, target};

#[tokio::test]
async fn replica_sets_and_pods_are_found_beneath_their_deployment_page_by_page() {
    let (ns, opts) = app_in("tree").await;
    let t = target().await;
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/web:1"}]}}}});
    apply(&t, &[deployment], &opts, &quiet)
        .await
        .expect("apply");
    let root = ObjectRef {
        group: "apps".into(),
        version: "v1".into(),
        kind: "Deployment".into(),
        namespace: Some(ns.name().to_owned()),
        name: "web".into(),
    };
    // The ReplicaSet controller creates the Pods shortly after the apply.
    let started = std::time::Instant::now();
    let whole = loop {
        let tree = owned_tree(&t, &opts, std::slice::from_ref(&root))
            .await
            .expect("owned objects");
        if tree.objects.iter().filter(|o| o.kind == "Pod").count() == 3 {
            break tree;
        }
        assert!(
            started.elapsed().as_secs() < 60,
            "no 3 Pods within 60 s: {tree:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let kinds: Vec<(&str, usize)> = whole
        .objects
        .iter()
        .map(|o| (o.kind.as_str(), o.depth))
        .collect();
    assert_eq!(
        kinds,
        [("ReplicaSet", 1), ("Pod", 2), ("Pod", 2), ("Pod", 2)],
        "{whole:?}"
    );
    assert!(!whole.truncated);

    // One object a request: the continue tokens are followed to the end.
    let paged = owned_tree_paged(&t, &opts, std::slice::from_ref(&root), 1, 100)
        .await
        .expect("owned objects, one a page");
    // Compared by identity: a Pod may change its health between two reads.
    let names = |tree: &driftless_api::inspect::OwnedTree| -> Vec<(String, String, usize)> {
        tree.objects
            .iter()
            .map(|o| (o.name.clone(), o.owner.clone(), o.depth))
            .collect()
    };
    assert_eq!(names(&paged), names(&whole));
    assert!(!paged.truncated);

    // Reading stops at the bound and the answer says it was cut.
    let cut = owned_tree_paged(&t, &opts, std::slice::from_ref(&root), 1, 2)
        .await
        .expect("owned objects, bounded");
    assert!(cut.truncated, "{cut:?}");
    assert!(cut.objects.len() < whole.objects.len(), "{cut:?}");
}
