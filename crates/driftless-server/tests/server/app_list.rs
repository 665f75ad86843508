//! `GET /api/v1/apps`: selection by health, sync status, labels and name, paging
//! with `continue`, refused parameters, and the answer time at 10,000 Apps.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use driftless_api::status::{
    AppStatus, Condition, ConditionStatus, HealthStatus, ResourceStatus, SyncStatus,
};
use driftless_api::{Config, Document, Naming, Time};
use driftless_server::ServerState;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::TestServer;
use crate::openapi::assert_matches_schema;

/// The answer time the list must keep at 10,000 Apps.
const BOUND: Duration = Duration::from_millis(200);

/// A config of `apps` (name, labels). Names `NAMESPACE.NAME` make it a config of
/// custom resources as the controller reads them: each App in its namespace,
/// beside a GitSource of that namespace.
fn config(apps: &[(&str, Value)]) -> Config {
    let object = |kind: &str, metadata: Value, spec: Value| {
        json!({"apiVersion": "driftless.dev/v1alpha1", "kind": kind,
               "metadata": metadata, "spec": spec})
    };
    let source_spec =
        json!({"url": "https://git.example.com/platform.git", "ref": {"branch": "main"}});
    let app_spec = json!({"sourceRef": {"name": "platform"}});
    let mut namespaces = BTreeSet::new();
    let mut docs = Vec::new();
    for (name, labels) in apps {
        let metadata = match name.split_once('.') {
            Some((ns, short)) => {
                namespaces.insert(ns);
                json!({"name": short, "namespace": ns, "labels": labels})
            }
            None => json!({"name": name, "labels": labels}),
        };
        docs.push(object("App", metadata, app_spec.clone()));
    }
    let naming = if namespaces.is_empty() {
        docs.push(object(
            "GitSource",
            json!({"name": "platform"}),
            source_spec,
        ));
        Naming::Plain
    } else {
        for ns in namespaces {
            let metadata = json!({"name": "platform", "namespace": ns});
            docs.push(object("GitSource", metadata, source_spec.clone()));
        }
        Naming::Namespaced {
            cross_namespace: false,
        }
    };
    let docs = docs.into_iter().enumerate().map(|(i, value)| Document {
        file: "apps.yaml".into(),
        index: i + 1,
        value,
    });
    Config::from_named_documents(docs, naming).expect("valid config")
}

fn status(sync: SyncStatus, health: HealthStatus) -> AppStatus {
    AppStatus {
        sync,
        health,
        ..AppStatus::default()
    }
}

/// Serves the state of `s` with `config` in force; returns the base URL.
async fn serve_with(s: &TestServer, config: Config) -> String {
    let config = Arc::new(config);
    let state: ServerState = s.state.clone().config(move || config.clone());
    let listener = driftless_server::router::bind(([127, 0, 0, 1], 0).into())
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(driftless_server::router::serve(
        listener,
        state,
        std::future::pending(),
    ));
    base
}

async fn list(s: &TestServer, base: &str, query: &str) -> (StatusCode, Value) {
    let resp = s
        .client
        .get(format!("{base}/api/v1/apps{query}"))
        .send()
        .await
        .expect("request");
    let status = resp.status();
    let body: Value = resp.json().await.expect("a JSON answer");
    assert_matches_schema(
        driftless_server::router::openapi(),
        "get",
        "/api/v1/apps",
        status,
        &body,
    );
    (status, body)
}

fn names(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| a["name"].as_str().expect("name"))
        .collect()
}

/// Six Apps: web-1/web-2 (prod, team web), api-1 (prod, team api), api-2
/// (staging), batch (no labels), and old (in the store, gone from the config).
async fn six_apps(s: &TestServer) -> String {
    use HealthStatus::{Degraded, Healthy, Missing, Progressing};
    use SyncStatus::{OutOfSync, Synced, Unknown};
    let statuses = [
        ("web-1", status(Synced, Healthy)),
        ("web-2", status(OutOfSync, Degraded)),
        ("api-1", status(Synced, Progressing)),
        ("api-2", status(OutOfSync, Missing)),
        ("batch", status(Unknown, HealthStatus::Unknown)),
        ("old", status(Synced, Healthy)),
    ];
    s.store
        .put_apps(statuses.iter().map(|(n, st)| (*n, st)))
        .expect("seed");
    let config = config(&[
        ("web-1", json!({"env": "prod", "team": "web"})),
        ("web-2", json!({"env": "prod", "team": "web"})),
        ("api-1", json!({"env": "prod", "team": "api"})),
        ("api-2", json!({"env": "staging", "team": "api"})),
        ("batch", json!({})),
    ]);
    serve_with(s, config).await
}

#[tokio::test]
async fn each_filter_selects_and_the_summary_counts_the_selection() {
    let s = TestServer::start().await;
    let base = six_apps(&s).await;
    let (status, all) = list(&s, &base, "").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(
        names(&all),
        ["api-1", "api-2", "batch", "old", "web-1", "web-2"]
    );
    assert_eq!(all["summary"]["total"], 6);
    assert_eq!(
        all["summary"]["sync"],
        json!({"OutOfSync": 2, "Synced": 3, "Unknown": 1})
    );
    assert_eq!(all["remaining"], 0);
    assert!(all.get("continue").is_none(), "{all}");
    for (query, expected) in [
        ("?health=Degraded", &["web-2"][..]),
        ("?health=degraded,missing", &["api-2", "web-2"]),
        ("?sync=Synced", &["api-1", "old", "web-1"]),
        ("?sync=OutOfSync&health=Missing", &["api-2"]),
        ("?label=env%3Dprod", &["api-1", "web-1", "web-2"]),
        ("?label=env%3Dprod,team%3Dweb", &["web-1", "web-2"]),
        ("?label=env%3D%3Dstaging", &["api-2"]),
        // `!=` also selects Apps without the label, as in Kubernetes.
        ("?label=env!%3Dprod", &["api-2", "batch", "old"]),
        ("?label=team", &["api-1", "api-2", "web-1", "web-2"]),
        ("?label=!team", &["batch", "old"]),
        ("?q=API", &["api-1", "api-2"]),
        ("?q=-2", &["api-2", "web-2"]),
        ("?q=web&sync=Synced&label=env%3Dprod", &["web-1"]),
        ("?q=nothing", &[]),
        (
            "?health=&label=&q=",
            &["api-1", "api-2", "batch", "old", "web-1", "web-2"],
        ),
    ] {
        let (status, page) = list(&s, &base, query).await;
        assert_eq!(status, StatusCode::OK, "{query}: {page}");
        assert_eq!(names(&page), expected, "{query}");
        assert_eq!(page["summary"]["total"], expected.len(), "{query}");
    }
    let (_, prod) = list(&s, &base, "?label=env%3Dprod").await;
    assert_eq!(
        prod["summary"]["health"],
        json!({"Degraded": 1, "Healthy": 1, "Missing": 0, "Progressing": 1,
               "Suspended": 0, "Unknown": 0})
    );
    // The items are the whole statuses.
    let (_, degraded) = list(&s, &base, "?health=Degraded").await;
    assert_eq!(degraded["items"][0]["sync"], "OutOfSync");
    assert!(
        degraded["items"][0]["lastUpdateTime"].is_string(),
        "{degraded}"
    );
}

#[tokio::test]
async fn pages_continue_after_the_last_name_while_apps_come_and_go() {
    let s = TestServer::start().await;
    let all: Vec<String> = (0..25).map(|i| format!("app-{i:02}")).collect();
    let healthy = status(SyncStatus::Synced, HealthStatus::Healthy);
    s.store
        .put_apps(all.iter().map(|n| (n.as_str(), &healthy)))
        .expect("seed");
    let base = serve_with(&s, config(&[])).await;
    let (_, first) = list(&s, &base, "?limit=10").await;
    assert_eq!(names(&first), all[..10]);
    assert_eq!(
        (&first["remaining"], &first["summary"]["total"]),
        (&json!(15), &json!(25))
    );
    let token = first["continue"].as_str().expect("a token").to_owned();
    // Between two pages an App before the cursor goes and one after it comes:
    // the next page neither repeats nor skips an App that stayed.
    assert!(s.store.remove_app("app-03").expect("remove"));
    s.store.put_app("app-15b", &healthy).expect("add");
    let (_, second) = list(&s, &base, &format!("?limit=10&continue={token}")).await;
    let mut expected: Vec<&str> = all[10..20].iter().map(String::as_str).collect();
    expected.insert(6, "app-15b");
    expected.truncate(10);
    assert_eq!(names(&second), expected);
    assert_eq!(second["summary"]["total"], 25);
    let token = second["continue"].as_str().expect("a token").to_owned();
    let (_, last) = list(&s, &base, &format!("?limit=10&continue={token}")).await;
    assert_eq!(
        names(&last),
        ["app-19", "app-20", "app-21", "app-22", "app-23", "app-24"]
    );
    assert_eq!(last["remaining"], 0);
    assert!(last.get("continue").is_none(), "the last page: {last}");
    // Paging keeps the filter given with it.
    let (_, page) = list(&s, &base, "?limit=2&q=app-2").await;
    assert_eq!(names(&page), ["app-20", "app-21"]);
    let token = page["continue"].as_str().expect("a token").to_owned();
    let (_, page) = list(&s, &base, &format!("?limit=2&q=app-2&continue={token}")).await;
    assert_eq!(names(&page), ["app-22", "app-23"]);
}

#[tokio::test]
async fn bad_parameters_answer_400_naming_the_parameter() {
    let s = TestServer::start().await;
    let base = six_apps(&s).await;
    for (query, named) in [
        (
            "?health=Fine",
            "query parameter health: unknown health \"Fine\"",
        ),
        (
            "?health=Healthy,,Degraded",
            "query parameter health: empty entry",
        ),
        (
            "?sync=InSync",
            "query parameter sync: unknown sync status \"InSync\"",
        ),
        ("?label=env%3Da%3Db", "query parameter label: \"env=a=b\""),
        (
            "?label=env+in+(a,b)",
            "query parameter label: \"env in (a\": set-based",
        ),
        (
            "?limit=0",
            "query parameter limit: \"0\" is not a whole number from 1 to 1000",
        ),
        ("?limit=1001", "query parameter limit: \"1001\""),
        ("?limit=ten", "query parameter limit: \"ten\""),
        (
            "?continue=bm90LWEtdG9rZW4",
            "query parameter continue: not a continue token",
        ),
        (
            "?continue=%25%25",
            "query parameter continue: not a continue token",
        ),
        ("?helth=Degraded", "unknown field `helth`"),
    ] {
        let (status, body) = list(&s, &base, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        let message = body["error"].as_str().expect("an error message");
        assert!(message.contains(named), "{query}: {message}");
    }
}

#[tokio::test]
async fn controller_names_select_by_labels_and_by_namespace() {
    let s = TestServer::start().await;
    let degraded = status(SyncStatus::OutOfSync, HealthStatus::Degraded);
    let healthy = status(SyncStatus::Synced, HealthStatus::Healthy);
    s.store
        .put_apps([
            ("team-a.web", &healthy),
            ("team-a.api", &degraded),
            ("team-b.web", &degraded),
        ])
        .expect("seed");
    let config = config(&[
        ("team-a.web", json!({"tier": "front"})),
        ("team-a.api", json!({"tier": "back"})),
        ("team-b.web", json!({"tier": "front"})),
    ]);
    let base = serve_with(&s, config).await;
    for (query, expected) in [
        ("?label=tier%3Dfront", &["team-a.web", "team-b.web"][..]),
        ("?label=tier%3Dfront&health=Degraded", &["team-b.web"]),
        ("?q=team-a.", &["team-a.api", "team-a.web"]),
        ("?q=.web", &["team-a.web", "team-b.web"]),
    ] {
        let (status, page) = list(&s, &base, query).await;
        assert_eq!(status, StatusCode::OK, "{query}: {page}");
        assert_eq!(names(&page), expected, "{query}");
    }
    let (_, page) = list(&s, &base, "?limit=1").await;
    let token = page["continue"].as_str().expect("a token").to_owned();
    let (_, next) = list(&s, &base, &format!("?limit=1&continue={token}")).await;
    assert_eq!(
        (names(&page), names(&next)),
        (vec!["team-a.api"], vec!["team-a.web"])
    );
}

/// A status as a reconciled App has it: conditions, revisions, a few objects.
fn realistic(i: usize) -> AppStatus {
    let (sync, health) = match i % 100 {
        0 => (SyncStatus::OutOfSync, HealthStatus::Degraded),
        1..=4 => (SyncStatus::Synced, HealthStatus::Progressing),
        _ => (SyncStatus::Synced, HealthStatus::Healthy),
    };
    let revision = driftless_api::history::Revision {
        ref_label: "main".into(),
        sha: format!("{i:040x}"),
        chart: None,
    };
    let resource = |kind: &str, name: String| ResourceStatus {
        api_version: "apps/v1".into(),
        kind: kind.into(),
        namespace: format!("team-{}", i % 50),
        name,
        sync,
        health,
        message: None,
    };
    AppStatus {
        conditions: vec![Condition::new(
            "Ready",
            ConditionStatus::from(health == HealthStatus::Healthy),
            "Reconciled",
            format!("applied main@{i:07x}"),
        )],
        last_applied: Some(revision.clone()),
        last_attempted: Some(revision),
        sync,
        health,
        resources: (0..8)
            .map(|r| {
                resource(
                    if r == 0 { "Deployment" } else { "ConfigMap" },
                    format!("app-{i}-{r}"),
                )
            })
            .collect(),
        last_sync_time: Some(Time::now()),
        ..AppStatus::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_apps_answer_within_200_ms() {
    const APPS: usize = 10_000;
    let s = TestServer::start().await;
    let names: Vec<String> = (0..APPS).map(|i| format!("app-{i:05}")).collect();
    let statuses: Vec<AppStatus> = (0..APPS).map(realistic).collect();
    s.store
        .put_apps(names.iter().map(String::as_str).zip(&statuses))
        .expect("seed 10,000 Apps");
    let labelled: Vec<(&str, Value)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                n.as_str(),
                json!({"team": format!("t{}", i % 20), "env": "prod"}),
            )
        })
        .collect();
    let base = serve_with(&s, config(&labelled)).await;
    let (_, last_page) = list(&s, &base, "?limit=1&q=app-09998").await;
    let near_end = last_page["items"][0]["name"]
        .as_str()
        .expect("found")
        .to_owned();
    let token = driftless_api::list::continue_after(&near_end);
    let queries = [
        "".to_owned(),
        "?limit=1000".to_owned(),
        "?health=Degraded".to_owned(),
        "?sync=OutOfSync,Unknown&health=Degraded,Missing".to_owned(),
        "?label=team%3Dt7,env%3Dprod".to_owned(),
        "?q=app-04".to_owned(),
        format!("?continue={token}"),
    ];
    let mut report = Vec::new();
    for query in &queries {
        // The best of three: the bound is on the server, not on a busy test machine.
        let mut best = Duration::MAX;
        let mut page = Value::Null;
        for _ in 0..3 {
            let start = Instant::now();
            let resp = s
                .client
                .get(format!("{base}/api/v1/apps{query}"))
                .send()
                .await
                .expect("request");
            assert_eq!(resp.status(), StatusCode::OK, "{query}");
            let body = resp.bytes().await.expect("body");
            best = best.min(start.elapsed());
            page = serde_json::from_slice(&body).expect("a JSON answer");
        }
        assert!(page["summary"]["total"].is_u64(), "{page}");
        report.push(format!("{query:<50} {:>6.1} ms", best.as_secs_f64() * 1e3));
        assert!(
            best < BOUND,
            "GET /api/v1/apps{query} took {best:?} at {APPS} Apps:\n{}",
            report.join("\n")
        );
        match query.as_str() {
            "" => {
                assert_eq!(page["items"].as_array().map(Vec::len), Some(500));
                assert_eq!(
                    (&page["remaining"], &page["summary"]["total"]),
                    (&json!(9500), &json!(APPS))
                );
            }
            "?health=Degraded" => assert_eq!(page["summary"]["total"], APPS / 100),
            "?label=team%3Dt7,env%3Dprod" => assert_eq!(page["summary"]["total"], APPS / 20),
            _ => {}
        }
    }
    eprintln!(
        "GET /api/v1/apps at {APPS} Apps (best of 3):\n{}",
        report.join("\n")
    );
}

#[test]
fn the_document_describes_the_parameters_and_the_page() {
    let doc = driftless_server::router::openapi();
    let get = &doc["paths"]["/api/v1/apps"]["get"];
    let parameters = get["parameters"].as_array().expect("parameters");
    let named: Vec<&str> = parameters
        .iter()
        .map(|p| p["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(named, ["health", "sync", "label", "q", "limit", "continue"]);
    for p in parameters {
        assert_eq!(
            (&p["in"], &p["required"]),
            (&json!("query"), &json!(false)),
            "{p}"
        );
        assert!(
            p["description"].as_str().is_some_and(|d| d.len() > 20),
            "{p}"
        );
    }
    let limit = &parameters[4]["schema"];
    assert_eq!(
        (&limit["minimum"], &limit["maximum"]),
        (&json!(1), &json!(driftless_api::list::MAX_APP_PAGE)),
        "{limit}"
    );
    let page = &doc["components"]["schemas"]["AppList"];
    for field in ["items", "remaining", "summary"] {
        assert!(
            page["required"]
                .as_array()
                .is_some_and(|r| r.iter().any(|f| f == field)),
            "{field} is always sent: {page:#}"
        );
    }
    assert!(page["properties"]["continue"].is_object(), "{page:#}");
}
