//! Servers that accept a connection and then hang: polls and fetches give up
//! at the source's timeout with an error naming the URL, and the last good
//! revision and snapshot stay.

use std::sync::Arc;
use std::time::{Duration, Instant};

use driftless_source::fetch::FetchError;
use driftless_source::remote::RemoteError;
use driftless_source::{Backend, Fetcher, PollEvent, Poller, RefSpec, SourceSpec};

use crate::support::{Fixture, SilentServer, http, port_of, remote_error};

const TIMEOUT: Duration = Duration::from_secs(2);
/// Slack for a loaded machine; far below what a hang without a timeout costs.
const SLACK: Duration = Duration::from_secs(8);

fn spec(url: &str) -> SourceSpec {
    SourceSpec {
        timeout: TIMEOUT,
        ..SourceSpec::new(url, RefSpec::Branch("main".into()))
    }
}

#[test]
fn silent_server_fails_the_poll_at_the_timeout_and_keeps_the_last_good() {
    let fx = Fixture::new(&[("a.txt", "1\n")]);
    let server = http::start(&fx.served, http::Options::default());
    let url = format!("{}/repo.git", server.url);
    let port = port_of(&server.url);
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Arc::new(Fetcher::new(cache.path()));
    let mut poller = Poller::new(fetcher.clone(), spec(&url), Duration::from_secs(60));
    let Ok(PollEvent::Changed(first)) = poller.poll() else {
        panic!("first poll must report a revision");
    };
    let snapshot = fetcher.snapshot(&spec(&url), &first, "").expect("snapshot");

    // The same address now accepts connections and never answers.
    drop(server);
    let silent = SilentServer::start(port);
    let started = Instant::now();
    let err = poller.poll().expect_err("hung server");
    let took = started.elapsed();
    assert!(
        took >= TIMEOUT && took < TIMEOUT + SLACK,
        "gave up after {took:?}"
    );
    assert!(
        matches!(remote_error(&err), Some(RemoteError::Unreachable { .. })),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains(&url), "{message}");
    assert!(message.contains("no answer"), "{message}");
    assert_eq!(poller.current().map(|r| &r.sha), Some(&first.sha));
    assert!(
        snapshot.dir.join("a.txt").is_file(),
        "last good snapshot kept"
    );
    assert!(silent.stop() >= 1, "the poll reached the hung server");
}

#[test]
fn silent_git_daemon_and_tls_endpoint_fail_at_the_timeout() {
    let silent = SilentServer::start(0);
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::new(cache.path());
    for scheme in ["git", "https"] {
        let url = format!("{scheme}://127.0.0.1:{}/repo.git", silent.port);
        let started = Instant::now();
        let err = fetcher.fetch(&spec(&url)).expect_err("hung server");
        let took = started.elapsed();
        assert!(took < TIMEOUT + SLACK, "{scheme}: gave up after {took:?}");
        let message = err.to_string();
        assert!(message.contains(&url), "{message}");
        assert!(message.contains("no answer"), "{message}");
    }
}

/// Fetches from an HTTP server misbehaving as `options` say, with either
/// backend; the transfer must fail at the timeout with an error naming the
/// URL and the limit, and never the password the URL carries.
fn transfer_is_stopped_at_the_timeout(options: http::Options) {
    let fx = Fixture::new(&[("a.txt", "1\n")]);
    let server = http::start(&fx.served, options);
    let url = format!("{}/repo.git", server.url).replace("://", "://alice:s3cret@");
    for backend in [Backend::Gix, Backend::Git] {
        let cache = tempfile::tempdir().expect("tempdir");
        let fetcher = Fetcher::with_backend(cache.path(), backend);
        let started = Instant::now();
        let err = fetcher
            .fetch(&spec(&url))
            .expect_err("pack never completes");
        let took = started.elapsed();
        assert!(took < TIMEOUT + SLACK, "{backend:?} gave up after {took:?}");
        assert!(matches!(err, FetchError::Transfer { .. }), "{err}");
        let message = err.to_string();
        // The password never reaches git: the URL it reports carries the user only.
        assert!(message.contains("http://alice@127.0.0.1"), "{message}");
        assert!(!message.contains("s3cret"), "password shown: {message}");
        assert!(message.contains("did not finish within 2s"), "{message}");
    }
}

#[test]
fn server_hanging_mid_fetch_is_stopped_at_the_timeout() {
    transfer_is_stopped_at_the_timeout(http::Options {
        stall_fetch: Some(Duration::from_secs(30)),
        ..Default::default()
    });
}

#[test]
fn server_trickling_the_pack_is_stopped_at_the_timeout() {
    // Every byte comes well within any per-read limit; only a limit on the
    // whole transfer ends it.
    transfer_is_stopped_at_the_timeout(http::Options {
        trickle_packs: Some(Duration::from_millis(300)),
        ..Default::default()
    });
}
