//! A rollout over many hosts: `parallel` at a time, stopping before the hosts
//! not yet started when one fails and the App says `stopOnFailure`.

use std::future::Future;
use std::sync::Arc;

use driftless_api::{HostResult, HostRollout, Rollout};
use tokio::task::JoinSet;

use crate::deploy::{deploy_host, record};
use crate::pool::ConnectionPool;
use crate::release::AppRelease;
use crate::ssh::{Endpoint, Timeouts};

/// Whether a host's result stops a rollout that stops on failure.
pub fn is_failure(result: HostResult) -> bool {
    matches!(result, HostResult::Failed | HostResult::RolledBack)
}

/// What a host not started because of an earlier failure is told.
pub const SKIPPED: &str = "not started: an earlier host failed and the rollout stops on failure";

/// Deploys `release` to `hosts` in order, each over the pool's connection to it, and
/// returns one record per host in the same order: hosts not started because
/// an earlier one failed are `Skipped`.
pub async fn rollout(
    pool: Arc<ConnectionPool>,
    release: Arc<AppRelease>,
    hosts: &[Endpoint],
    timeouts: Timeouts,
) -> Vec<HostRollout> {
    let settings = release.delivery().rollout.clone();
    let done = in_order(
        &settings,
        hosts.len(),
        |index| {
            let endpoint = hosts[index].clone();
            let (pool, release) = (pool.clone(), release.clone());
            async move { deploy_host(&pool, &endpoint, &release, timeouts).await }
        },
        |r: &HostRollout| is_failure(r.result),
    )
    .await;
    done.into_iter()
        .zip(hosts)
        .map(|(done, host)| {
            done.unwrap_or_else(|| {
                let mut skipped = record(&host.name, release.revision());
                skipped.message = Some(SKIPPED.to_owned());
                skipped
            })
        })
        .collect()
}

/// Runs `deploy` for the hosts `0..count` in order, `settings.parallel` at a
/// time. Once a result is `failed` and the rollout stops on failure, hosts
/// not started yet are left `None`; hosts already running finish.
pub async fn in_order<T, F, Fut>(
    settings: &Rollout,
    count: usize,
    deploy: F,
    failed: impl Fn(&T) -> bool,
) -> Vec<Option<T>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let parallel = settings.parallel.max(1) as usize;
    let mut results: Vec<Option<T>> = (0..count).map(|_| None).collect();
    let mut running = JoinSet::new();
    let mut next = 0;
    let mut stopped = false;
    loop {
        while !stopped && next < count && running.len() < parallel {
            let work = deploy(next);
            let index = next;
            running.spawn(async move { (index, work.await) });
            next += 1;
        }
        let Some(done) = running.join_next().await else {
            break;
        };
        match done {
            Ok((index, outcome)) => {
                stopped |= settings.stop_on_failure && failed(&outcome);
                results[index] = Some(outcome);
            }
            // A deployment task only ends this way if it panicked; stop rather
            // than press on with a fault nobody understands.
            Err(e) => {
                tracing::error!(error = %e, "host deployment task failed");
                stopped = true;
            }
        }
    }
    results
}
