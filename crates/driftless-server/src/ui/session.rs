//! Signing in to the web UI with an API token, and the checks on every form post.
//!
//! The token is kept in an `HttpOnly`, `SameSite=Strict` cookie, so page scripts
//! cannot read it and other sites' pages cannot send it. A form post must also come
//! from this site (`Sec-Fetch-Site`, `Origin`) and carry the session's form token,
//! an HMAC of the API token that only someone holding the token can compute.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use driftless_api::Role;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::html::{Esc, Nav, Viewer, page};
use crate::auth::{Caller, Refusal};
use crate::state::ServerState;

/// Name of the cookie holding the API token (hex-encoded).
pub(crate) const COOKIE: &str = "driftless_token";
/// How long a sign-in lasts, in seconds (8 hours).
const SESSION_SECONDS: u32 = 8 * 60 * 60;
/// What the form token signs.
const CSRF_CONTEXT: &[u8] = b"driftless web UI form";

/// The caller of a UI request, with what it needs to render forms.
pub(crate) struct Session {
    /// Who the API's access rules say is calling.
    pub(crate) caller: Caller,
    /// The form token, when signed in.
    pub(crate) csrf: Option<String>,
}

impl Session {
    /// Whether the caller's role includes `role`.
    pub(crate) fn may(&self, role: Role) -> bool {
        matches!(&self.caller, Caller::Token { role: has, .. } if *has >= role)
    }

    /// A whole page for this session: `body` in the shared layout, with who
    /// is signed in; `live` names the event stream the page follows.
    pub(crate) fn page(&self, title: &str, nav: Nav, live: &str, body: &str) -> String {
        let viewer = match &self.caller {
            Caller::Token { name, role } => Viewer {
                signed_in: Some((name.as_str(), role.as_str())),
                csrf: self.csrf.as_deref(),
            },
            Caller::Anonymous => Viewer {
                signed_in: None,
                csrf: None,
            },
        };
        page(title, nav, &viewer, live, body)
    }
}

/// The API token in the request's cookie, if any.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    let prefix = format!("{COOKIE}=");
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(&prefix).map(str::to_owned))
        .and_then(|value| hex::decode(value).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|token| !token.is_empty())
}

/// The form token of a session holding `token`.
fn csrf_of(token: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(CSRF_CONTEXT);
    hex::encode(mac.finalize().into_bytes())
}

/// `headers` with the cookie's token as the bearer token, so the API's rules decide.
fn as_bearer(headers: &HeaderMap, token: Option<&str>) -> HeaderMap {
    let mut out = HeaderMap::new();
    if let Some(token) = token
        && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
    {
        out.insert(header::AUTHORIZATION, value);
    } else if let Some(value) = headers.get(header::AUTHORIZATION) {
        out.insert(header::AUTHORIZATION, value.clone());
    }
    out
}

/// The session of a request that reads, or why it may not read (answer it
/// with [`login_required`]).
pub(crate) fn reader(state: &ServerState, headers: &HeaderMap) -> Result<Session, Refusal> {
    let mut token = cookie_token(headers);
    let what = "reading the web UI";
    let caller =
        match state
            .access
            .authorize(&as_bearer(headers, token.as_deref()), Role::Read, what)
        {
            // A token that is no longer configured reads as no token, so a stale
            // cookie does not lock anyone out of what anonymous readers see.
            Err(Refusal::Wrong) if token.is_some() => {
                token = None;
                state
                    .access
                    .authorize(&as_bearer(headers, None), Role::Read, what)?
            }
            other => other?,
        };
    let csrf = match &caller {
        Caller::Token { .. } => token.as_deref().map(csrf_of),
        Caller::Anonymous => None,
    };
    Ok(Session { caller, csrf })
}

/// The sign-in page for a reader refused for `refusal`.
pub(crate) fn login_required(refusal: &Refusal) -> Response {
    login_page(
        StatusCode::UNAUTHORIZED,
        &format!("Sign in to read: {refusal}."),
    )
}

/// Why a form post is refused as cross-site, if it is: the browser says it came
/// from another site, or its `Origin` is not this server.
pub(crate) fn cross_site(headers: &HeaderMap) -> Option<String> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return Some(format!(
            "the request came from another site (Sec-Fetch-Site: {site})"
        ));
    }
    if let Some(origin) = text(header::ORIGIN.as_str()) {
        let host = text(header::HOST.as_str()).unwrap_or_default();
        let origin_host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .unwrap_or(origin);
        if host.is_empty() || !origin_host.eq_ignore_ascii_case(host) {
            return Some(format!("the request came from another origin ({origin})"));
        }
    }
    None
}

/// The caller allowed to post a form needing `role`, given the form's fields;
/// or the status and reason of the refusal (show them with [`refused`]).
pub(crate) fn actor(
    state: &ServerState,
    headers: &HeaderMap,
    fields: &[(String, String)],
    role: Role,
    what: &str,
) -> Result<Caller, (StatusCode, String)> {
    if let Some(why) = cross_site(headers) {
        return Err((StatusCode::FORBIDDEN, why));
    }
    let Some(token) = cookie_token(headers) else {
        let refusal =
            if state.access.authorize(&HeaderMap::new(), role, what) == Err(Refusal::NoTokens) {
                Refusal::NoTokens.to_string()
            } else {
                "the web UI is read-only until you sign in with an API token".to_owned()
            };
        return Err((StatusCode::FORBIDDEN, refusal));
    };
    let sent = field(fields, "csrf").unwrap_or_default();
    let expected = csrf_of(&token);
    // Compared in constant time like the tokens themselves.
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        sent.as_bytes(),
        expected.as_bytes(),
    )) {
        return Err((
            StatusCode::FORBIDDEN,
            "the form is not from this session (reload the page and try again)".to_owned(),
        ));
    }
    state
        .access
        .authorize(&as_bearer(headers, Some(&token)), role, what)
        .map_err(|refusal| {
            let why = refusal.to_string();
            (refusal.into_response().status(), why)
        })
}

/// The value of form field `name`.
pub(crate) fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The fields of a form post, read within the server's body limits.
pub(crate) async fn form(
    state: &ServerState,
    request: Request,
) -> Result<(HeaderMap, Vec<(String, String)>), Response> {
    let (parts, body) = request.into_parts();
    let bytes = crate::http::read_body(body, &parts.headers, &state.limits).await?;
    let fields = form_urlencoded::parse(&bytes).into_owned().collect();
    Ok((parts.headers, fields))
}

/// A page saying `what` was refused and why.
pub(crate) fn refused(status: StatusCode, what: &str, why: &str) -> Response {
    let viewer = Viewer {
        signed_in: None,
        csrf: None,
    };
    let body = format!(
        r#"<h1>Refused</h1>
<p class="error" role="alert">Not allowed to {}: {}.</p>
<p><a href="/">Back to the Apps</a> &middot; <a href="/login">Sign in</a></p>"#,
        Esc(what),
        Esc(why)
    );
    html_response(status, page("Refused", Nav::Login, &viewer, "", &body))
}

/// An HTML answer with `status`.
pub(crate) fn html_response(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Pages run only this server's script and are never framed by other sites.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// The sign-in page with `message`.
fn login_page(status: StatusCode, message: &str) -> Response {
    let viewer = Viewer {
        signed_in: None,
        csrf: None,
    };
    let note = if message.is_empty() {
        String::new()
    } else {
        format!(r#"<p class="error" role="alert">{}</p>"#, Esc(message))
    };
    let body = format!(
        r#"<h1>Sign in</h1>
{note}
<p>Paste an API token (<code>spec.api.tokens</code> or <code>spec.apiToken</code> of the Server). Its role decides what you may do: <strong>operate</strong> syncs and resumes, <strong>admin</strong> also suspends and rolls back.</p>
<form method="post" action="/login" class="login">
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>"#
    );
    html_response(status, page("Sign in", Nav::Login, &viewer, "", &body))
}

/// `GET /login`.
pub(crate) async fn show_login() -> Response {
    login_page(StatusCode::OK, "")
}

/// `POST /login`: checks the token and keeps it in the cookie.
pub(crate) async fn login(State(state): State<ServerState>, request: Request) -> Response {
    let (headers, fields) = match form(&state, request).await {
        Ok(form) => form,
        Err(refusal) => return refusal,
    };
    if let Some(why) = cross_site(&headers) {
        return refused(StatusCode::FORBIDDEN, "sign in", &why);
    }
    let token = field(&fields, "token")
        .unwrap_or_default()
        .trim()
        .to_owned();
    if token.is_empty() {
        return login_page(StatusCode::BAD_REQUEST, "Enter an API token.");
    }
    if let Err(refusal) =
        state
            .access
            .authorize(&as_bearer(&headers, Some(&token)), Role::Read, "signing in")
    {
        return login_page(
            StatusCode::UNAUTHORIZED,
            &format!("Not signed in: {refusal}."),
        );
    }
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{}",
        hex::encode(token.as_bytes()),
        secure(&headers)
    );
    with_cookie(Redirect::to("/").into_response(), &cookie)
}

/// `POST /logout`: forgets the cookie.
pub(crate) async fn logout(State(state): State<ServerState>, request: Request) -> Response {
    let (headers, _) = match form(&state, request).await {
        Ok(form) => form,
        Err(refusal) => return refusal,
    };
    if let Some(why) = cross_site(&headers) {
        return refused(StatusCode::FORBIDDEN, "sign out", &why);
    }
    let cookie = format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        secure(&headers)
    );
    with_cookie(Redirect::to("/").into_response(), &cookie)
}

/// `; Secure` behind a TLS-terminating proxy that says so; a plain-HTTP
/// listener on loopback could not send a secure cookie back.
fn secure(headers: &HeaderMap) -> &'static str {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    if https { "; Secure" } else { "" }
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        h
    }

    #[test]
    fn the_cookie_holds_the_token_hex_encoded() {
        let h = headers(&[(
            "cookie",
            &format!("a=b; {COOKIE}={}; c=d", hex::encode("t0k;en")),
        )]);
        assert_eq!(cookie_token(&h).as_deref(), Some("t0k;en"));
        assert_eq!(
            cookie_token(&headers(&[("cookie", "driftless_token=zz")])),
            None
        );
        assert_eq!(cookie_token(&HeaderMap::new()), None);
    }

    #[test]
    fn form_tokens_differ_per_api_token_and_hide_it() {
        let a = csrf_of("token-a");
        assert_eq!(a, csrf_of("token-a"));
        assert_ne!(a, csrf_of("token-b"));
        assert!(!a.contains("token-a") && a.len() == 64);
    }

    #[test]
    fn posts_from_other_sites_are_cross_site() {
        let same = headers(&[
            ("host", "127.0.0.1:9480"),
            ("origin", "http://127.0.0.1:9480"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert_eq!(cross_site(&same), None);
        assert_eq!(cross_site(&headers(&[("host", "127.0.0.1:9480")])), None);
        let other_site = headers(&[("host", "127.0.0.1:9480"), ("sec-fetch-site", "cross-site")]);
        assert!(cross_site(&other_site).is_some());
        let other_origin = headers(&[
            ("host", "127.0.0.1:9480"),
            ("origin", "https://evil.example"),
        ]);
        assert!(cross_site(&other_origin).is_some());
        let null = headers(&[("host", "127.0.0.1:9480"), ("origin", "null")]);
        assert!(cross_site(&null).is_some());
    }
}
