//! The web UI in a real browser: headless Chromium over WebDriver against a
//! real `driftless serve` that follows a Git repository and deploys to the test
//! cluster. Screenshots of every page land in `target/ui-screenshots/` (of
//! `CARGO_TARGET_DIR` when set).

mod hosts;
mod inspect;
mod pages;
mod support;

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{Value, json};

use support::{
    ADMIN_TOKEN, Browser, OPERATE_TOKEN, PAGE_DEADLINE, Served, app, browser, eventually,
};

/// A ConfigMap manifest.
fn config_map(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{limit: \"{value}\"}}\n"
    )
}

/// A Deployment no node can run, so it exceeds its progress deadline: Degraded.
const STUCK: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: stuck}
spec:
  replicas: 1
  progressDeadlineSeconds: 2
  selector: {matchLabels: {app: stuck}}
  template:
    metadata: {labels: {app: stuck}}
    spec:
      nodeSelector: {disk: none-such}
      containers: [{name: app, image: registry.invalid/stuck:1}]
";

async fn api(served: &Served, path: &str) -> Value {
    reqwest::get(served.url(path))
        .await
        .expect("GET answers")
        .json()
        .await
        .expect("JSON")
}

/// A form body of `fields`.
fn form(fields: &[(&str, &str)]) -> String {
    let mut body = form_urlencoded::Serializer::new(String::new());
    for (name, value) in fields {
        body.append_pair(name, value);
    }
    body.finish()
}

/// Rows of the App table, by App name.
async fn row_names(b: &Browser) -> Vec<String> {
    let mut names = Vec::new();
    for row in b
        .client
        .find_all(Locator::Css("#apps tbody tr[data-app]"))
        .await
        .unwrap_or_default()
    {
        if let Ok(Some(name)) = row.attr("data-app").await {
            names.push(name);
        }
    }
    names
}

/// Signs in through the login form.
async fn sign_in(b: &Browser, served: &Served, token: &str) {
    b.client
        .goto(&served.url("/login"))
        .await
        .expect("login page");
    b.client
        .find(Locator::Css("#token"))
        .await
        .expect("token field")
        .send_keys(token)
        .await
        .expect("type the token");
    b.click("form.login button").await;
    b.wait_text(".who", "Signed in as").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_shows_apps_live_and_acts_only_with_a_token() {
    let Some(b) = browser().await else { return };
    let started = Instant::now();
    let ns = driftless_testenv::shared()
        .namespace("ui")
        .await
        .expect("test namespace");
    let apps = app("web", "web", ns.name(), "  selfHeal: true")
        + &app("stuck", "stuck", ns.name(), "  interval: 2s");
    let served = Served::start(
        &[
            ("web/cm.yaml", &config_map("settings", "1")),
            ("stuck/deploy.yaml", STUCK),
        ],
        &apps,
    )
    .await;

    // The list: every App with its health, read-only without a token.
    b.client.goto(&served.url("/")).await.expect("list page");
    let web = b.wait_text("tr[data-app='web']", "Healthy").await;
    assert!(
        web.contains("Synced") && web.contains("Initial platform"),
        "{web}"
    );
    assert!(web.contains(&format!("test/{}", ns.name())), "{web}");
    let stuck = b.wait_text("tr[data-app='stuck']", "Degraded").await;
    assert!(
        stuck.contains("timed out progressing"),
        "the row says why: {stuck}"
    );
    let summary = b.text(".summary").await;
    assert!(
        summary.contains("2\nApps") || summary.contains("2Apps") || summary.contains("2 Apps"),
        "{summary}"
    );
    assert!(b.text(".who").await.contains("Read-only"));
    b.screenshot("apps").await;

    // A commit pushed to Git appears without a reload.
    b.client
        .execute("window.notReloaded = true; return true;", Vec::new())
        .await
        .expect("mark the page");
    served
        .repo
        .write("web/cm.yaml", &config_map("settings", "2"));
    let sha = served.repo.push("Raise the limit");
    let short = &sha[..8];
    eventually(
        "the API reports the new commit applied",
        PAGE_DEADLINE,
        || async { api(&served, "/api/v1/apps/web").await["lastApplied"]["sha"] == sha.as_str() },
    )
    .await;
    let applied = Instant::now();
    let row = b.wait_text("tr[data-app='web']", short).await;
    let shown = applied.elapsed();
    assert!(row.contains("Raise the limit"), "{row}");
    assert!(
        shown < Duration::from_secs(3),
        "the list showed the commit {shown:?} after the store had it"
    );
    let same_page = b
        .client
        .execute("return window.notReloaded === true;", Vec::new())
        .await
        .expect("read the mark");
    assert_eq!(same_page, json!(true), "the page was reloaded");

    // Filters: typed text, and a summary count as a link.
    b.client
        .find(Locator::Css("#q"))
        .await
        .expect("text filter")
        .send_keys("stu")
        .await
        .expect("type");
    eventually(
        "the text filter leaves only `stuck`",
        PAGE_DEADLINE,
        || async { row_names(&b).await == ["stuck"] },
    )
    .await;
    b.client.goto(&served.url("/")).await.expect("list page");
    b.click(".summary a[href*='health=Degraded']").await;
    eventually(
        "the Degraded count lists only `stuck`",
        PAGE_DEADLINE,
        || async { row_names(&b).await == ["stuck"] },
    )
    .await;
    assert!(
        b.client
            .current_url()
            .await
            .expect("url")
            .as_str()
            .contains("health=Degraded")
    );

    // A Degraded App's page says why.
    b.client
        .goto(&served.url("/apps/stuck"))
        .await
        .expect("App page");
    b.wait_text("#objects", "timed out progressing").await;
    assert!(b.text("#objects").await.contains("Degraded"));
    assert!(b.text("#conditions").await.contains("Ready"));
    b.screenshot("app-degraded").await;

    // A manual change on the cluster is reverted and shows in the drift log
    // with the field manager that made it.
    let edited = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(driftless_testenv::shared().kubeconfig())
        .args([
            "-n",
            ns.name(),
            "patch",
            "configmap",
            "settings",
            "--type=merge",
        ])
        .args([
            "-p",
            r#"{"data":{"limit":"edited"}}"#,
            "--field-manager=hand-edit",
        ])
        .status()
        .expect("kubectl runs");
    assert!(edited.success(), "kubectl patch");
    eventually("the drift is recorded", PAGE_DEADLINE, || async {
        let events = api(&served, "/api/v1/apps/web/events").await;
        events
            .as_array()
            .is_some_and(|all| all.iter().any(|e| e["manager"] == "hand-edit"))
    })
    .await;
    b.client
        .goto(&served.url("/apps/web"))
        .await
        .expect("App page");
    let drift = b.wait_text("#drift", "hand-edit").await;
    assert!(
        drift.contains("settings") && drift.contains("data.limit") && drift.contains("reverted"),
        "{drift}"
    );

    // Without a token there is nothing to press, and a forged post is refused.
    b.client
        .goto(&served.url("/apps/web"))
        .await
        .expect("App page");
    b.wait_text("#objects", "settings").await;
    b.wait_text("#history", "Raise the limit").await;
    assert!(b.text("#readonly").await.contains("Read-only"));
    assert!(
        b.client
            .find_all(Locator::Css("#live form"))
            .await
            .expect("forms")
            .is_empty()
    );
    let refused = reqwest::Client::new()
        .post(served.url("/apps/web/sync"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("csrf", "guess")]))
        .send()
        .await
        .expect("POST answers");
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.expect("body").contains("read-only"));

    // Signed in with the operate token, Sync adds a history entry.
    sign_in(&b, &served, OPERATE_TOKEN).await;
    b.client
        .goto(&served.url("/apps/web"))
        .await
        .expect("App page");
    let before = api(&served, "/api/v1/apps/web/history").await;
    let syncs = before.as_array().map_or(0, Vec::len);
    assert!(
        b.client
            .find_all(Locator::Css("form[action$='/suspend']"))
            .await
            .expect("forms")
            .is_empty(),
        "operate may not suspend"
    );
    b.click("form[action='/apps/web/sync'] button").await;
    b.wait_text(".notice", "Sync requested").await;
    eventually("the sync is recorded", PAGE_DEADLINE, || async {
        let history = api(&served, "/api/v1/apps/web/history").await;
        history.as_array().map_or(0, Vec::len) > syncs && history[0]["trigger"] == "manual"
    })
    .await;
    b.wait_text("#history", "manual").await;
    b.wait_text("#operations", "ci").await;
    b.screenshot("app").await;

    // The admin may roll back to the first commit from the history.
    sign_in(&b, &served, ADMIN_TOKEN).await;
    b.client
        .goto(&served.url("/apps/web"))
        .await
        .expect("App page");
    b.click("#history form[action='/apps/web/rollback'] button")
        .await;
    b.wait_text(".notice", "Rollback requested").await;
    b.wait_text("#facts", "Pinned to").await;

    // The sources page.
    b.client
        .goto(&served.url("/sources"))
        .await
        .expect("sources page");
    let source = b.wait_text("#sources", "platform").await;
    assert!(
        source.contains("Raise the limit") && source.contains("main"),
        "{source}"
    );
    b.screenshot("sources").await;

    b.close().await;
    served.stop().await;
    eprintln!("browser test took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_from_other_sites_are_refused_even_with_the_cookie() {
    let ns = driftless_testenv::shared()
        .namespace("ui-csrf")
        .await
        .expect("test namespace");
    let served = Served::start(
        &[("web/cm.yaml", &config_map("settings", "1"))],
        &app("web", "web", ns.name(), ""),
    )
    .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    // A wrong token does not sign in.
    let wrong = client
        .post(served.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("token", "not-a-token")]))
        .send()
        .await
        .expect("POST answers");
    assert_eq!(wrong.status(), 401);
    let login = client
        .post(served.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("token", ADMIN_TOKEN)]))
        .send()
        .await
        .expect("POST answers");
    assert_eq!(login.status(), 303);
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a cookie")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(ADMIN_TOKEN),
        "the cookie does not carry the token in clear"
    );
    let session = cookie.split(';').next().expect("name=value").to_owned();
    eventually("the App is recorded", PAGE_DEADLINE, || async {
        api(&served, "/api/v1/apps/web").await["name"] == "web"
    })
    .await;
    let page = client
        .get(served.url("/apps/web"))
        .header("cookie", &session)
        .send()
        .await
        .expect("GET answers")
        .text()
        .await
        .expect("body");
    let csrf = page
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries the form token")
        .to_owned();
    let post = |headers: Vec<(&'static str, String)>, csrf: String| {
        let mut request = client
            .post(served.url("/apps/web/suspend"))
            .header("cookie", &session)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("csrf", &csrf)]));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    let cross = post(vec![("sec-fetch-site", "cross-site".into())], csrf.clone())
        .await
        .expect("answers");
    assert_eq!(cross.status(), 403);
    let origin = post(
        vec![("origin", "https://evil.example".into())],
        csrf.clone(),
    )
    .await
    .expect("answers");
    assert_eq!(origin.status(), 403);
    let forged = post(vec![], "0".repeat(64)).await.expect("answers");
    assert_eq!(forged.status(), 403);
    assert_eq!(api(&served, "/api/v1/apps/web").await["suspended"], false);
    let own = post(
        vec![
            ("origin", served.base.clone()),
            ("sec-fetch-site", "same-origin".into()),
        ],
        csrf,
    )
    .await
    .expect("answers");
    assert_eq!(own.status(), 303, "{:?}", own.text().await);
    assert_eq!(api(&served, "/api/v1/apps/web").await["suspended"], true);
    served.stop().await;
}
