//! Waiting until applied objects are healthy, with a deadline, giving up at
//! once on failures that waiting cannot heal.

use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use crate::health::{Health, HealthStatus, assess_live, is_terminal_failure};
use crate::object::ObjectRef;
use crate::target::{Resource, Target, is_not_found};

/// How often live objects are read again while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Concurrent reads per poll.
const READS_IN_FLIGHT: usize = 16;

/// Why waiting ended without every object healthy.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// An object reached a state that will not heal by waiting.
    #[error("{object} failed: {reason}")]
    Failed {
        /// The object.
        object: String,
        /// The reason from its status.
        reason: String,
    },
    /// The deadline passed; lists what was still not healthy and why.
    #[error("timed out after {timeout:?} waiting for {}", describe(.pending))]
    Timeout {
        /// The deadline given.
        timeout: Duration,
        /// Objects still not healthy, with their last health.
        pending: Vec<(String, String)>,
    },
    /// Reading an object failed.
    #[error("reading {object} while waiting for health: {source}")]
    Read {
        /// The object.
        object: String,
        /// What went wrong.
        source: kube::Error,
    },
}

fn describe(pending: &[(String, String)]) -> String {
    pending
        .iter()
        .map(|(object, health)| format!("{object} ({health})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The health of one object when waiting ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectHealth {
    /// The object.
    pub object: ObjectRef,
    /// Its health.
    pub health: Health,
}

/// Whether a health needs no more waiting.
fn settled(health: &Health) -> bool {
    matches!(
        health.status,
        HealthStatus::Healthy | HealthStatus::Suspended
    )
}

/// Polls until every object is Healthy (or Suspended), failing fast on a
/// terminal failure and with the pending objects' reasons at `timeout`.
pub async fn wait_healthy(
    target: &Target,
    objects: &[(Resource, ObjectRef)],
    timeout: Duration,
) -> Result<Vec<ObjectHealth>, WaitError> {
    wait_healthy_with(target, objects, timeout, &|_, _| {}).await
}

/// [`wait_healthy`], calling `on_change` whenever an object's health status
/// changes (its first reading included), so callers can show progress.
pub async fn wait_healthy_with(
    target: &Target,
    objects: &[(Resource, ObjectRef)],
    timeout: Duration,
    on_change: &(dyn Fn(&ObjectRef, &Health) + Send + Sync),
) -> Result<Vec<ObjectHealth>, WaitError> {
    let start = Instant::now();
    let mut latest: Vec<Option<Health>> = vec![None; objects.len()];
    loop {
        let pending: Vec<usize> = (0..objects.len())
            .filter(|&i| !latest[i].as_ref().is_some_and(settled))
            .collect();
        // Collected first, as in `assess_objects`.
        let reads: Vec<_> = pending
            .iter()
            .map(|&i| {
                let (resource, object) = &objects[i];
                async move { Ok((i, read_health(target, resource, object).await?)) }
            })
            .collect();
        let reads = stream::iter(reads)
            .buffer_unordered(READS_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await;
        for read in reads {
            let (i, health) = read?;
            if latest[i].as_ref().map(|h| h.status) != Some(health.status) {
                on_change(&objects[i].1, &health);
            }
            if is_terminal_failure(&health) {
                return Err(WaitError::Failed {
                    object: objects[i].1.to_string(),
                    reason: health.message,
                });
            }
            latest[i] = Some(health);
        }
        if latest.iter().all(|h| h.as_ref().is_some_and(settled)) {
            return Ok(objects
                .iter()
                .zip(latest)
                .map(|((_, object), health)| ObjectHealth {
                    object: object.clone(),
                    health: health.expect("every object was assessed"),
                })
                .collect());
        }
        if start.elapsed() >= timeout {
            let pending = objects
                .iter()
                .zip(&latest)
                .filter(|(_, h)| !h.as_ref().is_some_and(settled))
                .map(|((_, object), h)| {
                    let health = h.as_ref().map_or("not read".to_owned(), Health::to_string);
                    (object.to_string(), health)
                })
                .collect();
            return Err(WaitError::Timeout { timeout, pending });
        }
        tokio::time::sleep(POLL_INTERVAL.min(timeout.saturating_sub(start.elapsed()))).await;
    }
}

/// Reads one object and assesses its health; an absent object is Missing.
async fn read_health(
    target: &Target,
    resource: &Resource,
    object: &ObjectRef,
) -> Result<Health, WaitError> {
    let api = target.api(resource, object.namespace.as_deref());
    let live = match api.get_opt(&object.name).await {
        Ok(live) => live,
        Err(e) if is_not_found(&e) => None,
        Err(source) => {
            return Err(WaitError::Read {
                object: object.to_string(),
                source,
            });
        }
    };
    let live = live.map(|l| serde_json::to_value(l).expect("objects serialize"));
    Ok(assess_live(live.as_ref()))
}

/// The health of each object now, in one pass and without waiting. A kind
/// the cluster no longer serves makes its object Missing.
pub async fn assess_objects(
    target: &Target,
    objects: &[ObjectRef],
) -> Result<Vec<ObjectHealth>, WaitError> {
    // Collected first: a closure inside the stream type makes the future
    // fail the `Send` check of callers that spawn it (rust-lang/rust#102211).
    let reads: Vec<_> = objects
        .iter()
        .map(|object| async move {
            let health = match target.try_resolve(object).await {
                Ok(Some(resource)) => read_health(target, &resource, object).await?,
                Ok(None) => assess_live(None),
                Err(e) => Health {
                    status: HealthStatus::Unknown,
                    message: e.to_string(),
                    terminal: false,
                },
            };
            Ok(ObjectHealth {
                object: object.clone(),
                health,
            })
        })
        .collect();
    let reads = stream::iter(reads)
        .buffered(READS_IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    reads.into_iter().collect()
}
