//! How a sync cut off by the end of the process is recorded: a process
//! killed with SIGKILL is told apart from one that stopped cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use driftless_engine::store::{
    ENDED_WITHOUT_STOP, STOPPED_DURING_SYNC, Store, SyncResult, SyncTrigger,
};

use crate::store::start;

/// Where the child process keeps its store.
const HOLD_DIR: &str = "DRIFTLESS_TEST_HOLD_STORE";
/// What the child prints once its sync is recorded as running.
const READY: &str = "sync recorded as running";

/// Run as a child process by `a_killed_process_is_not_reported_as_stopped`:
/// begins a sync and waits to be killed.
#[test]
#[ignore = "a child process of another test"]
fn holds_a_sync_until_killed() {
    let Some(dir) = std::env::var_os(HOLD_DIR) else {
        return;
    };
    let store = Store::open(std::path::Path::new(&dir)).expect("open");
    store
        .begin_sync("web", start("held", SyncTrigger::Webhook))
        .expect("begin");
    println!("{READY}");
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn a_killed_process_is_not_reported_as_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "stops::holds_a_sync_until_killed",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(HOLD_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("child starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains(READY));
    assert!(ready, "the child never recorded its sync");
    // SIGKILL: the process gets no chance to record anything.
    child.kill().expect("kill -9");
    child.wait().expect("reaped");

    let store = Store::open(dir.path()).expect("reopen");
    let interrupted = store.interrupted();
    assert_eq!(interrupted.len(), 1, "{interrupted:?}");
    assert_eq!(interrupted[0].start.revision.sha, "held");
    assert_eq!(interrupted[0].result, SyncResult::Interrupted);
    assert_eq!(interrupted[0].error.as_deref(), Some(ENDED_WITHOUT_STOP));
    assert!(ENDED_WITHOUT_STOP.contains("ended without a stop"));
    let history = store.history("web", 1).expect("history");
    assert_eq!(history[0].error.as_deref(), Some(ENDED_WITHOUT_STOP));
}

#[test]
fn a_clean_stop_during_a_sync_is_reported_as_a_stop() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("open");
        store
            .begin_sync("web", start("cut", SyncTrigger::Webhook))
            .expect("begin");
        store.mark_stopped().expect("clean stop recorded");
    }
    let store = Store::open(dir.path()).expect("reopen");
    let interrupted = store.interrupted();
    assert_eq!(interrupted.len(), 1, "{interrupted:?}");
    assert_eq!(interrupted[0].error.as_deref(), Some(STOPPED_DURING_SYNC));
    drop(store);
    // That open did not stop cleanly, but left nothing running either.
    assert!(
        Store::open(dir.path())
            .expect("reopen")
            .interrupted()
            .is_empty()
    );
}
