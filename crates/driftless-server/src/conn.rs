//! Accepting and serving HTTP/1 connections within bounds, so that slow or numerous
//! clients cannot exhaust the server's sockets and file descriptors.
//!
//! - A connection waits for its first request's headers at most `headerReadTimeout`
//!   from the moment it opens; a keep-alive connection waits for its next request at
//!   most `idleTimeout`, then has `headerReadTimeout` from that request's first byte.
//! - Request bodies are read within `bodyReadTimeout` by the handlers that read them.
//! - At most `maxConnections` connections are served at once. A connection over the
//!   cap is answered `503` with a JSON error (best effort, without waiting for the
//!   client) and closed at once: waiting would keep its descriptor busy, which is
//!   what the cap is there to prevent.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::Router;
use driftless_api::HttpLimits;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

/// Pause after an accept error that is not about one connection (out of file
/// descriptors, out of memory), so the loop does not spin while it lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The answer to a connection over the cap.
const OVER_CAP: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\ncontent-length: 33\r\nconnection: close\r\n\r\n\
{\"error\":\"too many connections\"}\n";

/// Serves `router` on `listener` within `limits` until `shutdown` completes;
/// requests in flight then finish before this returns.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections as usize));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    // The deadlines are kept by `Timed` below, which knows an idle wait from a request.
    http.timer(TokioTimer::new())
        .header_read_timeout(None::<Duration>);
    let timeouts = Timeouts {
        header: limits.header_read_timeout.get(),
        idle: limits.idle_timeout.get(),
    };
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    if !is_per_connection(&e) {
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refuse(&stream);
            continue;
        };
        let clock = Arc::new(Mutex::new(Clock {
            phase: Phase::Waiting {
                since: Instant::now(),
                first: true,
            },
            reader: None,
        }));
        let io = TokioIo::new(Timed::new(stream, clock.clone(), timeouts));
        let router = router.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            set(&clock, Phase::Busy);
            let mut router = router.clone();
            let clock = clock.clone();
            async move {
                let response = router.call(req).await;
                // The connection waits for its next request once the whole answer
                // is written: a streamed body (server-sent events) is not idle.
                response.map(|r| r.map(|body| axum::body::Body::new(Answer { body, clock })))
            }
        });
        let connection = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            // A failed connection (timeout, reset) concerns only that client.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Errors that end one accepted connection, not the listener's ability to accept.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// Tells a connection over the cap why it is closed, if its send buffer takes the
/// answer right away, and closes it.
fn refuse(stream: &TcpStream) {
    let _ = stream.try_write(OVER_CAP);
}

/// Deadlines of a connection between requests.
#[derive(Clone, Copy)]
struct Timeouts {
    header: Duration,
    idle: Duration,
}

/// Where a connection is in its request cycle, as far as read deadlines go.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// No request in progress: waiting for the first byte of the next one.
    Waiting { since: Instant, first: bool },
    /// Part of a request's headers has arrived.
    Header { since: Instant },
    /// A handler has the request; it bounds its own body reads.
    Busy,
}

impl Phase {
    fn deadline(self, t: Timeouts) -> Option<Instant> {
        match self {
            // The first request gets the header deadline from the connection opening.
            Self::Waiting { since, first: true } | Self::Header { since } => Some(since + t.header),
            Self::Waiting { since, .. } => Some(since + t.idle),
            Self::Busy => None,
        }
    }

    fn on_bytes(self) -> Self {
        match self {
            Self::Waiting { since, first: true } => Self::Header { since },
            Self::Waiting { .. } => Self::Header {
                since: Instant::now(),
            },
            other => other,
        }
    }
}

/// The phase of one connection, shared by its socket and its request handler.
struct Clock {
    phase: Phase,
    /// The read that waits without a deadline while a handler runs: when the handler
    /// is done it must be polled again to start the idle deadline.
    reader: Option<Waker>,
}

fn set(clock: &Mutex<Clock>, phase: Phase) {
    let mut clock = clock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    clock.phase = phase;
    if let Some(reader) = clock.reader.take() {
        reader.wake();
    }
}

/// A response body that puts its connection back to waiting for the next
/// request (and its idle deadline) when it is done: written to its end, or
/// dropped because the client went away.
struct Answer {
    body: axum::body::Body,
    clock: Arc<Mutex<Clock>>,
}

impl hyper::body::Body for Answer {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        set(
            &self.clock,
            Phase::Waiting {
                since: Instant::now(),
                first: false,
            },
        );
    }
}

/// A socket whose reads fail with `TimedOut` once the current phase's deadline passes.
struct Timed {
    inner: TcpStream,
    clock: Arc<Mutex<Clock>>,
    timeouts: Timeouts,
    sleep: Pin<Box<Sleep>>,
}

impl Timed {
    fn new(inner: TcpStream, clock: Arc<Mutex<Clock>>, timeouts: Timeouts) -> Self {
        Self {
            inner,
            clock,
            timeouts,
            sleep: Box::pin(tokio::time::sleep(timeouts.header)),
        }
    }
}

impl AsyncRead for Timed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    let mut clock = this.clock.lock().unwrap_or_else(|p| p.into_inner());
                    clock.phase = clock.phase.on_bytes();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let deadline = {
                    let mut clock = this.clock.lock().unwrap_or_else(|p| p.into_inner());
                    let deadline = clock.phase.deadline(this.timeouts);
                    if deadline.is_none() {
                        clock.reader = Some(cx.waker().clone());
                    }
                    deadline
                };
                let Some(deadline) = deadline else {
                    return Poll::Pending;
                };
                if this.sleep.deadline() != deadline {
                    this.sleep.as_mut().reset(deadline);
                }
                match this.sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client sent no complete request in time",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncWrite for Timed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
