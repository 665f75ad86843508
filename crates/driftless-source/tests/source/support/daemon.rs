//! `git daemon` serving a fixture over `git://` on loopback.

use std::path::Path;
use std::process::{Command, Stdio};

use super::{Server, free_port, wait_for_port};

/// Starts `git daemon` exporting every repository under `root`; returns the server and base URL.
pub fn start(root: &Path) -> (Server, String) {
    let port = free_port();
    let root_str = root.to_str().expect("utf-8 path");
    // Run git-daemon itself: killing a `git daemon` wrapper would orphan it.
    let exec_path = Command::new("git")
        .arg("--exec-path")
        .output()
        .expect("git --exec-path runs");
    let exec_path = String::from_utf8_lossy(&exec_path.stdout)
        .trim()
        .to_string();
    let child = Command::new(Path::new(&exec_path).join("git-daemon"))
        .args([
            "--reuseaddr",
            "--listen=127.0.0.1",
            &format!("--port={port}"),
            &format!("--base-path={root_str}"),
            "--export-all",
            "--informative-errors",
            root_str,
        ])
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("git daemon starts");
    let server = Server(child);
    wait_for_port(port);
    (server, format!("git://127.0.0.1:{port}"))
}
