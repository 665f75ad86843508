//! The host target against real OpenSSH servers on loopback ports.

mod sshd;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use driftless_api::{HealthCheck, HostDelivery, HostResult, Rollout};
use driftless_host::{
    AppRelease, Connection, ConnectionPool, FileDrift, SshError, Timeouts, check_drift,
    deploy_host, restore, rollout,
};
use sshd::{Endpoints, Lab};

const APP: &str = "web";

fn write(root: &Path, rel: &str, content: &str, mode: u32) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("test step succeeds"))
        .expect("test step succeeds");
    std::fs::write(&path, content).expect("test step succeeds");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
        .expect("test step succeeds");
}

/// A small tree: a substituted config, an executable, a plain file, a link.
fn tree(version: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("test step succeeds");
    write(
        dir.path(),
        "etc/app.conf",
        "host=${DRIFTLESS_HOST} region=${region} rev=${DRIFTLESS_REVISION}\n",
        0o640,
    );
    write(dir.path(), "bin/start", "#!/bin/sh\necho start\n", 0o755);
    write(
        dir.path(),
        "static/version.txt",
        &format!("{version}\n"),
        0o644,
    );
    write(dir.path(), "static/logo.svg", "<svg/>\n", 0o644);
    std::os::unix::fs::symlink("etc/app.conf", dir.path().join("config"))
        .expect("test step succeeds");
    dir
}

fn delivery() -> HostDelivery {
    HostDelivery {
        substitute: vec!["*.conf".into()],
        ..HostDelivery::default()
    }
}

fn release(revision: &str, dir: &Path, delivery: &HostDelivery) -> Arc<AppRelease> {
    Arc::new(AppRelease::new(APP, revision, dir, delivery, None).expect("test step succeeds"))
}

/// A pool of its own for each test, as each engine has one.
fn pool() -> Arc<ConnectionPool> {
    Arc::new(ConnectionPool::new(Duration::from_secs(600)))
}

/// One sshd host, a pool and the host's endpoint.
fn one_host() -> (Lab, Arc<ConnectionPool>, driftless_host::Endpoint) {
    let lab = Lab::start(1);
    let endpoint = lab.endpoints().remove(0);
    (lab, pool(), endpoint)
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(10),
        command: Duration::from_secs(20),
        upload: Duration::from_secs(60),
    }
}

fn results(records: &[driftless_api::HostRollout]) -> Vec<HostResult> {
    records.iter().map(|r| r.result).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_rollout_to_three_hosts_then_only_changes_are_sent() {
    if !sshd::available() {
        return;
    }
    let lab = Lab::start(3);
    let hosts = lab.endpoints();
    let mut settings = delivery();
    settings.rollout.parallel = 2;
    settings.hooks.after_switch =
        Some("echo \"$DRIFTLESS_APP $DRIFTLESS_HOST $DRIFTLESS_REVISION $DRIFTLESS_PREVIOUS_RELEASE $(pwd)\" >> ../../../hooks.log".into());
    let v1 = tree("v1");
    let records = rollout(
        pool(),
        release("c1", v1.path(), &settings),
        &hosts,
        timeouts(),
    )
    .await;
    assert_eq!(
        results(&records),
        [HostResult::Succeeded; 3],
        "{records:#?}"
    );
    for host in &lab.hosts {
        let root = host.app_root(APP);
        assert_eq!(host.current(APP).as_deref(), Some("releases/c1"));
        let conf =
            std::fs::read_to_string(root.join("current/etc/app.conf")).expect("test step succeeds");
        assert_eq!(
            conf,
            format!("host={0} region=region-of-{0} rev=c1\n", host.name)
        );
        let mode = |rel: &str| {
            std::fs::metadata(root.join("current").join(rel))
                .expect("test step succeeds")
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!((mode("bin/start"), mode("etc/app.conf")), (0o755, 0o640));
        assert_eq!(
            std::fs::read_link(root.join("current/config")).expect("test step succeeds"),
            Path::new("etc/app.conf")
        );
        assert!(root.join("releases/c1.manifest").is_file());
        let log =
            std::fs::read_to_string(host.apps().join("hooks.log")).expect("test step succeeds");
        assert_eq!(
            log,
            format!(
                "web {} c1  {}\n",
                host.name,
                root.join("releases/c1").display()
            )
        );
    }

    let v2 = tree("v2");
    let records = rollout(
        pool(),
        release("c2", v2.path(), &settings),
        &hosts,
        timeouts(),
    )
    .await;
    assert_eq!(
        results(&records),
        [HostResult::Succeeded; 3],
        "{records:#?}"
    );
    for (host, record) in lab.hosts.iter().zip(&records) {
        // version.txt changed, and app.conf through ${DRIFTLESS_REVISION}.
        assert_eq!(record.files_sent, 2, "{record:?}");
        assert_eq!(record.previous.as_deref(), Some("c1"));
        let releases = host.app_root(APP).join("releases");
        let inode = |rev: &str, rel: &str| {
            std::fs::metadata(releases.join(rev).join(rel))
                .expect("test step succeeds")
                .ino()
        };
        assert_eq!(
            inode("c1", "static/logo.svg"),
            inode("c2", "static/logo.svg"),
            "unchanged files are hard links"
        );
        assert_ne!(
            inode("c1", "static/version.txt"),
            inode("c2", "static/version.txt")
        );
        assert_eq!(
            std::fs::read_to_string(releases.join("c2/static/version.txt"))
                .expect("test step succeeds"),
            "v2\n"
        );
        assert_eq!(
            std::fs::read_to_string(releases.join("c1/static/version.txt"))
                .expect("test step succeeds"),
            "v1\n"
        );
        assert_eq!(
            std::fs::read_link(host.app_root(APP).join("previous")).expect("test step succeeds"),
            Path::new("releases/c1")
        );
    }
    let again = rollout(
        pool(),
        release("c2", v2.path(), &settings),
        &hosts,
        timeouts(),
    )
    .await;
    assert_eq!(results(&again), [HostResult::Unchanged; 3], "{again:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_health_check_rolls_that_host_back_and_stops_the_rollout() {
    if !sshd::available() {
        return;
    }
    let lab = Lab::start(3);
    let hosts = lab.endpoints();
    let mut settings = delivery();
    settings.rollout = Rollout {
        parallel: 1,
        stop_on_failure: true,
    };
    settings.hooks.after_switch = Some("echo \"$DRIFTLESS_REVISION\" >> ../../../after.log".into());
    let v1 = tree("v1");
    let first = rollout(
        pool(),
        release("c1", v1.path(), &settings),
        &hosts,
        timeouts(),
    )
    .await;
    assert_eq!(results(&first), [HostResult::Succeeded; 3], "{first:#?}");

    settings.health_check = Some(HealthCheck {
        command: Some("grep -q v2 static/version.txt && [ \"$DRIFTLESS_HOST\" != h1 ] || { echo \"h1 answers 503\"; exit 1; }".into()),
        http: None,
        timeout: "5s".parse().expect("test step succeeds"),
        retries: 1,
        interval: "100ms".parse().expect("test step succeeds"),
    });
    let v2 = tree("v2");
    let records = rollout(
        pool(),
        release("c2", v2.path(), &settings),
        &hosts,
        timeouts(),
    )
    .await;
    assert_eq!(
        results(&records),
        [
            HostResult::Succeeded,
            HostResult::RolledBack,
            HostResult::Skipped
        ],
        "{records:#?}"
    );
    let failed = &records[1];
    assert!(failed.rolled_back);
    assert_eq!(failed.health, driftless_api::status::HealthStatus::Degraded);
    let message = failed.message.as_deref().unwrap_or_default();
    assert!(
        message.contains("h1 answers 503") && message.contains("attempt 2 of 2"),
        "{message}"
    );
    assert_eq!(lab.hosts[0].current(APP).as_deref(), Some("releases/c2"));
    assert_eq!(lab.hosts[1].current(APP).as_deref(), Some("releases/c1"));
    assert_eq!(lab.hosts[2].current(APP).as_deref(), Some("releases/c1"));
    let log =
        std::fs::read_to_string(lab.hosts[1].apps().join("after.log")).expect("test step succeeds");
    assert_eq!(
        log, "c1\nc2\nc1\n",
        "afterSwitch runs again after the switch back"
    );
    assert!(
        records[2]
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("not started")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_on_a_host_is_reported_by_file_and_restored() {
    if !sshd::available() {
        return;
    }
    let lab = Lab::start(1);
    let pool = pool();
    let endpoint = &lab.endpoints()[0];
    let v1 = tree("v1");
    let rel = release("c1", v1.path(), &delivery());
    assert_eq!(
        deploy_host(&pool, endpoint, &rel, timeouts()).await.result,
        HostResult::Succeeded
    );
    let conn = Connection::open(endpoint, timeouts())
        .await
        .expect("test step succeeds");
    assert!(
        check_drift(&conn, endpoint, APP, "c1")
            .await
            .expect("test step succeeds")
            .is_clean()
    );

    let current = lab.hosts[0].app_root(APP).join("current");
    std::fs::write(current.join("static/version.txt"), "edited by hand\n")
        .expect("test step succeeds");
    std::fs::remove_file(current.join("static/logo.svg")).expect("test step succeeds");
    std::fs::write(current.join("static/extra.txt"), "x").expect("test step succeeds");
    std::fs::set_permissions(
        current.join("bin/start"),
        std::fs::Permissions::from_mode(0o777),
    )
    .expect("test step succeeds");
    let report = check_drift(&conn, endpoint, APP, "c1")
        .await
        .expect("test step succeeds");
    assert_eq!(
        report.events,
        [
            FileDrift::ModeChanged {
                path: "bin/start".into(),
                expected: 0o755,
                found: 0o777
            },
            FileDrift::Added {
                path: "static/extra.txt".into()
            },
            FileDrift::Removed {
                path: "static/logo.svg".into()
            },
            FileDrift::Modified {
                path: "static/version.txt".into()
            },
        ]
    );
    let repaired = restore(&conn, endpoint, &rel)
        .await
        .expect("test step succeeds");
    assert_eq!(repaired.events, report.events);
    assert!(
        check_drift(&conn, endpoint, APP, "c1")
            .await
            .expect("test step succeeds")
            .is_clean()
    );
    assert_eq!(
        std::fs::read_to_string(current.join("static/version.txt")).expect("test step succeeds"),
        "v1\n"
    );

    // A moved `current` is drift too, and restore points it back.
    let root = lab.hosts[0].app_root(APP);
    std::fs::remove_file(root.join("current")).expect("test step succeeds");
    std::os::unix::fs::symlink("/tmp", root.join("current")).expect("test step succeeds");
    let moved = check_drift(&conn, endpoint, APP, "c1")
        .await
        .expect("test step succeeds");
    assert_eq!(
        moved.events,
        [FileDrift::CurrentMoved {
            expected: "c1".into(),
            found: None
        }]
    );
    restore(&conn, endpoint, &rel)
        .await
        .expect("test step succeeds");
    assert_eq!(lab.hosts[0].current(APP).as_deref(), Some("releases/c1"));
    conn.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sshd_killed_during_the_upload_leaves_current_on_the_old_release() {
    if !sshd::available() {
        return;
    }
    let (mut lab, pool, endpoint) = one_host();
    let v1 = tree("v1");
    let first = deploy_host(
        &pool,
        &endpoint,
        &release("c1", v1.path(), &delivery()),
        timeouts(),
    )
    .await;
    assert_eq!(first.result, HostResult::Succeeded, "{first:?}");

    let v2 = tree("v2");
    // Large enough that the upload is still running when the server dies.
    let mut big = vec![0u8; 96 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in big.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(v2.path().join("static/big.bin"), &big).expect("test step succeeds");
    drop(big);
    let rel = release("c2", v2.path(), &delivery());
    let task = {
        let (pool, endpoint, rel) = (pool.clone(), endpoint.clone(), rel.clone());
        tokio::spawn(async move { deploy_host(&pool, &endpoint, &rel, timeouts()).await })
    };
    let staging = lab.hosts[0].app_root(APP).join("releases/.staging-c2");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !staging.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload never started"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    lab.hosts[0].kill();
    let record = task.await.expect("test step succeeds");
    assert_eq!(record.result, HostResult::Failed, "{record:?}");
    assert!(
        record.message.as_deref().unwrap_or_default().contains("h0"),
        "{record:?}"
    );
    assert_eq!(lab.hosts[0].current(APP).as_deref(), Some("releases/c1"));
    let current = lab.hosts[0].app_root(APP).join("current");
    assert_eq!(
        std::fs::read_to_string(current.join("static/version.txt")).expect("test step succeeds"),
        "v1\n"
    );
    assert!(!lab.hosts[0].app_root(APP).join("releases/c2").exists());

    // The next attempt starts the staging over and succeeds.
    lab.hosts[0].restart();
    let retry = deploy_host(&pool, &endpoint, &rel, timeouts()).await;
    assert_eq!(retry.result, HostResult::Succeeded, "{retry:?}");
    assert_eq!(
        std::fs::metadata(current.join("static/big.bin"))
            .expect("test step succeeds")
            .len(),
        96 << 20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_unknown_host_key_is_refused_before_anything_is_sent() {
    if !sshd::available() {
        return;
    }
    let lab = Lab::start(2);
    let pool = pool();
    let mut endpoint = lab.endpoints().remove(0);
    // The known_hosts entry of the other server: a different key for this address.
    let other =
        std::fs::read_to_string(lab.hosts[1].home.join("known_hosts")).expect("test step succeeds");
    let wrong = other.replace(
        &lab.hosts[1].port.to_string(),
        &lab.hosts[0].port.to_string(),
    );
    let known = lab.dir.path().join("wrong_known_hosts");
    std::fs::write(&known, wrong).expect("test step succeeds");
    endpoint.known_hosts = driftless_host::KnownHosts::File(known.clone());
    let err = Connection::open(&endpoint, timeouts())
        .await
        .expect_err("this must be refused");
    assert!(
        matches!(err, SshError::HostKeyMismatch { ref host, line: 1, .. } if host == "h0"),
        "{err}"
    );
    let v1 = tree("v1");
    let record = deploy_host(
        &pool,
        &endpoint,
        &release("c1", v1.path(), &delivery()),
        timeouts(),
    )
    .await;
    assert_eq!(record.result, HostResult::Failed);
    assert!(
        record
            .message
            .expect("test step succeeds")
            .contains("does not match the key recorded")
    );
    assert_eq!(
        std::fs::read_dir(lab.hosts[0].apps())
            .expect("test step succeeds")
            .count(),
        0,
        "nothing uploaded"
    );

    std::fs::write(&known, "").expect("test step succeeds");
    let err = Connection::open(&endpoint, timeouts())
        .await
        .expect_err("this must be refused");
    assert!(matches!(err, SshError::HostKeyUnknown { .. }), "{err}");
    assert!(err.to_string().contains("SHA256:"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_and_known_hosts_held_in_memory_log_in_and_wrong_lines_are_refused() {
    if !sshd::available() {
        return;
    }
    let lab = Lab::start(2);
    let mut endpoint = lab.endpoints().remove(0);
    let pem = std::fs::read_to_string(lab.identity()).expect("key");
    endpoint.identity = driftless_host::Identity::Key {
        origin: "Secret team/web-ssh key identity".into(),
        pem,
    };
    endpoint.known_hosts = driftless_host::KnownHosts::Lines {
        origin: "Secret team/web-ssh key known_hosts".into(),
        text: std::fs::read_to_string(lab.hosts[0].known_hosts()).expect("known_hosts"),
    };
    let conn = Connection::open(&endpoint, timeouts())
        .await
        .expect("logs in with the key and host keys in memory");
    assert!(
        conn.run("true", None, timeouts().command)
            .await
            .expect("runs")
            .success()
    );
    conn.close().await;
    // A wildcard pattern names the host as OpenSSH reads it; a matching
    // negation takes the line away again.
    let own = std::fs::read_to_string(lab.hosts[0].known_hosts()).expect("known_hosts");
    let port = lab.hosts[0].port;
    for (hosts, trusted) in [
        (format!("[127.0.0.*]:{port}"), true),
        (format!("[127.0.0.*]:{port},![127.0.0.1]:{port}"), false),
    ] {
        let text = own.replace(&format!("[127.0.0.1]:{port}"), &hosts);
        assert_ne!(text, own, "the line names the host by address and port");
        endpoint.known_hosts = driftless_host::KnownHosts::Lines {
            origin: "Secret team/web-ssh key known_hosts".into(),
            text,
        };
        let opened = Connection::open(&endpoint, timeouts()).await;
        match opened {
            Ok(conn) if trusted => conn.close().await,
            Err(SshError::HostKeyUnknown { .. }) if !trusted => {}
            other => panic!("{hosts}: {:?}", other.map(|_| "connected")),
        }
    }
    // The other server's line, moved to this server's port: another key.
    let other = std::fs::read_to_string(lab.hosts[1].known_hosts()).expect("known_hosts");
    endpoint.known_hosts = driftless_host::KnownHosts::Lines {
        origin: "Secret team/web-ssh key known_hosts".into(),
        text: other.replace(
            &lab.hosts[1].port.to_string(),
            &lab.hosts[0].port.to_string(),
        ),
    };
    let err = Connection::open(&endpoint, timeouts())
        .await
        .expect_err("a different host key is refused");
    assert!(
        matches!(err, SshError::HostKeyMismatch { line: 1, .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("Secret team/web-ssh key known_hosts line 1"),
        "{text}"
    );
    assert!(!text.contains("PRIVATE KEY"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_releases_beyond_keep_releases_are_removed() {
    if !sshd::available() {
        return;
    }
    let lab = Lab::start(1);
    let pool = pool();
    let endpoint = &lab.endpoints()[0];
    let mut settings = delivery();
    settings.keep_releases = 2;
    let dir = tree("v");
    for rev in ["c1", "c2", "c3", "c4"] {
        write(dir.path(), "static/version.txt", rev, 0o644);
        let record = deploy_host(
            &pool,
            endpoint,
            &release(rev, dir.path(), &settings),
            timeouts(),
        )
        .await;
        assert_eq!(record.result, HostResult::Succeeded, "{record:?}");
    }
    let mut left: Vec<String> = std::fs::read_dir(lab.hosts[0].app_root(APP).join("releases"))
        .expect("test step succeeds")
        .map(|e| {
            e.expect("test step succeeds")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    left.sort();
    assert_eq!(left, ["c3", "c3.manifest", "c4", "c4.manifest"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_hook_is_killed_at_its_timeout_and_current_stays() {
    if !sshd::available() {
        return;
    }
    let lab = Lab::start(1);
    let pool = pool();
    let endpoint = &lab.endpoints()[0];
    let v1 = tree("v1");
    assert_eq!(
        deploy_host(
            &pool,
            endpoint,
            &release("c1", v1.path(), &delivery()),
            timeouts()
        )
        .await
        .result,
        HostResult::Succeeded
    );
    let mut settings = delivery();
    settings.hooks.before_switch = Some("echo started > ../../../hook.pid; exec sleep 4242".into());
    settings.hooks.timeout = "1s".parse().expect("test step succeeds");
    let v2 = tree("v2");
    let started = std::time::Instant::now();
    let record = deploy_host(
        &pool,
        endpoint,
        &release("c2", v2.path(), &settings),
        timeouts(),
    )
    .await;
    assert_eq!(record.result, HostResult::Failed);
    let message = record.message.expect("test step succeeds");
    assert!(
        message.contains("host h0: beforeSwitch hook killed after its timeout of 1s"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(lab.hosts[0].current(APP).as_deref(), Some("releases/c1"));
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .expect("test step succeeds");
    assert!(
        !String::from_utf8_lossy(&ps.stdout).contains("sleep 4242"),
        "the hook still runs"
    );
}

#[test]
fn a_symlink_escaping_the_tree_is_refused_before_any_host_is_touched() {
    let dir = tree("v1");
    std::os::unix::fs::symlink("../../../etc/shadow", dir.path().join("static/key"))
        .expect("test step succeeds");
    let err = AppRelease::new(APP, "c1", dir.path(), &delivery(), None)
        .expect_err("this must be refused");
    assert_eq!(
        err.to_string(),
        "symlink static/key -> ../../../etc/shadow leads outside the release"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_serves_every_operation_and_a_restarted_host_gets_a_new_one() {
    if !sshd::available() {
        return;
    }
    let (mut lab, pool, endpoint) = one_host();
    let v1 = tree("v1");
    let rel = release("c1", v1.path(), &delivery());
    let first = deploy_host(&pool, &endpoint, &rel, timeouts()).await;
    assert_eq!(first.result, HostResult::Succeeded, "{first:?}");
    let held = pool
        .lease(&endpoint, timeouts())
        .await
        .expect("test step succeeds");
    assert!(held.reused, "the deployment's connection stays open");
    assert!(
        check_drift(&held.connection, &endpoint, APP, "c1")
            .await
            .expect("test step succeeds")
            .is_clean()
    );
    let again = pool
        .lease(&endpoint, timeouts())
        .await
        .expect("test step succeeds");
    assert!(again.reused && Arc::ptr_eq(&held.connection, &again.connection));

    // The held connection dies with the server; the next deployment does not
    // fail on it but logs in again.
    lab.hosts[0].restart();
    let second = deploy_host(&pool, &endpoint, &rel, timeouts()).await;
    assert_eq!(second.result, HostResult::Unchanged, "{second:?}");
    let after = pool
        .lease(&endpoint, timeouts())
        .await
        .expect("test step succeeds");
    assert!(!Arc::ptr_eq(&held.connection, &after.connection));
    assert!(held.connection.is_closed());
    assert_eq!(pool.close_idle().await, 1);
    pool.close_all().await;
    // The goodbye is sent; the session ends as soon as the host answers it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !after.connection.is_closed() {
        assert!(std::time::Instant::now() < deadline, "still open");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
