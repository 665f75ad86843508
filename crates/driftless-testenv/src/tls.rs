//! TLS in front of the test HTTP server: a throwaway CA, a server certificate for
//! 127.0.0.1, and `socat` terminating TLS on a loopback port.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::servers::{Server, free_port, wait_for_port};

/// A TLS endpoint and the CA that signed its certificate.
pub struct Tls {
    /// The socat process.
    pub server: Server,
    /// Base URL, `https://127.0.0.1:PORT`.
    pub url: String,
    /// PEM of the CA that signed the server certificate.
    pub ca_pem: String,
    /// PEM of an unrelated CA.
    pub other_ca_pem: String,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl req` arguments for a fresh unencrypted P-256 key.
const NEW_EC_KEY: [&str; 6] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
];

fn req(dir: &Path, first: &[&str], rest: &[&str]) {
    let args: Vec<&str> = first
        .iter()
        .chain(&NEW_EC_KEY)
        .chain(rest)
        .copied()
        .collect();
    openssl(dir, &args);
}

fn make_ca(dir: &Path, name: &str) {
    let (key, pem, subject) = (
        format!("{name}.key"),
        format!("{name}.pem"),
        format!("/CN={name}"),
    );
    req(
        dir,
        &["req", "-x509"],
        &[&key, "-out", &pem, "-days", "2", "-subj", &subject],
    );
}

/// Serves `https://127.0.0.1:PORT` forwarding to the plain HTTP server at `backend_port`.
pub fn start(dir: &Path, backend_port: u16) -> Tls {
    std::fs::create_dir_all(dir).expect("mkdir tls dir");
    make_ca(dir, "ca");
    make_ca(dir, "other-ca");
    req(
        dir,
        &["req"],
        &["server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
    );
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").expect("write ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    let port = free_port();
    let listen = format!(
        "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,nodelay,cert={},key={},verify=0",
        dir.join("server.pem").display(),
        dir.join("server.key").display()
    );
    let child = Command::new("socat")
        .arg(listen)
        .arg(format!("TCP:127.0.0.1:{backend_port},nodelay"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("socat on PATH (run scripts/ci/install-driftless-source.sh)");
    let server = Server(child);
    wait_for_port(port);
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("read pem");
    Tls {
        server,
        url: format!("https://127.0.0.1:{port}"),
        ca_pem: read("ca.pem"),
        other_ca_pem: read("other-ca.pem"),
    }
}
