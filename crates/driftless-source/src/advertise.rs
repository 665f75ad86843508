//! Listing refs of a plain `http://` or `git://` remote in-process with one
//! protocol-v2 `ls-refs` request.
//!
//! Polls are the hot path: most find nothing new. `git ls-remote` costs two
//! process starts (and two requests over HTTP); this costs one request and none.
//! Anything unexpected (proxy configured, redirect, non-v2 server, odd
//! framing) returns `None` and the caller falls back to `git ls-remote`, which
//! also produces the precise error message.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::refspec::RefSpec;
use crate::remote::RemoteRef;

const TIMEOUT: Duration = Duration::from_secs(30);
/// Advertisements larger than this are left to git (and are not worth parsing here).
const MAX_RESPONSE: usize = 16 << 20;

/// Lists refs for `spec` from `url`, or `None` when the fast path does not apply.
pub fn list(url: &str, spec: &RefSpec, authorization: Option<&str>) -> Option<Vec<RemoteRef>> {
    if let Some(rest) = url.strip_prefix("git://") {
        return list_git(rest, spec);
    }
    list_http(url.strip_prefix("http://")?, spec, authorization)
}

/// `git://` daemon: one TCP connection asking for protocol v2, then `ls-refs`.
fn list_git(rest: &str, spec: &RefSpec) -> Option<Vec<RemoteRef>> {
    let (authority, path) = rest.split_at(rest.find('/')?);
    let host_port = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:9418")
    };
    let addr = host_port.to_socket_addrs().ok()?.next()?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).ok()?;
    stream.set_read_timeout(Some(TIMEOUT)).ok()?;
    stream.set_write_timeout(Some(TIMEOUT)).ok()?;
    let hello = format!("git-upload-pack {path}\0host={authority}\0\0version=2\0");
    stream.write_all(&pkt(&hello)).ok()?;
    // The capability advertisement must announce version 2; a v0 server
    // starts with refs instead, and git handles that.
    let mut first = true;
    while let Some(line) = read_pkt(&mut stream)? {
        if first && line != b"version 2\n" {
            return None;
        }
        first = false;
    }
    stream.write_all(&request_body(spec)).ok()?;
    let refs = read_ls_refs(&mut stream)?;
    // Tell the daemon we are done before closing.
    let _ = stream.write_all(b"0000");
    Some(refs)
}

/// Reads one pkt-line: `Some(Some(data))`, `Some(None)` for a flush, `None` on error.
fn read_pkt(stream: &mut impl Read) -> Option<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).ok()?;
    let len = usize::from_str_radix(std::str::from_utf8(&len).ok()?, 16).ok()?;
    match len {
        0 => Some(None),
        1..=4 => None,
        _ => {
            let mut data = vec![0; len - 4];
            stream.read_exact(&mut data).ok()?;
            Some(Some(data))
        }
    }
}

fn list_http(rest: &str, spec: &RefSpec, authorization: Option<&str>) -> Option<Vec<RemoteRef>> {
    if proxy_configured() {
        return None;
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.contains('@') || path.contains(['?', '#']) {
        return None;
    }
    let path = path.trim_end_matches('/');
    let host_port = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
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
    let response = exchange(&host_port, head.as_bytes(), &body)?;
    let payload = parse_http(&response)?;
    parse_ls_refs(&payload)
}

fn proxy_configured() -> bool {
    ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
        .iter()
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

fn exchange(host_port: &str, head: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    let addr = host_port.to_socket_addrs().ok()?.next()?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).ok()?;
    stream.set_read_timeout(Some(TIMEOUT)).ok()?;
    stream.set_write_timeout(Some(TIMEOUT)).ok()?;
    stream.write_all(head).ok()?;
    stream.write_all(body).ok()?;
    let mut response = Vec::new();
    stream
        .take(MAX_RESPONSE as u64 + 1)
        .read_to_end(&mut response)
        .ok()?;
    (response.len() <= MAX_RESPONSE).then_some(response)
}

/// Returns the body of a `200` response, de-chunked if needed.
fn parse_http(response: &[u8]) -> Option<Vec<u8>> {
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&response[..split]).ok()?;
    let body = &response[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next()?;
    if status.split_whitespace().nth(1) != Some("200") {
        return None;
    }
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("content-type")
            && value != "application/x-git-upload-pack-result"
        {
            return None;
        }
    }
    if chunked {
        return dechunk(body);
    }
    match length {
        Some(n) if body.len() >= n => Some(body[..n].to_vec()),
        Some(_) => None,
        None => Some(body.to_vec()),
    }
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
    read_ls_refs(&mut payload)
}

/// Reads `ls-refs` output, `<oid> <name>[ peeled:<oid>]` pkt-lines, up to a flush.
fn read_ls_refs(reader: &mut impl Read) -> Option<Vec<RemoteRef>> {
    let mut refs = Vec::new();
    while let Some(line) = read_pkt(reader)? {
        let line = std::str::from_utf8(&line).ok()?.trim_end();
        let mut fields = line.split(' ');
        let target = fields.next()?;
        let name = fields.next()?;
        if target.len() != 40 || !target.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let peeled = fields
            .find_map(|f| f.strip_prefix("peeled:"))
            .map(str::to_string);
        refs.push(RemoteRef {
            name: name.to_string(),
            target: target.to_string(),
            peeled,
        });
    }
    Some(refs)
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
        let body = parse_http(&response).expect("200 response");
        let refs = parse_ls_refs(&body).expect("ls-refs output");
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[1].peeled.as_deref(), Some(oid));
        assert_eq!(refs[1].commit(), oid);
    }

    #[test]
    fn refuses_non_v2_and_errors() {
        assert!(parse_http(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n").is_none());
        assert!(parse_ls_refs(b"001e# service=git-upload-pack\n0000").is_none());
    }
}
