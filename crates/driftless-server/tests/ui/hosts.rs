//! An App for hosts in the browser: real `sshd` hosts on loopback ports, the
//! App page listing each host as a resource with its health, and the history
//! showing each host's part of a rollout.

use fantoccini::Locator;
use serde_json::Value;

use driftless_testenv::hosts::{Lab, available};

use crate::api;
use crate::support::{Browser, PAGE_DEADLINE, Served, browser, eventually};

/// The texts of the rows `css` selects, cells separated by single spaces.
async fn rows(b: &Browser, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for row in b
        .client
        .find_all(Locator::Css(css))
        .await
        .unwrap_or_default()
    {
        let text = row.text().await.unwrap_or_default();
        out.push(text.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    out
}

/// The per-host records of the newest history entry, as (host, result).
fn newest_hosts(history: &Value) -> Vec<(String, String)> {
    history[0]["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            let field = |k: &str| h[k].as_str().unwrap_or_default().to_owned();
            (field("host"), field("result"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_app_page_shows_its_hosts_and_each_hosts_part_of_a_rollout() {
    if !available() {
        return;
    }
    let Some(b) = browser().await else { return };
    let lab = Lab::start(2);
    let app = format!(
        "{}apiVersion: driftless.dev/v1alpha1
kind: App
metadata: {{name: web-hosts}}
spec:
  sourceRef: {{name: platform}}
  path: hosts/web
  destination: {{hosts: {{matchLabels: {{role: web}}}}}}
  host: {{substitute: [\"*.conf\"]}}
---
",
        lab.host_objects()
    );
    let files = [
        ("hosts/web/index.html", "v1\n"),
        ("hosts/web/etc/app.conf", "region=${region}\n"),
    ];
    let served = Served::start(&files, &app).await;
    let c1 = served.repo.head();
    eventually("the first release on both hosts", PAGE_DEADLINE, || async {
        let status = api(&served, "/api/v1/apps/web-hosts").await;
        status["lastApplied"]["sha"] == c1.as_str() && status["health"] == "Healthy"
    })
    .await;
    served.repo.write("hosts/web/index.html", "v2\n");
    let c2 = served.repo.push("second page");
    eventually(
        "the second rollout in the history",
        PAGE_DEADLINE,
        || async {
            let history = api(&served, "/api/v1/apps/web-hosts/history").await;
            history[0]["revision"]["sha"] == c2.as_str() && newest_hosts(&history).len() == 2
        },
    )
    .await;
    let page = lab.hosts[1]
        .app_root("web-hosts")
        .join("current/index.html");
    assert_eq!(std::fs::read_to_string(page).expect("deployed"), "v2\n");

    b.client
        .goto(&served.url("/apps/web-hosts"))
        .await
        .expect("App page");
    b.wait_text("#objects", "h1").await;
    let facts = b.text("#facts").await;
    assert!(
        facts.contains("hosts: matchLabels role=web"),
        "the destination names the hosts: {facts}"
    );
    let diff_links = rows(&b, "#diff-link").await;
    assert!(diff_links.is_empty(), "no cluster to compare with");
    let objects = rows(&b, "#objects tbody tr").await;
    assert_eq!(
        objects,
        ["Host h0 Synced Healthy", "Host h1 Synced Healthy"],
        "each host a resource with its health"
    );
    b.wait_text("#history", &format!("Hosts of {}", &c2[..8]))
        .await;
    let captions = rows(&b, "#history table.hosts caption").await;
    assert_eq!(
        captions,
        [
            format!("Hosts of {}", &c2[..8]),
            format!("Hosts of {}", &c1[..8])
        ],
        "one table per rollout, the newest first"
    );
    // Each table's own rows (not the history's): the newest rollout moved
    // each host from c1 to c2 sending the one changed file; the first had
    // nothing before it.
    let parts = rows(&b, "#history table.hosts > tbody > tr").await;
    assert_eq!(
        parts.len(),
        4,
        "two hosts in each of two rollouts: {parts:?}"
    );
    let expected = ["h0", "h1"]
        .map(|host| format!("{host} Succeeded Healthy {} 1 ", &c1[..8]))
        .into_iter()
        .chain(["h0", "h1"].map(|host| format!("{host} Succeeded Healthy - 2 ")));
    for (row, expected) in parts.iter().zip(expected) {
        assert!(
            row.starts_with(&expected),
            "{row:?} should start {expected:?}; all rows: {parts:?}"
        );
    }
    b.screenshot("host-app").await;
    b.client.goto(&served.url("/")).await.expect("App list");
    b.wait_text("#apps", "web-hosts").await;
    let listed = rows(&b, "#apps tbody tr").await;
    assert!(
        listed
            .iter()
            .any(|r| r.contains("web-hosts") && r.contains("hosts: matchLabels role=web")),
        "the list shows the hosts as the destination: {listed:?}"
    );
    b.close().await;
    served.stop().await;
}
