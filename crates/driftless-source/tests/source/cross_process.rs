//! Two processes fetching the same URL into the same cache directory: the
//! cache lock lets one transfer while the other waits and reuses its objects.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::{Fixture, git, http};

const CACHE: &str = "DRIFTLESS_TEST_CHILD_CACHE";
const URL: &str = "DRIFTLESS_TEST_CHILD_URL";
const OUT: &str = "DRIFTLESS_TEST_CHILD_OUT";

/// Entry point of the child processes: what `driftless source fetch URL --out
/// DIR` does, with its arguments in the environment. Only run by
/// [`two_processes_fetching_one_url_share_the_cache`].
#[test]
#[ignore = "child process of two_processes_fetching_one_url_share_the_cache"]
fn child_fetch() {
    let var = |name| std::env::var(name).expect("set by the parent test");
    let (cache, url, out) = (var(CACHE), var(URL), var(OUT));
    let rev = driftless_source::fetch_to_dir(Path::new(&cache), &url, None, Some(Path::new(&out)))
        .expect("child fetch");
    println!("revision: {rev}");
}

fn spawn_child(cache: &Path, url: &str, out: &Path) -> Child {
    Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            "cross_process::child_fetch",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CACHE, cache)
        .env(URL, url)
        .env(OUT, out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start child test process")
}

#[test]
fn two_processes_fetching_one_url_share_the_cache() {
    let fx = Fixture::new(&[("a.txt", "1\n"), ("dir/b.txt", "2\n")]);
    // Pack requests wait a second, so both processes are surely in flight
    // at the same time.
    let server = http::start(
        &fx.served,
        http::Options {
            delay_packs: Some(Duration::from_secs(1)),
            ..Default::default()
        },
    );
    let url = format!("{}/repo.git", server.url);
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let children: Vec<Child> = (0..2)
        .map(|i| spawn_child(&cache, &url, &tmp.path().join(format!("out-{i}"))))
        .collect();
    for child in children {
        let output = child.wait_with_output().expect("child runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "child failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let expected = format!("revision: main@sha1:{}", fx.head());
        assert!(stdout.contains(&expected), "{stdout}");
    }
    assert_eq!(
        server.pack_requests.load(Ordering::SeqCst),
        1,
        "only one process transfers objects"
    );
    for i in 0..2 {
        let out = tmp.path().join(format!("out-{i}"));
        let text = std::fs::read_to_string(out.join("dir/b.txt")).expect("exported file");
        assert_eq!(text, "2\n");
    }
    let repos: Vec<_> = std::fs::read_dir(cache.join("repos"))
        .expect("repos dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(repos.len(), 1, "one cache repository for one URL");
    git(&repos[0], &["fsck", "--strict", "--no-progress"]);
}
