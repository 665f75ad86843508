use super::*;
use serde_json::json;

fn masker() -> SecretMasker {
    SecretMasker::with_key([42; 32])
}

fn deployment(image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "frontend", "namespace": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "app", "image": image}]}}}})
}

fn live_copy(desired: &Value) -> Value {
    let mut live = desired.clone();
    live["metadata"]["uid"] = json!("0b3c");
    live["metadata"]["resourceVersion"] = json!("1234");
    live["metadata"]["generation"] = json!(3);
    live["metadata"]["creationTimestamp"] = json!("2024-01-01T00:00:00Z");
    live["metadata"]["selfLink"] = json!("/apis/apps/v1/namespaces/web/deployments/frontend");
    live["metadata"]["managedFields"] = json!([{"manager": "driftless"}]);
    live["metadata"]["annotations"] = json!({LAST_APPLIED: "{}"});
    live["status"] = json!({"replicas": 2});
    live
}

#[test]
fn normalize_drops_server_fields_only() {
    let desired = deployment("nginx:1");
    assert_eq!(normalize(&live_copy(&desired)), desired);
    let mut annotated = live_copy(&desired);
    annotated["metadata"]["annotations"]["team"] = json!("a");
    let n = normalize(&annotated);
    assert_eq!(n["metadata"]["annotations"], json!({"team": "a"}));
    assert_eq!(normalize(&json!("scalar")), json!("scalar"));
}

#[test]
fn unchanged_object_has_no_diff() {
    let desired = deployment("nginx:1");
    let d = diff_object(Some(&desired), Some(&live_copy(&desired)), &masker()).expect("valid");
    assert_eq!(d.change, ChangeKind::Unchanged);
    assert!(d.diff.is_empty());
}

#[test]
fn update_shows_a_unified_diff_with_object_headers() {
    let desired = deployment("nginx:2");
    let live = live_copy(&deployment("nginx:1"));
    let d = diff_object(Some(&desired), Some(&live), &masker()).expect("valid");
    assert_eq!(d.change, ChangeKind::Update);
    let expected = "\
--- apps/v1 Deployment web/frontend (live)
+++ apps/v1 Deployment web/frontend (desired)
@@ -10,5 +10,5 @@
   template:
     spec:
       containers:
-      - image: nginx:1
+      - image: nginx:2
         name: app
";
    assert_eq!(d.diff, expected);
}

#[test]
fn key_order_differences_are_not_changes_and_not_shown() {
    let desired = deployment("nginx:2");
    let live = json!({"kind": "Deployment", "apiVersion": "apps/v1",
        "spec": {"template": {"spec": {"containers": [{"image": "nginx:1", "name": "app"}]}},
            "replicas": 2},
        "metadata": {"labels": {"app": "web"}, "namespace": "web", "name": "frontend"}});
    let reordered = json!({"kind": "Deployment", "apiVersion": "apps/v1",
        "spec": {"template": {"spec": {"containers": [{"image": "nginx:2", "name": "app"}]}},
            "replicas": 2},
        "metadata": {"labels": {"app": "web"}, "namespace": "web", "name": "frontend"}});
    let same = diff_object(Some(&desired), Some(&reordered), &masker()).expect("valid");
    assert_eq!(same.change, ChangeKind::Unchanged);
    let d = diff_object(Some(&desired), Some(&live), &masker()).expect("valid");
    let changed: Vec<&str> = d
        .diff
        .lines()
        .filter(|l| (l.starts_with('-') || l.starts_with('+')) && !l.starts_with("---"))
        .filter(|l| !l.starts_with("+++"))
        .collect();
    assert_eq!(
        changed,
        ["-      - image: nginx:1", "+      - image: nginx:2"]
    );
}

#[test]
fn diffs_quote_strings_other_readers_would_retype() {
    let cm = |v: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "limits", "namespace": "web"},
            "data": {"max": v, "enabled": "yes", "port": "8080", "note": "two\nlines"}})
    };
    let d = diff_object(Some(&cm(".inf")), Some(&cm("100")), &masker()).expect("valid");
    let expected = "\
--- v1 ConfigMap web/limits (live)
+++ v1 ConfigMap web/limits (desired)
@@ -1,7 +1,7 @@
 apiVersion: v1
 data:
   enabled: \"yes\"
-  max: \"100\"
+  max: \".inf\"
   note: |-
     two
     lines
";
    assert_eq!(d.diff, expected);
}

#[test]
fn create_and_delete_diff_against_nothing() {
    let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}});
    let created = diff_object(Some(&obj), None, &masker()).expect("valid");
    assert_eq!(created.change, ChangeKind::Create);
    assert!(created.diff.contains("+++ v1 Namespace web (desired)"));
    assert!(created.diff.contains("+  name: web"));
    let deleted = diff_object(None, Some(&obj), &masker()).expect("valid");
    assert_eq!(deleted.change, ChangeKind::Delete);
    assert!(deleted.diff.contains("-kind: Namespace"));
    assert!(matches!(
        diff_object(None, None, &masker()),
        Err(DiffError::Empty)
    ));
    let other = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "db"}});
    let err = diff_object(Some(&obj), Some(&other), &masker()).expect_err("different objects");
    assert_eq!(
        err.to_string(),
        "cannot compare v1/Namespace/web with a different live object v1/Namespace/db"
    );
}

#[test]
fn secret_changes_are_visible_but_values_hidden() {
    let live = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "namespace": "web"},
        "data": {"password": "b2xkLXBhc3M=", "user": "YWRtaW4="}});
    let desired = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "namespace": "web"},
        "data": {"password": "bmV3LXBhc3M=", "user": "YWRtaW4="}});
    let d = diff_object(Some(&desired), Some(&live), &masker()).expect("valid");
    assert_eq!(d.change, ChangeKind::Update);
    for value in [
        "b2xkLXBhc3M=",
        "bmV3LXBhc3M=",
        "YWRtaW4=",
        "old-pass",
        "new-pass",
    ] {
        assert!(!d.diff.contains(value), "{value} leaked:\n{}", d.diff);
    }
    let changed: Vec<&str> = d
        .diff
        .lines()
        .filter(|l| l.starts_with("-  ") || l.starts_with("+  "))
        .collect();
    assert_eq!(changed.len(), 2, "{}", d.diff);
    assert!(
        changed
            .iter()
            .all(|l| l.contains("password: ++++++++ (hmac:"))
    );
    assert!(d.diff.contains("   user: ++++++++ (hmac:"));
}

#[test]
fn set_summary_counts_and_orders_entries() {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}});
    let cm = |v: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "web"}, "data": {"k": v}})
    };
    let old = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "old", "namespace": "web"}});
    let hpa_v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "h", "namespace": "web"}, "spec": {"maxReplicas": 3}});
    let hpa_v2 = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "h", "namespace": "web"}, "spec": {"maxReplicas": 3}});
    let desired = [ns.clone(), cm("new"), hpa_v2];
    let live = [old, cm("old"), hpa_v1];
    let summary = diff_sets(&desired, &live, &masker()).expect("valid");
    assert_eq!(
        (
            summary.create,
            summary.update,
            summary.delete,
            summary.unchanged
        ),
        (1, 2, 1, 0)
    );
    let changes: Vec<(String, ChangeKind)> = summary
        .entries
        .iter()
        .map(|e| (e.object.to_string(), e.change))
        .collect();
    assert_eq!(
        changes,
        [
            ("v1/Namespace/web".to_owned(), ChangeKind::Create),
            ("v1/ConfigMap/web/cfg".to_owned(), ChangeKind::Update),
            (
                "autoscaling/v2/HorizontalPodAutoscaler/web/h".to_owned(),
                ChangeKind::Update
            ),
            ("v1/ConfigMap/web/old".to_owned(), ChangeKind::Delete),
        ]
    );
    assert!(summary.has_changes());
    assert_eq!(
        summary.to_string(),
        "1 to create, 2 to update, 1 to delete, 0 unchanged"
    );
    assert!(summary.patch().contains("-  k: old\n+  k: new"));
    let json = serde_json::to_value(&summary).expect("serialisable");
    assert_eq!(json["entries"][0]["change"], "create");

    let same = diff_sets([&ns], [&ns], &masker()).expect("valid");
    assert!(!same.has_changes());
    assert_eq!(same.unchanged, 1);
}

#[test]
fn duplicates_and_invalid_objects_are_errors() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    let err = diff_sets([&cm, &cm], [], &masker()).expect_err("duplicate");
    assert_eq!(
        err.to_string(),
        "v1/ConfigMap/c appears twice in the desired objects"
    );
    let err = diff_sets([], [&cm, &cm], &masker()).expect_err("duplicate");
    assert!(err.to_string().ends_with("live objects"));
    let nameless = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}});
    let err = diff_sets([&nameless], [], &masker()).expect_err("no name");
    assert_eq!(err.to_string(), "v1 ConfigMap: missing field metadata.name");
}
