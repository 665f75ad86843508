//! Test hosts: real OpenSSH servers on loopback ports, one per host, each
//! with its own host key, known_hosts file and `appsRoot`, sharing one user
//! key, killed with their process group (and their sessions) on drop.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::servers::free_port;

/// Debian's OpenSSH server, installed by `scripts/ci/install-ssh.sh`.
pub const SSHD: &str = "/usr/sbin/sshd";

/// Whether real sshd tests can run: they skip with a message when sshd is
/// missing outside CI, and fail under CI, where a skip would hide a gap.
pub fn available() -> bool {
    if Path::new(SSHD).exists() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{SSHD} is missing under CI: run scripts/ci/install-ssh.sh");
    }
    eprintln!("skipped: {SSHD} is not installed (scripts/ci/install-ssh.sh installs it)");
    false
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn keygen(path: &Path) {
    run(Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "driftless-test",
            "-f",
        ])
        .arg(path));
}

/// A set of test hosts sharing one user key.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub hosts: Vec<Host>,
}

impl Lab {
    /// Starts `n` sshd processes named `h0`, `h1`, ...
    pub fn start(n: usize) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        keygen(&dir.path().join("id_ed25519"));
        std::fs::copy(
            dir.path().join("id_ed25519.pub"),
            dir.path().join("authorized_keys"),
        )
        .expect("authorized_keys");
        if nix_root() {
            // sshd running as root wants its privilege separation directory.
            std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        }
        let hosts = (0..n)
            .map(|i| Host::start(dir.path(), &format!("h{i}")))
            .collect();
        Self { dir, hosts }
    }

    /// The private key every host accepts.
    pub fn identity(&self) -> PathBuf {
        self.dir.path().join("id_ed25519")
    }

    /// The config's `Host` objects of every host, as YAML documents: labelled
    /// `role: web`, each with a variable `region` of `region-of-NAME`.
    pub fn host_objects(&self) -> String {
        self.hosts
            .iter()
            .map(|h| {
                format!(
                    "apiVersion: driftless.dev/v1alpha1
kind: Host
metadata: {{name: {name}, labels: {{role: web}}}}
spec:
  address: 127.0.0.1
  port: {port}
  user: {user}
  identityFile: {identity}
  knownHostsFile: {known}
  appsRoot: {apps}
  vars: {{region: region-of-{name}}}
---
",
                    name = h.name,
                    port = h.port,
                    user = whoami(),
                    identity = self.identity().display(),
                    known = h.known_hosts().display(),
                    apps = h.apps().display(),
                )
            })
            .collect()
    }
}

fn nix_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// One host: an sshd process with its own host key and `appsRoot`.
pub struct Host {
    pub name: String,
    pub port: u16,
    pub home: PathBuf,
    child: Option<Child>,
}

impl Host {
    fn start(lab: &Path, name: &str) -> Self {
        let home = lab.join(name);
        std::fs::create_dir_all(home.join("apps")).expect("host dir");
        keygen(&home.join("host_key"));
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {home}/host_key\nPidFile {home}/sshd.pid\n\
             AuthorizedKeysFile {lab}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\nAllowTcpForwarding yes\nMaxStartups 100\nMaxSessions 100\n\
             LogLevel ERROR\n",
            home = home.display(),
            lab = lab.display(),
        );
        std::fs::write(home.join("sshd_config"), config).expect("sshd_config");
        let known = format!(
            "[127.0.0.1]:{port} {}",
            std::fs::read_to_string(home.join("host_key.pub")).expect("host key")
        );
        std::fs::write(home.join("known_hosts"), known).expect("known_hosts");
        let mut sshd = Self {
            name: name.to_owned(),
            port,
            home,
            child: None,
        };
        sshd.spawn();
        sshd
    }

    fn spawn(&mut self) {
        use std::os::unix::process::CommandExt;
        let log = std::fs::File::create(self.home.join("sshd.log")).expect("log");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(self.home.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start sshd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd {} did not listen: {}",
                self.name,
                std::fs::read_to_string(self.home.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server and every session it forked (sessions start process
    /// groups of their own, so the server's group alone would miss them).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let mut targets: Vec<String> =
                descendants(child.id()).iter().map(u32::to_string).collect();
            targets.push(format!("-{}", child.id()));
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg("--")
                .args(&targets)
                .stderr(Stdio::null())
                .status();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same keys.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The host's `appsRoot`.
    pub fn apps(&self) -> PathBuf {
        self.home.join("apps")
    }

    /// The App's directory on this host.
    pub fn app_root(&self, app: &str) -> PathBuf {
        self.apps().join(app)
    }

    /// Where `current` of `app` points.
    pub fn current(&self, app: &str) -> Option<String> {
        std::fs::read_link(self.app_root(app).join("current"))
            .ok()
            .map(|p| p.display().to_string())
    }

    /// The known_hosts file holding this host's key.
    pub fn known_hosts(&self) -> PathBuf {
        self.home.join("known_hosts")
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every process below `root`, read from /proc.
fn descendants(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // The parent pid is the second field after the parenthesised name.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// The user the hosts log in.
pub fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
