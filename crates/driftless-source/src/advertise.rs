//! Listing refs of an `http://`, `https://` or `git://` remote in-process with
//! one protocol-v2 `ls-refs` request.
//!
//! Polls are the hot path: most find nothing new. `git ls-remote` costs two
//! process starts (and two requests over HTTP); this costs one request and none.
//! Definite answers end the poll here: an untrusted certificate, rejected
//! credentials, a refused connection or a server silent past the deadline.
//! Anything else unexpected (proxy configured, redirect, non-v2 server, odd
//! framing) returns `Ok(None)` and the caller falls back to `git ls-remote`,
//! which also produces the precise error message.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use crate::auth::Tls;
use crate::connection::{self, Connection, TimedStream};
use crate::refspec::RefSpec;
use crate::remote::{RemoteError, RemoteRef};

/// Advertisements larger than this are left to git (and are not worth parsing here).
const MAX_RESPONSE: usize = 16 << 20;

/// How the remote is reached.
struct Endpoint<'a> {
    url: &'a str,
    host: String,
    port: u16,
    tls: Option<&'a Tls>,
    timeout: Duration,
}

/// Lists refs for `spec` from `url` within `timeout`; `Ok(None)` when the fast
/// path does not apply and git should be asked instead.
pub fn list(
    url: &str,
    spec: &RefSpec,
    authorization: Option<&str>,
    tls: &Tls,
    timeout: Duration,
) -> Result<Option<Vec<RemoteRef>>, RemoteError> {
    if let Some(rest) = url.strip_prefix("git://") {
        return list_git(url, rest, spec, timeout);
    }
    let (rest, tls, default_port) = if let Some(rest) = url.strip_prefix("https://") {
        (rest, Some(tls), 443)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (rest, None, 80)
    } else {
        return Ok(None);
    };
    if proxy_configured(tls.is_some()) {
        return Ok(None);
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.contains('@') || path.contains(['?', '#']) {
        return Ok(None);
    }
    let Some((host, port)) = split_authority(authority, default_port) else {
        return Ok(None);
    };
    let endpoint = Endpoint {
        url,
        host,
        port,
        tls,
        timeout,
    };
    list_http(
        &endpoint,
        authority,
        path.trim_end_matches('/'),
        spec,
        authorization,
    )
}

/// `host[:port]` (with `[v6]` brackets kept) and the port.
pub(crate) fn split_authority(authority: &str, default_port: u16) -> Option<(String, u16)> {
    match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => Some((host.to_string(), port.parse().ok()?)),
        _ => Some((authority.to_string(), default_port)),
    }
}

/// `git://` daemon: one TCP connection asking for protocol v2, then `ls-refs`.
fn list_git(
    url: &str,
    rest: &str,
    spec: &RefSpec,
    timeout: Duration,
) -> Result<Option<Vec<RemoteRef>>, RemoteError> {
    let Some(slash) = rest.find('/') else {
        return Ok(None);
    };
    let (authority, path) = rest.split_at(slash);
    let Some((host, port)) = split_authority(authority, 9418) else {
        return Ok(None);
    };
    let endpoint = Endpoint {
        url,
        host,
        port,
        tls: None,
        timeout,
    };
    let deadline = Instant::now() + timeout;
    let hello = format!("git-upload-pack {path}\0host={authority}\0\0version=2\0");
    let refs = TimedStream::connect(&endpoint.host, endpoint.port, deadline)
        .and_then(|mut stream| ls_refs_over_git(&mut stream, &hello, spec));
    match refs {
        Ok(refs) => Ok(refs),
        Err(e) => endpoint.fatal_or_fallback(&e).map_or(Ok(None), Err),
    }
}

fn ls_refs_over_git(
    stream: &mut TimedStream,
    hello: &str,
    spec: &RefSpec,
) -> io::Result<Option<Vec<RemoteRef>>> {
    stream.write_all(&pkt(hello))?;
    // The capability advertisement must announce version 2; a v0 server
    // starts with refs instead, and git handles that.
    let mut first = true;
    while let Some(line) = read_pkt(stream)? {
        if first && line != b"version 2\n" {
            return Ok(None);
        }
        first = false;
    }
    stream.write_all(&request_body(spec))?;
    let refs = read_ls_refs(stream).ok().flatten();
    // Tell the daemon we are done before closing.
    let _ = stream.write_all(b"0000");
    Ok(refs)
}

impl Endpoint<'_> {
    /// The error a poll ends with for `err`, when git could not do better.
    fn fatal_or_fallback(&self, err: &io::Error) -> Option<RemoteError> {
        let url = self.url.to_string();
        if let Some(detail) = connection::certificate_problem(err) {
            return Some(RemoteError::Tls { url, detail });
        }
        let detail = match err.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => format!(
                "no answer from {}:{} within {}s",
                self.host,
                self.port,
                self.timeout.as_secs_f64()
            ),
            io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable => {
                format!("connecting to {}:{}: {err}", self.host, self.port)
            }
            _ => return None,
        };
        Some(RemoteError::Unreachable { url, detail })
    }

    fn connect(&self, deadline: Instant) -> io::Result<Option<Connection>> {
        match self.tls {
            Some(tls) => connection::open_tls(&self.host, self.port, tls, deadline),
            None => TimedStream::connect(&self.host, self.port, deadline)
                .map(|s| Some(Connection::Plain(s))),
        }
    }
}

/// Reads one pkt-line: `Some(data)`, or `None` for a flush.
fn read_pkt(stream: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed pkt-line");
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = std::str::from_utf8(&len)
        .ok()
        .and_then(|l| usize::from_str_radix(l, 16).ok())
        .ok_or_else(bad)?;
    match len {
        0 => Ok(None),
        1..=4 => Err(bad()),
        _ => {
            let mut data = vec![0; len - 4];
            stream.read_exact(&mut data)?;
            Ok(Some(data))
        }
    }
}

fn list_http(
    endpoint: &Endpoint<'_>,
    authority: &str,
    path: &str,
    spec: &RefSpec,
    authorization: Option<&str>,
) -> Result<Option<Vec<RemoteRef>>, RemoteError> {
    let body = request_body(spec);
    let mut head = format!(
        "POST {path}/git-upload-pack HTTP/1.1\r\nHost: {authority}\r\n\
         User-Agent: git/driftless\r\nGit-Protocol: version=2\r\n\
         Content-Type: application/x-git-upload-pack-request\r\n\
         Accept: application/x-git-upload-pack-result\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(value) = authorization {
        head.push_str(&format!("Authorization: {value}\r\n"));
    }
    head.push_str("\r\n");
    let Some(response) = exchange(endpoint, head.as_bytes(), &body)? else {
        return Ok(None);
    };
    match parse_http(&response) {
        Answer::Body(payload) => Ok(parse_ls_refs(&payload)),
        Answer::Denied(status) => Err(RemoteError::Authentication {
            url: endpoint.url.to_string(),
            detail: format!("the server answered {status}"),
        }),
        Answer::Other => Ok(None),
    }
}

pub(crate) fn proxy_configured(https: bool) -> bool {
    let vars: &[&str] = if https {
        &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
    } else {
        &["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
    };
    vars.iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

fn pkt(line: &str) -> Vec<u8> {
    format!("{:04x}{line}", line.len() + 4).into_bytes()
}

fn request_body(spec: &RefSpec) -> Vec<u8> {
    let mut body = pkt("command=ls-refs\n");
    body.extend_from_slice(b"0001");
    body.extend(pkt("peel\n"));
    let prefixes: Vec<String> = match spec {
        RefSpec::Branch(b) => vec![format!("refs/heads/{b}")],
        RefSpec::Tag(t) => vec![format!("refs/tags/{t}")],
        RefSpec::Semver(_) => vec!["refs/tags/".into()],
        RefSpec::Name(n) => vec![n.clone()],
        RefSpec::Commit(_) => vec!["refs/heads/".into(), "refs/tags/".into()],
    };
    for prefix in prefixes {
        body.extend(pkt(&format!("ref-prefix {prefix}\n")));
    }
    body.extend_from_slice(b"0000");
    body
}

/// Sends one request and reads the whole response (the server closes the
/// connection after it); `Ok(None)` when git should try instead.
fn exchange(
    endpoint: &Endpoint<'_>,
    head: &[u8],
    body: &[u8],
) -> Result<Option<Vec<u8>>, RemoteError> {
    let deadline = Instant::now() + endpoint.timeout;
    let fallback_or = |e: io::Error| endpoint.fatal_or_fallback(&e).map_or(Ok(None), Err);
    let mut stream = match endpoint.connect(deadline) {
        Ok(Some(stream)) => stream,
        Ok(None) => return Ok(None),
        Err(e) => return fallback_or(e),
    };
    // One write, so a TLS terminator in front of the server forwards the
    // request in one piece instead of stalling its second half on Nagle's
    // algorithm against a delayed ACK (40 ms on Linux).
    let mut request = Vec::with_capacity(head.len() + body.len());
    request.extend_from_slice(head);
    request.extend_from_slice(body);
    let sent = stream.write_all(&request).and_then(|()| stream.flush());
    if let Err(e) = sent {
        return fallback_or(e);
    }
    let mut response = Vec::new();
    match stream
        .take(MAX_RESPONSE as u64 + 1)
        .read_to_end(&mut response)
    {
        Ok(_) => {}
        // TLS servers that close without a close_notify: the length checks
        // in `parse_http` still catch a truncated response.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !response.is_empty() => {}
        Err(e) => return fallback_or(e),
    }
    Ok((response.len() <= MAX_RESPONSE).then_some(response))
}

/// What an HTTP response to `ls-refs` said.
#[derive(Debug)]
enum Answer {
    /// A `200` with an upload-pack result: the de-chunked body.
    Body(Vec<u8>),
    /// `401`: the credentials were refused (status line text).
    Denied(String),
    /// Anything else (redirect, not found, other content type).
    Other,
}

/// Reads the status and body of a response, de-chunked if needed.
fn parse_http(response: &[u8]) -> Answer {
    let Some(split) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Answer::Other;
    };
    let Ok(head) = std::str::from_utf8(&response[..split]) else {
        return Answer::Other;
    };
    let body = &response[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let status = status.split_once(' ').map_or("", |(_, rest)| rest.trim());
    match status.split(' ').next() {
        Some("200") => {}
        // A 403 may also be a dumb server refusing POST: git tells those apart.
        Some("401") => return Answer::Denied(status.to_string()),
        _ => return Answer::Other,
    }
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Answer::Other;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("content-type")
            && value != "application/x-git-upload-pack-result"
        {
            return Answer::Other;
        }
    }
    let payload = match (chunked, length) {
        (true, _) => dechunk(body),
        (false, Some(n)) => body.get(..n).map(<[u8]>::to_vec),
        (false, None) => Some(body.to_vec()),
    };
    payload.map_or(Answer::Other, Answer::Body)
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

fn parse_ls_refs(mut payload: &[u8]) -> Option<Vec<RemoteRef>> {
    read_ls_refs(&mut payload).ok().flatten()
}

/// Reads `ls-refs` output, `<oid> <name>[ peeled:<oid>]` pkt-lines, up to a
/// flush; `Ok(None)` when a line is not of that form.
fn read_ls_refs(reader: &mut impl Read) -> io::Result<Option<Vec<RemoteRef>>> {
    let mut refs = Vec::new();
    while let Some(line) = read_pkt(reader)? {
        let Some(r) = parse_ref_line(&line) else {
            return Ok(None);
        };
        refs.push(r);
    }
    Ok(Some(refs))
}

fn parse_ref_line(line: &[u8]) -> Option<RemoteRef> {
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut fields = line.split(' ');
    let target = fields.next()?;
    let name = fields.next()?;
    if target.len() != 40 || !target.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let peeled = fields
        .find_map(|f| f.strip_prefix("peeled:"))
        .map(str::to_string);
    Some(RemoteRef {
        name: name.to_string(),
        target: target.to_string(),
        peeled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chunked_ls_refs_response() {
        let oid = "1111111111111111111111111111111111111111";
        let tag = "2222222222222222222222222222222222222222";
        let mut pkts = pkt(&format!("{oid} refs/heads/main\n"));
        pkts.extend(pkt(&format!("{tag} refs/tags/v1 peeled:{oid}\n")));
        pkts.extend_from_slice(b"0000");
        let mut response = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-result\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        response.extend(format!("{:x}\r\n", pkts.len()).into_bytes());
        response.extend(&pkts);
        response.extend_from_slice(b"\r\n0\r\n\r\n");
        let Answer::Body(body) = parse_http(&response) else {
            panic!("200 response");
        };
        let refs = parse_ls_refs(&body).expect("ls-refs output");
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[1].peeled.as_deref(), Some(oid));
        assert_eq!(refs[1].commit(), oid);
    }

    #[test]
    fn refuses_non_v2_and_errors() {
        assert!(matches!(
            parse_http(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"),
            Answer::Denied(s) if s == "401 Unauthorized"
        ));
        assert!(matches!(
            parse_http(b"HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n"),
            Answer::Other
        ));
        assert!(parse_ls_refs(b"001e# service=git-upload-pack\n0000").is_none());
    }
}
