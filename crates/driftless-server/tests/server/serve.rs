//! `driftless serve` as a whole: process and data dir settings.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use driftless_server::serve::{Desired, ServeOptions, run};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_dir_is_private_after_serve_starts_even_when_it_existed_open() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let old = data.join("cache/renders/old.yaml");
    std::fs::create_dir_all(old.parent().expect("parent")).expect("mkdir");
    std::fs::write(&old, "kind: Secret\n").expect("write");
    for (path, m) in [(&data, 0o755), (&old, 0o644)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).expect("chmod");
    }
    let config = tmp.path().join("driftless.yaml");
    std::fs::write(
        &config,
        "apiVersion: driftless.dev/v1alpha1\nkind: Server\nmetadata: {name: server}\n\
         spec: {listen: '127.0.0.1:0', dataDir: data}\n",
    )
    .expect("write config");
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let opts = ServeOptions {
        desired: Desired::Files(config),
        data_dir: None,
        listen: None,
        render_worker: None,
        concurrency: None,
        on_ready: Box::new(move |addr| {
            let _ = ready_tx.send(addr);
        }),
    };
    let server = tokio::spawn(run(opts, async move {
        let _ = stop_rx.await;
    }));
    tokio::time::timeout(Duration::from_secs(20), ready_rx)
        .await
        .expect("serve starts within 20s")
        .expect("ready");

    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join(driftless_engine::store::DB_FILE)), 0o600);
    let deadline = Instant::now() + Duration::from_secs(5);
    while mode(&old) != 0o600 {
        assert!(
            Instant::now() < deadline,
            "{} stayed {:o}",
            old.display(),
            mode(&old)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(());
    server.await.expect("task").expect("serve stops cleanly");
}
