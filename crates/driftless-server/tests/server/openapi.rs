//! The served OpenAPI document: it lists exactly the routes the server answers, and
//! what the server sends validates against the schemas it documents (checked with a
//! JSON Schema validator, formats included).

use std::collections::BTreeSet;

use driftless_engine::store::{AuditEvent, DriftAction};
use driftless_server::Method;
use reqwest::StatusCode;
use serde_json::Value;

use crate::api::{post, seed};
use crate::hooks::{fixture, github};
use crate::{TOKEN, TestServer};

/// The routes of the HTTP API, as docs/api.md promises them.
const CONTRACT: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("post", "/hooks/{receiver}"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/sources"),
    ("get", "/api/v1/notifiers"),
    ("get", "/api/v1/ocisources"),
    ("get", "/api/v1/helmrepositories"),
    ("get", "/api/v1/clusters"),
    ("get", "/api/v1/apps"),
    ("get", "/api/v1/apps/{name}"),
    ("get", "/api/v1/apps/{name}/history"),
    ("get", "/api/v1/apps/{name}/events"),
    ("get", "/api/v1/apps/{name}/operations"),
    ("get", "/api/v1/apps/{name}/tree"),
    ("get", "/api/v1/apps/{name}/diff"),
    ("post", "/api/v1/apps/{name}/sync"),
    ("post", "/api/v1/apps/{name}/suspend"),
    ("post", "/api/v1/apps/{name}/resume"),
    ("post", "/api/v1/apps/{name}/rollback"),
];

async fn document(s: &TestServer) -> Value {
    let resp = s
        .client
        .get(s.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.expect("the document is JSON")
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, methods)| {
            let methods = methods.as_object().expect("methods");
            methods.keys().map(move |m| (m.clone(), path.clone()))
        })
        .collect()
}

#[tokio::test]
async fn the_document_lists_exactly_the_routes_served() {
    let s = TestServer::start().await;
    seed(&s);
    let doc = document(&s).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let listed = documented(&doc);
    let contract: BTreeSet<(String, String)> = CONTRACT
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        listed, contract,
        "documented routes differ from the contract"
    );
    let served: BTreeSet<(String, String)> = driftless_server::router::served()
        .into_iter()
        .map(|(m, p)| (m.as_str().to_owned(), p.to_owned()))
        .collect();
    assert_eq!(served, listed, "the router and the document disagree");
    for (method, path) in &listed {
        // The route exists: the fallback answers "no such route" for anything else.
        let url = s.url(&path.replace("{name}", "web").replace("{receiver}", "gh"));
        let request = if method == Method::Get.as_str() {
            s.client.get(url)
        } else {
            s.client.post(url).bearer_auth(TOKEN)
        };
        let body = request
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("body");
        assert!(
            !body.contains("no such route"),
            "{method} {path} is not routed"
        );
    }
    let (status, body) = get(&s, "/api/v1/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_matches_schema(&doc, "get", "/api/v1/apps/{name}", status, &body);
}

/// A `GET` whose answer is JSON.
async fn get(s: &TestServer, path: &str) -> (StatusCode, Value) {
    let (status, body) = crate::api::get(s, path).await;
    (status, serde_json::from_str(&body).expect("json body"))
}

/// Validates `body`, answered with `status`, against the schema the document gives
/// for that answer of `method path`.
pub(crate) fn assert_matches_schema(
    doc: &Value,
    method: &str,
    path: &str,
    status: StatusCode,
    body: &Value,
) {
    let errors = schema_errors(doc, method, path, status, body);
    assert!(
        errors.is_empty(),
        "{method} {path} answered {status} with a body its schema refuses: {errors:?}\n{body:#}"
    );
}

/// What the documented schema of that answer finds wrong with `body`.
fn schema_errors(
    doc: &Value,
    method: &str,
    path: &str,
    status: StatusCode,
    body: &Value,
) -> Vec<String> {
    let answer = &doc["paths"][path][method]["responses"][status.as_u16().to_string()];
    let schema = &answer["content"]["application/json"]["schema"];
    let mut root = match schema {
        Value::Object(_) => schema.clone(),
        // `true`, any JSON: the document itself.
        Value::Bool(true) => return Vec::new(),
        _ => panic!("{method} {path}: answer {status} is not documented"),
    };
    // The schema's references point into the document's components.
    root["components"] = doc["components"].clone();
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("{method} {path}: the schema does not compile: {e}"));
    validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[tokio::test]
async fn every_answer_validates_against_its_documented_schema() {
    let s = TestServer::start().await;
    seed(&s);
    s.store
        .record_audit(AuditEvent {
            id: 0,
            time: driftless_api::Time::now(),
            app: "web".into(),
            object: "apps/v1/Deployment/default/web".into(),
            fields: vec!["spec.replicas".into()],
            manager: Some("kubectl-edit".into()),
            action: DriftAction::Reported,
        })
        .expect("audit");
    let doc = document(&s).await;
    let mut checked = 0;
    let mut check = |method: &str, path: &str, (status, body): (StatusCode, Value)| {
        assert_matches_schema(&doc, method, path, status, &body);
        checked += 1;
        (status, body)
    };

    let (_, apps) = check("get", "/api/v1/apps", get(&s, "/api/v1/apps").await);
    assert_eq!(apps["items"][0]["name"], "web", "{apps}");
    let (status, _) = check("get", "/api/v1/apps", get(&s, "/api/v1/apps?limit=0").await);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let one = "/api/v1/apps/{name}";
    check("get", one, get(&s, "/api/v1/apps/web").await);
    let (status, _) = check("get", one, get(&s, "/api/v1/apps/nope").await);
    assert_eq!(status, StatusCode::NOT_FOUND);
    let history = "/api/v1/apps/{name}/history";
    let (_, syncs) = check("get", history, get(&s, "/api/v1/apps/web/history").await);
    assert_eq!(syncs.as_array().map(Vec::len), Some(2));
    let events = "/api/v1/apps/{name}/events";
    let (_, drift) = check("get", events, get(&s, "/api/v1/apps/web/events").await);
    assert_eq!(drift[0]["action"], "reported");
    let (_, sources) = check("get", "/api/v1/sources", get(&s, "/api/v1/sources").await);
    assert_eq!(sources[0]["artifact"]["revision"]["sha"], "bbb222");
    let notifiers = "/api/v1/notifiers";
    let (_, told) = check("get", notifiers, get(&s, notifiers).await);
    assert_eq!(
        (told[0]["name"].clone(), told[0]["failed"].clone()),
        ("team-chat".into(), 1.into())
    );
    let repositories = "/api/v1/helmrepositories";
    let (_, listed) = check("get", repositories, get(&s, repositories).await);
    assert_eq!(listed, serde_json::json!([]));
    let artifacts = "/api/v1/ocisources";
    let (_, listed) = check("get", artifacts, get(&s, artifacts).await);
    assert_eq!(listed, serde_json::json!([]));
    let (_, clusters) = check("get", "/api/v1/clusters", get(&s, "/api/v1/clusters").await);
    assert_eq!(clusters[1]["conditions"][0]["status"], "False");

    let act = |action: &str| format!("/api/v1/apps/{{name}}/{action}");
    let (status, _) = check(
        "post",
        &act("sync"),
        post(&s, "/api/v1/apps/web/sync", None).await,
    );
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let suspend = post(&s, "/api/v1/apps/web/suspend", Some(TOKEN)).await;
    let (_, suspended) = check("post", &act("suspend"), suspend);
    assert_eq!(suspended["suspended"], true);
    let refused = post(&s, "/api/v1/apps/web/sync", Some(TOKEN)).await;
    assert_eq!(check("post", &act("sync"), refused).0, StatusCode::CONFLICT);
    check(
        "post",
        &act("resume"),
        post(&s, "/api/v1/apps/web/resume", Some(TOKEN)).await,
    );
    let rollback = "/api/v1/apps/web/rollback?to=aaa111";
    let (_, pinned) = check(
        "post",
        &act("rollback"),
        post(&s, rollback, Some(TOKEN)).await,
    );
    assert_eq!(pinned["pinned"]["sha"], "aaa111");
    let nowhere = post(&s, "/api/v1/apps/web/rollback?to=fff", Some(TOKEN)).await;
    assert_eq!(
        check("post", &act("rollback"), nowhere).0,
        StatusCode::CONFLICT
    );
    // The audit log of those operations, the refused ones with the engine's reason.
    let operations = "/api/v1/apps/{name}/operations";
    let (_, log) = check(
        "get",
        operations,
        get(&s, "/api/v1/apps/web/operations").await,
    );
    let seen: Vec<_> = log
        .as_array()
        .expect("a list")
        .iter()
        .map(|o| {
            (
                o["operation"].as_str(),
                o["by"].as_str(),
                o["error"].is_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (Some("rollback"), Some("apiToken"), true),
            (Some("rollback"), Some("apiToken"), false),
            (Some("resume"), Some("apiToken"), false),
            (Some("sync"), Some("apiToken"), true),
            (Some("suspend"), Some("apiToken"), false),
        ],
        "{log}"
    );
    let (status, _) = check(
        "get",
        operations,
        get(&s, "/api/v1/apps/nope/operations").await,
    );
    assert_eq!(status, StatusCode::NOT_FOUND);

    let hook = "/hooks/{receiver}";
    let (status, _) = check(
        "post",
        hook,
        github(&s, "push", fixture("github-push.json")).await,
    );
    assert_eq!(status, StatusCode::OK);
    let (_, ignored) = check(
        "post",
        hook,
        github(&s, "issues", fixture("github-issues.json")).await,
    );
    assert_eq!(ignored["ignored"], true);
    let (status, _) = check("post", hook, post(&s, "/hooks/nope", None).await);
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, served) = check(
        "get",
        "/api/v1/openapi.json",
        get(&s, "/api/v1/openapi.json").await,
    );
    assert_eq!(served, doc);
    assert_eq!(checked, 23);
}

#[test]
fn the_schemas_are_those_of_the_shared_types() {
    let doc = driftless_server::router::openapi();
    let schemas = &doc["components"]["schemas"];
    let app = &schemas["NamedAppStatus"];
    for field in ["name", "sync", "health", "suspended"] {
        assert!(
            app["required"]
                .as_array()
                .is_some_and(|r| r.iter().any(|f| f == field)),
            "{field} is always sent: {app:#}"
        );
    }
    let condition = &schemas["Condition"]["properties"]["lastTransitionTime"];
    assert_eq!(condition["format"], "date-time", "{condition}");
    assert_eq!(
        schemas["HealthStatus"]["oneOf"].as_array().map(Vec::len),
        Some(6),
        "{:#}",
        schemas["HealthStatus"]
    );
    // The validator is not blind: a wrong time or an unknown health is refused.
    let mut app = serde_json::json!({"name": "web", "sync": "Synced", "health": "Healthy",
        "suspended": false, "lastSyncTime": "2026-12-04T19:00:00Z"});
    let ok = StatusCode::OK;
    assert!(schema_errors(doc, "get", "/api/v1/apps/{name}", ok, &app).is_empty());
    app["lastSyncTime"] = "yesterday".into();
    assert!(!schema_errors(doc, "get", "/api/v1/apps/{name}", ok, &app).is_empty());
    app["lastSyncTime"] = "2026-12-04T19:00:00Z".into();
    app["health"] = "Fine".into();
    assert!(!schema_errors(doc, "get", "/api/v1/apps/{name}", ok, &app).is_empty());
}

#[tokio::test]
async fn reads_are_checked_when_anonymous_reads_are_off() {
    use driftless_api::Role;
    use driftless_server::auth::{Access, Token};
    let s = TestServer::start().await;
    seed(&s);
    let tokens = vec![
        Token::new("viewer", Role::Read, "viewer-token"),
        Token::new("deployer", Role::Operate, "deployer-token"),
    ];
    let access = Access::new(false, tokens).expect("distinct tokens");
    let state = s.state.clone().access(access);
    let listener = driftless_server::router::bind(([127, 0, 0, 1], 0).into())
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(driftless_server::router::serve(
        listener,
        state,
        std::future::pending(),
    ));
    let doc = driftless_server::router::openapi();
    let read = |path: &str, token: Option<&str>| {
        let mut request = s.client.get(format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request
    };
    for (path, route) in [
        ("/api/v1/apps", "/api/v1/apps"),
        ("/api/v1/apps/web/history", "/api/v1/apps/{name}/history"),
        ("/api/v1/sources", "/api/v1/sources"),
        ("/api/v1/notifiers", "/api/v1/notifiers"),
        ("/api/v1/helmrepositories", "/api/v1/helmrepositories"),
        ("/api/v1/ocisources", "/api/v1/ocisources"),
        ("/api/v1/clusters", "/api/v1/clusters"),
    ] {
        let resp = read(path, None).send().await.expect("request");
        let status = resp.status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        let body: Value = resp.json().await.expect("json");
        assert_matches_schema(doc, "get", route, status, &body);
        let resp = read(path, Some("viewer-token"))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), StatusCode::OK, "{path} with a read token");
    }
    // Probes and the document stay open; an action still checks its own role.
    let resp = read("/healthz", None).send().await.expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = s
        .client
        .post(format!("{base}/api/v1/apps/web/suspend"))
        .bearer_auth("deployer-token")
        .send()
        .await
        .expect("request");
    let status = resp.status();
    assert_eq!(status, StatusCode::FORBIDDEN, "suspend needs admin");
    let body: Value = resp.json().await.expect("json");
    assert_matches_schema(doc, "post", "/api/v1/apps/{name}/suspend", status, &body);
}
