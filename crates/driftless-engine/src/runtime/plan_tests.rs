//! Each branch of the reconcile decisions, from plain values: no cluster,
//! no Git, no store.

use super::*;
use crate::store::ResourceStatus;

const OLD: &str = "1111111111111111111111111111111111111111";
const NEW: &str = "2222222222222222222222222222222222222222";

/// A config with GitSource `repo` and App `web` (`suspend` as given).
fn config(suspend: bool) -> Config {
    let doc = |index, value| driftless_api::Document {
        file: "config.yaml".into(),
        index,
        value,
    };
    let docs = [
        doc(
            1,
            serde_json::json!({
                "apiVersion": driftless_api::API_VERSION,
                "kind": "GitSource",
                "metadata": {"name": "repo"},
                "spec": {"url": "https://git.example.com/repo.git", "ref": {"branch": "main"}},
            }),
        ),
        doc(
            2,
            serde_json::json!({
                "apiVersion": driftless_api::API_VERSION,
                "kind": "App",
                "metadata": {"name": "web"},
                "spec": {"sourceRef": {"name": "repo"}, "path": "apps/web", "suspend": suspend},
            }),
        ),
    ];
    Config::from_documents(docs).expect("valid config")
}

fn app(config: &Config) -> &App {
    config.app("web").expect("declared")
}

fn revision(sha: &str) -> Revision {
    let someone = driftless_source::Signature {
        name: "A".to_owned(),
        email: "a@example.com".to_owned(),
        time: "2024-05-01T12:00:00+00:00".to_owned(),
    };
    Revision {
        reference: "main".to_owned(),
        sha: sha.to_owned(),
        tag_object: None,
        author: someone.clone(),
        committer: someone,
        subject: "change".to_owned(),
        body: String::new(),
    }
}

fn stored(sha: &str) -> crate::store::Revision {
    crate::store::Revision {
        ref_label: "main".to_owned(),
        sha: sha.to_owned(),
        chart: None,
    }
}

fn applied(sha: &str, digest: &str) -> Applied {
    Applied {
        sha: sha.to_owned(),
        digest: digest.to_owned(),
    }
}

/// The status of an App in sync at `sha`, healthy, owning one object.
fn synced(sha: &str) -> AppStatus {
    AppStatus {
        last_applied: Some(stored(sha)),
        last_attempted: Some(stored(sha)),
        sync: SyncStatus::Synced,
        health: HealthStatus::Healthy,
        resources: vec![ResourceStatus {
            api_version: "v1".to_owned(),
            kind: "ConfigMap".to_owned(),
            namespace: "web".to_owned(),
            name: "settings".to_owned(),
            health: HealthStatus::Healthy,
            ..ResourceStatus::default()
        }],
        ..AppStatus::default()
    }
}

#[test]
fn a_suspended_app_stops_before_its_source_is_looked_at() {
    let latest = revision(NEW);
    let cfg = config(true);
    let status = AppStatus::default();
    let begun = start(&cfg, app(&cfg), &status, None, SyncTrigger::Manual);
    assert!(matches!(begun, Ok(Start::Suspend)), "{begun:?}");
    let cfg = config(false);
    let status = AppStatus {
        suspended: true,
        ..synced(OLD)
    };
    let begun = start(
        &cfg,
        app(&cfg),
        &status,
        Some(&latest),
        SyncTrigger::Interval,
    );
    assert!(matches!(begun, Ok(Start::Suspend)), "{begun:?}");
}

#[test]
fn an_undeclared_source_is_an_error_with_its_reason() {
    let cfg = config(false);
    let mut other = app(&cfg).clone();
    other.spec.source_ref.name = "gone".to_owned();
    let status = AppStatus::default();
    let err =
        start(&cfg, &other, &status, None, SyncTrigger::Interval).expect_err("no GitSource gone");
    assert!(matches!(&err, ReconcileError::SourceNotFound(name) if name == "GitSource gone"));
    assert_eq!(err.reason(), super::super::error::Reason::SourceNotFound);
}

#[test]
fn without_a_revision_only_a_users_sync_fetches() {
    let cfg = config(false);
    let status = AppStatus::default();
    for trigger in [
        SyncTrigger::Interval,
        SyncTrigger::Config,
        SyncTrigger::Webhook,
        SyncTrigger::Drift,
    ] {
        let begun = start(&cfg, app(&cfg), &status, None, trigger);
        assert!(matches!(begun, Ok(Start::AwaitSource)), "{trigger:?}");
    }
    let begun = start(&cfg, app(&cfg), &status, None, SyncTrigger::Manual);
    assert!(
        matches!(begun, Ok(Start::Fetch { pin: None, source }) if source.name() == "repo"),
        "{begun:?}"
    );
}

#[test]
fn a_known_revision_is_followed_except_by_a_users_sync() {
    let latest = revision(NEW);
    let cfg = config(false);
    let status = synced(OLD);
    let begun = start(
        &cfg,
        app(&cfg),
        &status,
        Some(&latest),
        SyncTrigger::Webhook,
    );
    assert!(
        matches!(&begun, Ok(Start::Follow { revision, .. }) if revision.sha == NEW),
        "{begun:?}"
    );
    let begun = start(&cfg, app(&cfg), &status, Some(&latest), SyncTrigger::Manual);
    assert!(
        matches!(begun, Ok(Start::Fetch { pin: None, .. })),
        "{begun:?}"
    );
}

#[test]
fn a_pinned_app_fetches_its_pin_whatever_the_trigger() {
    let latest = revision(NEW);
    let cfg = config(false);
    let status = AppStatus {
        pinned: Some(stored(OLD)),
        ..synced(OLD)
    };
    for trigger in [SyncTrigger::Interval, SyncTrigger::Manual] {
        let begun = start(&cfg, app(&cfg), &status, Some(&latest), trigger);
        assert!(
            matches!(begun, Ok(Start::Fetch { pin: Some(pin), .. }) if pin.sha == OLD),
            "{trigger:?}: {begun:?}"
        );
    }
}

#[test]
fn the_last_applied_set_on_a_quiet_run_only_refreshes_health() {
    let status = synced(OLD);
    let last = applied(OLD, "d1");
    for trigger in [SyncTrigger::Interval, SyncTrigger::Dependency] {
        let plan = after_render(trigger, &status, Some(&last), &applied(OLD, "d1"));
        assert_eq!(plan, AfterRender::RefreshHealth, "{trigger:?}");
    }
    // A user, a drift or a failing App re-applies the same set.
    let plan = after_render(
        SyncTrigger::Drift,
        &status,
        Some(&last),
        &applied(OLD, "d1"),
    );
    assert_eq!(plan, AfterRender::Apply { record: false });
    let failing = AppStatus {
        last_error: Some("apply failed".to_owned()),
        ..synced(OLD)
    };
    let plan = after_render(
        SyncTrigger::Interval,
        &failing,
        Some(&last),
        &applied(OLD, "d1"),
    );
    assert_eq!(plan, AfterRender::Apply { record: false });
}

#[test]
fn a_new_revision_with_the_live_objects_advances_without_an_apply() {
    let last = applied(OLD, "d1");
    let plan = after_render(
        SyncTrigger::Webhook,
        &synced(OLD),
        Some(&last),
        &applied(NEW, "d1"),
    );
    assert_eq!(
        plan,
        AfterRender::Advance {
            release_dependents: true
        }
    );
    let progressing = AppStatus {
        health: HealthStatus::Progressing,
        ..synced(OLD)
    };
    let plan = after_render(
        SyncTrigger::Interval,
        &progressing,
        Some(&last),
        &applied(NEW, "d1"),
    );
    assert_eq!(
        plan,
        AfterRender::Advance {
            release_dependents: false
        }
    );
    // Out of sync (drift reported, not healed): the new revision is applied.
    let drifted = AppStatus {
        sync: SyncStatus::OutOfSync,
        ..synced(OLD)
    };
    let plan = after_render(
        SyncTrigger::Webhook,
        &drifted,
        Some(&last),
        &applied(NEW, "d1"),
    );
    assert_eq!(plan, AfterRender::Apply { record: true });
}

#[test]
fn an_apply_is_recorded_unless_it_resyncs_the_live_revision() {
    let status = synced(OLD);
    // Changed objects at a new commit.
    let plan = after_render(
        SyncTrigger::Webhook,
        &status,
        Some(&applied(OLD, "d1")),
        &applied(NEW, "d2"),
    );
    assert_eq!(plan, AfterRender::Apply { record: true });
    // After a restart nothing was applied in this process: the live revision is re-applied quietly.
    let plan = after_render(SyncTrigger::Config, &status, None, &applied(OLD, "d1"));
    assert_eq!(plan, AfterRender::Apply { record: false });
    // A user's sync and a rollback are always in the history.
    for trigger in [SyncTrigger::Manual, SyncTrigger::Rollback] {
        let plan = after_render(
            trigger,
            &status,
            Some(&applied(OLD, "d1")),
            &applied(OLD, "d1"),
        );
        assert_eq!(plan, AfterRender::Apply { record: true }, "{trigger:?}");
    }
    // A first sync.
    let plan = after_render(
        SyncTrigger::Config,
        &AppStatus::default(),
        None,
        &applied(NEW, "d2"),
    );
    assert_eq!(plan, AfterRender::Apply { record: true });
}

#[test]
fn a_render_failure_is_recorded_once_per_revision() {
    let status = AppStatus {
        last_attempted: Some(stored(NEW)),
        ..synced(OLD)
    };
    assert!(records_render_failure(0, &status, NEW), "a first try");
    assert!(
        !records_render_failure(2, &status, NEW),
        "a retry of the same revision"
    );
    assert!(records_render_failure(2, &status, OLD), "another revision");
}

#[test]
fn the_retry_limit_stalls_the_app() {
    assert!(!stalls(None, 100));
    assert!(!stalls(Some(3), 1));
    assert!(stalls(Some(3), 2));
    assert!(stalls(Some(1), 0));
}

#[test]
fn an_empty_render_withholds_prune_only_over_live_objects() {
    assert!(prune_withheld(true, &synced(OLD)));
    assert!(!prune_withheld(true, &AppStatus::default()));
    assert!(!prune_withheld(false, &synced(OLD)));
}

#[test]
fn hooks_always_run_on_a_users_sync_and_otherwise_only_when_it_writes() {
    use driftless_kube::hooks::HookRuns;
    for trigger in [SyncTrigger::Manual, SyncTrigger::Rollback] {
        assert_eq!(hook_runs(trigger), HookRuns::Always, "{trigger:?}");
    }
    for trigger in [
        SyncTrigger::Interval,
        SyncTrigger::Webhook,
        SyncTrigger::Drift,
        SyncTrigger::Config,
        SyncTrigger::Dependency,
    ] {
        assert_eq!(hook_runs(trigger), HookRuns::WhenChanged, "{trigger:?}");
    }
}
