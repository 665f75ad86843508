//! A commit re-renders only the Apps whose render read something it changed
//! (their own directory, a shared kustomize base, a Jsonnet library outside
//! the App), and applies only the Apps whose objects changed: the others
//! move to the commit without a request, a history entry or a write.

use std::collections::BTreeMap;
use std::time::Duration;

use driftless_testenv::{TestNamespace, shared};

use super::metrics::{scrape, value};
use super::support::{
    Repo, Running, app, applied, config, config_map, kubectl_get, start, wait_status,
};

const WAIT: Duration = Duration::from_secs(90);

/// The Apps of the test: name suffix, path, and the ConfigMap each deploys.
const APPS: [(&str, &str, &str); 5] = [
    ("a", "apps/a", "a"),
    ("b", "apps/b", "b"),
    ("dev", "overlays/dev", "dev-settings"),
    ("prod", "overlays/prod", "prod-settings"),
    ("js", "apps/js", "js"),
];

/// Renders run so far by the engine.
fn renders(running: &Running) -> f64 {
    let samples = scrape(&running.engine.metrics().render());
    value(
        &samples,
        "driftless_renders_total",
        &[("result", "Rendered")],
    )
}

/// Each ConfigMap's resourceVersion and the times in its managedFields.
fn versions(ns: &TestNamespace) -> BTreeMap<&'static str, (String, String)> {
    APPS.iter()
        .map(|(_, _, object)| {
            let at = format!("configmap/{object}");
            let version = kubectl_get(ns.name(), &at, "{.metadata.resourceVersion}");
            let times = kubectl_get(ns.name(), &at, "{.metadata.managedFields[*].time}");
            assert!(!version.is_empty(), "{object} exists");
            (*object, (version, times))
        })
        .collect()
}

/// Sync history entries of each App.
fn history_lengths(running: &Running, names: &[String]) -> Vec<usize> {
    names
        .iter()
        .map(|n| {
            running
                .engine
                .store()
                .history(n, 100)
                .expect("history")
                .len()
        })
        .collect()
}

/// The objects whose resourceVersion or managedFields changed between two looks.
fn written(
    before: &BTreeMap<&'static str, (String, String)>,
    after: &BTreeMap<&'static str, (String, String)>,
) -> Vec<&'static str> {
    before
        .iter()
        .filter(|(object, seen)| after.get(*object) != Some(*seen))
        .map(|(object, _)| *object)
        .collect()
}

/// What one commit did: renders run, objects written, Apps with a new sync entry.
struct Effect {
    rendered: f64,
    written: Vec<&'static str>,
    recorded: Vec<String>,
}

/// Commits `message` (the files already written), waits until every App is
/// at the commit, and tells what it cost.
async fn commit(
    running: &Running,
    repo: &Repo,
    ns: &TestNamespace,
    names: &[String],
    message: &str,
) -> Effect {
    let (renders_before, objects_before) = (renders(running), versions(ns));
    let history_before = history_lengths(running, names);
    let sha = repo.commit(message);
    for name in names {
        wait_status(running, name, WAIT, message, applied(&sha)).await;
    }
    let history_after = history_lengths(running, names);
    Effect {
        rendered: renders(running) - renders_before,
        written: written(&objects_before, &versions(ns)),
        recorded: names
            .iter()
            .zip(history_before.iter().zip(&history_after))
            .filter(|(_, (b, a))| a > b)
            .map(|(n, _)| n.clone())
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_renders_and_applies_only_the_apps_whose_input_it_changed() {
    let ns = shared()
        .namespace("engine-incremental")
        .await
        .expect("namespace");
    let prefix = format!("inc-{}", std::process::id());
    let names: Vec<String> = APPS
        .iter()
        .map(|(s, _, _)| format!("{prefix}-{s}"))
        .collect();
    let repo = Repo::new();
    repo.write("apps/a/cm.yaml", &config_map("a", "1"));
    repo.write("apps/b/cm.yaml", &config_map("b", "1"));
    repo.write("base/kustomization.yaml", "resources:\n- cm.yaml\n");
    repo.write("base/cm.yaml", &config_map("settings", "1"));
    for env in ["dev", "prod"] {
        repo.write(
            &format!("overlays/{env}/kustomization.yaml"),
            &format!("resources:\n- ../../base\nnamePrefix: {env}-\n"),
        );
    }
    repo.write(
        "apps/js/main.jsonnet",
        "local lib = import '../../lib/cm.libsonnet';\nlib.cm('js')\n",
    );
    repo.write(
        "lib/cm.libsonnet",
        "{ cm(name):: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: name }, data: { v: '1' } } }\n",
    );
    let first = repo.commit("five apps");
    let dir = tempfile::tempdir().expect("temp dir");
    let apps: String = APPS
        .iter()
        .zip(&names)
        .map(|((_, path, _), name)| app(name, path, &ns, ""))
        .collect();
    let path = config(dir.path(), &repo, &apps);
    let running = start(&path, &dir.path().join("data"));
    for name in &names {
        wait_status(
            &running,
            name,
            WAIT,
            "first commit applied",
            applied(&first),
        )
        .await;
    }
    let names_of = |suffixes: &[&str]| -> Vec<String> {
        suffixes.iter().map(|s| format!("{prefix}-{s}")).collect()
    };

    // One App's directory: one render, one apply, one history entry.
    repo.write("apps/a/cm.yaml", &config_map("a", "2"));
    let effect = commit(&running, &repo, &ns, &names, "a=2").await;
    assert_eq!(effect.rendered, 1.0, "only a renders");
    assert_eq!(effect.written, ["a"]);
    assert_eq!(effect.recorded, names_of(&["a"]));
    assert_eq!(kubectl_get(ns.name(), "configmap/a", "{.data.v}"), "2");

    // A base two overlays share: both render and apply, nothing else.
    repo.write("base/cm.yaml", &config_map("settings", "2"));
    let effect = commit(&running, &repo, &ns, &names, "base: settings=2").await;
    assert_eq!(effect.rendered, 2.0, "the overlays render");
    assert_eq!(effect.written, ["dev-settings", "prod-settings"]);
    assert_eq!(effect.recorded, names_of(&["dev", "prod"]));
    assert_eq!(
        kubectl_get(ns.name(), "configmap/prod-settings", "{.data.v}"),
        "2"
    );

    // A library outside the App's directory that its render imports.
    repo.write(
        "lib/cm.libsonnet",
        "{ cm(name):: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: name }, data: { v: '2' } } }\n",
    );
    let effect = commit(&running, &repo, &ns, &names, "lib: v=2").await;
    assert_eq!(effect.rendered, 1.0, "the Jsonnet App renders");
    assert_eq!(effect.written, ["js"]);
    assert_eq!(effect.recorded, names_of(&["js"]));
    assert_eq!(kubectl_get(ns.name(), "configmap/js", "{.data.v}"), "2");

    // A file no render reads: nothing renders, nothing is applied.
    repo.write("docs/notes.md", "notes\n");
    let effect = commit(&running, &repo, &ns, &names, "docs").await;
    assert_eq!(effect.rendered, 0.0);
    assert!(effect.written.is_empty(), "{:?}", effect.written);
    assert!(effect.recorded.is_empty(), "{:?}", effect.recorded);

    // A new file in a plain App's directory renders it again (its listing
    // changed) to the same objects: the App moves without an apply.
    repo.write("apps/b/README.md", "b\n");
    let effect = commit(&running, &repo, &ns, &names, "b: readme").await;
    assert_eq!(effect.rendered, 1.0, "b renders");
    assert!(effect.written.is_empty(), "{:?}", effect.written);
    assert!(effect.recorded.is_empty(), "{:?}", effect.recorded);
    let b = running
        .engine
        .store()
        .app(&names[1])
        .expect("store reads")
        .expect("b has a status");
    assert_eq!(b.sync, driftless_engine::store::SyncStatus::Synced);

    let samples = scrape(&running.engine.metrics().render());
    let reused = value(&samples, "driftless_renders_total", &[("result", "Reused")]);
    assert!(
        reused >= 20.0,
        "the unchanged Apps of five commits reused their sets: {reused}"
    );
    running.engine.shutdown().await;
}
