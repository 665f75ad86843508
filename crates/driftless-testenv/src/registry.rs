//! A real OCI registry for tests: distribution's `registry` (built by
//! `scripts/ci/install-oci.sh`), on a loopback port, storing in a temporary
//! directory, with or without htpasswd authentication.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::servers::{Server, free_port, wait_for_port};

/// A running registry, stopped and its storage removed when dropped.
pub struct Registry {
    server: Option<Server>,
    dir: tempfile::TempDir,
    port: u16,
}

impl Registry {
    /// A registry anyone may pull from and push to.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A registry that asks for `user` and `password` (HTTP basic, checked
    /// against an htpasswd file) on every request.
    pub fn with_basic_auth(user: &str, password: &str) -> Self {
        Self::start_with(Some((user, password)))
    }

    fn start_with(credentials: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().expect("registry directory");
        let port = free_port();
        let auth = match credentials {
            Some((user, password)) => {
                let hash = bcrypt::hash(password, 5).expect("bcrypt");
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, format!("{user}:{hash}\n")).expect("htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: driftless-test\n    path: {}\n",
                    file.display()
                )
            }
            None => String::new(),
        };
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n{auth}",
                dir.path().join("data").display()
            ),
        )
        .expect("registry config");
        let mut registry = Registry {
            server: None,
            dir,
            port,
        };
        registry.run();
        registry
    }

    fn run(&mut self) {
        let child = Command::new(crate::tools::oci_registry())
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the registry");
        self.server = Some(Server(child));
        wait_for_port(self.port);
    }

    /// `127.0.0.1:PORT`, the registry part of an `oci://` reference.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the registry, keeping its storage (a registry that is down).
    pub fn stop(&mut self) {
        self.server = None;
    }

    /// Starts it again on the same port with the same storage.
    pub fn restart(&mut self) {
        if self.server.is_none() {
            self.run();
        }
    }

    /// The file holding the blob `digest` (`sha256:...`) in the storage, so a
    /// test can tamper with it.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// The storage directory.
    pub fn storage(&self) -> &Path {
        self.dir.path()
    }
}
