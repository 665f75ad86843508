//! Hooks of a Helm chart through the engine: rendered by `helm template`
//! with their annotations, run in their phases with real Jobs, recorded in
//! the history, run again on a change or a user's sync, and never on the
//! resync of a restart.

use driftless_api::history::{HookPhase, HookResult};
use driftless_engine::control::{AppControl, EngineControl};
use driftless_engine::store::{SyncRecord, SyncTrigger};
use driftless_testenv::shared;

use super::WAIT;
use super::support::{Repo, app, applied, config, kubectl_get, start, wait_status, wait_sync};

const CHART: &str = "apiVersion: v2\nname: shop\nversion: 0.1.0\n";

/// A Job of the chart carrying Helm hook annotations.
fn hook_job(name: &str, hook: &str, extra: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  annotations:
    helm.sh/hook: {hook}
{extra}spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: main, image: 'busybox:1.36'}}]
"
    )
}

fn chart(repo: &Repo, value: &str) {
    repo.write("chart/Chart.yaml", CHART);
    repo.write(
        "chart/templates/settings.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings}}\ndata: {{v: \"{value}\"}}\n"
        ),
    );
    repo.write(
        "chart/templates/migrate.yaml",
        &hook_job(
            "migrate",
            "pre-install,pre-upgrade",
            "    helm.sh/hook-weight: \"-1\"\n",
        ),
    );
    repo.write(
        "chart/templates/seed.yaml",
        &hook_job("seed", "pre-install", "    helm.sh/hook-weight: \"1\"\n"),
    );
    repo.write(
        "chart/templates/notify.yaml",
        &hook_job(
            "notify",
            "post-install,post-upgrade",
            "    helm.sh/hook-delete-policy: hook-succeeded\n",
        ),
    );
    repo.write(
        "chart/templates/test.yaml",
        &hook_job("smoke-test", "test", ""),
    );
}

fn runs(record: &SyncRecord) -> Vec<(HookPhase, String, HookResult)> {
    record
        .hooks
        .iter()
        .map(|h| {
            let name = h.object.rsplit('/').next().unwrap_or_default().to_owned();
            (h.phase, name, h.result)
        })
        .collect()
}

fn uid(ns: &str, job: &str) -> String {
    kubectl_get(ns, &format!("job/{job}"), "{.metadata.uid}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_chart_hooks_run_in_their_phases_when_a_sync_writes_or_is_asked_for() {
    let ns = shared().namespace("engine-hooks").await.expect("namespace");
    let name = format!("hooks-{}", std::process::id());
    let repo = Repo::new();
    chart(&repo, "1");
    let c1 = repo.commit("chart with hooks");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = config(
        dir.path(),
        &repo,
        &app(&name, "chart", &ns, "  prune: true"),
    );
    let data = dir.path().join("data");
    let running = start(&path, &data);

    wait_status(&running, &name, WAIT, "c1 applied", applied(&c1)).await;
    let first = wait_sync(&running, &name, &c1, WAIT, |_| true).await;
    let ok = HookResult::Succeeded;
    assert_eq!(
        runs(&first),
        [
            (HookPhase::PreSync, "migrate".to_owned(), ok),
            (HookPhase::PreSync, "seed".to_owned(), ok),
            (HookPhase::PostSync, "notify".to_owned(), ok),
        ],
        "{first:#?}"
    );
    assert_eq!(
        kubectl_get(ns.name(), "configmap/settings", "{.data.v}"),
        "1"
    );
    assert_eq!(
        kubectl_get(ns.name(), "job/notify", "{.metadata.name}"),
        "",
        "hook-succeeded"
    );
    assert_eq!(
        kubectl_get(ns.name(), "job/smoke-test", "{.metadata.name}"),
        "",
        "test hooks never run"
    );
    let migrated = uid(ns.name(), "migrate");
    assert!(!migrated.is_empty());
    let status = running
        .engine
        .store()
        .app(&name)
        .expect("reads")
        .expect("known");
    let resources: Vec<&str> = status.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(resources, ["settings"], "hooks are not App objects");

    // A restart re-applies the live revision: nothing is written, no hook runs.
    running.engine.shutdown().await;
    drop(running);
    let running = start(&path, &data);
    let synced = status.last_sync_time;
    wait_status(&running, &name, WAIT, "re-applied after the restart", |s| {
        s.last_sync_time != synced
    })
    .await;
    assert_eq!(
        uid(ns.name(), "migrate"),
        migrated,
        "no hook on a no-op resync"
    );
    let history = running.engine.store().history(&name, 10).expect("history");
    assert_eq!(history.len(), 1, "{history:#?}");

    // A user's sync runs them although nothing changed.
    let control = EngineControl::new(
        running.engine.store().clone(),
        running.engine.queue().clone(),
    );
    control.sync(&name, "test").expect("sync requested");
    let manual = wait_sync(&running, &name, &c1, WAIT, |r| {
        r.start.trigger == SyncTrigger::Manual
    })
    .await;
    assert_eq!(runs(&manual).len(), 3, "{manual:#?}");
    let again = uid(ns.name(), "migrate");
    assert_ne!(again, migrated, "BeforeHookCreation made a new one");

    // A commit that changes an object runs them again.
    chart(&repo, "2");
    let c2 = repo.commit("settings v2");
    wait_status(&running, &name, WAIT, "c2 applied", applied(&c2)).await;
    let second = wait_sync(&running, &name, &c2, WAIT, |_| true).await;
    assert_eq!(runs(&second).len(), 3, "{second:#?}");
    assert_ne!(uid(ns.name(), "migrate"), again);
    running.engine.shutdown().await;
}
