//! Writing HTML safely: every value that reaches a page goes through [`Esc`]
//! (App names, messages and commit subjects come from users), and the small
//! pieces every page shares: status badges, times, commit links, the layout.

use std::fmt::{self, Display, Write as _};

use driftless_api::Time;
use driftless_api::history::Revision;
use driftless_api::status::{HealthStatus, SyncStatus};

/// Text escaped for HTML element content and quoted attribute values.
pub(crate) struct Esc<'a>(pub(crate) &'a str);

impl Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

/// `text` percent-encoded as one URL path segment (everything but RFC 3986 unreserved).
pub(crate) fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// `/apps/{name}` with the name encoded.
pub(crate) fn app_href(name: &str) -> String {
    format!("/apps/{}", path_segment(name))
}

/// A query string (`?a=1&b=2`) of the non-empty `pairs`; empty when none are.
pub(crate) fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (key, value) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        out.append_pair(key, value);
        any = true;
    }
    if any {
        format!("?{}", out.finish())
    } else {
        String::new()
    }
}

/// A status word as a badge: the word itself carries the meaning, the colour only repeats it.
pub(crate) fn badge(class: &str, word: &str) -> String {
    format!(
        r#"<span class="badge {}">{}</span>"#,
        Esc(&class.to_ascii_lowercase()),
        Esc(word)
    )
}

/// The badge of a health state.
pub(crate) fn health_badge(health: HealthStatus) -> String {
    badge(&format!("h-{health}"), health.as_str())
}

/// The badge of a sync status.
pub(crate) fn sync_badge(sync: SyncStatus) -> String {
    badge(&format!("s-{sync}"), sync.as_str())
}

/// A `<time>` element; an em dash when there is no time.
pub(crate) fn time(at: Option<Time>) -> String {
    match at {
        Some(at) => {
            let text = at.to_string();
            // Seconds are precise enough on a page; the attribute keeps the whole value.
            let shown = text
                .split('.')
                .next()
                .unwrap_or(&text)
                .trim_end_matches('Z');
            format!(
                r#"<time datetime="{}">{} UTC</time>"#,
                Esc(&text),
                Esc(&shown.replace('T', " "))
            )
        }
        None => "&mdash;".to_owned(),
    }
}

/// The first 8 characters of a commit id (or of an artifact digest's hex).
pub(crate) fn short_sha(sha: &str) -> &str {
    driftless_api::history::short_id(sha, 8)
}

/// Web page of `sha` in the repository cloned from `url`, for hosts whose URL
/// layout is known (GitHub, GitLab, Gitea/Forgejo/Codeberg, Bitbucket).
pub(crate) fn commit_url(url: &str, sha: &str) -> Option<String> {
    if sha.is_empty() || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let (host, path) = if let Some(rest) = url.strip_prefix("https://") {
        rest.split_once('/')?
    } else if let Some(rest) = url.strip_prefix("ssh://") {
        let rest = rest.split_once('@').map_or(rest, |(_, r)| r);
        let (host, path) = rest.split_once('/')?;
        (host.split(':').next().unwrap_or(host), path)
    } else if let Some((user_host, path)) = url.split_once(':').filter(|(h, _)| h.contains('@')) {
        (
            user_host.split_once('@').map_or(user_host, |(_, h)| h),
            path,
        )
    } else {
        return None;
    };
    // Credentials are removed from source URLs, but never link to one that has them.
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    if path.is_empty() || host.is_empty() {
        return None;
    }
    let name = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    let layout = if name == "github.com" || name == "codeberg.org" || name.starts_with("gitea.") {
        "commit"
    } else if name == "gitlab.com" || name.starts_with("gitlab.") {
        "-/commit"
    } else if name == "bitbucket.org" {
        "commits"
    } else {
        return None;
    };
    Some(format!("https://{host}/{path}/{layout}/{sha}"))
}

/// A revision's short commit, linked to its web page when `repo_url` allows.
pub(crate) fn commit_link(revision: &Revision, repo_url: Option<&str>) -> String {
    let short = short_sha(&revision.sha);
    let title = revision.to_string();
    match repo_url.and_then(|url| commit_url(url, &revision.sha)) {
        Some(href) => format!(
            r#"<a class="sha" href="{}" title="{}">{}</a>"#,
            Esc(&href),
            Esc(&title),
            Esc(short)
        ),
        None => format!(
            r#"<code class="sha" title="{}">{}</code>"#,
            Esc(&title),
            Esc(short)
        ),
    }
}

/// The first line of `text`, for one-line cells; the whole text goes in a tooltip.
pub(crate) fn one_line(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default();
    let more = text.trim_end().contains('\n');
    format!(
        r#"<span class="oneline" title="{}">{}{}</span>"#,
        Esc(text),
        Esc(first),
        if more { " &hellip;" } else { "" }
    )
}

/// Who is looking, as the page header shows it.
pub(crate) struct Viewer<'a> {
    /// The token's name and role, when signed in.
    pub(crate) signed_in: Option<(&'a str, &'a str)>,
    /// The form token of this session (for the sign-out form).
    pub(crate) csrf: Option<&'a str>,
}

/// Which navigation entry the page is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Apps,
    Sources,
    Login,
}

/// A whole page: `body` inside the shared layout. `live` names the event
/// stream the page follows (`""` for none).
pub(crate) fn page(title: &str, nav: Nav, viewer: &Viewer<'_>, live: &str, body: &str) -> String {
    let current = |n: Nav| {
        if n == nav {
            r#" aria-current="page""#
        } else {
            ""
        }
    };
    let who = match (viewer.signed_in, viewer.csrf) {
        (Some((name, role)), Some(csrf)) => format!(
            r#"<form method="post" action="/logout" class="who"><span>Signed in as <strong>{}</strong> ({})</span>
<input type="hidden" name="csrf" value="{}"><button type="submit">Sign out</button></form>"#,
            Esc(name),
            Esc(role),
            Esc(csrf)
        ),
        _ => format!(
            r#"<p class="who readonly" role="note">Read-only: <a href="/login"{}>sign in with an API token</a> to sync, suspend, resume or roll back.</p>"#,
            current(Nav::Login)
        ),
    };
    let live_attr = if live.is_empty() {
        String::new()
    } else {
        format!(r#" data-live="{}""#, Esc(live))
    };
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{title} &middot; driftless</title>
<link rel="stylesheet" href="{css}">
<script src="{js}" defer></script>
</head>
<body{live_attr}>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<nav aria-label="Main"><a class="brand" href="/">driftless</a>
<a href="/"{apps}>Apps</a> <a href="/sources"{sources}>Sources</a></nav>
{who}
</header>
<main id="main" tabindex="-1">
{body}
</main>
</body>
</html>
"##,
        title = Esc(title),
        css = super::assets::CSS_PATH,
        js = super::assets::JS_PATH,
        apps = current(Nav::Apps),
        sources = current(Nav::Sources),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_character_that_could_open_markup() {
        let text = Esc(r#"<script>alert("x" & 'y')</script>"#).to_string();
        assert_eq!(
            text,
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(Esc("plain-name").to_string(), "plain-name");
    }

    #[test]
    fn app_names_are_encoded_in_paths() {
        assert_eq!(app_href("web-prod.eu"), "/apps/web-prod.eu");
        assert_eq!(app_href("a/b c?"), "/apps/a%2Fb%20c%3F");
        assert_eq!(query(&[("q", "a b&c"), ("health", "")]), "?q=a+b%26c");
        assert_eq!(query(&[("q", "")]), "");
    }

    #[test]
    fn commits_link_to_known_hosts_only() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        for (url, want) in [
            (
                "https://github.com/acme/platform.git",
                Some("https://github.com/acme/platform/commit/"),
            ),
            (
                "git@github.com:acme/platform.git",
                Some("https://github.com/acme/platform/commit/"),
            ),
            (
                "https://gitlab.com/group/sub/repo",
                Some("https://gitlab.com/group/sub/repo/-/commit/"),
            ),
            (
                "ssh://git@gitlab.example.com:2222/g/r.git",
                Some("https://gitlab.example.com/g/r/-/commit/"),
            ),
            (
                "https://bitbucket.org/team/repo.git",
                Some("https://bitbucket.org/team/repo/commits/"),
            ),
            ("https://git.example.com/org/repo.git", None),
            ("file:///srv/git/repo", None),
            ("/srv/git/repo", None),
        ] {
            let got = commit_url(url, sha);
            assert_eq!(got, want.map(|w| format!("{w}{sha}")), "{url}");
        }
        assert_eq!(
            commit_url("https://github.com/a/b", "not-a-sha\"><script>"),
            None
        );
    }

    #[test]
    fn status_words_are_written_out_not_only_coloured() {
        let b = health_badge(HealthStatus::Degraded);
        assert!(b.contains(">Degraded<") && b.contains("h-degraded"), "{b}");
        let s = sync_badge(SyncStatus::OutOfSync);
        assert!(s.contains(">OutOfSync<"), "{s}");
    }

    #[test]
    fn one_line_shows_the_first_line_and_keeps_the_rest_in_the_title() {
        let cell = one_line("render failed: a.yaml:3\n<detail>");
        assert!(
            cell.contains(">render failed: a.yaml:3 &hellip;<"),
            "{cell}"
        );
        assert!(cell.contains("&lt;detail&gt;"), "{cell}");
    }

    #[test]
    fn times_show_seconds_in_utc() {
        let t = Time::from_unix_ms(1_767_225_600_500);
        let html = time(Some(t));
        assert!(html.contains(">2026-01-01 00:00:00 UTC<"), "{html}");
        assert_eq!(time(None), "&mdash;");
    }
}
