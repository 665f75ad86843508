//! The pages over HTTP without a browser, on a store seeded with many Apps:
//! paging, sorting, filters, escaping, the event stream, and the badges of
//! an App a sync window holds and of a manual sync waiting.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use driftless_api::status::{AppStatus, HealthStatus, SyncStatus};
use driftless_engine::control::EngineControl;
use driftless_engine::metrics::Metrics;
use driftless_engine::queue::{Outcome, QueueConfig, WorkQueue};
use driftless_engine::store::Store;
use driftless_server::ServerState;
use driftless_server::auth::Access;
use driftless_server::router::{bind, serve};

/// A server over a store holding `apps` Apps: every third Degraded, the rest Healthy.
async fn seeded(apps: usize) -> (String, Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let statuses: Vec<(String, AppStatus)> = (0..apps)
        .map(|i| {
            let health = if i % 3 == 0 {
                HealthStatus::Degraded
            } else {
                HealthStatus::Healthy
            };
            let status = AppStatus {
                sync: SyncStatus::Synced,
                health,
                last_sync_time: Some(driftless_api::Time::from_unix_ms(1_000 + i as u64)),
                ..AppStatus::default()
            };
            (format!("app-{i:05}"), status)
        })
        .collect();
    store
        .put_apps(statuses.iter().map(|(n, s)| (n.as_str(), s)))
        .expect("seed");
    let (queue, _) = WorkQueue::start(QueueConfig::default(), |_| async { Outcome::Succeeded });
    let state = ServerState::new(
        store.clone(),
        Arc::new(EngineControl::new(store.clone(), queue)),
        Arc::new(Metrics::default()),
    )
    .access(Access::new(true, Vec::new()).expect("no tokens"));
    state
        .readiness()
        .store(true, std::sync::atomic::Ordering::Release);
    let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve(listener, state, std::future::pending()));
    // The workspace's reqwest carries no crypto provider of its own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    (format!("http://{addr}"), store, dir)
}

async fn page(url: &str) -> (u16, String) {
    let resp = reqwest::get(url).await.expect("GET answers");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

fn rows(html: &str) -> Vec<&str> {
    html.split("<tr data-app=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect()
}

/// The `href` of the link marked `rel="next"`, decoded.
fn next_link(html: &str) -> Option<String> {
    let before = html.split(r#"" rel="next""#).next()?;
    if before.len() == html.len() {
        return None;
    }
    let href = before.rsplit("href=\"").next()?;
    Some(href.replace("&amp;", "&"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_pages_through_many_apps_fifty_at_a_time() {
    let (base, _store, _dir) = seeded(120).await;
    let (status, first) = page(&format!("{base}/")).await;
    assert_eq!(status, 200);
    assert_eq!(rows(&first).len(), 50);
    assert_eq!(rows(&first)[0], "app-00000");
    assert!(
        first.contains("<strong>120</strong>Apps"),
        "the summary counts every App"
    );
    assert!(first.contains("<strong>40</strong>Degraded"));
    let mut seen = rows(&first).len();
    let mut next = next_link(&first);
    let mut pages = 1;
    while let Some(href) = next.take() {
        assert!(pages < 10, "paging ends");
        let (status, html) = page(&format!("{base}{href}")).await;
        assert_eq!(status, 200, "{href}");
        seen += rows(&html).len();
        next = next_link(&html);
        pages += 1;
    }
    assert_eq!((seen, pages), (120, 3));

    // Sorted by last change, the newest first.
    let (_, changed) = page(&format!("{base}/?sort=changed")).await;
    assert_eq!(rows(&changed)[0], "app-00119");
    let (_, second) = page(&format!("{base}/?sort=changed&page=1")).await;
    assert_eq!(rows(&second)[0], "app-00069");

    // Filters narrow the list; the summary counts stay links to switch filters.
    let (_, degraded) = page(&format!("{base}/?health=Degraded&q=app-000")).await;
    let names = rows(&degraded);
    assert!(!names.is_empty() && names.iter().all(|n| n.starts_with("app-000")));
    assert!(
        degraded.contains(r#"href="/?q=app-000&amp;health=Healthy""#),
        "{degraded}"
    );
    let (status, bad) = page(&format!("{base}/?health=Fine")).await;
    assert_eq!(status, 400);
    assert!(bad.contains("query parameter health"), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_and_errors_written_by_users_are_escaped() {
    let (base, store, _dir) = seeded(0).await;
    let hostile = "<img src=x onerror=alert(1)>";
    store
        .put_app(
            hostile,
            &AppStatus {
                last_error: Some(format!("render failed: {hostile}")),
                ..AppStatus::default()
            },
        )
        .expect("put");
    let (_, list) = page(&format!("{base}/")).await;
    assert!(!list.contains("<img"), "{list}");
    assert!(list.contains("&lt;img src=x onerror=alert(1)&gt;"));
    let href = "/apps/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E";
    assert!(list.contains(href), "{list}");
    let (status, detail) = page(&format!("{base}{href}")).await;
    assert_eq!(status, 200);
    assert!(!detail.contains("<img") && detail.contains("render failed: &lt;img"));
    // A cookie whose token is no longer configured reads like no cookie.
    let stale = reqwest::Client::new()
        .get(format!("{base}/"))
        .header("cookie", "driftless_token=7374616c65")
        .send()
        .await
        .expect("GET answers");
    assert_eq!(stale.status(), 200);
    assert!(stale.text().await.expect("body").contains("Read-only"));
    let (status, missing) = page(&format!("{base}/apps/none")).await;
    assert_eq!(status, 404);
    assert!(missing.contains("No such App"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_announced_on_the_event_stream_within_a_second() {
    let (base, store, _dir) = seeded(3).await;
    let mut stream = reqwest::get(format!("{base}/ui/events?app=app-00001"))
        .await
        .expect("stream opens");
    assert_eq!(
        stream.headers()["content-type"].to_str().expect("ascii"),
        "text/event-stream"
    );
    // A change of another App is not announced on this stream.
    store
        .update_app("app-00002", |s| s.health = HealthStatus::Progressing)
        .expect("update");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let changed = Instant::now();
    store
        .update_app("app-00001", |s| s.health = HealthStatus::Degraded)
        .expect("update");
    let chunk = tokio::time::timeout(Duration::from_secs(1), stream.chunk())
        .await
        .expect("an event within a second")
        .expect("read")
        .expect("a chunk");
    let text = String::from_utf8_lossy(&chunk);
    assert!(
        text.contains("event: change") && text.contains("data: app-00001"),
        "{text}"
    );
    assert!(!text.contains("app-00002"), "{text}");
    assert!(changed.elapsed() < Duration::from_secs(1));

    // A page rendered before a change hears of it even when it connects after.
    let mut late = reqwest::get(format!("{base}/ui/events?since=0"))
        .await
        .expect("stream opens");
    let chunk = tokio::time::timeout(Duration::from_secs(1), late.chunk())
        .await
        .expect("the missed changes at once")
        .expect("read")
        .expect("a chunk");
    let text = String::from_utf8_lossy(&chunk);
    assert!(
        text.contains("app-00000") && text.contains("app-00002"),
        "{text}"
    );
    assert!(text.contains("id: 5"), "the id to resume from: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_app_and_a_pending_manual_sync_show_in_the_list_and_on_the_page() {
    use driftless_api::inspect::PendingSync;
    use driftless_api::{Time, WindowHold, WindowKind};
    let (base, store, _dir) = seeded(0).await;
    let opens = Time::from_unix_ms(1_800_000_000_000);
    let held = AppStatus {
        sync: SyncStatus::OutOfSync,
        held: Some(WindowHold {
            window: "freeze".into(),
            kind: WindowKind::Deny,
            opens: Some(opens),
        }),
        pending: Some(PendingSync {
            revision: "0123456789abcdef0123456789abcdef01234567".into(),
            create: 1,
            update: 0,
            delete: 0,
            objects: Vec::new(),
        }),
        ..AppStatus::default()
    };
    store.put_app("web", &held).expect("put");
    let (_, list) = page(&format!("{base}/")).await;
    assert!(list.contains("Held by freeze"), "{list}");
    assert!(list.contains("Manual sync pending"), "{list}");
    let (status, detail) = page(&format!("{base}/apps/web")).await;
    assert_eq!(status, 200);
    assert!(
        detail.contains(&format!(
            "Held: held by deny window freeze; opens at {opens}"
        )),
        "{detail}"
    );
    assert!(
        detail.contains("Manual sync: 1 to create, 0 to update, 0 to prune"),
        "{detail}"
    );
}
