//! A real Alertmanager (built from its Go module by
//! `scripts/ci/install-notify.sh`): an error event's alert appears through its
//! API, and the recovery resolves it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use driftless_api::EventKind;
use driftless_notify::Delivery;
use serde_json::{Value, json};

use super::support::{dispatcher, failed_sync, target};

const VERSION: &str = "v0.28.1";

/// The alertmanager binary, or `None` outside CI when it was not built.
fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DRIFTLESS_ALERTMANAGER") {
        return Some(PathBuf::from(path));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    let path = home.join(format!(
        ".cache/driftless/alertmanager-{VERSION}/alertmanager"
    ));
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "alertmanager is missing: run scripts/ci/install-notify.sh"
    );
    eprintln!("skipped: alertmanager not built (scripts/ci/install-notify.sh builds it)");
    None
}

/// A running Alertmanager on a loopback port, killed on drop.
struct Alertmanager {
    child: tokio::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    async fn start(binary: PathBuf) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: nowhere\nreceivers:\n  - name: nowhere\n",
        )
        .expect("write config");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = tokio::process::Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start alertmanager");
        let url = format!("http://127.0.0.1:{port}");
        let am = Self {
            child,
            url,
            _dir: dir,
        };
        for _ in 0..200 {
            if reqwest::get(format!("{}/-/ready", am.url))
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return am;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("alertmanager did not become ready at {}", am.url);
    }

    /// Active alerts with `app=web-prod`.
    async fn alerts(&self) -> Vec<Value> {
        let url = format!("{}/api/v2/alerts?filter=app%3D%22web-prod%22", self.url);
        let body: Value = reqwest::get(url)
            .await
            .expect("get alerts")
            .json()
            .await
            .expect("json");
        body.as_array().cloned().unwrap_or_default()
    }

    async fn wait_for(&self, count: usize) -> Vec<Value> {
        for _ in 0..200 {
            let alerts = self.alerts().await;
            if alerts.len() == count {
                return alerts;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {count} alerts, got {:?}", self.alerts().await);
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[tokio::test]
async fn a_failed_sync_fires_an_alert_and_the_next_success_resolves_it() {
    let Some(binary) = binary() else { return };
    let am = Alertmanager::start(binary).await;
    let d = dispatcher(target(
        "alerts",
        json!({"type": "alertmanager", "address": am.url, "events": ["SyncFailed"]}),
        None,
    ));
    d.send(&Delivery::Event(Box::new(failed_sync())));
    let alerts = am.wait_for(1).await;
    let alert = &alerts[0];
    assert_eq!(alert["labels"]["alertname"], "DriftlessSyncFailed");
    assert_eq!(alert["labels"]["event"], "SyncFailed");
    assert_eq!(alert["labels"]["cluster"], "default");
    assert_eq!(alert["labels"]["namespace"], "web");
    assert_eq!(alert["labels"]["severity"], "error");
    assert_eq!(alert["status"]["state"], "active");
    assert_eq!(
        alert["generatorURL"],
        "https://driftless.example.com/apps/web-prod"
    );
    let description = alert["annotations"]["description"]
        .as_str()
        .expect("description");
    assert!(
        description.contains("Error: Deployment/web/web: spec.replicas: Invalid value: -1"),
        "{description}"
    );
    assert_eq!(alert["annotations"]["revision"], super::support::SHA);

    // The success is not among the chosen events, yet it ends the alert.
    let mut ok = failed_sync();
    ok.kind = EventKind::SyncSucceeded;
    ok.error = None;
    d.send(&Delivery::Event(Box::new(ok)));
    am.wait_for(0).await;
    let status = d.statuses().remove(0).1;
    assert_eq!((status.delivered, status.failed), (2, 0));
}
