//! Leader election on a real Lease: one leader at a time, a standby takes
//! over from a killed or released leader in time, and a leader that cannot
//! renew steps down before anyone else may lead.

use std::time::Duration;

use driftless_kube::lease::{Leadership, LeaseSettings, elect};
use driftless_testenv::{TestNamespace, shared};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tokio::time::{Instant, sleep, timeout};

use crate::cluster::{kubectl, target};

const LEASE: &str = "driftless-leader";
const LEASE_DURATION: Duration = Duration::from_secs(3);
const RENEW_DEADLINE: Duration = Duration::from_secs(2);
const RETRY_PERIOD: Duration = Duration::from_millis(300);
/// Slack for request latency on a loaded machine.
const SLACK: Duration = Duration::from_millis(500);

fn settings(ns: &TestNamespace, identity: &str) -> LeaseSettings {
    LeaseSettings {
        lease_duration: LEASE_DURATION,
        renew_deadline: RENEW_DEADLINE,
        retry_period: RETRY_PERIOD,
        ..LeaseSettings::new(ns.name(), LEASE, identity)
    }
}

async fn candidate(ns: &TestNamespace, identity: &str) -> Leadership {
    let client = shared().client().await.expect("client");
    elect(client, settings(ns, identity))
}

async fn leads_soon(candidate: &Leadership) {
    timeout(Duration::from_secs(10), candidate.wait_until_leader())
        .await
        .expect("the candidate leads within 10 s");
}

async fn spec(ns: &TestNamespace) -> LeaseSpec {
    let lease = ns
        .api::<Lease>()
        .get(LEASE)
        .await
        .expect("the Lease exists");
    lease.spec.expect("the Lease has a spec")
}

/// Polls `check` every 20 ms for at most `limit`; how long it took.
async fn within(limit: Duration, what: &str, check: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what} within {limit:?}");
        sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn a_single_candidate_leads_and_the_lease_names_it() {
    let ns = shared().namespace("lease-single").await.expect("namespace");
    let a = candidate(&ns, "alpha").await;
    leads_soon(&a).await;
    assert!(a.is_leader());
    let first = spec(&ns).await;
    assert_eq!(first.holder_identity.as_deref(), Some("alpha"));
    assert_eq!(first.lease_duration_seconds, Some(3));
    assert_eq!(first.lease_transitions, Some(0));
    assert!(first.acquire_time.is_some(), "{first:?}");

    sleep(RETRY_PERIOD * 3).await;
    let later = spec(&ns).await;
    assert!(
        later.renew_time > first.renew_time,
        "{first:?} then {later:?}"
    );
    assert_eq!(later.acquire_time, first.acquire_time, "a renewal keeps it");
    assert!(a.is_leader());
    a.release().await;
}

#[tokio::test]
async fn of_two_candidates_exactly_one_leads() {
    let ns = shared().namespace("lease-two").await.expect("namespace");
    let (a, b) = (candidate(&ns, "alpha").await, candidate(&ns, "beta").await);
    within(Duration::from_secs(10), "a leader", || {
        a.is_leader() || b.is_leader()
    })
    .await;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        assert!(
            a.is_leader() != b.is_leader(),
            "alpha leads: {}, beta leads: {}, after {:?}",
            a.is_leader(),
            b.is_leader(),
            start.elapsed()
        );
        sleep(Duration::from_millis(20)).await;
    }
    let (leader, leader_id, standby) = if a.is_leader() {
        (a, "alpha", b)
    } else {
        (b, "beta", a)
    };
    assert_eq!(spec(&ns).await.holder_identity.as_deref(), Some(leader_id));

    // Releasing the standby leaves the leader's Lease alone.
    standby.release().await;
    sleep(RETRY_PERIOD * 2).await;
    assert!(leader.is_leader());
    assert_eq!(spec(&ns).await.holder_identity.as_deref(), Some(leader_id));
    leader.release().await;
}

#[tokio::test]
async fn candidates_racing_for_an_expired_lease_elect_one() {
    let ns = shared().namespace("lease-race").await.expect("namespace");
    let long_ago = MicroTime(Timestamp::now() - SignedDuration::from_secs(60));
    let expired = Lease {
        metadata: ObjectMeta {
            name: Some(LEASE.into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("ghost".into()),
            renew_time: Some(long_ago),
            lease_duration_seconds: Some(3),
            lease_transitions: Some(5),
            ..LeaseSpec::default()
        }),
    };
    let api = ns.api::<Lease>();
    api.create(&PostParams::default(), &expired)
        .await
        .expect("create the expired Lease");
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(shared().client().await.expect("client"));
    }
    // Started together, they all read the expired Lease before anyone writes.
    let candidates: Vec<Leadership> = clients
        .into_iter()
        .enumerate()
        .map(|(i, client)| elect(client, settings(&ns, &format!("c{i}"))))
        .collect();
    let leaders = || candidates.iter().filter(|c| c.is_leader()).count();
    within(Duration::from_secs(10), "a leader", || leaders() > 0).await;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        assert_eq!(leaders(), 1, "after {:?}", start.elapsed());
        sleep(Duration::from_millis(10)).await;
    }
    let after = spec(&ns).await;
    assert_eq!(after.lease_transitions, Some(6), "{after:?}");
    for candidate in candidates {
        candidate.release().await;
    }
}

#[tokio::test]
async fn a_killed_leader_is_replaced_once_its_lease_expires() {
    let ns = shared().namespace("lease-killed").await.expect("namespace");
    let a = candidate(&ns, "alpha").await;
    leads_soon(&a).await;
    let b = candidate(&ns, "beta").await;
    sleep(RETRY_PERIOD * 2).await;
    assert!(!b.is_leader(), "the standby waits");
    let before = spec(&ns).await.lease_transitions.expect("transitions");

    // Dropping the last handle aborts the task without releasing: kill -9.
    drop(a);
    let limit = LEASE_DURATION + RETRY_PERIOD * 2;
    let took = within(limit + Duration::from_secs(5), "the standby leads", || {
        b.is_leader()
    })
    .await;
    assert!(took <= limit + SLACK, "took {took:?}, over {limit:?}");
    // The last renewal was at most one retry period before the kill.
    assert!(
        took >= LEASE_DURATION - RETRY_PERIOD * 2,
        "took the Lease {took:?} after the kill, before it expired"
    );
    let after = spec(&ns).await;
    assert_eq!(after.holder_identity.as_deref(), Some("beta"));
    assert_eq!(after.lease_transitions, Some(before + 1));
    b.release().await;
}

#[tokio::test]
async fn a_released_lease_passes_to_the_standby_within_a_retry_period() {
    let ns = shared()
        .namespace("lease-released")
        .await
        .expect("namespace");
    let a = candidate(&ns, "alpha").await;
    leads_soon(&a).await;
    let b = candidate(&ns, "beta").await;
    sleep(RETRY_PERIOD * 2).await;
    assert!(!b.is_leader(), "the standby waits");
    let mut changes = b.subscribe();

    let a_watch = a.subscribe();
    a.release().await;
    assert!(!*a_watch.borrow(), "a released candidate does not lead");
    let took = within(
        RETRY_PERIOD + Duration::from_secs(5),
        "the standby leads",
        || b.is_leader(),
    )
    .await;
    assert!(took <= RETRY_PERIOD + SLACK, "took {took:?}");
    assert!(changes.has_changed().expect("the election runs"));
    assert!(*changes.borrow_and_update());
    let after = spec(&ns).await;
    assert_eq!(after.holder_identity.as_deref(), Some("beta"));
    assert_eq!(after.lease_transitions, Some(1));
    b.release().await;
}

#[tokio::test]
async fn a_leader_whose_lease_is_taken_by_hand_steps_down_then_retakes_it() {
    let ns = shared().namespace("lease-taken").await.expect("namespace");
    let a = candidate(&ns, "alpha").await;
    leads_soon(&a).await;
    let mut changes = a.subscribe();

    let taken = Instant::now();
    take_by_hand(&ns.api::<Lease>(), "intruder").await;
    let took = within(
        RETRY_PERIOD + Duration::from_secs(5),
        "alpha steps down",
        || !a.is_leader(),
    )
    .await;
    assert!(took <= RETRY_PERIOD + SLACK, "took {took:?}");
    assert!(!*changes.borrow_and_update());
    assert_eq!(spec(&ns).await.holder_identity.as_deref(), Some("intruder"));

    // Nobody renews the intruder's Lease: alpha takes it back once expired.
    let back = LEASE_DURATION + RETRY_PERIOD * 2 + SLACK;
    let took = within(back + Duration::from_secs(5), "alpha leads again", || {
        a.is_leader()
    })
    .await;
    assert!(took <= back, "took {took:?}");
    let since = taken.elapsed();
    assert!(
        since >= LEASE_DURATION,
        "retook it {since:?} after, unexpired"
    );
    let after = spec(&ns).await;
    assert_eq!(after.holder_identity.as_deref(), Some("alpha"));
    assert_eq!(after.lease_transitions, Some(2), "alpha, intruder, alpha");
    a.release().await;
}

/// Replaces the holder with `holder`, freshly renewed, retrying while the
/// leader's renewals conflict.
async fn take_by_hand(api: &Api<Lease>, holder: &str) {
    for _ in 0..20 {
        let mut lease = api.get(LEASE).await.expect("the Lease exists");
        let now = MicroTime(Timestamp::now());
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = Some(holder.to_owned());
        spec.acquire_time = Some(now.clone());
        spec.renew_time = Some(now);
        spec.lease_transitions = spec.lease_transitions.map(|t| t + 1);
        match api.replace(LEASE, &PostParams::default(), &lease).await {
            Ok(_) => return,
            Err(kube::Error::Api(status)) if status.is_conflict() => {}
            Err(e) => panic!("replacing the Lease: {e}"),
        }
    }
    panic!("the Lease kept changing under 20 attempts to replace it");
}

#[tokio::test]
async fn a_leader_that_cannot_renew_steps_down_before_its_lease_expires() {
    let ns = shared().namespace("lease-denied").await.expect("namespace");
    let name = ns.name();
    kubectl(&[
        "-n",
        name,
        "create",
        "role",
        "lease-elector",
        "--verb=get,create,update",
        "--resource=leases.coordination.k8s.io",
    ]);
    let account = format!("--serviceaccount={name}:elector");
    let bind = ["-n", name, "create", "rolebinding", "elector"];
    kubectl(&[&bind[..], &["--role=lease-elector", &account]].concat());
    let elector = target()
        .await
        .impersonate("elector", name)
        .expect("valid account");
    let a = elect(elector.client().clone(), settings(&ns, "alpha"));
    leads_soon(&a).await;
    sleep(RETRY_PERIOD * 2).await;

    // RBAC now forbids every renewal.
    kubectl(&["-n", name, "delete", "rolebinding", "elector"]);
    let limit = RENEW_DEADLINE + Duration::from_secs(5);
    let took = within(limit, "alpha steps down", || !a.is_leader()).await;
    let stepped_down = Timestamp::now();
    let held = spec(&ns).await;
    assert_eq!(held.holder_identity.as_deref(), Some("alpha"));
    let renewed = held.renew_time.expect("renewTime").0;
    let expires = renewed + SignedDuration::from_secs(3);
    assert!(
        stepped_down < expires,
        "stepped down at {stepped_down}, after the Lease expired at {expires}"
    );
    assert!(took <= RENEW_DEADLINE + SLACK, "took {took:?}");
    a.release().await;
}
