//! Who is calling the REST API and whether their token's role allows the call.
//!
//! Tokens are compared in constant time, and every configured token is
//! compared on every request, so response times do not tell which token (or
//! how much of one) matched.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use driftless_api::{LEGACY_TOKEN_NAME, Role};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::state::error;

/// One token the server accepts, with its value read from its secret.
#[derive(Clone)]
pub struct Token {
    name: String,
    role: Role,
    value: Box<[u8]>,
}

impl Token {
    /// A token called `name` granting `role`, whose bearer value is `value`.
    pub fn new(name: &str, role: Role, value: &str) -> Self {
        Self {
            name: name.to_owned(),
            role,
            value: value.as_bytes().into(),
        }
    }

    /// The legacy `Server.spec.apiToken`: one token with the `admin` role.
    pub fn legacy(value: &str) -> Self {
        Self::new(LEGACY_TOKEN_NAME, Role::Admin, value)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Two tokens share a value, so the audit log could not tell their holders apart.
#[derive(Debug, thiserror::Error)]
#[error("API tokens {first:?} and {second:?} have the same value; give each holder its own")]
pub struct SharedTokenValue {
    /// The earlier token.
    pub first: String,
    /// The later token with the same value.
    pub second: String,
}

/// The API's access rules: the tokens and whether reads need one.
#[derive(Debug, Clone, Default)]
pub struct Access {
    anonymous_read: bool,
    tokens: Vec<Token>,
}

/// Why a call was refused; answered 401 (who are you?) or 403 (not allowed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No tokens are configured, so nothing may change.
    #[error("mutating API calls are disabled: no API token configured")]
    NoTokens,
    /// The call needs a token and none was sent.
    #[error("a bearer token is required")]
    Missing,
    /// The token sent is not one of the configured ones.
    #[error("wrong bearer token")]
    Wrong,
    /// The token's role does not include the call.
    #[error("token {token:?} has the {role} role; {what} needs {needed}")]
    Role {
        /// Name of the token sent.
        token: String,
        /// Its role.
        role: Role,
        /// The call.
        what: String,
        /// The role the call needs.
        needed: Role,
    },
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Missing | Self::Wrong => {
                let challenge = [(header::WWW_AUTHENTICATE, "Bearer")];
                (challenge, error(StatusCode::UNAUTHORIZED, self)).into_response()
            }
            Self::NoTokens | Self::Role { .. } => error(StatusCode::FORBIDDEN, self),
        }
    }
}

/// Whoever made an allowed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No token was sent (allowed for reads under `anonymousRead`).
    Anonymous,
    /// The holder of the named token.
    Token {
        /// The token's name.
        name: String,
        /// Its role.
        role: Role,
    },
}

impl Caller {
    /// The name the audit log records: the token's, or `anonymous`.
    pub fn name(&self) -> &str {
        match self {
            Self::Anonymous => "anonymous",
            Self::Token { name, .. } => name,
        }
    }
}

impl Access {
    /// Rules with `tokens`; reads need no token when `anonymous_read`.
    pub fn new(anonymous_read: bool, tokens: Vec<Token>) -> Result<Self, SharedTokenValue> {
        for (i, later) in tokens.iter().enumerate() {
            if let Some(earlier) = tokens[..i].iter().find(|t| t.value == later.value) {
                return Err(SharedTokenValue {
                    first: earlier.name.clone(),
                    second: later.name.clone(),
                });
            }
        }
        Ok(Self {
            anonymous_read,
            tokens,
        })
    }

    /// The caller of a request needing `needed`, or why it is refused.
    pub fn authorize(
        &self,
        headers: &HeaderMap,
        needed: Role,
        what: &str,
    ) -> Result<Caller, Refusal> {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token);
        let Some(given) = given else {
            if needed == Role::Read && self.anonymous_read {
                return Ok(Caller::Anonymous);
            }
            if needed > Role::Read && self.tokens.is_empty() {
                return Err(Refusal::NoTokens);
            }
            return Err(Refusal::Missing);
        };
        let Some(token) = self.find(given.as_bytes()) else {
            return Err(Refusal::Wrong);
        };
        if token.role < needed {
            return Err(Refusal::Role {
                token: token.name.clone(),
                role: token.role,
                what: what.to_owned(),
                needed,
            });
        }
        Ok(Caller::Token {
            name: token.name.clone(),
            role: token.role,
        })
    }

    /// The token whose value is `given`, comparing against all of them.
    fn find(&self, given: &[u8]) -> Option<&Token> {
        let mut found = u32::MAX;
        for (i, token) in self.tokens.iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            found.conditional_assign(&index, token.value.ct_eq(given));
        }
        self.tokens.get(usize::try_from(found).ok()?)
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme name is
/// case-insensitive (RFC 7235 section 2.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_matches(' '))
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, a.parse().expect("header value"));
        }
        h
    }

    fn access(anonymous_read: bool) -> Access {
        Access::new(
            anonymous_read,
            vec![
                Token::new("viewer", Role::Read, "r-secret"),
                Token::new("ci", Role::Operate, "o-secret"),
                Token::legacy("a-secret"),
            ],
        )
        .expect("distinct values")
    }

    fn status(r: Result<Caller, Refusal>) -> Result<Caller, StatusCode> {
        r.map_err(|refusal| refusal.into_response().status())
    }

    #[test]
    fn each_role_reaches_what_it_includes_and_no_further() {
        let a = access(true);
        let call = |auth, role| status(a.authorize(&headers(auth), role, "this call"));
        assert_eq!(call(None, Role::Read), Ok(Caller::Anonymous));
        assert_eq!(call(None, Role::Operate), Err(StatusCode::UNAUTHORIZED));
        assert_eq!(
            call(Some("Bearer r-secret"), Role::Operate),
            Err(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            call(Some("bearer o-secret"), Role::Operate).map(|c| c.name().to_owned()),
            Ok("ci".to_owned())
        );
        assert_eq!(
            call(Some("Bearer o-secret"), Role::Admin),
            Err(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            call(Some("Bearer a-secret"), Role::Admin).map(|c| c.name().to_owned()),
            Ok(LEGACY_TOKEN_NAME.to_owned())
        );
        assert_eq!(
            call(Some("Bearer nope"), Role::Read),
            Err(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            call(Some("Bearer "), Role::Operate),
            Err(StatusCode::UNAUTHORIZED)
        );
    }

    #[test]
    fn reads_need_a_token_without_anonymous_read() {
        let a = access(false);
        assert_eq!(
            status(a.authorize(&headers(None), Role::Read, "reading")),
            Err(StatusCode::UNAUTHORIZED)
        );
        assert!(
            a.authorize(&headers(Some("Bearer r-secret")), Role::Read, "reading")
                .is_ok()
        );
    }

    #[test]
    fn mutations_are_disabled_without_tokens() {
        let a = Access::new(true, Vec::new()).expect("no tokens");
        assert_eq!(
            status(a.authorize(&headers(None), Role::Operate, "sync")),
            Err(StatusCode::FORBIDDEN)
        );
    }

    #[test]
    fn shared_values_are_refused_naming_both_tokens() {
        let err = Access::new(
            true,
            vec![
                Token::new("a", Role::Read, "same"),
                Token::new("b", Role::Admin, "same"),
            ],
        )
        .expect_err("shared value");
        assert_eq!((err.first.as_str(), err.second.as_str()), ("a", "b"));
    }

    #[test]
    fn debug_output_never_shows_the_value() {
        let text = format!("{:?}", Token::new("ci", Role::Operate, "s3cret-value"));
        assert!(!text.contains("s3cret"), "{text}");
    }
}
