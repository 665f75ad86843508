//! The client commands (`status`, `history`, `sync`, `suspend`, `resume`, `rollback`)
//! against a real driftless-server on 127.0.0.1: a real state store, work queue and
//! engine control. The queue's worker only records syncs in the store, which is all the
//! client depends on; the real reconcile worker is tested end to end with `serve`.

use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use driftless_api::{Config, Time};
use driftless_engine::control::EngineControl;
use driftless_engine::metrics::Metrics;
use driftless_engine::queue::{Job, Outcome, QueueConfig, WorkQueue};
use driftless_engine::store::{
    AppStatus, AuditEvent, Condition, ConditionStatus, DriftAction, HealthStatus, Named,
    ObjectCounts, ResourceStatus, Revision, Store, SyncOutcome, SyncResult, SyncStart, SyncStatus,
    SyncTrigger,
};
use driftless_server::ServerState;
use driftless_server::router::{bind, serve};

use crate::support::text;

const TOKEN: &str = "s3cret-token";
const AUTHOR: &str = "Ada Admin <ada@example.com>";
/// The first commit of the example repository's history.
const FIRST: &str = "3f1c2a9d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39";
/// The commit that is live on `web`.
const LIVE: &str = "9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b";
/// The commit that breaks `broken`.
const BAD: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
/// How long a test sync runs, so that clients see it `Running`.
const SYNC_TIME: Duration = Duration::from_millis(400);
/// How long the sync of `stuck` runs: far beyond any `--timeout` the tests give.
const STUCK_TIME: Duration = Duration::from_secs(60);

fn main_rev(sha: &str) -> Revision {
    Revision {
        ref_label: "main".into(),
        sha: sha.into(),
        chart: None,
    }
}

/// A server with three seeded Apps: `web` (two good syncs), `broken` (a failed one),
/// `fresh` (never synced), and `stuck` (whose syncs never end in time).
pub(crate) struct Server {
    url: String,
    pub(crate) store: Store,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        let config = Config::from_documents(Vec::new()).expect("an empty config is valid");
        Self::start_with(seed, config)
    }

    /// A server whose store `seed` fills, with `config` in force.
    pub(crate) fn start_with(seed: impl FnOnce(&Store), config: Config) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open store");
        seed(&store);
        let config = Arc::new(config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let _entered = runtime.enter();
        let worker_store = store.clone();
        let (queue, _) = WorkQueue::start(QueueConfig::default(), move |job| {
            record_sync(worker_store.clone(), job)
        });
        let control = Arc::new(EngineControl::new(store.clone(), queue));
        let state = ServerState::new(store.clone(), control, Arc::new(Metrics::default()))
            .api_token(TOKEN)
            .config(move || config.clone());
        // As serve does once its engine runs: changes are accepted.
        state
            .readiness()
            .store(true, std::sync::atomic::Ordering::Release);
        let listener = runtime
            .block_on(bind("127.0.0.1:0".parse().expect("address")))
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        runtime.spawn(serve(listener, state, std::future::pending()));
        Self {
            url,
            store,
            _runtime: runtime,
            _dir: dir,
        }
    }

    /// Runs `driftless ARGS --server URL`, with no server or token from the environment.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        driftless_at(&self.url, args)
    }

    /// Like [`Server::run`], with the right token.
    fn run_authorized(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend(["--token", TOKEN]);
        self.run(&all)
    }

    fn app(&self, name: &str) -> AppStatus {
        self.store
            .app(name)
            .expect("read store")
            .expect("app exists")
    }
}

fn driftless_at(server: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(args)
        .args(["--server", server])
        .env_remove("DRIFTLESS_SERVER")
        .env_remove("DRIFTLESS_API_TOKEN")
        .output()
        .expect("run driftless")
}

fn seed(store: &Store) {
    let sync = |app: &str, sha: &str, subject: &str, trigger, outcome: SyncOutcome| {
        let start = SyncStart {
            revision: main_rev(sha),
            author: AUTHOR.into(),
            subject: subject.into(),
            trigger,
            remotes: Vec::new(),
        };
        let record = store.begin_sync(app, start).expect("begin sync");
        store
            .finish_sync(app, record.id, outcome)
            .expect("finish sync");
    };
    let ok = |counts| SyncOutcome {
        result: SyncResult::Succeeded,
        counts,
        error: None,
        adopted: Vec::new(),
        hosts: Vec::new(),
        hooks: Vec::new(),
    };
    let created = ObjectCounts {
        created: 3,
        ..ObjectCounts::default()
    };
    let updated = ObjectCounts {
        updated: 1,
        unchanged: 2,
        ..ObjectCounts::default()
    };
    sync("web", FIRST, "Add web", SyncTrigger::Config, ok(created));
    sync(
        "web",
        LIVE,
        "Scale web to 3 replicas",
        SyncTrigger::Webhook,
        ok(updated),
    );
    let failed = SyncOutcome {
        result: SyncResult::Failed,
        counts: ObjectCounts::default(),
        error: Some(bad_error().into()),
        adopted: Vec::new(),
        hosts: Vec::new(),
        hooks: Vec::new(),
    };
    sync(
        "broken",
        BAD,
        "Break the settings",
        SyncTrigger::Webhook,
        failed,
    );
    let now = Time::now().unix_ms();
    store.put_app("web", &web_status(now)).expect("put web");
    let broken = AppStatus {
        last_attempted: Some(main_rev(BAD)),
        sync: SyncStatus::OutOfSync,
        health: HealthStatus::Degraded,
        last_error: Some(bad_error().into()),
        last_sync_time: Some(Time::from_unix_ms(now - 3 * 60_000)),
        ..AppStatus::default()
    };
    store.put_app("broken", &broken).expect("put broken");
    store
        .put_app("fresh", &AppStatus::default())
        .expect("put fresh");
    store
        .put_app("stuck", &AppStatus::default())
        .expect("put stuck");
}

fn bad_error() -> &'static str {
    "applying ConfigMap web/settings: the server rejected field data.mode: must be one of \
     fast, safe; and the rollout of Deployment web/web did not finish"
}

fn web_status(now: u64) -> AppStatus {
    let ready = Condition {
        last_transition_time: Time::from_unix_ms(now - 42_000),
        ..Condition::new(
            "Ready",
            ConditionStatus::True,
            "Synced",
            "applied main@9b8a7c6",
        )
    };
    let resource = |kind: &str, name: &str, health| ResourceStatus {
        api_version: "v1".into(),
        kind: kind.into(),
        namespace: "web".into(),
        name: name.into(),
        health,
        ..ResourceStatus::default()
    };
    AppStatus {
        last_applied: Some(main_rev(LIVE)),
        last_attempted: Some(main_rev(LIVE)),
        sync: SyncStatus::Synced,
        health: HealthStatus::Healthy,
        last_sync_time: Some(Time::from_unix_ms(now - 42_000)),
        conditions: vec![ready],
        resources: vec![
            resource("ConfigMap", "settings", HealthStatus::Healthy),
            resource("Deployment", "web", HealthStatus::Progressing),
        ],
        ..AppStatus::default()
    }
}

/// The test engine: records the sync the job asks for, as the reconcile worker does.
async fn record_sync(store: Store, job: Job) -> Outcome {
    let Ok(Some(status)) = store.app(&job.key) else {
        return Outcome::Failed;
    };
    if status.suspended {
        return Outcome::Succeeded;
    }
    let revision = status.pinned.clone().unwrap_or_else(|| main_rev(LIVE));
    let start = SyncStart {
        revision: revision.clone(),
        author: AUTHOR.into(),
        subject: "Scale web to 3 replicas".into(),
        trigger: job.trigger,
        remotes: Vec::new(),
    };
    let Ok(record) = store.begin_sync(&job.key, start) else {
        return Outcome::Failed;
    };
    let took = if job.key == "stuck" {
        STUCK_TIME
    } else {
        SYNC_TIME
    };
    tokio::select! {
        () = tokio::time::sleep(took) => {}
        () = job.cancel.cancelled() => return Outcome::Cancelled,
    }
    let failed = job.key == "broken";
    let outcome = SyncOutcome {
        result: if failed {
            SyncResult::Failed
        } else {
            SyncResult::Succeeded
        },
        counts: ObjectCounts {
            updated: u32::from(!failed),
            ..ObjectCounts::default()
        },
        error: failed.then(|| bad_error().to_owned()),
        adopted: Vec::new(),
        hosts: Vec::new(),
        hooks: Vec::new(),
    };
    let finished = store.finish_sync(&job.key, record.id, outcome);
    let updated = store.update_app(&job.key, |s| {
        s.last_attempted = Some(revision.clone());
        s.last_sync_time = Some(Time::now());
        if failed {
            s.health = HealthStatus::Degraded;
        } else {
            s.last_applied = Some(revision.clone());
            s.sync = SyncStatus::Synced;
            s.health = HealthStatus::Healthy;
            s.last_error = None;
        }
    });
    match (finished, updated, failed) {
        (Ok(_), Ok(_), false) => Outcome::Succeeded,
        _ => Outcome::Failed,
    }
}

pub(crate) fn stdout(out: &Output) -> String {
    text(&out.stdout)
}

fn stderr(out: &Output) -> String {
    text(&out.stderr)
}

pub(crate) fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

/// Asserts exit 0 and that stdout contains `expected`; returns stdout.
fn succeeds_saying(out: &Output, expected: &str) -> String {
    assert_exit(out, 0);
    let said = stdout(out);
    assert!(
        said.contains(expected),
        "{expected:?} missing from:\n{said}"
    );
    said
}

/// Asserts exit `code` and that stderr contains `expected`.
pub(crate) fn fails_saying(out: &Output, code: i32, expected: &str) {
    assert_exit(out, code);
    let said = stderr(out);
    assert!(
        said.contains(expected),
        "{expected:?} missing from:\n{said}"
    );
}

/// The line of `text` whose first column is `name`.
pub(crate) fn row<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{text}"))
}

#[test]
fn status_table_shows_every_app() {
    let server = Server::start();
    let out = server.run(&["status"]);
    assert_exit(&out, 0);
    let table = stdout(&out);
    assert_eq!(
        table.lines().next(),
        Some("4 Apps: 1 Synced, 1 OutOfSync, 2 Unknown; 1 Healthy, 1 Degraded, 2 Unknown"),
        "the summary comes first:\n{table}"
    );
    let header: Vec<&str> = table
        .lines()
        .nth(1)
        .expect("header")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME", "SYNC", "HEALTH", "REVISION", "HOLD", "LAST", "SYNC", "ERROR"
        ]
    );
    let web: Vec<&str> = row(&table, "web").split_whitespace().collect();
    assert_eq!(web[..4], ["web", "Synced", "Healthy", "main@9b8a7c6"]);
    let age: u64 = web[4]
        .strip_suffix('s')
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("an age in seconds: {web:?}"));
    assert!(
        (42..60).contains(&age),
        "synced 42s before the test: {web:?}"
    );
    assert_eq!(web.len(), 5, "nothing holds web, no error: {web:?}");
    let broken = row(&table, "broken");
    assert!(
        broken.contains("OutOfSync") && broken.contains("Degraded"),
        "{broken}"
    );
    assert!(broken.contains(" 3m "), "age of the last sync: {broken}");
    // The error is cut to fit the table.
    assert!(
        broken.contains("applying ConfigMap web/settings: the server"),
        "{broken}"
    );
    assert!(
        broken.ends_with('…') && !broken.contains("rollout"),
        "{broken}"
    );
    let fresh: Vec<&str> = row(&table, "fresh").split_whitespace().collect();
    assert_eq!(fresh, ["fresh", "Unknown", "Unknown", "-", "never"]);
}

#[test]
fn status_of_one_app_shows_conditions_and_resources() {
    let server = Server::start();
    let out = server.run(&["status", "web"]);
    let detail = succeeds_saying(&out, &format!("Applied:     main@{LIVE}"));
    for expected in [
        "Suspended:",
        "applied main@9b8a7c6",
        "Conditions:",
        "Resources:",
    ] {
        assert!(detail.contains(expected), "{expected} missing:\n{detail}");
    }
    let condition: Vec<&str> = row(&detail, "Ready").split_whitespace().collect();
    assert_eq!(condition[..3], ["Ready", "True", "Synced"]);
    let deployment: Vec<&str> = row(&detail, "Deployment").split_whitespace().collect();
    assert_eq!(deployment, ["Deployment", "web", "web", "Progressing"]);
    let configmap: Vec<&str> = row(&detail, "ConfigMap").split_whitespace().collect();
    assert_eq!(configmap, ["ConfigMap", "web", "settings", "Healthy"]);
    // The detail view shows the whole error.
    let broken = stdout(&server.run(&["status", "broken"]));
    assert!(broken.contains(bad_error()), "{broken}");
}

#[test]
fn json_output_is_the_servers_records() {
    let server = Server::start();
    let out = server.run(&["status", "--output", "json"]);
    assert_exit(&out, 0);
    let apps: Vec<Named<AppStatus>> = serde_json::from_slice(&out.stdout).expect("status list");
    let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["broken", "fresh", "stuck", "web"]);
    let out = server.run(&["status", "web", "-o", "json"]);
    let web: AppStatus = serde_json::from_slice(&out.stdout).expect("one status");
    assert_eq!(web, server.app("web"));
    let out = server.run(&["history", "web", "-o", "json"]);
    let history: Vec<driftless_engine::store::SyncRecord> =
        serde_json::from_slice(&out.stdout).expect("history");
    assert_eq!(history, server.store.history("web", 20).expect("history"));
}

#[test]
fn history_prints_one_line_per_sync_newest_first() {
    let server = Server::start();
    let text = succeeds_saying(&server.run(&["history", "web"]), "TIME");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "header and two syncs:\n{text}");
    assert!(lines[0].starts_with("TIME"), "{text}");
    let newest = lines[1];
    for expected in [
        "9b8a7c6",
        AUTHOR,
        "Scale web to 3 replicas",
        "webhook",
        "Succeeded",
        "+0 ~1 -0",
    ] {
        assert!(newest.contains(expected), "{expected} missing: {newest}");
    }
    let time = newest.split_whitespace().next().expect("time");
    assert_eq!(time.len(), "2024-05-01T12:00:00Z".len(), "{time}");
    assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
    let oldest = lines[2];
    assert!(
        oldest.contains("3f1c2a9") && oldest.contains("Add web"),
        "{oldest}"
    );
    assert!(
        oldest.contains("config") && oldest.contains("+3 ~0 -0"),
        "{oldest}"
    );

    let broken = stdout(&server.run(&["history", "broken"]));
    let failed = broken.lines().nth(1).expect("one sync");
    assert!(
        failed.contains("Failed") && failed.contains("applying ConfigMap"),
        "{failed}"
    );
    let limited = stdout(&server.run(&["history", "web", "--limit", "1"]));
    assert_eq!(limited.lines().count(), 2, "{limited}");
}

#[test]
fn drift_lists_who_changed_what_and_the_response() {
    let server = Server::start();
    let out = succeeds_saying(&server.run(&["drift", "web"]), "no drift seen on app web");
    assert_eq!(out.lines().count(), 1, "{out}");
    for (manager, action) in [
        ("kubectl-edit", DriftAction::Reverted),
        ("ops", DriftAction::Reported),
    ] {
        server
            .store
            .record_audit(AuditEvent {
                id: 0,
                time: Time::now(),
                app: "web".into(),
                object: "apps/v1/Deployment/prod/web".into(),
                fields: vec!["spec.replicas".into()],
                manager: Some(manager.into()),
                action,
            })
            .expect("audit");
    }
    let text = succeeds_saying(&server.run(&["drift", "web"]), "CHANGED BY");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "header and two events:\n{text}");
    assert!(
        lines[1].contains("ops") && lines[1].contains("reported"),
        "{text}"
    );
    assert!(
        lines[2].contains("apps/v1/Deployment/prod/web")
            && lines[2].contains("spec.replicas")
            && lines[2].contains("kubectl-edit")
            && lines[2].contains("reverted"),
        "{text}"
    );
    let json = stdout(&server.run(&["drift", "web", "--output", "json", "--limit", "1"]));
    let events: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(events.as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(events[0]["manager"], "ops");
}

#[test]
fn sync_wait_reports_success_with_exit_0() {
    let server = Server::start();
    let out = server.run_authorized(&["sync", "web", "--wait", "--timeout", "30s"]);
    assert_exit(&out, 0);
    let result = stdout(&out);
    assert!(
        result.contains("manual") && result.contains("Succeeded"),
        "{result}"
    );
    assert!(result.contains("9b8a7c6"), "{result}");
    let progress = stderr(&out);
    assert!(progress.contains("sync of app web queued"), "{progress}");
    assert!(
        progress.contains("app web: syncing main@9b8a7c6"),
        "{progress}"
    );
    let newest = &server.store.history("web", 1).expect("history")[0];
    assert_eq!(
        (newest.start.trigger, newest.result),
        (SyncTrigger::Manual, SyncResult::Succeeded)
    );
}

#[test]
fn sync_wait_reports_failure_with_exit_1() {
    let server = Server::start();
    let out = server.run_authorized(&["sync", "broken", "--wait", "-o", "json"]);
    assert_exit(&out, 1);
    let record: driftless_engine::store::SyncRecord =
        serde_json::from_slice(&out.stdout).expect("the finished sync as JSON");
    assert_eq!(record.result, SyncResult::Failed);
    assert_eq!(record.start.trigger, SyncTrigger::Manual);
    assert_eq!(record.error.as_deref(), Some(bad_error()));
}

#[test]
fn sync_wait_gives_up_at_the_timeout() {
    let server = Server::start();
    let started = std::time::Instant::now();
    let out = server.run_authorized(&["sync", "stuck", "--wait", "--timeout", "1s"]);
    fails_saying(
        &out,
        1,
        "gave up after 1s waiting for the sync of app stuck",
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn sync_without_wait_only_queues() {
    let server = Server::start();
    let out = server.run_authorized(&["sync", "web"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "sync of app web queued\n");
}

#[test]
fn suspended_apps_refuse_sync_until_resumed() {
    let server = Server::start();
    let out = server.run_authorized(&["suspend", "web"]);
    succeeds_saying(&out, "app web suspended");
    assert!(server.app("web").suspended);
    let table = stdout(&server.run(&["status"]));
    assert!(row(&table, "web").contains("SUSPENDED"), "{table}");
    assert!(table.contains("!! app web is SUSPENDED"), "{table}");

    let out = server.run_authorized(&["sync", "web", "--wait"]);
    fails_saying(&out, 1, "app web is suspended: resume it before syncing");

    let out = server.run_authorized(&["resume", "web"]);
    succeeds_saying(&out, "app web resumed");
    assert!(!server.app("web").suspended);
    let out = server.run_authorized(&["sync", "web", "--wait"]);
    assert_exit(&out, 0);
}

#[test]
fn rollback_pins_an_earlier_revision_loudly() {
    let server = Server::start();
    let out = server.run_authorized(&["rollback", "web", "--to", "3f1c2a"]);
    let text = succeeds_saying(&out, "app web rolled back to main@3f1c2a9, sync queued");
    let loud = format!(
        "!! app web is PINNED at main@{FIRST} by a rollback: it is out of sync with Git \
         until `driftless resume web`"
    );
    assert!(text.contains(&loud), "{text}");
    assert_eq!(server.app("web").pinned, Some(main_rev(FIRST)));
    let table = stdout(&server.run(&["status"]));
    assert!(row(&table, "web").contains("PINNED@3f1c2a9"), "{table}");

    let out = server.run_authorized(&["resume", "web"]);
    succeeds_saying(&out, "app web resumed");
    assert_eq!(server.app("web").pinned, None);
}

#[test]
fn rollback_without_a_target_says_so() {
    let server = Server::start();
    let out = server.run_authorized(&["rollback", "fresh"]);
    fails_saying(
        &out,
        1,
        "app fresh has no successful sync before the live revision to roll back to",
    );
    let out = server.run_authorized(&["rollback", "web", "--to", "deadbeef"]);
    fails_saying(
        &out,
        1,
        "app web has no successful sync of revision deadbeef to roll back to",
    );
    assert_eq!(server.app("web").pinned, None);
}

#[test]
fn a_missing_or_wrong_token_is_named() {
    let server = Server::start();
    let out = server.run(&["sync", "web"]);
    fails_saying(&out, 1, "refused to sync app web: no API token given");
    let out = server.run(&["suspend", "web", "--token", "wrong"]);
    fails_saying(
        &out,
        1,
        "refused to suspend app web: the API token is wrong",
    );
    assert!(!server.app("web").suspended);
}

#[test]
fn unknown_apps_are_named() {
    let server = Server::start();
    for args in [
        &["status", "nope"][..],
        &["history", "nope"],
        &["sync", "nope"],
    ] {
        let out = server.run_authorized(args);
        fails_saying(&out, 1, "app nope not found");
    }
}

#[test]
fn no_server_listening_is_a_clear_error() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = driftless_at(&url, &["status"]);
    fails_saying(
        &out,
        1,
        &format!("no driftless server is running at {url}: connection refused"),
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = driftless_at(
        "http://127.0.0.1:1",
        &["sync", "web", "--wait", "--timeout", "soon"],
    );
    fails_saying(&out, 2, "--timeout");
    let out = driftless_at("127.0.0.1:9480", &["status"]);
    fails_saying(&out, 2, "not an http:// or https:// URL");
    let out = driftless_at("http://127.0.0.1:1", &["history"]);
    assert_exit(&out, 2);
}
