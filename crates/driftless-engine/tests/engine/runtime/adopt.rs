//! Objects that exist before an App applies them: adopted and recorded in
//! the sync history and the audit log, or refused by an App that adopts
//! nothing.

use driftless_engine::store::{AdoptedObject, DriftAction, SyncResult};
use driftless_testenv::shared;

use super::WAIT;
use super::support::{
    Repo, app, applied, config, config_map, kubectl, kubectl_get, start, wait_status,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adoptions_are_recorded_or_refused() {
    let ns = shared().namespace("engine-adopt").await.expect("namespace");
    let adopting = format!("adopt-{}", std::process::id());
    let strict = format!("strict-{}", std::process::id());
    for name in ["a", "b"] {
        kubectl(&[
            "create",
            "configmap",
            name,
            "-n",
            ns.name(),
            "--from-literal=v=by-hand",
        ]);
    }
    let repo = Repo::new();
    repo.write("adopting/a.yaml", &config_map("a", "git"));
    repo.write("strict/b.yaml", &config_map("b", "git"));
    let c1 = repo.commit("first");
    let dir = tempfile::tempdir().expect("temp dir");
    let apps = app(&adopting, "adopting", &ns, "")
        + &app(&strict, "strict", &ns, "  adoptExisting: false");
    let running = start(&config(dir.path(), &repo, &apps), &dir.path().join("data"));

    wait_status(&running, &adopting, WAIT, "c1 applied", applied(&c1)).await;
    assert_eq!(kubectl_get(ns.name(), "configmap/a", "{.data.v}"), "git");
    let store = running.engine.store();
    let history = store.history(&adopting, 1).expect("history");
    let object = format!("v1/ConfigMap/{}/a", ns.name());
    assert_eq!(
        history[0].adopted,
        [AdoptedObject {
            object: object.clone(),
            previous_managers: vec!["kubectl-create".to_owned()],
        }],
        "{history:?}"
    );
    let audit = store.audit(Some(&adopting), 10).expect("audit");
    let adoption = audit
        .iter()
        .find(|e| e.action == DriftAction::Adopted)
        .unwrap_or_else(|| panic!("no adoption in {audit:?}"));
    assert_eq!(adoption.object, object);
    assert_eq!(adoption.manager.as_deref(), Some("kubectl-create"));

    let status = wait_status(&running, &strict, WAIT, "b refused", |s| {
        s.last_error.is_some()
    })
    .await;
    let error = status.last_error.unwrap_or_default();
    assert!(
        error.contains("/b ") && error.contains("adoptExisting: false"),
        "{error}"
    );
    assert_eq!(
        kubectl_get(ns.name(), "configmap/b", "{.data.v}"),
        "by-hand"
    );
    let history = store.history(&strict, 1).expect("history");
    assert_eq!(history[0].result, SyncResult::Failed, "{history:?}");
    assert!(history[0].adopted.is_empty());
    running.engine.shutdown().await;
}
