//! Leader election on a `coordination.k8s.io/v1` Lease, with the semantics
//! of client-go's `leaderelection`: only the candidate named in the Lease
//! leads, the leader renews it every retry period, and a standby takes it
//! once it has not been renewed for its lease duration.
//!
//! Every write replaces the Lease read in the same round, so the API server's
//! `resourceVersion` check lets at most one candidate win a round. The leader
//! steps down when it could not renew for the renew deadline, which is shorter
//! than the lease duration: it stops leading before anyone may take over.
//! Expiry is judged from the Lease's `renewTime`, so the candidates' clocks
//! must agree to well within `lease_duration - renew_deadline`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::target::error_chain;

/// Where the Lease lives, who this candidate is, and its timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSettings {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This candidate's `holderIdentity`, unique among the candidates (e.g. the pod name).
    pub identity: String,
    /// How long a standby waits after the last renewal before it takes the Lease.
    pub lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// Pause between two attempts to acquire or renew.
    pub retry_period: Duration,
}

impl LeaseSettings {
    /// Settings with client-go's timing: 15 s lease, 10 s renew deadline, 2 s retry period.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Checks that names are set and `lease_duration > renew_deadline > retry_period > 0`,
    /// which the safety of the election rests on.
    pub fn validate(&self) -> Result<(), LeaseError> {
        for (field, value) in [
            ("namespace", &self.namespace),
            ("name", &self.name),
            ("identity", &self.identity),
        ] {
            if value.is_empty() {
                return Err(LeaseError::Empty { field });
            }
        }
        let ordered = self.lease_duration > self.renew_deadline
            && self.renew_deadline > self.retry_period
            && !self.retry_period.is_zero();
        if !ordered {
            return Err(LeaseError::Durations {
                lease_duration: self.lease_duration,
                renew_deadline: self.renew_deadline,
                retry_period: self.retry_period,
            });
        }
        Ok(())
    }

    fn lease(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// What can go wrong in a leader election.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// A setting that names something is empty.
    #[error("leader election settings: {field} is empty")]
    Empty {
        /// The empty field.
        field: &'static str,
    },
    /// The durations are not ordered `lease_duration > renew_deadline > retry_period > 0`.
    #[error(
        "leader election settings: need lease duration ({lease_duration:?}) > renew deadline \
         ({renew_deadline:?}) > retry period ({retry_period:?}) > 0"
    )]
    Durations {
        /// The lease duration given.
        lease_duration: Duration,
        /// The renew deadline given.
        renew_deadline: Duration,
        /// The retry period given.
        retry_period: Duration,
    },
    /// A request about the Lease failed.
    #[error("{action} lease {lease}: {source}")]
    Api {
        /// What was being done: reading, creating, updating, releasing.
        action: &'static str,
        /// The Lease, as `namespace/name`.
        lease: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

impl LeaseError {
    /// Whether the API server refused a write because the Lease changed (or
    /// appeared) since it was read: another candidate won the round.
    fn is_conflict(&self) -> bool {
        matches!(self, Self::Api { source: kube::Error::Api(status), .. }
            if status.is_conflict() || status.is_already_exists())
    }
}

/// A running candidacy. Cheap to clone; the election stops when the last
/// clone is dropped (without releasing the Lease, as a killed process would)
/// or when one clone is [released](Leadership::release).
#[derive(Debug, Clone)]
pub struct Leadership {
    leading: watch::Receiver<bool>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    task: Mutex<Option<JoinHandle<()>>>,
    api: Api<Lease>,
    settings: LeaseSettings,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let task = self.task.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = task.take() {
            task.abort();
        }
    }
}

/// Starts campaigning for the Lease in `settings` on a Tokio task.
///
/// Settings that fail [`LeaseSettings::validate`], or a call outside a Tokio
/// runtime, are logged as errors and the candidate never leads.
pub fn elect(client: Client, settings: LeaseSettings) -> Leadership {
    let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let (sender, leading) = watch::channel(false);
    let task = match (settings.validate(), tokio::runtime::Handle::try_current()) {
        (Ok(()), Ok(runtime)) => {
            let elector = Elector {
                api: api.clone(),
                settings: settings.clone(),
                leading: sender,
                lead_until: None,
            };
            Some(runtime.spawn(elector.run()))
        }
        (Err(e), _) => {
            tracing::error!("leader election: {e}; {} never leads", settings.identity);
            None
        }
        (_, Err(e)) => {
            tracing::error!("leader election: {e}; {} never leads", settings.identity);
            None
        }
    };
    Leadership {
        leading,
        shared: Arc::new(Shared {
            task: Mutex::new(task),
            api,
            settings,
        }),
    }
}

impl Leadership {
    /// Whether this candidate leads now.
    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// Returns once this candidate leads; never returns after the election stopped.
    pub async fn wait_until_leader(&self) {
        let mut leading = self.leading.clone();
        if leading.wait_for(|leads| *leads).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// A receiver of leadership changes: `changed()` fires on the next one,
    /// `borrow()` tells the current state.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        let mut leading = self.leading.clone();
        leading.mark_unchanged();
        leading
    }

    /// Stops campaigning and, if the Lease names this candidate, releases it
    /// (no holder, renewed now) so a standby takes over at its next attempt.
    /// A Lease someone else holds is left alone. Stops the election for every clone.
    pub async fn release(self) {
        if self.shared.settings.validate().is_err() {
            // elect never started: nothing to stop, and no identity to clear.
            return;
        }
        let task = self
            .shared
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            task.abort();
            // Only a cancellation can come back: the task never ends by itself.
            let _ = task.await;
        }
        let settings = &self.shared.settings;
        let released =
            tokio::time::timeout(settings.renew_deadline, give_up(&self.shared.api, settings))
                .await;
        match released {
            Ok(Ok(true)) => tracing::info!(
                "leader election: {} released {}",
                settings.identity,
                settings.lease()
            ),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::warn!("leader election: {}", error_chain(&e)),
            Err(_) => tracing::warn!(
                "leader election: releasing lease {} took longer than {:?}",
                settings.lease(),
                settings.renew_deadline
            ),
        }
    }
}

/// Clears the holder of the Lease if it names this candidate: `Ok(true)`
/// when it was cleared, `Ok(false)` when it was not ours (or is gone).
async fn give_up(api: &Api<Lease>, settings: &LeaseSettings) -> Result<bool, LeaseError> {
    // A renewal aborted in flight may still land and win one round.
    const ATTEMPTS: usize = 3;
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let current = api
            .get_opt(&settings.name)
            .await
            .map_err(|source| api_error("reading", settings, source))?;
        let Some(mut lease) = current else {
            return Ok(false);
        };
        let Some(spec) = lease
            .spec
            .as_ref()
            .and_then(|spec| released(spec, settings))
        else {
            return Ok(false);
        };
        lease.spec = Some(spec);
        match api
            .replace(&settings.name, &PostParams::default(), &lease)
            .await
            .map_err(|source| api_error("releasing", settings, source))
        {
            Ok(_) => return Ok(true),
            Err(e) if e.is_conflict() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    match last {
        Some(e) => Err(e),
        None => Ok(false),
    }
}

/// The spec of a released Lease, or `None` when `spec` is not held by this
/// candidate. Like client-go: no holder, a one-second lease renewed now.
fn released(spec: &LeaseSpec, settings: &LeaseSettings) -> Option<LeaseSpec> {
    if spec.holder_identity.as_deref() != Some(settings.identity.as_str()) {
        return None;
    }
    let now = MicroTime(Timestamp::now());
    Some(LeaseSpec {
        holder_identity: None,
        acquire_time: Some(now.clone()),
        renew_time: Some(now),
        lease_duration_seconds: Some(1),
        ..spec.clone()
    })
}

fn api_error(action: &'static str, settings: &LeaseSettings, source: kube::Error) -> LeaseError {
    LeaseError::Api {
        action,
        lease: settings.lease(),
        source,
    }
}

/// What a candidate does with the Lease spec it read.
#[derive(Debug, PartialEq)]
enum Claim {
    /// Another candidate holds an unexpired Lease.
    HeldBy(String),
    /// Write this spec: create, acquire or renew.
    Write(LeaseSpec),
}

/// Decides from the Lease spec read at `now` (`None`: no Lease yet).
fn claim(current: Option<&LeaseSpec>, settings: &LeaseSettings, now: Timestamp) -> Claim {
    let now = MicroTime(now);
    let ours = LeaseSpec {
        holder_identity: Some(settings.identity.clone()),
        acquire_time: Some(now.clone()),
        renew_time: Some(now.clone()),
        lease_duration_seconds: Some(lease_seconds(settings.lease_duration)),
        lease_transitions: Some(0),
        ..LeaseSpec::default()
    };
    let Some(old) = current else {
        return Claim::Write(ours);
    };
    let holder = old.holder_identity.as_deref().filter(|h| !h.is_empty());
    match holder {
        Some(holder) if holder == settings.identity => Claim::Write(LeaseSpec {
            holder_identity: ours.holder_identity,
            renew_time: ours.renew_time,
            lease_duration_seconds: ours.lease_duration_seconds,
            acquire_time: old.acquire_time.clone().or(ours.acquire_time),
            lease_transitions: old.lease_transitions.or(ours.lease_transitions),
            ..old.clone()
        }),
        Some(holder) if !expired(old, settings, now.0) => Claim::HeldBy(holder.to_owned()),
        // client-go counts a transition also when taking a released Lease.
        _ => Claim::Write(LeaseSpec {
            lease_transitions: Some(old.lease_transitions.unwrap_or(0).saturating_add(1)),
            preferred_holder: old.preferred_holder.clone(),
            strategy: old.strategy.clone(),
            ..ours
        }),
    }
}

/// Whether `renewTime + leaseDurationSeconds` lies before `now`. A Lease
/// never renewed is expired; one without a duration lasts ours.
fn expired(spec: &LeaseSpec, settings: &LeaseSettings, now: Timestamp) -> bool {
    let Some(renewed) = &spec.renew_time else {
        return true;
    };
    let seconds = spec
        .lease_duration_seconds
        .unwrap_or_else(|| lease_seconds(settings.lease_duration));
    now.duration_since(renewed.0) > SignedDuration::from_secs(i64::from(seconds))
}

/// `leaseDurationSeconds` for `duration`: rounded up, so others never wait less.
fn lease_seconds(duration: Duration) -> i32 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i32::try_from(seconds.max(1)).unwrap_or(i32::MAX)
}

/// The outcome of one attempt to acquire or renew.
enum Round {
    Leads,
    HeldBy(String),
    /// Another candidate wrote the Lease between our read and our write.
    Lost,
    Failed(LeaseError),
    TimedOut,
}

/// The campaigning task's state.
struct Elector {
    api: Api<Lease>,
    settings: LeaseSettings,
    leading: watch::Sender<bool>,
    /// While leading: when leadership ends unless a renewal succeeds first.
    lead_until: Option<Instant>,
}

impl Elector {
    async fn run(mut self) {
        loop {
            let started = Instant::now();
            let budget = self
                .lead_until
                .unwrap_or(started + self.settings.renew_deadline);
            let round = tokio::time::timeout_at(budget, self.attempt())
                .await
                .unwrap_or(Round::TimedOut);
            match round {
                Round::Leads => {
                    // The renewTime written was taken at `started`; others may
                    // take over from `started + lease_duration` on.
                    let until = started + self.settings.renew_deadline;
                    if Instant::now() < until {
                        self.lead_until = Some(until);
                        self.set_leading(true, "");
                    }
                }
                Round::HeldBy(holder) => {
                    self.lead_until = None;
                    self.set_leading(false, &format!("held by {holder}"));
                }
                Round::Lost => tracing::debug!(
                    "leader election: {} lost a round for {}",
                    self.settings.identity,
                    self.settings.lease()
                ),
                Round::Failed(e) => tracing::warn!("leader election: {}", error_chain(&e)),
                Round::TimedOut => tracing::warn!(
                    "leader election: no answer about lease {} within {:?}",
                    self.settings.lease(),
                    budget - started
                ),
            }
            self.check_deadline();
            let next = started + self.settings.retry_period;
            tokio::time::sleep_until(self.lead_until.map_or(next, |until| until.min(next))).await;
            self.check_deadline();
        }
    }

    /// Reads the Lease and writes it if this candidate may hold it.
    async fn attempt(&self) -> Round {
        let settings = &self.settings;
        let now = Timestamp::now();
        let current = match self.api.get_opt(&settings.name).await {
            Ok(current) => current,
            Err(source) => return Round::Failed(api_error("reading", settings, source)),
        };
        let spec = current.as_ref().map(|l| l.spec.clone().unwrap_or_default());
        let spec = match claim(spec.as_ref(), settings, now) {
            Claim::HeldBy(holder) => return Round::HeldBy(holder),
            Claim::Write(spec) => spec,
        };
        let params = PostParams::default();
        let written = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(settings.name.clone()),
                        namespace: Some(settings.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                let created = self.api.create(&params, &lease).await;
                created.map_err(|source| api_error("creating", settings, source))
            }
            // The Lease keeps the resourceVersion read: a concurrent write conflicts.
            Some(mut lease) => {
                lease.spec = Some(spec);
                let replaced = self.api.replace(&settings.name, &params, &lease).await;
                replaced.map_err(|source| api_error("updating", settings, source))
            }
        };
        match written {
            Ok(_) => Round::Leads,
            Err(e) if e.is_conflict() => Round::Lost,
            Err(e) => Round::Failed(e),
        }
    }

    /// Steps down once the renew deadline passed without a renewal.
    fn check_deadline(&mut self) {
        if self.lead_until.is_some_and(|until| Instant::now() >= until) {
            self.lead_until = None;
            let why = format!("no renewal for {:?}", self.settings.renew_deadline);
            self.set_leading(false, &why);
        }
    }

    fn set_leading(&self, leading: bool, why: &str) {
        let changed = self
            .leading
            .send_if_modified(|current| std::mem::replace(current, leading) != leading);
        if !changed {
            return;
        }
        let (identity, lease) = (&self.settings.identity, self.settings.lease());
        if leading {
            tracing::info!("leader election: {identity} leads {lease}");
        } else {
            tracing::info!(reason = why, "leader election: {identity} lost {lease}");
        }
    }
}

impl Drop for Elector {
    // Runs when the task is aborted or the runtime shuts down: whoever
    // watches must not go on believing this candidate leads.
    fn drop(&mut self) {
        self.set_leading(false, "stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(identity: &str) -> LeaseSettings {
        LeaseSettings::new("ns", "lease", identity)
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).expect("a valid timestamp")
    }

    fn held(holder: &str, renewed: i64, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            acquire_time: Some(MicroTime(at(-100))),
            renew_time: Some(MicroTime(at(renewed))),
            lease_duration_seconds: Some(15),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    fn written(claim: Claim) -> LeaseSpec {
        match claim {
            Claim::Write(spec) => spec,
            Claim::HeldBy(holder) => panic!("held by {holder}"),
        }
    }

    #[test]
    fn a_missing_lease_is_created_with_no_transitions() {
        let spec = written(claim(None, &settings("a"), at(0)));
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_transitions, Some(0));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert_eq!(spec.renew_time, Some(MicroTime(at(0))));
        assert_eq!(spec.acquire_time, Some(MicroTime(at(0))));
    }

    #[test]
    fn a_live_lease_of_another_is_left_alone() {
        let old = held("b", 0, 3);
        assert_eq!(
            claim(Some(&old), &settings("a"), at(15)),
            Claim::HeldBy("b".into())
        );
    }

    #[test]
    fn an_expired_lease_is_taken_and_counts_a_transition() {
        let spec = written(claim(Some(&held("b", 0, 3)), &settings("a"), at(16)));
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_transitions, Some(4));
        assert_eq!(spec.acquire_time, Some(MicroTime(at(16))));
    }

    #[test]
    fn a_lease_without_holder_is_taken_at_once() {
        let mut old = held("b", 0, 3);
        old.holder_identity = Some(String::new());
        let spec = written(claim(Some(&old), &settings("a"), at(1)));
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_transitions, Some(4));
    }

    #[test]
    fn our_own_lease_is_renewed_keeping_acquire_time_and_transitions() {
        let spec = written(claim(Some(&held("a", 0, 3)), &settings("a"), at(5)));
        assert_eq!(spec.renew_time, Some(MicroTime(at(5))));
        assert_eq!(spec.acquire_time, Some(MicroTime(at(-100))));
        assert_eq!(spec.lease_transitions, Some(3));
    }

    #[test]
    fn release_clears_only_our_own_lease() {
        assert_eq!(released(&held("b", 0, 3), &settings("a")), None);
        let spec = released(&held("a", 0, 3), &settings("a")).expect("ours");
        assert_eq!(spec.holder_identity, None);
        assert_eq!(spec.lease_transitions, Some(3));
        assert_eq!(spec.lease_duration_seconds, Some(1));
    }

    #[test]
    fn lease_seconds_round_up() {
        assert_eq!(lease_seconds(Duration::from_millis(2500)), 3);
        assert_eq!(lease_seconds(Duration::from_secs(15)), 15);
        assert_eq!(lease_seconds(Duration::ZERO), 1);
    }

    #[test]
    fn settings_must_order_their_durations() {
        assert!(settings("a").validate().is_ok());
        let mut bad = settings("a");
        bad.renew_deadline = bad.lease_duration;
        assert!(matches!(bad.validate(), Err(LeaseError::Durations { .. })));
        assert!(matches!(
            settings("").validate(),
            Err(LeaseError::Empty { field: "identity" })
        ));
    }
}
