//! A rollout over many hosts: `parallel` at a time, stopping before the hosts
//! not yet started when one fails and the App says `stopOnFailure`.

use std::sync::Arc;

use driftless_api::{HostResult, HostRollout};
use tokio::task::JoinSet;

use crate::deploy::{deploy_host, record};
use crate::release::AppRelease;
use crate::ssh::{Endpoint, Timeouts};

/// Whether a host's result stops a rollout that stops on failure.
pub fn is_failure(result: HostResult) -> bool {
    matches!(result, HostResult::Failed | HostResult::RolledBack)
}

/// Deploys `release` to `hosts` in order, each over its own connection, and
/// returns one record per host in the same order: hosts not started because
/// an earlier one failed are `Skipped`.
pub async fn rollout(
    release: Arc<AppRelease>,
    hosts: &[Endpoint],
    timeouts: Timeouts,
) -> Vec<HostRollout> {
    let rollout = &release.delivery().rollout;
    let parallel = rollout.parallel.max(1) as usize;
    let stop_on_failure = rollout.stop_on_failure;
    let mut records: Vec<HostRollout> = hosts
        .iter()
        .map(|h| record(&h.name, release.revision()))
        .collect();
    let mut running = JoinSet::new();
    let mut next = 0;
    let mut stopped = false;
    loop {
        while !stopped && next < hosts.len() && running.len() < parallel {
            let endpoint = hosts[next].clone();
            let release = release.clone();
            let index = next;
            running.spawn(async move { (index, deploy_host(&endpoint, &release, timeouts).await) });
            next += 1;
        }
        let Some(done) = running.join_next().await else {
            break;
        };
        match done {
            Ok((index, outcome)) => {
                stopped |= stop_on_failure && is_failure(outcome.result);
                records[index] = outcome;
            }
            // A deployment task only ends this way if it panicked; stop rather
            // than press on with a fault nobody understands.
            Err(e) => {
                tracing::error!(error = %e, "host deployment task failed");
                stopped = true;
            }
        }
    }
    for skipped in records
        .iter_mut()
        .filter(|r| r.result == HostResult::Skipped)
    {
        skipped.message =
            Some("not started: an earlier host failed and the rollout stops on failure".into());
    }
    records
}
