use super::*;

use driftless_host::record;

const SHA: &str = "4f2a9c1e0b7d4f2a9c1e0b7d4f2a9c1e0b7d4f2a";
const OLD: &str = "0123456789ab0123456789ab0123456789ab0123";

fn hosts() -> Vec<String> {
    ["h0", "h1", "h2"].map(str::to_owned).to_vec()
}

fn last(results: [HostResult; 3]) -> LastRun {
    LastRun {
        sha: SHA.to_owned(),
        hosts: hosts().into_iter().zip(results).collect(),
        drift: BTreeMap::new(),
        held: BTreeMap::new(),
    }
}

fn view(host: &str, result: HostResult, failure: Option<Failure>, message: &str) -> HostView {
    let mut record = record(host, SHA);
    record.result = result;
    record.previous = Some(OLD.to_owned());
    record.health = match result {
        HostResult::Succeeded | HostResult::Unchanged => HealthStatus::Healthy,
        HostResult::Skipped => HealthStatus::Unknown,
        _ => HealthStatus::Degraded,
    };
    record.message = (!message.is_empty()).then(|| message.to_owned());
    HostView {
        record,
        failure,
        drift: Vec::new(),
    }
}

#[test]
fn a_new_commit_or_a_rollback_deploys_everywhere() {
    use HostResult::*;
    let done = last([Succeeded, Succeeded, Succeeded]);
    let all = vec![HostAction::Deploy; 3];
    assert_eq!(
        actions(None, SHA, SyncTrigger::Interval, 0, &hosts(), false),
        all
    );
    let mut other = done.clone();
    other.sha = OLD.to_owned();
    assert_eq!(
        actions(Some(&other), SHA, SyncTrigger::Webhook, 0, &hosts(), false),
        all
    );
    assert_eq!(
        actions(Some(&done), SHA, SyncTrigger::Rollback, 0, &hosts(), false),
        all
    );
}

#[test]
fn hosts_on_the_commit_are_checked_and_a_user_sync_restores() {
    use HostResult::*;
    let done = last([Succeeded, Unchanged, Failed]);
    let check = |heal| HostAction::Check { heal };
    assert_eq!(
        actions(Some(&done), SHA, SyncTrigger::Interval, 0, &hosts(), false),
        [check(false), check(false), HostAction::Deploy]
    );
    assert_eq!(
        actions(Some(&done), SHA, SyncTrigger::Interval, 0, &hosts(), true),
        [check(true), check(true), HostAction::Deploy]
    );
    assert_eq!(
        actions(Some(&done), SHA, SyncTrigger::Manual, 0, &hosts(), false),
        [check(true), check(true), HostAction::Deploy]
    );
}

#[test]
fn a_rolled_back_commit_holds_its_host_and_the_skipped_ones_until_asked() {
    use HostResult::*;
    let stopped = last([Succeeded, RolledBack, Skipped]);
    let routine = actions(
        Some(&stopped),
        SHA,
        SyncTrigger::Interval,
        0,
        &hosts(),
        true,
    );
    assert_eq!(
        routine,
        [
            HostAction::Check { heal: true },
            HostAction::Hold,
            HostAction::Hold
        ]
    );
    // A retry after a failure is routine too, even of a user's sync.
    let retry = actions(Some(&stopped), SHA, SyncTrigger::Manual, 2, &hosts(), true);
    assert_eq!(retry, routine);
    let asked = actions(Some(&stopped), SHA, SyncTrigger::Manual, 0, &hosts(), false);
    assert_eq!(
        asked,
        [
            HostAction::Check { heal: true },
            HostAction::Deploy,
            HostAction::Deploy
        ]
    );
    // An unreachable host stops nothing for good: it and the skipped go on.
    let unreachable = last([Succeeded, Failed, Skipped]);
    assert_eq!(
        actions(
            Some(&unreachable),
            SHA,
            SyncTrigger::Interval,
            0,
            &hosts(),
            false
        )[1..],
        [HostAction::Deploy, HostAction::Deploy]
    );
}

#[test]
fn a_rollout_of_the_live_commit_is_recorded_only_when_asked() {
    let mut status = AppStatus::default();
    assert!(records_from_start(SyncTrigger::Config, &status, SHA));
    status.last_applied = Some(crate::store::Revision {
        ref_label: "main".into(),
        sha: SHA.into(),
        chart: None,
    });
    assert!(!records_from_start(SyncTrigger::Config, &status, SHA));
    assert!(!records_from_start(SyncTrigger::Interval, &status, SHA));
    assert!(records_from_start(SyncTrigger::Manual, &status, SHA));
    assert!(records_from_start(SyncTrigger::Rollback, &status, SHA));
    assert!(records_from_start(SyncTrigger::Webhook, &status, OLD));
}

#[test]
fn all_hosts_on_the_commit_make_a_healthy_synced_app() {
    let views = [
        view("h0", HostResult::Succeeded, None, ""),
        view("h1", HostResult::Unchanged, None, ""),
    ];
    let v = verdict(SHA, &views);
    assert!(v.applied);
    assert_eq!(
        (v.health, v.sync, v.reason),
        (
            HealthStatus::Healthy,
            SyncStatus::Synced,
            Reason::ReconciliationSucceeded
        )
    );
    assert_eq!(v.message, "4f2a9c1e0b7d on 2 hosts and healthy");
    let r = &v.resources[1];
    assert_eq!(
        (r.api_version.as_str(), r.kind.as_str(), r.name.as_str()),
        ("driftless.dev/v1alpha1", "Host", "h1")
    );
    assert_eq!(
        (r.sync, r.health, r.message.as_deref()),
        (SyncStatus::Synced, HealthStatus::Healthy, None)
    );
}

#[test]
fn a_rollback_names_the_host_the_check_output_and_the_hosts_not_started() {
    let views = [
        view("h0", HostResult::Succeeded, None, ""),
        view(
            "h1",
            HostResult::RolledBack,
            None,
            "health check failed: exit 1: not ready",
        ),
        view("h2", HostResult::Skipped, None, driftless_host::SKIPPED),
    ];
    let v = verdict(SHA, &views);
    assert!(!v.applied);
    assert_eq!(
        (v.health, v.sync, v.reason),
        (
            HealthStatus::Degraded,
            SyncStatus::OutOfSync,
            Reason::RolloutFailed
        )
    );
    assert_eq!(
        v.message,
        "host h1: 4f2a9c1e0b7d rolled back to 0123456789ab: health check failed: exit 1: not ready; \
         rollout stopped before h2"
    );
    assert_eq!(v.resources[1].health, HealthStatus::Degraded);
    assert_eq!(v.resources[2].sync, SyncStatus::OutOfSync);
    assert_eq!(
        v.resources[2].message.as_deref(),
        Some(driftless_host::SKIPPED)
    );
}

#[test]
fn unreachable_and_failed_hosts_have_reasons_of_their_own() {
    let views = [
        view(
            "h0",
            HostResult::Failed,
            Some(Failure::Unreachable),
            "host h0: connecting to 127.0.0.1:9: refused",
        ),
        view(
            "h1",
            HostResult::Failed,
            Some(Failure::Release),
            "beforeSwitch hook exited with status 1",
        ),
    ];
    let v = verdict(SHA, &views);
    assert_eq!(v.reason, Reason::HostUnreachable);
    assert_eq!(
        v.message,
        "host h0: connecting to 127.0.0.1:9: refused; host h1: beforeSwitch hook exited with status 1"
    );
    let v = verdict(SHA, &views[1..]);
    assert_eq!(v.reason, Reason::ReleaseFailed);
}

#[test]
fn drift_left_in_place_puts_the_host_out_of_sync_and_names_the_files() {
    let mut drifted = view("h0", HostResult::Unchanged, None, "");
    drifted.drift = describe(&[
        FileDrift::Modified {
            path: "etc/app.conf".into(),
        },
        FileDrift::ModeChanged {
            path: "bin/start".into(),
            expected: 0o755,
            found: 0o644,
        },
        FileDrift::Added { path: "x".into() },
        FileDrift::Removed { path: "y".into() },
        FileDrift::CurrentMoved {
            expected: SHA.into(),
            found: Some(OLD.into()),
        },
    ]);
    let v = verdict(SHA, &[drifted]);
    assert_eq!(
        (v.sync, v.health),
        (SyncStatus::OutOfSync, HealthStatus::Healthy)
    );
    assert_eq!(
        v.resources[0].message.as_deref(),
        Some(
            "drift: etc/app.conf modified, bin/start mode 644 (expected 755), x added, y removed, \
             current points to 0123456789ab instead of 4f2a9c1e0b7d"
        )
    );
}

#[test]
fn history_counts_first_and_new_releases_and_fails_on_any_host() {
    let mut first = view("h0", HostResult::Succeeded, None, "").record;
    first.previous = None;
    let records = [
        first,
        view("h1", HostResult::Succeeded, None, "").record,
        view("h2", HostResult::Unchanged, None, "").record,
    ];
    let (result, counts) = outcome(&records);
    assert_eq!(result, SyncResult::Succeeded);
    assert_eq!(
        (counts.created, counts.updated, counts.unchanged),
        (1, 1, 1)
    );
    let (result, _) = outcome(&[view("h0", HostResult::RolledBack, None, "x").record]);
    assert_eq!(result, SyncResult::Failed);
}
