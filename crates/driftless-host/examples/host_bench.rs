//! The driftless side of `scripts/bench-hosts`: rollouts to many hosts and
//! drift checks of all of them, over connections the engine's way (one pool,
//! kept open between operations), each timed and printed as one JSON line.
//!
//! Usage: host_bench HOSTS.json APP, then one command per line on stdin:
//!   rollout REVISION TREE_DIR PARALLEL
//!   drift REVISION
//!   disconnect        (closes every connection: the next command opens new ones)
//!
//! HOSTS.json lists `{"name", "port", "user", "identity", "knownHosts", "appsRoot"}`
//! objects for hosts on 127.0.0.1.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use driftless_api::HostDelivery;
use driftless_host::{
    AppRelease, ConnectionPool, Endpoint, Identity, Timeouts, check_drift, rollout,
};
use serde::Deserialize;
use tokio::task::JoinSet;

type Error = Box<dyn std::error::Error + Send + Sync>;

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

fn endpoints(file: &str) -> Result<Vec<Endpoint>, Error> {
    let entries: Vec<HostEntry> = serde_json::from_slice(&std::fs::read(file)?)?;
    Ok(entries
        .into_iter()
        .map(|h| Endpoint {
            name: h.name,
            address: "127.0.0.1".into(),
            port: h.port,
            user: h.user,
            identity: Identity::File(h.identity),
            known_hosts: driftless_host::KnownHosts::File(h.known_hosts),
            apps_root: h.apps_root,
            vars: Default::default(),
        })
        .collect())
}

async fn roll(
    pool: &Arc<ConnectionPool>,
    hosts: &[Endpoint],
    app: &str,
    words: &[&str],
) -> Result<serde_json::Value, Error> {
    let [revision, tree, parallel] = words else {
        return Err("rollout REVISION TREE_DIR PARALLEL".into());
    };
    let mut delivery = HostDelivery::default();
    delivery.rollout.parallel = parallel.parse()?;
    let started = Instant::now();
    let release = AppRelease::new(app, revision, tree.as_ref(), &delivery, None)?;
    let records = rollout(pool.clone(), Arc::new(release), hosts, Timeouts::default()).await;
    let seconds = started.elapsed().as_secs_f64();
    let failed: Vec<String> = records
        .iter()
        .filter(|r| driftless_host::is_failure(r.result))
        .map(|r| format!("{}: {}", r.host, r.message.clone().unwrap_or_default()))
        .collect();
    let sent: u64 = records.iter().map(|r| r.files_sent).sum();
    Ok(
        serde_json::json!({"seconds": seconds, "hosts": records.len(), "filesSent": sent, "failed": failed}),
    )
}

async fn drift(
    pool: &Arc<ConnectionPool>,
    hosts: &[Endpoint],
    app: &str,
    words: &[&str],
) -> Result<serde_json::Value, Error> {
    let [revision] = words else {
        return Err("drift REVISION".into());
    };
    let started = Instant::now();
    let mut checks = JoinSet::new();
    for endpoint in hosts {
        let endpoint = endpoint.clone();
        let (pool, app, revision) = (pool.clone(), app.to_owned(), revision.to_string());
        checks.spawn(async move {
            let lease = pool.lease(&endpoint, Timeouts::default()).await?;
            check_drift(&lease.connection, &endpoint, &app, &revision)
                .await
                .map_err(Error::from)
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
    Ok(serde_json::json!({"seconds": seconds, "clean": clean, "drifted": drifted}))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [hosts, app] = &args[..] else {
        eprintln!("usage: host_bench HOSTS.json APP < commands");
        std::process::exit(2);
    };
    let hosts = endpoints(hosts)?;
    let pool = Arc::new(ConnectionPool::new(Duration::from_secs(3600)));
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.split_first() {
            Some((&"rollout", rest)) => roll(&pool, &hosts, app, rest).await?,
            Some((&"drift", rest)) => drift(&pool, &hosts, app, rest).await?,
            Some((&"disconnect", [])) => {
                pool.close_all().await;
                serde_json::json!({"disconnected": true})
            }
            _ => return Err(format!("unknown command: {line}").into()),
        };
        println!("{answer}");
    }
    pool.close_all().await;
    Ok(())
}
