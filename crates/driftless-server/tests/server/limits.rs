//! Connection bounds over raw sockets: partial requests, idle keep-alive connections,
//! the connection cap and slow bodies.

use std::time::{Duration, Instant};

use driftless_api::HttpLimits;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::TestServer;

fn secs(n: u64) -> driftless_api::Duration {
    driftless_api::Duration::from_secs(n)
}

/// A one-second idle timeout, well under the ten-second header timeout.
fn idle_after_one_second() -> HttpLimits {
    HttpLimits {
        header_read_timeout: secs(10),
        idle_timeout: secs(1),
        ..Default::default()
    }
}

/// Reads one response (headers and `Content-Length` body) within five seconds.
pub async fn read_response(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            let text = String::from_utf8_lossy(&got).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    return text;
                }
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return String::from_utf8_lossy(&got).into_owned(),
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    timeout(Duration::from_secs(5), read)
        .await
        .expect("a response within 5s")
}

/// Sends `request` on a new connection and reads the response.
pub async fn exchange(addr: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("send");
    read_response(&mut stream).await
}

/// Waits up to `within` for the server to close `stream` (end of file or reset).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    let wait = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    timeout(within, wait).await.is_ok()
}

const PARTIAL: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: test\r\n";
const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_requests_do_not_stall_healthz_and_are_closed_after_the_header_timeout() {
    let limits = HttpLimits {
        header_read_timeout: secs(2),
        ..Default::default()
    };
    let s = TestServer::start_with(limits).await;
    let opened = Instant::now();
    let mut waiting = Vec::new();
    for _ in 0..300 {
        let mut c = TcpStream::connect(s.addr()).await.expect("connect");
        c.write_all(PARTIAL).await.expect("send");
        waiting.push(c);
    }
    let reply = timeout(
        Duration::from_secs(1),
        s.client.get(s.url("/healthz")).send(),
    )
    .await
    .expect("/healthz answers within a second")
    .expect("request");
    assert_eq!(reply.status(), StatusCode::OK);

    let closes: Vec<_> = waiting
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                closed_within(&mut c, Duration::from_secs(6)).await;
                opened.elapsed()
            })
        })
        .collect();
    for close in closes {
        let after = close.await.expect("task");
        assert!(
            (Duration::from_millis(1500)..Duration::from_secs(5)).contains(&after),
            "a partial request was closed after {after:?}, expected about 2s"
        );
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let s = TestServer::start_with(idle_after_one_second()).await;
    let mut c = TcpStream::connect(s.addr()).await.expect("connect");
    c.write_all(HEALTHZ).await.expect("send");
    assert!(read_response(&mut c).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.write_all(HEALTHZ)
        .await
        .expect("send on the kept-alive connection");
    assert!(read_response(&mut c).await.starts_with("HTTP/1.1 200"));
    let idle = Instant::now();
    assert!(closed_within(&mut c, Duration::from_secs(5)).await);
    let after = idle.elapsed();
    assert!(
        (Duration::from_millis(800)..Duration::from_secs(3)).contains(&after),
        "closed after {after:?} idle, expected about 1s (the header timeout is 10s)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_answer_is_not_idle_and_keeps_its_connection_past_the_idle_timeout() {
    let s = TestServer::start_with(idle_after_one_second()).await;
    let mut c = TcpStream::connect(s.addr()).await.expect("connect");
    c.write_all(b"GET /ui/events HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("send");
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = timeout(Duration::from_secs(5), c.read(&mut buf))
            .await
            .expect("the headers within 5s")
            .expect("read");
        assert!(n > 0, "closed before the headers");
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/event-stream"), "{head}");
    // Three idle timeouts pass while the stream is open: it stays open.
    assert!(
        !closed_within(&mut c, Duration::from_secs(3)).await,
        "the event stream was cut by the idle timeout"
    );
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_until_one_closes() {
    let limits = HttpLimits {
        max_connections: 4,
        header_read_timeout: secs(30),
        ..Default::default()
    };
    let s = TestServer::start_with(limits).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = TcpStream::connect(s.addr()).await.expect("connect");
        c.write_all(PARTIAL).await.expect("send");
        held.push(c);
    }
    // The server accepts in order: a request on the held connections proves it saw them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut over = TcpStream::connect(s.addr()).await.expect("connect");
    let answer = read_response(&mut over).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains(r#"{"error":"too many connections"}"#),
        "{answer}"
    );

    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let answer = exchange(s.addr(), HEALTHZ).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a slot did not free up: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_slow_body_is_cut_with_408_and_the_connection_closed() {
    let limits = HttpLimits {
        body_read_timeout: secs(1),
        ..Default::default()
    };
    let s = TestServer::start_with(limits).await;
    let stream = TcpStream::connect(s.addr()).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    write
        .write_all(
            b"POST /hooks/gh HTTP/1.1\r\nHost: test\r\nX-GitHub-Event: push\r\n\
              Content-Length: 1000\r\n\r\n{",
        )
        .await
        .expect("send head");
    let started = Instant::now();
    let dribble = tokio::spawn(async move {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if write.write_all(b" ").await.is_err() {
                break;
            }
        }
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let read_all = async {
        while let Ok(n) = read.read(&mut buf).await {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    };
    timeout(Duration::from_secs(4), read_all)
        .await
        .expect("the server answers and closes within 4s");
    let after = started.elapsed();
    let answer = String::from_utf8_lossy(&got);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("bodyReadTimeout"), "{answer}");
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(3)).contains(&after),
        "cut after {after:?}"
    );
    dribble.abort();
}
