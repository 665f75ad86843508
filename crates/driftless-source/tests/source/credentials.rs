//! Credentials in a GitSource URL: they authenticate, but never appear on
//! the command line of a process (which any local user can read).

use std::time::Duration;

use base64::Engine;
use driftless_source::{Auth, Backend, Fetcher, RefSpec, SourceSpec};

use crate::support::{Fixture, http, port_of};

/// The command line of every process that can be read, NULs as spaces.
fn command_lines() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .collect()
}

#[test]
fn a_password_in_the_url_authenticates_but_stays_off_command_lines() {
    let fx = Fixture::new(&[("a.txt", "1\n")]);
    let password = format!("pw-{}-not-in-argv", std::process::id());
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("alice:{password}"))
    );
    let server = http::start(
        &fx.served,
        http::Options {
            authorization: Some(expected),
            // Keeps git's transfer running long enough to be looked at.
            delay_packs: Some(Duration::from_millis(1500)),
            ..Default::default()
        },
    );
    let port = port_of(&server.url).to_string();
    let url = format!(
        "{}/repo.git",
        server
            .url
            .replace("http://", &format!("http://alice:{password}@"))
    );
    let cache = tempfile::tempdir().expect("tempdir");
    // The git backend runs `git fetch` (and git-remote-http) for the transfer.
    let fetcher = Fetcher::with_backend(cache.path(), Backend::Git);
    let spec = SourceSpec::new(&url, RefSpec::Branch("main".into()));
    assert_eq!(spec.auth, Auth::None);
    let (rev, git_seen, leaked) = std::thread::scope(|scope| {
        let fetch = scope.spawn(|| fetcher.fetch(&spec));
        let (mut git_seen, mut leaked) = (0, Vec::new());
        while !fetch.is_finished() {
            for line in command_lines() {
                if line.contains(&password) {
                    leaked.push(line);
                } else if line.contains("git") && line.contains(&port) {
                    git_seen += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        (fetch.join().expect("fetch thread"), git_seen, leaked)
    });
    let rev = rev.expect("the URL's credentials authenticate");
    assert_eq!(rev.sha, fx.head());
    assert!(
        git_seen > 0,
        "no git process talking to the server was seen"
    );
    assert!(leaked.is_empty(), "password on a command line: {leaked:?}");
    assert_eq!(fetcher.backend_counts().git_transfers, 1);

    // The cache is the one of the URL without the password, and a poll
    // with the same URL reuses it.
    assert!(fetcher.repo_dir(&url).is_dir());
    assert_eq!(fetcher.fetch(&spec).expect("no-change poll").sha, rev.sha);
}
