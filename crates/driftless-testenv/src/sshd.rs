//! An OpenSSH server on a loopback port with generated host and user keys.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::servers::{Server, free_port, wait_for_port};

/// A running sshd plus the credentials a client needs.
pub struct Sshd {
    /// The server process.
    pub server: Server,
    /// Port on 127.0.0.1.
    pub port: u16,
    /// User that may log in.
    pub user: String,
    /// Unencrypted client private key.
    pub client_key: String,
    /// Client key encrypted with [`PASSPHRASE`].
    pub encrypted_key: String,
    /// known_hosts line for the server's host key.
    pub known_hosts: String,
    /// known_hosts line with a different (wrong) key for the same host.
    pub wrong_known_hosts: String,
}

/// Passphrase of [`Sshd::encrypted_key`].
pub const PASSPHRASE: &str = "correct horse";

fn keygen(path: &Path, passphrase: &str) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", passphrase, "-C", "test", "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success(), "ssh-keygen failed for {path:?}");
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path:?}: {e}"))
}

/// Starts sshd in `dir`; panics with a hint when OpenSSH server is missing.
pub fn start(dir: &Path) -> Sshd {
    // sshd must be started by absolute path; DRIFTLESS_SSHD overrides Debian's.
    let sshd = std::env::var_os("DRIFTLESS_SSHD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/sshd"));
    assert!(
        sshd.is_absolute() && sshd.exists(),
        "{} is missing: run scripts/ci/install-driftless-source.sh or set DRIFTLESS_SSHD",
        sshd.display()
    );
    // sshd insists on its privilege-separation directory even in debug mode.
    let _ = std::fs::create_dir_all("/run/sshd");
    std::fs::create_dir_all(dir).expect("mkdir sshd dir");
    for (name, pass) in [
        ("host", ""),
        ("wrong_host", ""),
        ("client", ""),
        ("client_enc", PASSPHRASE),
    ] {
        keygen(&dir.join(name), pass);
    }
    let user = String::from_utf8(
        Command::new("id")
            .arg("-un")
            .output()
            .expect("id runs")
            .stdout,
    )
    .expect("utf-8 user")
    .trim()
    .to_string();
    let mut authorized = read(dir.join("client.pub"));
    authorized.push_str(&read(dir.join("client_enc.pub")));
    std::fs::write(dir.join("authorized_keys"), authorized).expect("write authorized_keys");
    let port = free_port();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nAuthorizedKeysFile {auth}\n\
         PidFile {pid}\nUsePAM no\nStrictModes no\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
         PermitRootLogin prohibit-password\nLogLevel ERROR\n",
        host = dir.join("host").display(),
        auth = dir.join("authorized_keys").display(),
        pid = dir.join("sshd.pid").display(),
    );
    std::fs::write(dir.join("sshd_config"), config).expect("write sshd_config");
    let child = Command::new(&sshd)
        .args(["-D", "-e", "-f"])
        .arg(dir.join("sshd_config"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sshd starts");
    let server = Server(child);
    wait_for_port(port);
    let host_line = |name: &str| {
        let public = read(dir.join(format!("{name}.pub")));
        let mut fields = public.split_whitespace();
        let kind = fields.next().expect("key type");
        let key = fields.next().expect("key data");
        format!("[127.0.0.1]:{port} {kind} {key}\n")
    };
    Sshd {
        server,
        port,
        user,
        client_key: read(dir.join("client")),
        encrypted_key: read(dir.join("client_enc")),
        known_hosts: host_line("host"),
        wrong_known_hosts: host_line("wrong_host"),
    }
}

impl Sshd {
    /// `ssh://` URL of a repository at an absolute path on this machine.
    pub fn url(&self, repo: &Path) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            repo.display()
        )
    }
}
