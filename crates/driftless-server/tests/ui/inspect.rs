//! The App page's view into the cluster: the objects a Deployment's
//! controllers created beneath it, and the diff between Git and a hand-edited
//! cluster with the Secret's values masked, in the browser and the API.

use std::process::Command;

use crate::api;
use crate::support::{PAGE_DEADLINE, Served, app, browser, eventually};
use base64::Engine as _;

/// Two replicas that kwok's simulated kubelets run.
const SHOP: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      containers: [{name: app, image: registry.invalid/shop:1}]
";

/// A value that only Git and the cluster may hold.
const PASSWORD: &str = "hunter2-from-git";
/// The value an operator types by hand.
const TYPED: &str = "typed-by-hand-42";

fn secret() -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: shop-db}}\nstringData: {{password: {PASSWORD}}}\n"
    )
}

fn kubectl(namespace: &str, args: &[&str]) {
    let status = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(driftless_testenv::shared().kubeconfig())
        .args(["-n", namespace])
        .args(args)
        .status()
        .expect("kubectl runs");
    assert!(status.success(), "kubectl {args:?}");
}

/// Every form a leaked value could take on a page or in a JSON answer.
fn leaks(text: &str) -> Vec<String> {
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    [
        PASSWORD.to_owned(),
        TYPED.to_owned(),
        b64(PASSWORD),
        b64(TYPED),
    ]
    .into_iter()
    .filter(|v| text.contains(v.as_str()))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_page_shows_owned_pods_and_a_masked_diff_of_a_hand_edit() {
    let Some(b) = browser().await else { return };
    let ns = driftless_testenv::shared()
        .namespace("ui-tree")
        .await
        .expect("test namespace");
    let served = Served::start(
        &[("shop/deploy.yaml", SHOP), ("shop/secret.yaml", &secret())],
        &app("shop", "shop", ns.name(), "  selfHeal: false"),
    )
    .await;

    // Deployment -> ReplicaSet -> two Pods, from the API and on the page.
    let started = std::time::Instant::now();
    let tree = loop {
        let tree = api(&served, "/api/v1/apps/shop/tree").await;
        let objects = tree["objects"].as_array().cloned().unwrap_or_default();
        if objects.iter().filter(|o| o["kind"] == "Pod").count() == 2 {
            break tree;
        }
        assert!(
            started.elapsed() < PAGE_DEADLINE,
            "the Pods never showed beneath the ReplicaSet: {tree}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let objects = tree["objects"].as_array().expect("objects");
    assert_eq!(objects[0]["kind"], "ReplicaSet", "{tree}");
    assert_eq!(objects[0]["owner"], "Deployment/shop");
    let replica_set = format!("ReplicaSet/{}", objects[0]["name"].as_str().expect("name"));
    for pod in &objects[1..] {
        assert_eq!(pod["owner"], replica_set.as_str(), "{tree}");
        assert_eq!(pod["depth"], 2);
    }
    b.client
        .goto(&served.url("/apps/shop"))
        .await
        .expect("App page");
    let table = b.wait_text("#objects", "Pod").await;
    let at = |needle: &str| {
        table
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} in\n{table}"))
    };
    let (deployment, replicas, pod) = (at("Deployment"), at("ReplicaSet"), at("Pod"));
    assert!(deployment < replicas && replicas < pod, "{table}");
    assert!(
        table.contains(&format!("owned by {replica_set}")),
        "{table}"
    );
    b.screenshot("app-owned-objects").await;

    // Hand edits, not reverted (self-heal is off): the page offers their diff.
    kubectl(ns.name(), &["scale", "deployment", "shop", "--replicas=3"]);
    let typed = base64::engine::general_purpose::STANDARD.encode(TYPED);
    kubectl(
        ns.name(),
        &[
            "patch",
            "secret",
            "shop-db",
            "--type=merge",
            "-p",
            &format!(r#"{{"data":{{"password":"{typed}"}}}}"#),
        ],
    );
    eventually(
        "the drift marks the App OutOfSync",
        PAGE_DEADLINE,
        || async { api(&served, "/api/v1/apps/shop").await["sync"] == "OutOfSync" },
    )
    .await;
    b.client
        .goto(&served.url("/apps/shop"))
        .await
        .expect("App page");
    b.wait_text("#objects", "OutOfSync").await;
    b.click("#objects a[href*='/diff#']").await;
    let summary = b.wait_text("#diff-summary", "to change").await;
    assert!(summary.contains("2 to change"), "{summary}");
    let page = b.client.source().await.expect("page source");
    let section = |id: &str| {
        page.split(&format!(r#"id="{id}""#))
            .nth(1)
            .and_then(|rest| rest.split("</section>").next())
            .unwrap_or_else(|| panic!("section {id} in the page"))
            .to_owned()
    };
    let shop = section(&format!("obj-deployment-{}-shop", ns.name()));
    assert!(
        shop.contains("<del>-  replicas: 3</del>") && shop.contains("<ins>+  replicas: 2</ins>"),
        "{shop}"
    );
    let db = section(&format!("obj-secret-{}-shop-db", ns.name()));
    assert!(db.contains("++++++++ (hmac:"), "{db}");
    assert!(
        leaks(&page).is_empty(),
        "the diff page shows {:?}",
        leaks(&page)
    );
    b.screenshot("app-diff").await;

    let diff = api(&served, "/api/v1/apps/shop/diff").await;
    assert_eq!(diff["update"], 2, "{diff}");
    let text = diff.to_string();
    assert!(
        leaks(&text).is_empty(),
        "the diff API shows {:?}",
        leaks(&text)
    );
    for path in [
        "/api/v1/apps/nope/diff",
        "/api/v1/apps/nope/tree",
        "/apps/nope/diff",
    ] {
        let answer = reqwest::get(served.url(path)).await.expect("GET answers");
        assert_eq!(answer.status(), 404, "{path}");
        let body = answer.text().await.expect("body");
        assert!(body.contains("there is no App nope"), "{path}: {body}");
    }

    b.close().await;
    served.stop().await;
}
