//! Apps for hosts, reconciled by the engine against real sshd hosts on
//! loopback ports: rollouts, a failed health check rolled back, drift of
//! files restored, a rollback pin, and an unreachable host, with nothing
//! reaching a cluster.

use std::path::Path;
use std::time::Duration;

use driftless_api::HostResult;
use driftless_engine::control::{AppControl, EngineControl};
use driftless_engine::store::{AppStatus, DriftAction, HealthStatus, SyncResult, SyncStatus};
use driftless_testenv::hosts::{Lab, available};

use super::support::{
    Repo, Running, applied, cluster_doc, config_map, kubectl_get, ready, source_doc, start,
    wait_status, wait_sync,
};

const WAIT: Duration = Duration::from_secs(60);
const APP: &str = "web";

/// A config of `repo`'s source, `lab`'s hosts and an App for them (with
/// `extra` spec lines); with a `cluster` document when given one.
fn host_config(
    dir: &Path,
    repo: &Repo,
    lab: &Lab,
    extra: &str,
    cluster: Option<&Path>,
) -> std::path::PathBuf {
    let cluster = cluster.map_or(String::new(), cluster_doc);
    let text = format!(
        "{cluster}{source}{hosts}apiVersion: driftless.dev/v1alpha1
kind: App
metadata: {{name: {APP}}}
spec:
  sourceRef: {{name: repo}}
  path: hosts/web
  interval: 1s
  destination:
    hosts: {{matchLabels: {{role: web}}}}
  host:
    substitute: [\"*.conf\"]
    healthCheck:
      command: 'if [ -f \"fail-$DRIFTLESS_HOST\" ]; then echo \"web down on $DRIFTLESS_HOST\"; exit 1; fi'
      timeout: 10s
{extra}
",
        source = source_doc(repo),
        hosts = lab.host_objects(),
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// A repository whose `hosts/web` tree has a substituted config and a page.
fn web_repo() -> (Repo, String) {
    let repo = Repo::new();
    repo.write(
        "hosts/web/etc/app.conf",
        "region=${region} host=${DRIFTLESS_HOST} rev=${DRIFTLESS_REVISION}\n",
    );
    repo.write("hosts/web/static/index.html", "<h1>v1</h1>\n");
    let c1 = repo.commit("first");
    (repo, c1)
}

fn release_file(lab: &Lab, host: usize, rel: &str) -> String {
    let path = lab.hosts[host].app_root(APP).join("current").join(rel);
    std::fs::read_to_string(&path).unwrap_or_default()
}

fn host_states(status: &AppStatus) -> Vec<(String, String, SyncStatus, HealthStatus)> {
    status
        .resources
        .iter()
        .map(|r| (r.kind.clone(), r.name.clone(), r.sync, r.health))
        .collect()
}

/// Waits until the history holds a finished rollout of `sha`; returns it.
async fn wait_rollout(running: &Running, sha: &str) -> driftless_engine::store::SyncRecord {
    wait_sync(running, APP, sha, WAIT, |_| true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_get_releases_a_failed_check_rolls_back_and_stops_and_a_rollback_pins() {
    if !available() {
        return;
    }
    let lab = Lab::start(3);
    let (repo, c1) = web_repo();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = host_config(dir.path(), &repo, &lab, "", None);
    let running = start(&path, &dir.path().join("data"));

    let status = wait_status(&running, APP, WAIT, "c1 on every host", applied(&c1)).await;
    assert_eq!(
        (status.sync, status.health),
        (SyncStatus::Synced, HealthStatus::Healthy)
    );
    let healthy = |n: &str| {
        (
            "Host".to_owned(),
            n.to_owned(),
            SyncStatus::Synced,
            HealthStatus::Healthy,
        )
    };
    assert_eq!(
        host_states(&status),
        [healthy("h0"), healthy("h1"), healthy("h2")]
    );
    assert_eq!(ready(&status).0, "ReconciliationSucceeded");
    for (i, host) in lab.hosts.iter().enumerate() {
        assert_eq!(host.current(APP), Some(format!("releases/{c1}")));
        assert_eq!(
            release_file(&lab, i, "etc/app.conf"),
            format!("region=region-of-h{i} host=h{i} rev={c1}\n")
        );
    }
    let first = wait_rollout(&running, &c1).await;
    assert_eq!(first.result, SyncResult::Succeeded);
    let per_host: Vec<(&str, HostResult)> = first
        .hosts
        .iter()
        .map(|h| (h.host.as_str(), h.result))
        .collect();
    assert_eq!(
        per_host,
        [
            ("h0", HostResult::Succeeded),
            ("h1", HostResult::Succeeded),
            ("h2", HostResult::Succeeded)
        ]
    );
    assert_eq!(first.counts.created, 3);

    // The check fails on h1 only: h0 gets c2, h1 is switched back, h2 waits.
    repo.write("hosts/web/static/index.html", "<h1>v2</h1>\n");
    repo.write("hosts/web/fail-h1", "");
    let c2 = repo.commit("second");
    let failed = wait_rollout(&running, &c2).await;
    assert_eq!(failed.result, SyncResult::Failed);
    let per_host: Vec<(&str, HostResult, bool)> = failed
        .hosts
        .iter()
        .map(|h| (h.host.as_str(), h.result, h.rolled_back))
        .collect();
    assert_eq!(
        per_host,
        [
            ("h0", HostResult::Succeeded, false),
            ("h1", HostResult::RolledBack, true),
            ("h2", HostResult::Skipped, false)
        ]
    );
    assert_eq!(failed.hosts[1].previous.as_deref(), Some(c1.as_str()));
    let status = wait_status(&running, APP, WAIT, "degraded", |s| {
        s.health == HealthStatus::Degraded
    })
    .await;
    let (reason, message) = ready(&status);
    assert_eq!(reason, "RolloutFailed");
    assert!(
        message.starts_with("host h1: ") && message.contains("web down on h1"),
        "{message}"
    );
    assert!(message.ends_with("rollout stopped before h2"), "{message}");
    assert_eq!(status.last_applied.as_ref().map(|r| &r.sha), Some(&c1));
    assert_eq!(lab.hosts[0].current(APP), Some(format!("releases/{c2}")));
    assert_eq!(lab.hosts[1].current(APP), Some(format!("releases/{c1}")));
    assert_eq!(lab.hosts[2].current(APP), Some(format!("releases/{c1}")));
    assert_eq!(status.resources[1].health, HealthStatus::Degraded);
    // Routine runs neither retry the failed commit nor go on past h1.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(lab.hosts[2].current(APP), Some(format!("releases/{c1}")));
    let held = running
        .engine
        .store()
        .app(APP)
        .expect("store")
        .expect("status");
    assert_eq!(ready(&held), (reason, message));

    let control = EngineControl::new(
        running.engine.store().clone(),
        running.engine.queue().clone(),
    );
    control
        .rollback(APP, Some(&c1[..8]), "test")
        .expect("rollback");
    let status = wait_status(&running, APP, WAIT, "pinned to c1", |s| {
        s.pinned.is_some() && s.health == HealthStatus::Healthy
    })
    .await;
    assert_eq!(status.pinned.map(|r| r.sha), Some(c1.clone()));
    assert_eq!(status.sync, SyncStatus::OutOfSync, "pinned behind Git");
    for host in &lab.hosts {
        assert_eq!(host.current(APP), Some(format!("releases/{c1}")));
    }
    assert_eq!(release_file(&lab, 0, "static/index.html"), "<h1>v1</h1>\n");
    running.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_edited_on_a_host_is_restored_and_reported() {
    if !available() {
        return;
    }
    let lab = Lab::start(2);
    let (repo, c1) = web_repo();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = host_config(dir.path(), &repo, &lab, "  selfHeal: true", None);
    let running = start(&path, &dir.path().join("data"));
    wait_status(&running, APP, WAIT, "c1 on every host", applied(&c1)).await;

    let page = lab.hosts[1]
        .app_root(APP)
        .join(format!("releases/{c1}/static/index.html"));
    // Replaced, as an editor saves, so the hard links of other releases keep theirs.
    std::fs::remove_file(&page).expect("remove page");
    std::fs::write(&page, "<h1>edited by hand</h1>\n").expect("edit page");
    let deadline = std::time::Instant::now() + WAIT;
    let event = loop {
        let audit = running.engine.store().audit(Some(APP), 10).expect("audit");
        if let Some(event) = audit.into_iter().find(|e| e.object == "Host/h1") {
            break event;
        }
        assert!(std::time::Instant::now() < deadline, "no drift recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(event.action, DriftAction::Reverted);
    assert_eq!(event.fields, ["static/index.html modified"]);
    assert_eq!(
        std::fs::read_to_string(&page).expect("page"),
        "<h1>v1</h1>\n"
    );
    let status = running
        .engine
        .store()
        .app(APP)
        .expect("store")
        .expect("status");
    assert_eq!(status.sync, SyncStatus::Synced);
    running.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_host_is_degraded_by_name_and_nothing_reaches_a_cluster() {
    if !available() {
        return;
    }
    let mut lab = Lab::start(2);
    lab.hosts[1].kill();
    let object = format!("hosts-probe-{}", std::process::id());
    let (repo, _) = web_repo();
    // Manifests in the tree are files for the hosts, never objects to apply.
    repo.write("hosts/web/probe.yaml", &config_map(&object, "1"));
    let c2 = repo.commit("a manifest among the files");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = driftless_testenv::shared().kubeconfig().to_path_buf();
    let path = host_config(dir.path(), &repo, &lab, "", Some(&kubeconfig));
    let running = start(&path, &dir.path().join("data"));
    let status = wait_status(&running, APP, WAIT, "h1 unreachable", |s| {
        ready(s).0 == "HostUnreachable"
    })
    .await;
    let (_, message) = ready(&status);
    assert!(
        message.starts_with("host h1: connecting to 127.0.0.1:"),
        "{message}"
    );
    assert_eq!(status.health, HealthStatus::Degraded);
    assert_eq!(status.resources[0].health, HealthStatus::Healthy);
    assert_eq!(status.resources[1].health, HealthStatus::Degraded);
    assert_eq!(lab.hosts[0].current(APP), Some(format!("releases/{c2}")));
    let names = kubectl_get("default", "configmap", "{.items[*].metadata.name}");
    assert!(!names.split(' ').any(|n| n == object), "{names}");

    // Back online, the host gets the release on a retry.
    lab.hosts[1].restart();
    wait_status(&running, APP, WAIT, "c2 on both hosts", applied(&c2)).await;
    assert_eq!(lab.hosts[1].current(APP), Some(format!("releases/{c2}")));
    running.engine.shutdown().await;
}
