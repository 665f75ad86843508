//! kustomize's syntax for a remote Git base: which repository to clone,
//! which directory of it holds the kustomization, and the query parameters
//! (`ref`, `version`, `timeout`, `submodules`). Pure: no I/O.
//!
//! The rules follow kustomize v5.5.0's behaviour: a scheme among `https://`,
//! `http://`, `ssh://` and `file://`, or no scheme with a `user@` prefix
//! (scp-like `git@host:org/repo`), or a bare `github.com/...`; the
//! repository ends at `_git/<name>`, at `//`, at `.git`, or after two path
//! segments (`org/repo`; every segment for `file://`).

use std::time::Duration;

/// How long a clone may take when the URL does not say (kustomize's default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(27);

/// Why a text is not a remote Git base.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RepoSpecError {
    /// An absolute local path.
    #[error("uri looks like abs path: {0}")]
    AbsolutePath(String),
    /// No scheme kustomize accepts, and not scp-like.
    #[error("failed to parse scheme")]
    Scheme,
    /// Nothing before the path.
    #[error("failed to parse host segment")]
    Host,
    /// No repository path could be told apart.
    #[error("failed to parse repo path segment")]
    RepoPath,
    /// The directory in the repository climbs out of it with `..`.
    #[error("url path exits repo: {0}")]
    ExitsRepo(String),
}

/// A remote Git base as kustomize reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoSpec {
    /// The entry as written in the kustomization.
    pub raw: String,
    /// Scheme, user and host as they prefix the repository path
    /// (`https://example.com/`, `git@example.com:`, `file://`).
    pub host: String,
    /// The repository at the host (`org/repo.git`, `/srv/git/repo`).
    pub repo_path: String,
    /// The kustomization directory inside the repository, without leading or
    /// trailing `/` (empty: the repository root).
    pub kust_root: String,
    /// `?ref=` (or else `?version=`): a branch, tag or commit; `None` is the
    /// remote's default branch.
    pub reference: Option<String>,
    /// `?timeout=`: seconds or a Go duration (`90s`, `1m30s`).
    pub timeout: Duration,
    /// `?submodules=`: whether submodules are cloned too (default true).
    pub submodules: bool,
}

impl RepoSpec {
    /// Parses `text`; an error means kustomize would not read it as a Git base.
    pub fn parse(text: &str) -> Result<RepoSpec, RepoSpecError> {
        if text.starts_with('/') {
            return Err(RepoSpecError::AbsolutePath(text.to_string()));
        }
        let (rest, query) = text.split_once('?').unwrap_or((text, ""));
        let params = Query::parse(query);
        let (host, path) = split_host(rest)?;
        let segments = if host.starts_with("file://") {
            None
        } else {
            Some(2)
        };
        let (repo_path, kust_root) = split_repo_path(&path, segments)?;
        Ok(RepoSpec {
            raw: text.to_string(),
            host,
            repo_path,
            kust_root,
            reference: params.reference,
            timeout: params.timeout,
            submodules: params.submodules,
        })
    }

    /// Whether the URL says by itself that it names a Git repository: a
    /// `//`, `.git` or `_git/` in its path, or a `ref`/`version` parameter.
    pub fn is_explicit(&self) -> bool {
        let path = self.raw.split('?').next().unwrap_or("");
        let path = path.split_once("://").map_or(path, |(_, rest)| rest);
        self.reference.is_some()
            || path.contains("//")
            || path.contains(".git")
            || path.contains("_git/")
    }

    /// The URL git clones: host and repository path.
    pub fn clone_url(&self) -> String {
        format!("{}{}", self.host, self.repo_path)
    }
}

/// Whether `text` is a URL kustomize fetches as a single file (an `http` or
/// `https` scheme, in any case).
pub fn is_http_url(text: &str) -> bool {
    let Some((scheme, _)) = text.split_once(':') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
}

const SCHEMES: [&str; 4] = ["ssh://", "https://", "http://", "file://"];

/// Splits scheme, user and host from the path.
fn split_host(text: &str) -> Result<(String, String), RepoSpecError> {
    // go-getter's forced-protocol prefix, which kustomize drops.
    let text = strip_prefix_ignore_case(text, "git::").unwrap_or(text);
    let (scheme, text) = SCHEMES
        .iter()
        .find_map(|s| strip_prefix_ignore_case(text, s).map(|rest| (*s, rest)))
        .unwrap_or(("", text));
    let (user, text) = split_user(text);
    let github = {
        let lower = text.get(..11).unwrap_or("").to_ascii_lowercase();
        lower == "github.com/" || lower == "github.com:"
    };
    let scp = scheme.is_empty() && (!user.is_empty() || github);
    if scheme.is_empty() && !scp {
        return Err(RepoSpecError::Scheme);
    }
    if scheme == "file://" {
        // Everything after the scheme is the local path, user part included.
        return Ok((scheme.to_string(), format!("{user}{text}")));
    }
    let separator = path_separator(text, scp);
    let (mut host, rest) = match separator {
        Some(i) => (text[..=i].to_string(), &text[i + 1..]),
        None => (text.to_string(), ""),
    };
    let (mut scheme, mut user) = (scheme.to_string(), user.to_string());
    if github {
        if scheme == "ssh://" || !user.is_empty() {
            scheme = String::new();
            host = "github.com:".into();
        } else {
            scheme = "https://".into();
            user = String::new();
            host = "github.com/".into();
        }
    }
    if host.is_empty() {
        return Err(RepoSpecError::Host);
    }
    Ok((format!("{scheme}{user}{host}"), rest.to_string()))
}

/// `user@` at the start (a letter, then letters, digits or `-`), and the rest.
fn split_user(text: &str) -> (&str, &str) {
    let Some(at) = text.find('@') else {
        return ("", text);
    };
    let name = &text[..at];
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-');
    if valid {
        (&text[..=at], &text[at + 1..])
    } else {
        ("", text)
    }
}

/// Where the host ends: the first `/`, or in scp-like syntax a `:` before it.
fn path_separator(text: &str, scp: bool) -> Option<usize> {
    let slash = text.find('/');
    if !scp {
        return slash;
    }
    match (text.find(':'), slash) {
        (Some(colon), Some(slash)) if colon > 0 && colon < slash => Some(colon),
        (Some(colon), None) => Some(colon),
        (_, slash) => slash,
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Splits the repository from the directory inside it; `segments` is how
/// many path segments name the repository when no marker does (`None`: all).
fn split_repo_path(path: &str, segments: Option<usize>) -> Result<(String, String), RepoSpecError> {
    let (repo, dir) = match explicit_split(path) {
        Some(found) => found,
        None => match segments {
            None => (path.to_string(), String::new()),
            Some(n) => {
                let parts: Vec<&str> = path.split('/').collect();
                if parts.len() < n {
                    return Err(RepoSpecError::RepoPath);
                }
                (parts[..n].join("/"), parts[n..].join("/"))
            }
        },
    };
    if repo.is_empty() {
        return Err(RepoSpecError::RepoPath);
    }
    if exits_repo(&dir) {
        return Err(RepoSpecError::ExitsRepo(path.to_string()));
    }
    Ok((repo, dir.trim_matches('/').to_string()))
}

/// The repository and directory when the path marks where the repository
/// ends: `_git/<repo>` (Azure DevOps), `//`, or a `.git` suffix.
fn explicit_split(path: &str) -> Option<(String, String)> {
    const AZURE: &str = "_git/";
    if let Some(i) = path.find(AZURE) {
        let after = &path[i + AZURE.len()..];
        let (name, dir) = after.split_once('/').unwrap_or((after, ""));
        return Some((format!("{}{name}", &path[..i + AZURE.len()]), dir.into()));
    }
    if let Some(i) = path.find("//") {
        return Some((path[..i].into(), path[i + 2..].into()));
    }
    if let Some(i) = path.find(".git") {
        let end = i + ".git".len();
        return Some((path[..end].into(), path[end..].into()));
    }
    None
}

/// Whether `dir`, cleaned as a path, starts by leaving the repository.
fn exits_repo(dir: &str) -> bool {
    let mut depth: Vec<&str> = Vec::new();
    for part in dir.trim_start_matches('/').split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if depth.pop().is_none() {
                    return true;
                }
            }
            other => depth.push(other),
        }
    }
    false
}

/// The parameters of a remote base's query.
struct Query {
    reference: Option<String>,
    timeout: Duration,
    submodules: bool,
}

impl Query {
    /// Reads `ref`/`version`, `timeout` and `submodules`; a query that does
    /// not decode (a `;`, a bad `%` escape) gives every default, as in kustomize.
    fn parse(query: &str) -> Query {
        let defaults = Query {
            reference: None,
            timeout: DEFAULT_TIMEOUT,
            submodules: true,
        };
        let Some(pairs) = decode_query(query) else {
            return defaults;
        };
        let first = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let reference = first("ref").or_else(|| first("version")).map(String::from);
        let timeout = first("timeout")
            .and_then(parse_timeout)
            .unwrap_or(DEFAULT_TIMEOUT);
        let submodules = first("submodules")
            .and_then(parse_bool)
            .unwrap_or(defaults.submodules);
        Query {
            reference,
            timeout,
            submodules,
        }
    }
}

/// `key=value` pairs of a URL query, decoded; `None` on any malformed pair.
fn decode_query(query: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut bad = false;
    for piece in query.split('&') {
        if piece.contains(';') {
            bad = true;
            continue;
        }
        if piece.is_empty() {
            continue;
        }
        let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
        match (unescape(key), unescape(value)) {
            (Some(k), Some(v)) => pairs.push((k, v)),
            _ => bad = true,
        }
    }
    (!bad).then_some(pairs)
}

/// Percent-decoding with `+` as a space, as in a form-encoded query.
fn unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A positive whole number of seconds, else a positive Go duration.
fn parse_timeout(text: &str) -> Option<Duration> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = digits.parse().ok()?;
        return (secs > 0).then(|| Duration::from_secs(secs));
    }
    parse_go_duration(text).filter(|d| !d.is_zero())
}

/// Go's `time.ParseDuration` for non-negative values (`1h2m3.5s`, `300ms`).
fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.starts_with('-') {
        return None;
    }
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_end];
        if number.is_empty() || number == "." {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += value * seconds;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
