//! Fetching over git://, smart HTTP (with auth) and SSH from real servers on loopback.

use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine;
use driftless_source::fetch::FetchError;
use driftless_source::remote::RemoteError;
use driftless_source::{Auth, Backend, Fetcher, RefSpec, SourceSpec, Tls};

use crate::support::{Fixture, daemon, http, port_of, remote_error, sshd, tls};

fn main_spec(url: &str, auth: Auth) -> SourceSpec {
    SourceSpec {
        auth,
        ..SourceSpec::new(url, RefSpec::Branch("main".into()))
    }
}

/// Transfers made so far: (by gix, by git, handed from gix to git).
fn transfers(fetcher: &Fetcher) -> (u64, u64, u64) {
    let counts = fetcher.backend_counts();
    (
        counts.gix_transfers,
        counts.git_transfers,
        counts.gix_fallbacks,
    )
}

fn basic(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[test]
fn git_daemon_fetch_and_update() {
    let fx = Fixture::new(&[("a.txt", "1\n")]);
    let (_server, base) = daemon::start(&fx.served);
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::with_backend(cache.path(), Backend::Gix);
    let spec = main_spec(&format!("{base}/repo.git"), Auth::None);
    assert_eq!(fetcher.fetch(&spec).expect("fetch").sha, fx.head());
    // Polls list refs in-process over protocol v2, without starting git.
    let refs = driftless_source::advertise::list(
        &spec.url,
        &spec.reference,
        None,
        &Tls::default(),
        Duration::from_secs(30),
    )
    .expect("git:// answers")
    .expect("in-process ls-refs over git://");
    assert_eq!(refs.len(), 1);
    assert_eq!(
        (refs[0].name.as_str(), refs[0].target.as_str()),
        ("refs/heads/main", fx.head().as_str())
    );
    let next = fx.commit(&[("a.txt", "2\n")], "Second");
    fx.push();
    assert_eq!(fetcher.fetch(&spec).expect("update").sha, next);
    assert_eq!(transfers(&fetcher), (2, 0, 0), "gix fetched over git://");
    let missing = main_spec(&format!("{base}/missing.git"), Auth::None);
    let err = fetcher.fetch(&missing).expect_err("unknown repo");
    assert!(err.to_string().contains("missing.git"), "{err}");
}

#[test]
fn http_basic_auth_and_cheap_no_change_poll() {
    let fx = Fixture::new(&[("a.txt", "1\n")]);
    let server = http::start(
        &fx.served,
        http::Options {
            authorization: Some(basic("alice", "s3cret")),
            ..Default::default()
        },
    );
    let url = format!("{}/repo.git", server.url);
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::with_backend(cache.path(), Backend::Gix);
    let good = Auth::Basic {
        username: "alice".into(),
        password: "s3cret".into(),
    };
    let rev = fetcher
        .fetch(&main_spec(&url, good.clone()))
        .expect("fetch with password");
    assert_eq!(rev.sha, fx.head());

    // Nothing changed: one protocol-v2 ls-refs request, never a pack.
    let before = server.requests.load(Ordering::SeqCst);
    let again = fetcher
        .fetch(&main_spec(&url, good))
        .expect("no-change poll");
    assert_eq!(again, rev);
    let cost = server.requests.load(Ordering::SeqCst) - before;
    assert_eq!(cost, 1, "a no-change poll made {cost} requests");
    assert_eq!(transfers(&fetcher), (1, 0, 0), "gix fetched over http://");

    // Callers with other credentials never share that result.
    let wrong = Auth::Basic {
        username: "alice".into(),
        password: "wrong".into(),
    };
    let err = fetcher
        .fetch(&main_spec(&url, wrong))
        .expect_err("wrong password");
    assert!(
        matches!(remote_error(&err), Some(RemoteError::Authentication { .. })),
        "{err}"
    );
    assert!(!err.to_string().contains("wrong"), "password leaked: {err}");
    let err = fetcher
        .fetch(&main_spec(&url, Auth::None))
        .expect_err("no credentials");
    assert!(err.to_string().contains("authentication failed"), "{err}");
}

#[test]
fn http_bearer_token() {
    let fx = Fixture::new(&[("a.txt", "1\n")]);
    let server = http::start(
        &fx.served,
        http::Options {
            authorization: Some("Bearer t0ken".into()),
            ..Default::default()
        },
    );
    let url = format!("{}/repo.git", server.url);
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::with_backend(cache.path(), Backend::Gix);
    let token = Auth::Bearer {
        token: "t0ken".into(),
    };
    assert_eq!(
        fetcher.fetch(&main_spec(&url, token)).expect("fetch").sha,
        fx.head()
    );
    assert_eq!(transfers(&fetcher), (1, 0, 0), "gix sent the token");
}

#[test]
fn server_dying_mid_transfer_keeps_last_good_revision() {
    let fx = Fixture::new(&[("a.txt", "1\n")]);
    let good_server = http::start(&fx.served, http::Options::default());
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::with_backend(cache.path(), Backend::Gix);
    let url = format!("{}/repo.git", good_server.url);
    let first = fetcher
        .fetch(&main_spec(&url, Auth::None))
        .expect("first fetch");
    let good_snapshot = fetcher
        .snapshot(&main_spec(&url, Auth::None), &first, "")
        .expect("snapshot");

    // A large incompressible file makes the pack big enough to cut.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let noise: String = (0..400_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'a' + (state % 26) as u8)
        })
        .collect();
    fx.commit(&[("big.txt", noise.as_str())], "Big");
    fx.push();
    drop(good_server);
    let dying = http::start(
        &fx.served,
        http::Options {
            cut_after: Some(20_000),
            ..Default::default()
        },
    );
    let url_dying = format!("{}/repo.git", dying.url);
    let err = fetcher
        .fetch(&main_spec(&url_dying, Auth::None))
        .expect_err("truncated pack");
    assert!(matches!(err, FetchError::Transfer { .. }), "{err}");
    assert!(err.to_string().contains("refs/heads/main"), "{err}");
    // gix failed on the cut pack, git tried again and failed the same way.
    assert_eq!(transfers(&fetcher), (1, 1, 1));
    assert!(
        good_snapshot.dir.join("a.txt").is_file(),
        "last good snapshot kept"
    );
}

#[test]
fn ssh_with_key_passphrase_and_strict_host_keys() {
    let fx = Fixture::new(&[("a.txt", "1\n")]);
    let server = sshd::start(&fx.tmp.path().join("sshd"));
    let url = server.url(&fx.bare);
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::with_backend(cache.path(), Backend::Gix);
    let key = |private_key: &str, passphrase: Option<&str>, known_hosts: &str| Auth::Ssh {
        private_key: private_key.to_string(),
        passphrase: passphrase.map(str::to_string),
        known_hosts: known_hosts.to_string(),
    };
    let plain = key(&server.client_key, None, &server.known_hosts);
    assert_eq!(
        fetcher
            .fetch(&main_spec(&url, plain))
            .expect("ssh fetch")
            .sha,
        fx.head()
    );
    // Later polls reuse the authenticated connection through a control socket.
    let sockets = std::fs::read_dir(cache.path().join("ssh"))
        .expect("ssh dir")
        .count();
    assert_eq!(sockets, 1, "one control socket for one host and key");

    fx.commit(&[("a.txt", "2\n")], "Second");
    fx.push();
    let encrypted = key(
        &server.encrypted_key,
        Some(sshd::PASSPHRASE),
        &server.known_hosts,
    );
    let rev = fetcher
        .fetch(&main_spec(&url, encrypted))
        .expect("encrypted key");
    assert_eq!(rev.sha, fx.head());
    // SSH goes through git and OpenSSH; gix does not try it.
    assert_eq!(transfers(&fetcher), (0, 2, 0));

    let mismatch = key(&server.client_key, None, &server.wrong_known_hosts);
    let err = fetcher
        .fetch(&main_spec(&url, mismatch))
        .expect_err("host key mismatch");
    assert!(
        matches!(remote_error(&err), Some(RemoteError::HostKey { .. })),
        "{err}"
    );
    let unknown_host = key(&server.client_key, None, "");
    let err = fetcher
        .fetch(&main_spec(&url, unknown_host))
        .expect_err("unknown host");
    assert!(
        err.to_string().contains("host key verification failed"),
        "{err}"
    );

    // Shared connections close on request (two keys were used: two masters).
    assert_eq!(fetcher.close_ssh_connections(), 2);

    let bad_pass = key(&server.encrypted_key, Some("nope"), &server.known_hosts);
    let err = fetcher
        .fetch(&main_spec(&url, bad_pass))
        .expect_err("bad passphrase");
    assert!(
        matches!(remote_error(&err), Some(RemoteError::Authentication { .. })),
        "{err}"
    );
}

#[test]
fn https_with_custom_ca_bundle_and_in_process_poll() {
    let fx = Fixture::new(&[("a.txt", "1\n")]);
    let backend = http::start(
        &fx.served,
        http::Options {
            authorization: Some(basic("alice", "s3cret")),
            ..Default::default()
        },
    );
    let tls = tls::start(&fx.tmp.path().join("tls"), port_of(&backend.url));
    let url = format!("{}/repo.git", tls.url);
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::with_backend(cache.path(), Backend::Gix);
    let alice = |password: &str| Auth::Basic {
        username: "alice".into(),
        password: password.into(),
    };
    let spec = |pem: Option<&str>, auth: Auth| SourceSpec {
        tls: Tls {
            ca_bundle: pem.map(str::to_string),
        },
        ..main_spec(&url, auth)
    };
    let good = spec(Some(&tls.ca_pem), alice("s3cret"));
    let rev = fetcher.fetch(&good).expect("trusted CA");
    assert_eq!(rev.sha, fx.head());

    // A no-change poll is one ls-refs request over TLS, made in-process
    // (`git ls-remote` would make two).
    let before = backend.requests.load(Ordering::SeqCst);
    assert_eq!(fetcher.fetch(&good).expect("no-change poll"), rev);
    let cost = backend.requests.load(Ordering::SeqCst) - before;
    assert_eq!(cost, 1, "a no-change https poll made {cost} requests");
    let refs = driftless_source::advertise::list(
        &url,
        &good.reference,
        Some(&basic("alice", "s3cret")),
        &good.tls,
        Duration::from_secs(30),
    )
    .expect("https answers")
    .expect("in-process ls-refs over https://");
    assert_eq!(refs[0].target, fx.head());

    // A new commit is seen by the next poll.
    let next = fx.commit(&[("a.txt", "2\n")], "Second");
    fx.push();
    assert_eq!(fetcher.fetch(&good).expect("update").sha, next);
    assert_eq!(transfers(&fetcher), (2, 0, 0), "gix fetched over https://");

    for untrusted in [None, Some(tls.other_ca_pem.as_str())] {
        let err = fetcher
            .fetch(&spec(untrusted, alice("s3cret")))
            .expect_err("untrusted certificate");
        assert!(
            matches!(remote_error(&err), Some(RemoteError::Tls { .. })),
            "{err}"
        );
        assert!(err.to_string().contains(&url), "{err}");
    }
    let err = fetcher
        .fetch(&spec(Some(&tls.ca_pem), alice("wrong")))
        .expect_err("wrong password");
    assert!(
        matches!(remote_error(&err), Some(RemoteError::Authentication { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("401"), "{err}");
    assert!(!err.to_string().contains("wrong"), "password leaked: {err}");
}

#[test]
fn dumb_http_full_fetch_and_commit_fallback() {
    let fx = Fixture::new(&[("a.txt", "1\n")]);
    let first = fx.head();
    let second = fx.commit(&[("a.txt", "2\n")], "Second");
    fx.push();
    crate::support::git(&fx.bare, &["update-server-info"]);
    let server = http::start(
        &fx.served,
        http::Options {
            dumb: true,
            ..Default::default()
        },
    );
    let url = format!("{}/repo.git", server.url);
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::with_backend(cache.path(), Backend::Gix);
    let rev = fetcher
        .fetch(&main_spec(&url, Auth::None))
        .expect("dumb fetch");
    assert_eq!(rev.sha, second);
    // gix speaks smart HTTP only: git took over the dumb server.
    let (gix, git, fallbacks) = transfers(&fetcher);
    assert_eq!((gix, fallbacks), (0, 1));
    assert!(git >= 1);
    let reason = fetcher.backend_counts().last_fallback;
    assert!(reason.is_some(), "the fallback reason is kept");
    let old = SourceSpec::new(&url, RefSpec::Commit(first.clone()));
    assert_eq!(
        fetcher.fetch(&old).expect("old commit via history").sha,
        first
    );
    let other_cache = tempfile::tempdir().expect("tempdir");
    let cold = Fetcher::with_backend(other_cache.path(), Backend::Gix);
    assert_eq!(cold.fetch(&old).expect("old commit, cold cache").sha, first);
}
