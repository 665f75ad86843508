//! Polling: new revisions are reported, failures keep the last good one,
//! and concurrent fetches of one source are shared.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier, mpsc};
use std::time::Duration;

use driftless_source::poll::{PollCommand, PollEvent};
use driftless_source::{Fetcher, Poller, RefSpec, SourceSpec};

use crate::support::{Fixture, http};

#[test]
fn poller_reports_changes_and_keeps_last_good_on_failure() {
    let fx = Fixture::new(&[("a.txt", "1\n")]);
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Arc::new(Fetcher::new(cache.path()));
    let spec = SourceSpec::new(fx.bare_url(), RefSpec::Branch("main".into()));
    let mut poller = Poller::new(fetcher, spec, Duration::from_millis(10));
    let first = match poller.poll().expect("first poll") {
        PollEvent::Changed(rev) => rev,
        PollEvent::Unchanged => panic!("first poll must report a revision"),
    };
    assert_eq!(poller.poll().expect("second poll"), PollEvent::Unchanged);
    let next = fx.commit(&[("a.txt", "2\n")], "Second");
    fx.push();
    match poller.poll().expect("third poll") {
        PollEvent::Changed(rev) => assert_eq!(rev.sha, next),
        PollEvent::Unchanged => panic!("the new commit was missed"),
    }
    // The repository disappears: the poll fails, the last good revision stays.
    std::fs::rename(&fx.bare, fx.served.join("gone.git")).expect("move repo away");
    assert_eq!(poller.next_delay(), Duration::from_millis(10));
    let err = poller.poll().expect_err("repo gone");
    assert!(poller.last_error().is_some_and(|m| m == err.to_string()));
    // Failures back off: 2x, 4x, then capped at 8x the interval.
    assert_eq!(poller.next_delay(), Duration::from_millis(20));
    for _ in 0..4 {
        assert!(poller.poll().is_err());
    }
    assert_eq!(poller.next_delay(), Duration::from_millis(80));
    assert_eq!(
        poller.current().map(|r| r.sha.as_str()),
        Some(next.as_str())
    );
    assert_ne!(first.sha, next);
}

#[test]
fn run_loop_polls_on_command_and_stops() {
    let fx = Fixture::new(&[("a.txt", "1\n")]);
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Arc::new(Fetcher::new(cache.path()));
    let spec = SourceSpec::new(fx.bare_url(), RefSpec::Branch("main".into()));
    let (commands, command_rx) = mpsc::channel();
    let (seen_tx, seen_rx) = mpsc::channel();
    // The interval is far longer than the test: only `Now` can trigger polls.
    let worker = std::thread::spawn(move || {
        let mut poller = Poller::new(fetcher, spec, Duration::from_secs(3600));
        poller.run(
            &command_rx,
            |rev| seen_tx.send(rev.sha.clone()).expect("send"),
            |_| {},
        );
    });
    let first = seen_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("initial revision");
    assert_eq!(first, fx.head());
    let next = fx.commit(&[("a.txt", "2\n")], "Second");
    fx.push();
    commands.send(PollCommand::Now).expect("trigger");
    let second = seen_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("new revision after trigger");
    assert_eq!(second, next);
    commands.send(PollCommand::Stop).expect("stop");
    worker.join().expect("poller thread ends");
}

#[test]
fn concurrent_fetches_of_one_source_are_shared() {
    let fx = Fixture::new(&[("a.txt", "1\n")]);
    let server = http::start(&fx.served, http::Options::default());
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Arc::new(Fetcher::new(cache.path()));
    let spec = SourceSpec::new(
        format!("{}/repo.git", server.url),
        RefSpec::Branch("main".into()),
    );
    const CALLERS: usize = 6;
    let barrier = Arc::new(Barrier::new(CALLERS));
    let handles: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (fetcher, spec, barrier) = (fetcher.clone(), spec.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                fetcher.fetch(&spec).expect("fetch").sha
            })
        })
        .collect();
    let shas: Vec<String> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    assert!(shas.iter().all(|s| *s == fx.head()));
    // One initial fetch costs 3-4 requests; six independent ones would cost 18+.
    let requests = server.requests.load(Ordering::SeqCst);
    assert!(
        requests <= 8,
        "{requests} requests for {CALLERS} concurrent callers"
    );
}

#[test]
fn semver_poll_moves_to_a_newly_pushed_release() {
    let fx = Fixture::new(&[("a.txt", "1\n")]);
    crate::support::git(&fx.work, &["tag", "v1.2.0"]);
    fx.push();
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Arc::new(Fetcher::new(cache.path()));
    let spec = SourceSpec::new(fx.bare_url(), RefSpec::Semver("^1".into()));
    let mut poller = Poller::new(fetcher, spec, Duration::from_secs(60));
    assert!(matches!(poller.poll(), Ok(PollEvent::Changed(_))));
    // A pre-release and a new major do not match; a new minor does.
    fx.commit(&[("a.txt", "2\n")], "rc");
    crate::support::git(&fx.work, &["tag", "v1.3.0-rc.1"]);
    crate::support::git(&fx.work, &["tag", "v2.0.0"]);
    fx.push();
    assert_eq!(poller.poll().expect("poll"), PollEvent::Unchanged);
    let release = fx.commit(&[("a.txt", "3\n")], "release");
    crate::support::git(&fx.work, &["tag", "v1.3.0"]);
    fx.push();
    match poller.poll().expect("poll") {
        PollEvent::Changed(rev) => {
            assert_eq!(rev.to_string(), format!("v1.3.0@sha1:{release}"));
        }
        PollEvent::Unchanged => panic!("v1.3.0 was missed"),
    }
}
