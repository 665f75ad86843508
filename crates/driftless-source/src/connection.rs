//! One TCP or TLS connection bounded by an overall deadline, used by the
//! in-process ref advertisement ([`crate::advertise`]).
//!
//! TLS is rustls with the ring provider (the same stack the Kubernetes client
//! of the workspace uses). Roots are the source's CA bundle when it has one,
//! else the file in `GIT_SSL_CAINFO` (which git would honour too), else the
//! system store. Client configurations are kept per bundle so later polls of
//! the same server resume the TLS session instead of a full handshake.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::auth::Tls;

/// How many distinct CA bundles keep a cached client configuration.
const MAX_CONFIGS: usize = 64;

/// A TCP stream whose every read and write fails once `deadline` has passed,
/// so a server that accepts and then stays silent cannot hold a poll longer.
pub(crate) struct TimedStream {
    inner: TcpStream,
    deadline: Instant,
}

impl TimedStream {
    /// Connects to the first address of `host:port` that answers, giving
    /// up at `deadline`.
    pub(crate) fn connect(host: &str, port: u16, deadline: Instant) -> io::Result<TimedStream> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "host has no address");
        for addr in (host, port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, remaining(deadline)?) {
                Ok(inner) => {
                    inner.set_nodelay(true)?;
                    return Ok(TimedStream { inner, deadline });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// A second handle on the same connection, with the same deadline (one
    /// side reads while the other writes).
    pub(crate) fn try_clone(&self) -> io::Result<TimedStream> {
        Ok(TimedStream {
            inner: self.inner.try_clone()?,
            deadline: self.deadline,
        })
    }
}

fn remaining(deadline: Instant) -> io::Result<std::time::Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
    }
    Ok(left)
}

impl Read for TimedStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner
            .set_read_timeout(Some(remaining(self.deadline)?))?;
        self.inner.read(buf)
    }
}

impl Write for TimedStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner
            .set_write_timeout(Some(remaining(self.deadline)?))?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Either side of a plain or TLS connection.
pub(crate) enum Connection {
    /// `http://` and `git://`.
    Plain(TimedStream),
    /// `https://`.
    Tls(Box<StreamOwned<ClientConnection, TimedStream>>),
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Connection::Plain(s) => s.read(buf),
            Connection::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Connection::Plain(s) => s.write(buf),
            Connection::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Connection::Plain(s) => s.flush(),
            Connection::Tls(s) => s.flush(),
        }
    }
}

/// Opens a TLS connection to `host:port` trusting the roots `tls` selects.
/// `Ok(None)` means no usable roots (an unreadable or empty bundle): git
/// reports that case better.
pub(crate) fn open_tls(
    host: &str,
    port: u16,
    tls: &Tls,
    deadline: Instant,
) -> io::Result<Option<Connection>> {
    let Some(config) = client_config(tls) else {
        return Ok(None);
    };
    let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let session = ClientConnection::new(config, name).map_err(io::Error::other)?;
    let tcp = TimedStream::connect(host, port, deadline)?;
    let mut stream = StreamOwned::new(session, tcp);
    // Handshake now, so certificate failures surface before the request is sent.
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(Some(Connection::Tls(Box::new(stream))))
}

/// The certificate problem inside an I/O error from a TLS connection, if any.
pub(crate) fn certificate_problem(err: &io::Error) -> Option<String> {
    match err.get_ref()?.downcast_ref::<rustls::Error>()? {
        e @ (rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented) => {
            Some(e.to_string())
        }
        _ => None,
    }
}

/// A client configuration for plain HTTP clients that insist on having one.
pub(crate) fn plain_config() -> Option<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth();
    Some(Arc::new(config))
}

/// The rustls configuration for `tls` (its CA bundle, else `GIT_SSL_CAINFO`,
/// else the system roots), shared by all clients with the same roots;
/// `None` when no certificate could be loaded.
pub(crate) fn client_config(tls: &Tls) -> Option<Arc<ClientConfig>> {
    static CONFIGS: OnceLock<Mutex<HashMap<String, Arc<ClientConfig>>>> = OnceLock::new();
    let bundle = match &tls.ca_bundle {
        Some(pem) => Some(pem.clone().into_bytes()),
        None => match std::env::var_os("GIT_SSL_CAINFO") {
            Some(path) => Some(std::fs::read(path).ok()?),
            None => None,
        },
    };
    let key = bundle.as_deref().map_or_else(String::new, |b| {
        crate::fetch::key_of(&String::from_utf8_lossy(b))
    });
    let configs = CONFIGS.get_or_init(Mutex::default);
    if let Some(config) = configs.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Some(config.clone());
    }
    let roots = match &bundle {
        Some(pem) => roots_from_pem(pem)?,
        None => system_roots()?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let config = Arc::new(config);
    let mut configs = configs.lock().unwrap_or_else(|p| p.into_inner());
    if configs.len() >= MAX_CONFIGS {
        configs.clear();
    }
    configs.insert(key, config.clone());
    Some(config)
}

fn roots_from_pem(pem: &[u8]) -> Option<RootCertStore> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .ok()?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    (added > 0).then_some(roots)
}

fn system_roots() -> Option<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    (added > 0).then_some(roots)
}
