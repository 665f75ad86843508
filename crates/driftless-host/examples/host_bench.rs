//! The driftless side of `scripts/bench-hosts`: a rollout to many hosts, or a
//! drift check of all of them, timed and printed as one JSON line.
//!
//! Usage:
//!   host_bench rollout HOSTS.json APP REVISION TREE_DIR PARALLEL
//!   host_bench drift HOSTS.json APP REVISION
//!
//! HOSTS.json lists `{"name", "port", "user", "identity", "knownHosts", "appsRoot"}`
//! objects for hosts on 127.0.0.1.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use driftless_api::HostDelivery;
use driftless_host::{AppRelease, Connection, Endpoint, Identity, Timeouts, check_drift, rollout};
use serde::Deserialize;
use tokio::task::JoinSet;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HostEntry {
    name: String,
    port: u16,
    user: String,
    identity: PathBuf,
    known_hosts: PathBuf,
    apps_root: String,
}

fn endpoints(file: &str) -> Result<Vec<Endpoint>, Box<dyn std::error::Error>> {
    let entries: Vec<HostEntry> = serde_json::from_slice(&std::fs::read(file)?)?;
    Ok(entries
        .into_iter()
        .map(|h| Endpoint {
            name: h.name,
            address: "127.0.0.1".into(),
            port: h.port,
            user: h.user,
            identity: Identity::File(h.identity),
            known_hosts: h.known_hosts,
            apps_root: h.apps_root,
            vars: Default::default(),
        })
        .collect())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["rollout", hosts, app, revision, tree, parallel] => {
            let hosts = endpoints(hosts)?;
            let mut delivery = HostDelivery::default();
            delivery.rollout.parallel = parallel.parse()?;
            let started = Instant::now();
            let release = AppRelease::new(app, revision, tree.as_ref(), &delivery, None)?;
            let records = rollout(Arc::new(release), &hosts, Timeouts::default()).await;
            let seconds = started.elapsed().as_secs_f64();
            let failed: Vec<String> = records
                .iter()
                .filter(|r| driftless_host::is_failure(r.result))
                .map(|r| format!("{}: {}", r.host, r.message.clone().unwrap_or_default()))
                .collect();
            let sent: u64 = records.iter().map(|r| r.files_sent).sum();
            let line = serde_json::json!({"seconds": seconds, "hosts": records.len(), "filesSent": sent, "failed": failed});
            println!("{line}");
        }
        ["drift", hosts, app, revision] => {
            let hosts = endpoints(hosts)?;
            let started = Instant::now();
            let mut checks = JoinSet::new();
            for endpoint in hosts {
                let (app, revision) = (app.to_owned(), revision.to_owned());
                checks.spawn(async move {
                    let conn = Connection::open(&endpoint, Timeouts::default()).await?;
                    let report = check_drift(&conn, &endpoint, &app, &revision).await;
                    conn.close().await;
                    report.map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
                });
            }
            let (mut clean, mut drifted) = (0, Vec::new());
            while let Some(done) = checks.join_next().await {
                match done? {
                    Ok(report) if report.is_clean() => clean += 1,
                    Ok(report) => drifted.push(format!("{}: {:?}", report.host, report.events)),
                    Err(e) => drifted.push(e.to_string()),
                }
            }
            let seconds = started.elapsed().as_secs_f64();
            let line = serde_json::json!({"seconds": seconds, "clean": clean, "drifted": drifted});
            println!("{line}");
        }
        _ => {
            eprintln!(
                "usage: host_bench rollout HOSTS.json APP REVISION TREE PARALLEL | drift HOSTS.json APP REVISION"
            );
            std::process::exit(2);
        }
    }
    Ok(())
}
