//! Fetching objects in process with gix (gitoxide) from smart HTTP(S),
//! `git://` and local remotes, shallow and with the same refspec `git fetch`
//! would get. A remote gix does not serve (SSH, an HTTP proxy) is reported
//! as [`Failure::Unsupported`] before anything is sent; any other failure
//! except a timeout lets the caller run `git fetch` instead, so users see
//! no difference.

use std::any::Any;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gix::protocol::transport::client::blocking_io::Transport;
use gix::protocol::transport::client::blocking_io::http;
use gix::protocol::transport::client::git;
use gix::refspec::parse::Operation;
use gix::remote::Direction;
use gix::remote::fetch::{Shallow, Tags};

use crate::auth::Tls;
use crate::connection::TimedStream;

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
    Local {
        path: String,
    },
}

fn scheme(url: &str) -> Option<Scheme> {
    if let Some(rest) = url.strip_prefix("git://") {
        let (authority, path) = rest.split_at(rest.find('/')?);
        let (host, port) = crate::advertise::split_authority(authority, 9418)?;
        return Some(Scheme::Daemon {
            host,
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
    let path = url.strip_prefix("file://").unwrap_or(url);
    path.starts_with('/').then(|| Scheme::Local {
        path: path.to_string(),
    })
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
    let failed = |e: &dyn std::fmt::Display| Failure::Failed(format!("{e:#}"));
    let mut repo =
        gix::open_opts(request.repo, gix::open::Options::isolated()).map_err(|e| failed(&e))?;
    repo.object_cache_size_if_unset(16 * 1024 * 1024);
    let remote = repo
        .remote_at(request.url)
        .and_then(|r| r.with_refspecs(Some(request.refspec), Direction::Fetch))
        .map_err(|e| failed(&e))?
        .with_fetch_tags(Tags::None);
    // gix checks its interrupt flag only between steps. A git daemon
    // connection fails every read and write once the deadline has passed;
    // the upload-pack serving a local remote is killed then.
    let mut server = None;
    let transport: Option<Box<dyn Transport + Send>> = match &scheme {
        Scheme::Http { .. } => None,
        Scheme::Daemon { host, port, path } => {
            let stream =
                TimedStream::connect(host, *port, request.deadline).map_err(|e| failed(&e))?;
            let write = stream.try_clone().map_err(|e| failed(&e))?;
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
        Scheme::Local { path } => {
            let mut child = crate::git::Git::new()
                .spawn_upload_pack(path)
                .map_err(|e| failed(&e))?;
            let (Some(read), Some(write)) = (child.stdout.take(), child.stdin.take()) else {
                crate::git::stop_group(&mut child);
                return Err(Failure::Failed("git upload-pack has no pipes".into()));
            };
            server = Some(child);
            Some(Box::new(git::blocking_io::Connection::new(
                read,
                write,
                gix::protocol::transport::Protocol::V2,
                path.as_str(),
                None::<(&str, Option<u16>)>,
                git::ConnectMode::Process,
                false,
            )))
        }
    };
    let server_pid = server.as_ref().map(std::process::Child::id);
    let interrupt = AtomicBool::new(false);
    let (done, finished) = mpsc::channel::<()>();
    let result = std::thread::scope(|scope| {
        let interrupt = &interrupt;
        let limit = request.deadline.saturating_duration_since(Instant::now());
        scope.spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = finished.recv_timeout(limit) {
                interrupt.store(true, Ordering::SeqCst);
                if let Some(pid) = server_pid {
                    crate::git::kill_group(pid);
                }
            }
        });
        let result = receive(&remote, transport, &scheme, request, interrupt);
        drop(done);
        result
    });
    if let Some(mut child) = server {
        // The connection is closed and upload-pack has nothing left to do;
        // stopping it also keeps one stuck on its disk from holding us here.
        crate::git::stop_group(&mut child);
    }
    result.map_err(|detail| {
        // A daemon read may fail at the deadline just before the flag is up.
        if interrupt.load(Ordering::SeqCst) || Instant::now() >= request.deadline {
            Failure::TimedOut
        } else {
            Failure::Failed(detail)
        }
    })
}

fn receive(
    remote: &gix::Remote<'_>,
    transport: Option<Box<dyn Transport + Send>>,
    scheme: &Scheme,
    request: &Request<'_>,
    interrupt: &AtomicBool,
) -> Result<(), String> {
    let text = |e: gix::Error| format!("{e:#}");
    let connection = match transport {
        Some(transport) => remote.to_connection_with_transport(transport),
        None => remote.connect(Direction::Fetch).map_err(text)?,
    };
    // Never ask a helper or a terminal for credentials: what the source
    // spec gives travels in the Authorization header.
    let mut connection = connection.with_credentials(|_| Ok(None));
    if let Scheme::Http { https } = scheme {
        connection = connection.with_transport_options(http_options(request, *https)?);
    }
    let mut options = gix::remote::ref_map::Options::default();
    if wants_object_id(request.refspec) {
        // An object id gives gix no ref prefix to ask for, and without one
        // the server lists every ref it has (pull requests included). A
        // prefix no ref has keeps the listing empty, as with `git fetch <id>`.
        let nothing = gix::refspec::parse("refs/driftless/none".into(), Operation::Fetch)
            .map_err(|e| e.to_string())?
            .to_owned();
        options.extra_refspecs.push(nothing);
    }
    let depth = NonZeroU32::MIN;
    connection
        .prepare_fetch(gix::progress::Discard, options)
        .map_err(text)?
        .with_shallow(Shallow::DepthAtRemote(depth))
        .receive(gix::progress::Discard, interrupt)
        .map_err(text)?;
    Ok(())
}

/// Whether the source of `+<source>:<destination>` is a full object id.
fn wants_object_id(refspec: &str) -> bool {
    let source = refspec.trim_start_matches('+');
    let source = source.split_once(':').map_or(source, |(s, _)| s);
    source.len() == 40 && source.bytes().all(|b| b.is_ascii_hexdigit())
}

fn http_options(request: &Request<'_>, https: bool) -> Result<Box<dyn Any>, String> {
    // The same rustls configuration (ring provider, the source's CA bundle
    // or the system roots) as the in-process ref listing.
    let tls = crate::connection::client_config(request.tls)
        .or_else(|| (!https).then(crate::connection::plain_config).flatten())
        .ok_or("no usable CA certificates")?;
    let deadline = request.deadline;
    let client = gix::protocol::transport::client::blocking_io::http::reqwest::Options {
        configure_client: Some(Box::new(move |builder| {
            Ok(builder.use_preconfigured_tls(rustls::ClientConfig::clone(&tls)))
        })),
        // Each request gets the time left as its total limit, body included:
        // a server trickling bytes cannot stretch the transfer.
        configure_request: Some(Box::new(move |request| {
            let left = deadline.saturating_duration_since(Instant::now());
            *request.timeout_mut() = Some(left.max(Duration::from_millis(1)));
            Ok(())
        })),
    };
    let backend: Arc<Mutex<dyn Any + Send + Sync>> = Arc::new(Mutex::new(client));
    let options = http::Options {
        extra_headers: request
            .authorization
            .map(|value| vec![format!("Authorization: {value}")])
            .unwrap_or_default(),
        follow_redirects: http::options::FollowRedirects::Initial,
        backend: Some(backend),
        ..http::Options::default()
    };
    Ok(Box::new(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_id_wants_are_recognised() {
        assert!(wants_object_id(
            "+0123456789abcdef0123456789abcdef01234567:refs/driftless/x-incoming"
        ));
        assert!(!wants_object_id(
            "+refs/heads/main:refs/driftless/x-incoming"
        ));
        assert!(!wants_object_id("+0123456:refs/driftless/x-incoming"));
    }

    #[test]
    fn schemes_gix_serves() {
        assert!(matches!(
            scheme("git://example.com:9419/r.git"),
            Some(Scheme::Daemon { port: 9419, .. })
        ));
        assert!(matches!(
            scheme("file:///srv/r.git"),
            Some(Scheme::Local { .. })
        ));
        assert!(matches!(scheme("/srv/r.git"), Some(Scheme::Local { .. })));
        assert!(scheme("ssh://git@example.com/r.git").is_none());
        assert!(scheme("git@example.com:r.git").is_none());
    }
}
