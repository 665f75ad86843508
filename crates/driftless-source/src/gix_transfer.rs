//! Fetching objects in process with gix (gitoxide) from smart HTTP(S),
//! `git://` and local remotes, shallow and with the same refspec `git fetch`
//! would get. A remote gix does not serve (SSH, an HTTP proxy) is reported
//! as [`Failure::Unsupported`] before anything is sent; any other failure
//! except a timeout lets the caller run `git fetch` instead, so users see
//! no difference.

use std::any::Any;
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gix::protocol::transport::client::blocking_io::Transport;
use gix::protocol::transport::client::blocking_io::http;
use gix::protocol::transport::client::git;
use gix::remote::Direction;
use gix::remote::fetch::{Shallow, Tags};

use crate::auth::Tls;

/// One transfer into a cache repository.
pub(crate) struct Request<'a> {
    /// The bare cache repository.
    pub(crate) repo: &'a Path,
    /// Remote URL.
    pub(crate) url: &'a str,
    /// `+<source>:<local ref>`.
    pub(crate) refspec: &'a str,
    /// Value of the `Authorization` header for HTTP(S).
    pub(crate) authorization: Option<&'a str>,
    /// TLS settings for HTTPS.
    pub(crate) tls: &'a Tls,
    /// When the transfer must have finished.
    pub(crate) deadline: Instant,
}

/// Why gix did not complete a transfer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// gix does not handle this remote; nothing was sent.
    Unsupported,
    /// The transfer failed; git may still succeed.
    Failed(String),
    /// The deadline passed; the transfer was stopped.
    TimedOut,
}

enum Scheme {
    Http {
        https: bool,
    },
    Daemon {
        host: String,
        port: u16,
        path: String,
    },
    Local,
}

fn scheme(url: &str) -> Option<Scheme> {
    if let Some(rest) = url.strip_prefix("git://") {
        let (authority, path) = rest.split_at(rest.find('/')?);
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
                (host, port.parse().ok()?)
            }
            _ => (authority, 9418),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        return Some(Scheme::Daemon {
            host: host.to_string(),
            port,
            path: path.to_string(),
        });
    }
    if url.starts_with("https://") {
        return Some(Scheme::Http { https: true });
    }
    if url.starts_with("http://") {
        return Some(Scheme::Http { https: false });
    }
    if url.starts_with("file://") || url.starts_with('/') {
        return Some(Scheme::Local);
    }
    None
}

/// Fetches `request.refspec` from `request.url` with depth 1.
pub(crate) fn fetch(request: &Request<'_>) -> Result<(), Failure> {
    let scheme = scheme(request.url).ok_or(Failure::Unsupported)?;
    if let Scheme::Http { https } = scheme
        && crate::advertise::proxy_configured(https)
    {
        // git knows the proxy variables and their exceptions; gix's HTTP
        // client here is built without them.
        return Err(Failure::Unsupported);
    }
    let mut repo = gix::open_opts(request.repo, gix::open::Options::isolated())
        .map_err(|e| Failure::Failed(e.to_string()))?;
    repo.object_cache_size_if_unset(16 * 1024 * 1024);
    let remote = repo
        .remote_at(request.url)
        .and_then(|r| r.with_refspecs(Some(request.refspec), Direction::Fetch))
        .map_err(|e| Failure::Failed(e.to_string()))?
        .with_fetch_tags(Tags::None);
    let limit = request.deadline.saturating_duration_since(Instant::now());
    let interrupt = AtomicBool::new(false);
    // A git daemon connection is made here, so that the deadline can cut it.
    let mut socket = None;
    let transport: Option<Box<dyn Transport + Send>> = match &scheme {
        Scheme::Daemon { host, port, path } => {
            let stream = connect(host, *port, limit).map_err(|e| Failure::Failed(e.to_string()))?;
            let write = stream
                .try_clone()
                .map_err(|e| Failure::Failed(e.to_string()))?;
            socket = stream.try_clone().ok();
            Some(Box::new(git::blocking_io::Connection::new(
                stream,
                write,
                gix::protocol::transport::Protocol::V2,
                path.as_str(),
                Some((host.as_str(), Some(*port))),
                git::ConnectMode::Daemon,
                false,
            )))
        }
        _ => None,
    };
    let (done, finished) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let interrupt = &interrupt;
        let socket = &socket;
        scope.spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = finished.recv_timeout(limit) {
                interrupt.store(true, Ordering::SeqCst);
                if let Some(socket) = socket {
                    let _ = socket.shutdown(Shutdown::Both);
                }
            }
        });
        let result = receive(&remote, transport, &scheme, request, limit, interrupt);
        drop(done);
        result.map_err(|detail| {
            if interrupt.load(Ordering::SeqCst) {
                Failure::TimedOut
            } else {
                Failure::Failed(detail)
            }
        })
    })
}

fn connect(host: &str, port: u16, limit: Duration) -> std::io::Result<TcpStream> {
    let addr = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{host} has no address")))?;
    let stream = TcpStream::connect_timeout(&addr, limit.max(Duration::from_millis(1)))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn receive(
    remote: &gix::Remote<'_>,
    transport: Option<Box<dyn Transport + Send>>,
    scheme: &Scheme,
    request: &Request<'_>,
    limit: Duration,
    interrupt: &AtomicBool,
) -> Result<(), String> {
    let text = |e: gix::Error| e.to_string();
    let connection = match transport {
        Some(transport) => remote.to_connection_with_transport(transport),
        None => remote.connect(Direction::Fetch).map_err(text)?,
    };
    // Never ask a helper or a terminal for credentials: what the source
    // spec gives travels in the Authorization header.
    let mut connection = connection.with_credentials(|_| Ok(None));
    if let Scheme::Http { https } = scheme {
        connection = connection.with_transport_options(http_options(request, *https, limit)?);
    }
    let depth = NonZeroU32::MIN;
    connection
        .prepare_fetch(gix::progress::Discard, Default::default())
        .map_err(text)?
        .with_shallow(Shallow::DepthAtRemote(depth))
        .receive(gix::progress::Discard, interrupt)
        .map_err(text)?;
    Ok(())
}

fn http_options(
    request: &Request<'_>,
    https: bool,
    limit: Duration,
) -> Result<Box<dyn Any>, String> {
    // The same rustls configuration (ring provider, the source's CA bundle
    // or the system roots) as the in-process ref listing.
    let tls = crate::connection::client_config(request.tls)
        .or_else(|| (!https).then(crate::connection::plain_config).flatten())
        .ok_or("no usable CA certificates")?;
    let client = gix::protocol::transport::client::blocking_io::http::reqwest::Options {
        configure_client: Some(Box::new(move |builder| {
            Ok(builder
                .use_preconfigured_tls(rustls::ClientConfig::clone(&tls))
                .timeout(limit))
        })),
        configure_request: None,
    };
    let backend: Arc<Mutex<dyn Any + Send + Sync>> = Arc::new(Mutex::new(client));
    let options = http::Options {
        extra_headers: request
            .authorization
            .map(|value| vec![format!("Authorization: {value}")])
            .unwrap_or_default(),
        follow_redirects: http::options::FollowRedirects::Initial,
        user_agent: Some("git/driftless".into()),
        connect_timeout: Some(limit),
        backend: Some(backend),
        ..http::Options::default()
    };
    Ok(Box::new(options))
}
