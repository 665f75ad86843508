//! Ignored differences against the local control plane: a field another
//! writer owns (an autoscaler's replicas) stays theirs through applies,
//! diffs and self-heal, while the rest of the object is still Git's.

use std::time::Duration;

use driftless_kube::ignore::{IgnoreRule, IgnoredDifferences};
use driftless_kube::{DriftWatch, apply, diff};
use serde_json::json;

use crate::cluster::{app_in, deployment, get, kubectl, quiet, target};

fn replicas(ns: &str) -> i64 {
    get("deployment", ns, "web").expect("web")["spec"]["replicas"]
        .as_i64()
        .expect("replicas")
}

/// Patches `web` as field manager `manager` with a patch of `kind`.
fn patch_web(ns: &str, manager: &str, kind: &str, patch: &str) {
    kubectl(&[
        "patch",
        "deployment",
        "web",
        "-n",
        ns,
        &format!("--field-manager={manager}"),
        &format!("--type={kind}"),
        "-p",
        patch,
    ]);
}

/// Scales `web` as an autoscaler would, under its own field manager.
fn autoscale(ns: &str, count: u32) {
    patch_web(
        ns,
        "hpa-controller",
        "merge",
        &format!(r#"{{"spec":{{"replicas":{count}}}}}"#),
    );
}

fn rule(pointers: &[&str], managers: &[&str]) -> IgnoredDifferences {
    IgnoredDifferences::new(vec![IgnoreRule {
        group: "apps".into(),
        kind: "Deployment".into(),
        json_pointers: pointers.iter().map(|p| (*p).to_owned()).collect(),
        managed_fields_managers: managers.iter().map(|m| (*m).to_owned()).collect(),
        ..IgnoreRule::default()
    }])
    .expect("valid rule")
}

#[tokio::test]
async fn an_ignored_pointer_keeps_the_other_writers_value_through_apply_diff_and_heal() {
    let (ns, mut opts) = app_in("ignore-pointer").await;
    opts.ignore = rule(&["/spec/replicas"], &[]);
    let t = target().await;
    let first = apply(&t, &[deployment("web", 2)], &opts, &quiet)
        .await
        .expect("create");
    assert_eq!(first.created.len(), 1);
    assert_eq!(replicas(ns.name()), 2, "created with Git's value");

    autoscale(ns.name(), 5);
    let again = apply(&t, &[deployment("web", 2)], &opts, &quiet)
        .await
        .expect("re-apply");
    assert_eq!(again.unchanged.len(), 1, "nothing to write: {again:?}");
    assert_eq!(replicas(ns.name()), 5);
    let summary = diff(&t, &[deployment("web", 2)], &opts)
        .await
        .expect("diff");
    assert!(!summary.has_changes(), "{}", summary.patch());

    // A commit changing another field writes it, and keeps the replicas.
    let mut changed = deployment("web", 2);
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.28");
    let report = apply(&t, &[changed.clone()], &opts, &quiet)
        .await
        .expect("update");
    assert_eq!(report.updated.len(), 1, "{report:?}");
    let live = get("deployment", ns.name(), "web").expect("web");
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.28"
    );
    assert_eq!(live["spec"]["replicas"], 5);

    // Self-heal: the replicas are not drift; another field still is, and
    // its heal leaves the replicas alone.
    let watch = DriftWatch::start(t.clone());
    let mut events = watch.subscribe();
    watch
        .apply(&[changed], &opts, true, &quiet)
        .await
        .expect("tracked");
    tokio::time::sleep(Duration::from_millis(500)).await;
    autoscale(ns.name(), 7);
    let quiet_period = tokio::time::timeout(Duration::from_secs(2), events.recv()).await;
    assert!(
        quiet_period.is_err(),
        "replicas are not drift: {quiet_period:?}"
    );
    kubectl(&[
        "patch",
        "deployment",
        "web",
        "-n",
        ns.name(),
        "--field-manager=kubectl-edit",
        "--type=merge",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"main","image":"nginx:1.29"}]}}}}"#,
    ]);
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("a drift event")
        .expect("open");
    assert_eq!(event.fields, ["spec.template.spec.containers"], "{event:?}");
    assert!(event.healed, "{event:?}");
    let live = get("deployment", ns.name(), "web").expect("web");
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.28"
    );
    assert_eq!(
        replicas(ns.name()),
        7,
        "the heal kept the autoscaler's value"
    );
}

#[tokio::test]
async fn fields_of_an_ignored_manager_stay_theirs() {
    let (ns, mut opts) = app_in("ignore-manager").await;
    opts.ignore = rule(&[], &["hpa-controller"]);
    let t = target().await;
    apply(&t, &[deployment("web", 2)], &opts, &quiet)
        .await
        .expect("create");
    autoscale(ns.name(), 4);
    let again = apply(&t, &[deployment("web", 3)], &opts, &quiet)
        .await
        .expect("re-apply");
    assert_eq!(replicas(ns.name()), 4, "{again:?}");
    // Without the rule, Git wins again.
    opts.ignore = IgnoredDifferences::default();
    opts.force_conflicts = true;
    apply(&t, &[deployment("web", 3)], &opts, &quiet)
        .await
        .expect("re-apply without rule");
    assert_eq!(replicas(ns.name()), 3);
}

/// Sets the image of `web`'s `main` container, as an image updater would,
/// and waits until the deployment controller has seen it: it then writes the
/// revision annotation, which a diff racing it would show.
fn set_image(ns: &str, image: &str) {
    patch_web(
        ns,
        "image-updater",
        "strategic",
        &format!(
            r#"{{"spec":{{"template":{{"spec":{{"containers":[{{"name":"main","image":"{image}"}}]}}}}}}}}"#
        ),
    );
    let start = std::time::Instant::now();
    loop {
        let live = get("deployment", ns, "web").expect("web");
        if live["status"]["observedGeneration"] == live["metadata"]["generation"] {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not observed: {live}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn image(ns: &str) -> String {
    let live = get("deployment", ns, "web").expect("web");
    live["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_jq_expression_selects_a_list_element_by_name_and_an_invalid_one_is_refused() {
    let (ns, mut opts) = app_in("ignore-jq").await;
    opts.ignore = IgnoredDifferences::new(vec![IgnoreRule {
        group: "apps".into(),
        kind: "Deployment".into(),
        jq_path_expressions: vec![
            r#".spec.template.spec.containers[] | select(.name == "main") | .image"#.into(),
        ],
        ..IgnoreRule::default()
    }])
    .expect("valid rule");
    let t = target().await;
    apply(&t, &[deployment("web", 1)], &opts, &quiet)
        .await
        .expect("create");
    assert_eq!(image(ns.name()), "nginx:1.27", "created with Git's value");
    set_image(ns.name(), "nginx:1.29");

    let summary = diff(&t, &[deployment("web", 1)], &opts)
        .await
        .expect("diff");
    assert!(!summary.has_changes(), "{}", summary.patch());
    let again = apply(&t, &[deployment("web", 1)], &opts, &quiet)
        .await
        .expect("re-apply");
    assert_eq!(again.unchanged.len(), 1, "nothing to write: {again:?}");
    assert_eq!(image(ns.name()), "nginx:1.29");
    // A commit changing another field writes it and keeps the image.
    let report = apply(&t, &[deployment("web", 2)], &opts, &quiet)
        .await
        .expect("update");
    assert_eq!(report.updated.len(), 1, "{report:?}");
    assert_eq!(replicas(ns.name()), 2);
    assert_eq!(image(ns.name()), "nginx:1.29");

    // Without the rule, Git wins again.
    opts.ignore = IgnoredDifferences::default();
    opts.force_conflicts = true;
    let summary = diff(&t, &[deployment("web", 2)], &opts)
        .await
        .expect("diff");
    assert!(summary.has_changes(), "the image differs without the rule");
    apply(&t, &[deployment("web", 2)], &opts, &quiet)
        .await
        .expect("re-apply without rule");
    assert_eq!(image(ns.name()), "nginx:1.27");

    let err = IgnoredDifferences::new(vec![IgnoreRule {
        kind: "Deployment".into(),
        jq_path_expressions: vec![".spec.template.spec.containers[".into()],
        ..IgnoreRule::default()
    }])
    .expect_err("not jq");
    assert!(
        err.to_string()
            .starts_with("ignoreDifferences[0].jqPathExpressions[0]:"),
        "{err}"
    );
}
