//! Benchmark: driftless fetch vs `git clone --depth 1` / `git fetch`, over smart
//! HTTP, and the no-change refresh over HTTPS (TLS terminated by `socat`).
//!
//! Usage: `bench_source ROOT [ROUNDS]` where `ROOT/repo.git` is a bare repository.
//! Run through `scripts/bench-source`, which generates the repository.

// The test support module allows its own unused helpers.
#[path = "../tests/source/support/mod.rs"]
mod support;

use support::{http, tls};

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use driftless_source::{Backend, Fetcher, RefSpec, SourceSpec, Tls};

fn git(args: &[&str], dir: &Path) -> Result<(), String> {
    git_env(args, dir, &[])
}

fn git_env(args: &[&str], dir: &Path, env: &[(&str, &Path)]) -> Result<(), String> {
    let out = Command::new("git")
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .map_err(|e| format!("git {args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn time<T>(f: impl FnOnce() -> Result<T, String>) -> Result<Duration, String> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let root = args.next().ok_or("usage: bench_source ROOT [ROUNDS]")?;
    let rounds: usize = args
        .next()
        .map_or(Ok(5), |r| r.parse())
        .map_err(|e| format!("ROUNDS: {e}"))?;
    let root = Path::new(&root);
    let server = http::start(root, http::Options::default());
    let url = format!("{}/repo.git", server.url);
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let spec = SourceSpec::new(url.clone(), RefSpec::Branch("main".into()));

    let front = tls::start(&scratch.path().join("tls"), support::port_of(&server.url));
    let https_url = format!("{}/repo.git", front.url);
    let ca_file = scratch.path().join("tls/ca.pem");
    let https_spec = SourceSpec {
        tls: Tls {
            ca_bundle: Some(front.ca_pem.clone()),
        },
        ..SourceSpec::new(https_url.clone(), RefSpec::Branch("main".into()))
    };

    let (mut git_initial, mut dl_initial, mut git_poll, mut dl_poll) =
        (vec![], vec![], vec![], vec![]);
    let (mut git_tls_poll, mut dl_tls_poll) = (vec![], vec![]);
    let mut poll_requests = 0;
    let mut dl_fetch_only = vec![];
    let (mut git_backend_initial, mut git_backend_fetch_only) = (vec![], vec![]);
    let mut counts = None;
    let mut request_only = vec![];
    for round in 0..rounds {
        let clone_dir = scratch.path().join(format!("clone-{round}"));
        let clone_str = clone_dir.to_string_lossy().to_string();
        git_initial.push(time(|| {
            git(
                &[
                    "clone", "-q", "--depth", "1", "--branch", "main", &url, &clone_str,
                ],
                scratch.path(),
            )
        })?);
        // The same with the git binary doing the transfer and tree reads.
        let by_git = Fetcher::with_backend(
            scratch.path().join(format!("git-cache-{round}")),
            Backend::Git,
        );
        let start = Instant::now();
        let rev = by_git.fetch(&spec).map_err(|e| e.to_string())?;
        git_backend_fetch_only.push(start.elapsed());
        by_git
            .snapshot(&spec, &rev, "")
            .map_err(|e| e.to_string())?;
        git_backend_initial.push(start.elapsed());

        let fetcher =
            Fetcher::with_backend(scratch.path().join(format!("cache-{round}")), Backend::Gix);
        let start = Instant::now();
        let rev = fetcher.fetch(&spec).map_err(|e| e.to_string())?;
        let fetched = start.elapsed();
        fetcher
            .snapshot(&spec, &rev, "")
            .map_err(|e| e.to_string())?;
        dl_initial.push(start.elapsed());
        dl_fetch_only.push(fetched);
        counts = Some(fetcher.backend_counts());
        git_poll.push(time(|| git(&["fetch", "-q", "origin"], &clone_dir))?);
        let before = server.requests.load(Ordering::SeqCst);
        dl_poll.push(time(|| fetcher.fetch(&spec).map_err(|e| e.to_string()))?);
        poll_requests = server.requests.load(Ordering::SeqCst) - before;
        // The ref listing request alone: what the server costs per poll.
        request_only.push(time(|| {
            driftless_source::advertise::list(
                &url,
                &spec.reference,
                None,
                &Tls::default(),
                Duration::from_secs(30),
            )
            .map_err(|e| e.to_string())
        })?);

        let tls_clone = scratch.path().join(format!("tls-clone-{round}"));
        let tls_clone_str = tls_clone.to_string_lossy().to_string();
        // The environment variable outranks `http.sslCAInfo` and may be set already.
        let ca = [("GIT_SSL_CAINFO", ca_file.as_path())];
        git_env(
            &["clone", "-q", "--depth", "1", &https_url, &tls_clone_str],
            scratch.path(),
            &ca,
        )?;
        git_tls_poll.push(time(|| {
            git_env(&["fetch", "-q", "origin"], &tls_clone, &ca)
        })?);
        fetcher.fetch(&https_spec).map_err(|e| e.to_string())?;
        dl_tls_poll.push(time(|| {
            fetcher.fetch(&https_spec).map_err(|e| e.to_string())
        })?);
    }
    let (gi, di, gp, dp) = (
        median(git_initial),
        median(dl_initial),
        median(git_poll),
        median(dl_poll),
    );
    println!("median of {rounds} rounds, same run, same HTTP server");
    println!(
        "initial:   git clone --depth 1 {:8.1} ms | driftless fetch+snapshot {:8.1} ms | driftless/git = {:.2}x",
        ms(gi),
        ms(di),
        ms(di) / ms(gi)
    );
    println!(
        "no-change: git fetch         {:8.1} ms | driftless fetch          {:8.1} ms | git/driftless = {:.2}x faster",
        ms(gp),
        ms(dp),
        ms(gp) / ms(dp)
    );
    println!(
        "driftless initial split: fetch {:.1} ms, snapshot export {:.1} ms",
        ms(median(dl_fetch_only.clone())),
        ms(di) - ms(median(dl_fetch_only))
    );
    let (bi, bf) = (median(git_backend_initial), median(git_backend_fetch_only));
    println!(
        "driftless with the git backend: fetch {:.1} ms, snapshot export {:.1} ms, total {:.1} ms = {:.2}x of git clone",
        ms(bf),
        ms(bi) - ms(bf),
        ms(bi),
        ms(bi) / ms(gi)
    );
    if let Some(c) = counts {
        println!(
            "gix backend: {} transfer(s) by gix, {} by git, {} tree/blob reads by gix, {} by git",
            c.gix_transfers, c.git_transfers, c.gix_reads, c.git_reads
        );
    }
    println!(
        "no-change poll HTTP requests: {poll_requests} (the ls-refs request alone: {:.1} ms)",
        ms(median(request_only))
    );
    let (gt, dt) = (median(git_tls_poll), median(dl_tls_poll));
    println!(
        "no-change over https: git fetch {:8.1} ms | driftless fetch {:8.1} ms | git/driftless = {:.2}x faster",
        ms(gt),
        ms(dt),
        ms(gt) / ms(dt)
    );
    Ok(())
}
