//! The running engine against a real Git repository and the real API server.

mod adopt;
mod charts;
mod hooks;
mod hosts;
mod incremental;
mod metrics;
mod remote;
mod status;
mod support;
mod watch_log;

use std::time::Duration;

use driftless_engine::control::{AppControl, EngineControl};
use driftless_engine::store::{DriftAction, HealthStatus, SyncResult, SyncStatus, SyncTrigger};
use driftless_testenv::shared;

use support::{Repo, app, applied, config, config_map, kubectl, kubectl_get, start, wait_status};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_applied_pruned_and_recorded_and_a_broken_one_changes_nothing() {
    let ns = shared()
        .namespace("engine-follow")
        .await
        .expect("namespace");
    let name = format!("follow-{}", std::process::id());
    let repo = Repo::new();
    repo.write("app/a.yaml", &config_map("a", "1"));
    repo.write("app/b.yaml", &config_map("b", "1"));
    let c1 = repo.commit("first");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = config(dir.path(), &repo, &app(&name, "app", &ns, "  prune: true"));
    let running = start(&path, &dir.path().join("data"));

    let status = wait_status(&running, &name, WAIT, "c1 applied", applied(&c1)).await;
    assert_eq!(status.sync, SyncStatus::Synced);
    assert_eq!(status.health, HealthStatus::Healthy);
    assert_eq!(status.resources.len(), 2, "{status:?}");
    assert_eq!(kubectl_get(ns.name(), "configmap/a", "{.data.v}"), "1");
    let history = running.engine.store().history(&name, 10).expect("history");
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].result, SyncResult::Succeeded);
    assert_eq!(history[0].start.author, driftless_testenv::git::AUTHOR);
    assert_eq!(history[0].start.subject, "first");
    assert_eq!(history[0].counts.created, 2);

    repo.write("app/a.yaml", &config_map("a", "2"));
    repo.remove("app/b.yaml");
    let c2 = repo.commit("second: a=2, no b");
    wait_status(&running, &name, WAIT, "c2 applied", applied(&c2)).await;
    assert_eq!(kubectl_get(ns.name(), "configmap/a", "{.data.v}"), "2");
    assert_eq!(
        kubectl_get(ns.name(), "configmap/b", "{.metadata.name}"),
        ""
    );
    let newest = &running.engine.store().history(&name, 1).expect("history")[0];
    assert_eq!(
        (newest.counts.updated, newest.counts.deleted),
        (1, 1),
        "{newest:?}"
    );
    assert_eq!(newest.start.subject, "second: a=2, no b");

    // A commit outside the App's directory moves it without writing anything.
    let version = kubectl_get(ns.name(), "configmap/a", "{.metadata.resourceVersion}");
    repo.write("elsewhere/notes.yaml", &config_map("notes", "1"));
    let c2b = repo.commit("not this app");
    wait_status(&running, &name, WAIT, "moved to c2b", applied(&c2b)).await;
    let version_after = kubectl_get(ns.name(), "configmap/a", "{.metadata.resourceVersion}");
    assert_eq!(version, version_after, "nothing was written");
    let history = running.engine.store().history(&name, 10).expect("history");
    assert_eq!(
        history.len(),
        2,
        "no entry for a commit that changes nothing here"
    );

    // Housekeeping removes the snapshots no App uses any more and keeps the live one.
    let snapshots = dir.path().join("data/cache/sources/snapshots");
    let tree = |sha: &str| repo.git(&["rev-parse", &format!("{sha}^{{tree}}")]);
    let (old_tree, live_tree) = (tree(&c1), tree(&c2b));
    let deadline = std::time::Instant::now() + WAIT;
    while snapshots.join(&old_tree).exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !snapshots.join(&old_tree).exists(),
        "snapshot of the first commit is still there"
    );
    assert!(
        snapshots.join(&live_tree).is_dir(),
        "the live snapshot was removed"
    );

    repo.write("app/a.yaml", "kind: [unclosed\n");
    let c3 = repo.commit("broken");
    let status = wait_status(&running, &name, WAIT, "c3 refused", |s| {
        s.last_attempted.as_ref().is_some_and(|r| r.sha == c3) && s.last_error.is_some()
    })
    .await;
    assert_eq!(
        status.last_applied.as_ref().map(|r| r.sha.as_str()),
        Some(c2b.as_str())
    );
    assert_eq!(status.sync, SyncStatus::OutOfSync);
    let error = status.last_error.expect("an error");
    assert!(
        error.contains("a.yaml"),
        "the error names the file: {error}"
    );
    assert_eq!(kubectl_get(ns.name(), "configmap/a", "{.data.v}"), "2");
    let newest = &running.engine.store().history(&name, 1).expect("history")[0];
    assert_eq!(newest.result, SyncResult::Failed);
    assert_eq!(newest.start.revision.sha, c3);

    // The next good commit recovers.
    repo.write("app/a.yaml", &config_map("a", "4"));
    let c4 = repo.commit("fixed");
    let status = wait_status(&running, &name, WAIT, "c4 applied", applied(&c4)).await;
    assert_eq!(status.last_error, None);
    assert_eq!(status.sync, SyncStatus::Synced);
    assert_eq!(kubectl_get(ns.name(), "configmap/a", "{.data.v}"), "4");
    running.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_reverted_and_audited_with_its_manager() {
    let ns = shared().namespace("engine-drift").await.expect("namespace");
    let name = format!("drift-{}", std::process::id());
    let repo = Repo::new();
    repo.write("app/a.yaml", &config_map("a", "git"));
    let c1 = repo.commit("first");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = config(
        dir.path(),
        &repo,
        &app(&name, "app", &ns, "  selfHeal: true"),
    );
    let running = start(&path, &dir.path().join("data"));
    wait_status(&running, &name, WAIT, "c1 applied", applied(&c1)).await;

    kubectl(&[
        "patch",
        "-n",
        ns.name(),
        "configmap",
        "a",
        "-p",
        r#"{"data":{"v":"edited"}}"#,
    ]);
    let store = running.engine.store().clone();
    driftless_testenv::wait_until(WAIT, "the drift to be audited", || {
        let store = store.clone();
        let name = name.clone();
        async move {
            store
                .audit(Some(&name), 10)
                .expect("audit reads")
                .iter()
                .any(|e| e.action == DriftAction::Reverted)
        }
    })
    .await
    .expect("drift audited");
    let events = store.audit(Some(&name), 10).expect("audit");
    let event = events
        .iter()
        .find(|e| e.action == DriftAction::Reverted)
        .expect("a revert");
    assert!(
        event.object.contains("ConfigMap") && event.object.contains("/a"),
        "{event:?}"
    );
    assert!(
        event.fields.iter().any(|f| f.contains("data.v")),
        "{event:?}"
    );
    let manager = event.manager.as_deref().unwrap_or_default();
    assert!(manager.contains("kubectl"), "{event:?}");
    assert_eq!(kubectl_get(ns.name(), "configmap/a", "{.data.v}"), "git");
    let metrics = running.engine.metrics().render();
    assert!(
        metrics.contains(r#"driftless_drift_events_total{action="Reverted"} 1"#),
        "{metrics}"
    );

    // Suspended: drift is reported, not reverted; resume takes Git back.
    let control = EngineControl::new(store.clone(), running.engine.queue().clone());
    control.suspend(&name, "test").expect("suspend");
    wait_status(&running, &name, WAIT, "suspended", |s| {
        s.health == HealthStatus::Suspended
    })
    .await;
    kubectl(&[
        "patch",
        "-n",
        ns.name(),
        "configmap",
        "a",
        "-p",
        r#"{"data":{"v":"by hand"}}"#,
    ]);
    driftless_testenv::wait_until(WAIT, "the drift to be reported", || {
        let store = store.clone();
        let name = name.clone();
        async move {
            let events = store.audit(Some(&name), 10).expect("audit reads");
            events.iter().any(|e| e.action == DriftAction::Reported)
        }
    })
    .await
    .expect("drift reported");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        kubectl_get(ns.name(), "configmap/a", "{.data.v}"),
        "by hand"
    );
    let status = store.app(&name).expect("reads").expect("known");
    assert_eq!(status.sync, SyncStatus::OutOfSync);
    let drifted = status.resources.iter().find(|r| r.name == "a");
    assert_eq!(
        drifted.map(|r| r.sync),
        Some(SyncStatus::OutOfSync),
        "the drifted object is marked: {:?}",
        status.resources
    );
    control.resume(&name, "test").expect("resume");
    wait_status(&running, &name, WAIT, "synced again", |s| {
        s.sync == SyncStatus::Synced
    })
    .await;
    assert_eq!(kubectl_get(ns.name(), "configmap/a", "{.data.v}"), "git");
    running.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_without_self_heal_stays_shown_after_a_health_refresh() {
    let ns = shared()
        .namespace("engine-drift-shown")
        .await
        .expect("namespace");
    let name = format!("shown-{}", std::process::id());
    let repo = Repo::new();
    repo.write("app/a.yaml", &config_map("a", "git"));
    repo.write("app/b.yaml", &config_map("b", "git"));
    let c1 = repo.commit("first");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = config(dir.path(), &repo, &app(&name, "app", &ns, ""));
    let running = start(&path, &dir.path().join("data"));
    wait_status(&running, &name, WAIT, "c1 applied", applied(&c1)).await;
    kubectl(&[
        "patch",
        "-n",
        ns.name(),
        "configmap",
        "a",
        "-p",
        r#"{"data":{"v":"by hand"}}"#,
    ]);
    let drifted = wait_status(&running, &name, WAIT, "the drift shown", |s| {
        s.sync == SyncStatus::OutOfSync
    })
    .await;
    // A routine reconcile of the same render only refreshes health.
    running
        .engine
        .queue()
        .trigger(&name, SyncTrigger::Interval)
        .expect("trigger");
    let refreshed = wait_status(&running, &name, WAIT, "a health refresh", |s| {
        s.last_update_time > drifted.last_update_time
    })
    .await;
    assert_eq!(refreshed.sync, SyncStatus::OutOfSync, "{refreshed:?}");
    let marks: Vec<(String, SyncStatus)> = refreshed
        .resources
        .iter()
        .map(|r| (r.name.clone(), r.sync))
        .collect();
    assert_eq!(
        marks,
        [
            ("a".to_owned(), SyncStatus::OutOfSync),
            ("b".to_owned(), SyncStatus::Synced)
        ]
    );
    assert_eq!(
        kubectl_get(ns.name(), "configmap/a", "{.data.v}"),
        "by hand"
    );
    running.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependent_app_waits_for_its_dependency_to_be_healthy() {
    let ns = shared().namespace("engine-deps").await.expect("namespace");
    let pid = std::process::id();
    let (first, second) = (format!("base-{pid}"), format!("user-{pid}"));
    let repo = Repo::new();
    repo.write(
        "base/deploy.yaml",
        "apiVersion: apps/v1
kind: Deployment
metadata: {name: db}
spec:
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: example.com/db:1}]}
",
    );
    repo.write("user/cm.yaml", &config_map("user", "1"));
    let c1 = repo.commit("both");
    let dir = tempfile::tempdir().expect("temp dir");
    let apps = app(&first, "base", &ns, "  wait: true\n  timeout: 60s")
        + &app(&second, "user", &ns, &format!("  dependsOn: [{first}]"));
    let path = config(dir.path(), &repo, &apps);
    let running = start(&path, &dir.path().join("data"));
    wait_status(&running, &second, WAIT, "c1 applied", applied(&c1)).await;
    let base = wait_status(&running, &first, WAIT, "healthy", |s| {
        s.health == HealthStatus::Healthy
    })
    .await;
    assert_eq!(base.last_applied.map(|r| r.sha), Some(c1.clone()));
    let store = running.engine.store();
    let base_sync = &store.history(&first, 1).expect("history")[0];
    let user_sync = &store.history(&second, 1).expect("history")[0];
    let base_done = base_sync.finish_time.expect("finished");
    assert!(
        user_sync.start_time >= base_done,
        "{second} started at {} before {first} finished at {base_done}",
        user_sync.start_time
    );
    running.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_pins_suspend_holds_and_a_restart_keeps_the_history() {
    let ns = shared()
        .namespace("engine-rollback")
        .await
        .expect("namespace");
    let name = format!("pin-{}", std::process::id());
    let repo = Repo::new();
    repo.write("app/a.yaml", &config_map("a", "1"));
    let c1 = repo.commit("one");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = config(dir.path(), &repo, &app(&name, "app", &ns, ""));
    let data = dir.path().join("data");
    let running = start(&path, &data);
    wait_status(&running, &name, WAIT, "c1 applied", applied(&c1)).await;
    repo.write("app/a.yaml", &config_map("a", "2"));
    let c2 = repo.commit("two");
    wait_status(&running, &name, WAIT, "c2 applied", applied(&c2)).await;

    let control = EngineControl::new(
        running.engine.store().clone(),
        running.engine.queue().clone(),
    );
    control
        .rollback(&name, Some(&c1[..8]), "test")
        .expect("rollback");
    let status = wait_status(&running, &name, WAIT, "rolled back", applied(&c1)).await;
    assert_eq!(status.pinned.map(|r| r.sha), Some(c1.clone()));
    assert_eq!(status.sync, SyncStatus::OutOfSync, "pinned behind Git");
    let pinned = status.conditions.iter().find(|c| c.type_ == "Pinned");
    let message = pinned.map(|c| c.message.as_str()).unwrap_or_default();
    assert!(
        message.contains(&c1[..12]) && message.contains(&c2[..12]),
        "{message}"
    );
    assert_eq!(kubectl_get(ns.name(), "configmap/a", "{.data.v}"), "1");
    let newest = &running.engine.store().history(&name, 1).expect("history")[0];
    assert_eq!(newest.start.trigger, SyncTrigger::Rollback);

    // A new commit does not move a pinned App.
    repo.write("app/a.yaml", &config_map("a", "3"));
    let c3 = repo.commit("three");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = running
        .engine
        .store()
        .app(&name)
        .expect("reads")
        .expect("known");
    assert_eq!(status.last_applied.map(|r| r.sha), Some(c1.clone()));
    assert_eq!(kubectl_get(ns.name(), "configmap/a", "{.data.v}"), "1");

    control.resume(&name, "test").expect("resume");
    let status = wait_status(
        &running,
        &name,
        WAIT,
        "c3 applied after resume",
        applied(&c3),
    )
    .await;
    assert_eq!(status.sync, SyncStatus::Synced);
    assert!(
        status.conditions.iter().all(|c| c.type_ != "Pinned"),
        "{status:?}"
    );

    control.suspend(&name, "test").expect("suspend");
    repo.write("app/a.yaml", &config_map("a", "4"));
    repo.commit("four");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(kubectl_get(ns.name(), "configmap/a", "{.data.v}"), "3");
    let err = control
        .sync(&name, "test")
        .expect_err("a suspended App does not sync");
    assert!(err.to_string().contains("suspended"), "{err}");
    let before = running
        .engine
        .store()
        .history(&name, 100)
        .expect("history")
        .len();
    running.engine.shutdown().await;
    drop((control, running));

    let again = start(&path, &data);
    let status = again
        .engine
        .store()
        .app(&name)
        .expect("reads")
        .expect("kept");
    assert!(status.suspended, "{status:?}");
    assert_eq!(status.last_applied.map(|r| r.sha), Some(c3));
    let history = again.engine.store().history(&name, 100).expect("history");
    assert_eq!(history.len(), before, "{history:?}");
    assert!(history.len() >= 4, "{history:?}");
    again.engine.shutdown().await;
}

fn deployment(node_selector: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      nodeSelector: {node_selector}
      containers: [{{name: web, image: example.com/web:1}}]
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_commit_cancels_the_health_wait_of_the_previous_one() {
    let ns = shared()
        .namespace("engine-preempt")
        .await
        .expect("namespace");
    let name = format!("preempt-{}", std::process::id());
    let repo = Repo::new();
    // No node has this label: the rollout never finishes.
    repo.write("app/web.yaml", &deployment("{pool: nowhere}"));
    let stuck = repo.commit("unschedulable");
    let dir = tempfile::tempdir().expect("temp dir");
    let extra = "  wait: true\n  timeout: 5m";
    let path = config(dir.path(), &repo, &app(&name, "app", &ns, extra));
    let running = start(&path, &dir.path().join("data"));
    let store = running.engine.store().clone();
    driftless_testenv::wait_until(WAIT, "the stuck sync to start", || {
        let store = store.clone();
        let name = name.clone();
        async move {
            let history = store.history(&name, 1).expect("history");
            history
                .first()
                .is_some_and(|r| r.result == SyncResult::Running)
        }
    })
    .await
    .expect("sync running");

    repo.write("app/web.yaml", &deployment("{}"));
    let fixed = repo.commit("schedulable");
    let start = std::time::Instant::now();
    wait_status(&running, &name, WAIT, "the fix applied", applied(&fixed)).await;
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    let history = store.history(&name, 10).expect("history");
    let first = history
        .iter()
        .find(|r| r.start.revision.sha == stuck)
        .expect("stuck sync");
    assert_eq!(first.result, SyncResult::Interrupted, "{history:?}");
    assert_eq!(history[0].result, SyncResult::Succeeded, "{history:?}");
    running.engine.shutdown().await;
}
