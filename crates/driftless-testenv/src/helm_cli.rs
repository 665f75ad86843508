//! The real `helm` command with its config, cache, data and registry
//! logins in a temporary directory: for pushing charts to a test registry.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::chart_repo::write_chart;

/// A helm whose config, cache, data and registry logins are in a temporary
/// directory, so the user's own are never read or changed.
pub struct Helm {
    home: tempfile::TempDir,
}

impl Helm {
    pub fn new() -> Helm {
        Helm {
            home: tempfile::tempdir().expect("helm home"),
        }
    }

    /// The registry credentials file `helm registry login` writes.
    pub fn registry_config(&self) -> PathBuf {
        self.home.path().join("registry.json")
    }

    pub fn command(&self) -> Command {
        let home = self.home.path();
        let mut cmd = Command::new(crate::tools::helm());
        cmd.env("HOME", home)
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env("HELM_REGISTRY_CONFIG", self.registry_config());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().expect("run helm");
        assert!(
            out.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `helm registry login` over plain HTTP, the password on stdin.
    pub fn login(&self, host: &str, user: &str, password: &str) {
        let mut child = self
            .command()
            .args(["registry", "login", host, "--insecure", "--username", user])
            .arg("--password-stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("helm registry login");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(password.as_bytes())
            .expect("password");
        let out = child.wait_with_output().expect("login");
        assert!(
            out.status.success(),
            "helm registry login: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Packages chart `name` at `version` with `helm package` and pushes it
    /// to `oci://HOST/charts` with `helm push --plain-http`; returns the
    /// archive pushed.
    pub fn push(&self, host: &str, name: &str, version: &str, work: &Path) -> PathBuf {
        let dir = work.join(format!("{name}-{version}"));
        let chart = write_chart(&dir, name, version, "");
        let chart = chart.to_str().expect("utf-8 path");
        let dest = dir.to_str().expect("utf-8 path");
        self.run(&["package", chart, "--destination", dest]);
        let archive = dir.join(format!("{name}-{version}.tgz"));
        let remote = format!("oci://{host}/charts");
        let tgz = archive.to_str().expect("utf-8 path");
        self.run(&["push", tgz, &remote, "--plain-http"]);
        archive
    }
}

impl Default for Helm {
    fn default() -> Self {
        Self::new()
    }
}
