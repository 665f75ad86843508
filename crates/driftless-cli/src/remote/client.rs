//! A small client of the server's REST API: one request at a time, errors a user can act on.

use std::time::Duration;

use driftless_api::history::{AuditEvent, Operation, SyncRecord};
use driftless_api::inspect::AppDiff;
use driftless_api::list::{AppFilter, AppList};
use driftless_api::status::{AppStatus, ClusterStatus, Named, NotifierStatus};
use reqwest::{RequestBuilder, StatusCode, Url};
use serde::de::DeserializeOwned;

/// A server that does not accept the connection by then is treated as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Every route answers from the state store; a slow answer means a stuck server.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors of talking to a running server; each names the server or the App.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// `--server` is not a usable base URL.
    #[error("--server {server:?} is not an http:// or https:// URL")]
    BadServer {
        /// The value given.
        server: String,
    },
    /// Nothing listens at the server address.
    #[error(
        "no driftless server is running at {server}: connection refused \
         (start one with `driftless serve`, or point --server or DRIFTLESS_SERVER at a running one)"
    )]
    NotRunning {
        /// Base URL of the server.
        server: String,
    },
    /// The server could not be reached for another reason (DNS, timeout, TLS, ...).
    #[error("cannot reach the driftless server at {server}")]
    Unreachable {
        /// Base URL of the server.
        server: String,
        /// What the HTTP client reported.
        #[source]
        source: reqwest::Error,
    },
    /// A call that changes something was made without a token.
    #[error(
        "{server} refused to {action} app {app}: no API token given \
         (pass --token or set DRIFTLESS_API_TOKEN)"
    )]
    MissingToken {
        /// Base URL of the server.
        server: String,
        /// What was asked.
        action: &'static str,
        /// App name.
        app: String,
    },
    /// The token was rejected.
    #[error(
        "{server} refused to {action} app {app}: the API token is wrong \
         (check --token or DRIFTLESS_API_TOKEN)"
    )]
    WrongToken {
        /// Base URL of the server.
        server: String,
        /// What was asked.
        action: &'static str,
        /// App name.
        app: String,
    },
    /// The server reads only for a token, and none or a wrong one was given.
    #[error("{server} refused to answer: {why}")]
    ReadRefused {
        /// Base URL of the server.
        server: String,
        /// What was wrong with the token, and what to do.
        why: &'static str,
    },
    /// The server answered with an error; `message` is its `{"error": ...}`.
    #[error("{message}")]
    Server {
        /// HTTP status of the answer.
        status: StatusCode,
        /// The server's message, or a description of a body that carried none.
        message: String,
    },
    /// The answer was not the JSON the route documents.
    #[error("reading the answer of {url}")]
    Decode {
        /// Requested URL.
        url: String,
        /// What the HTTP client reported.
        #[source]
        source: reqwest::Error,
    },
    /// No earlier successful sync matches the rollback target.
    #[error(
        "app {app} has no successful sync {} to roll back to (`driftless history {app}` lists its syncs)",
        target.as_deref().map_or_else(|| "before the live revision".to_owned(), |t| format!("of revision {t}"))
    )]
    NoRollbackTarget {
        /// App name.
        app: String,
        /// The `--to` given.
        target: Option<String>,
    },
    /// `sync --wait` ran out of time.
    #[error(
        "gave up after {timeout} waiting for the sync of app {app}; it may still finish \
         (see `driftless history {app}`)"
    )]
    TimedOut {
        /// App name.
        app: String,
        /// The `--timeout` given.
        timeout: String,
    },
}

/// What a `POST` asks of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reconcile now.
    Sync,
    /// Stop reconciling.
    Suspend,
    /// Reconcile again, following Git.
    Resume,
    /// Pin an earlier revision.
    Rollback,
}

impl Action {
    /// The route's last path segment, also the verb in messages.
    fn verb(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Suspend => "suspend",
            Self::Resume => "resume",
            Self::Rollback => "rollback",
        }
    }
}

/// A connection to one server.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl Client {
    /// A client of the server at `server`, sending `token` on every call.
    pub fn new(server: &str, token: Option<&str>) -> Result<Self, RemoteError> {
        let bad = || RemoteError::BadServer {
            server: server.to_owned(),
        };
        let base = Url::parse(server).map_err(|_| bad())?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(bad());
        }
        // The workspace's reqwest carries no crypto provider of its own: an
        // https:// server is reached with rustls on ring, the one TLS stack.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|source| RemoteError::Unreachable {
                server: server.to_owned(),
                source,
            })?;
        Ok(Self {
            http,
            base,
            token: token.filter(|t| !t.is_empty()).map(str::to_owned),
        })
    }

    /// One page of the Apps `filter` selects: at most `limit`, after the Apps of
    /// the page whose `continue` token is `after`.
    pub async fn apps(
        &self,
        filter: &AppFilter,
        limit: usize,
        after: Option<&str>,
    ) -> Result<AppList, RemoteError> {
        self.send(self.http.get(self.list_url(filter, limit, after)))
            .await
    }

    fn list_url(&self, filter: &AppFilter, limit: usize, after: Option<&str>) -> Url {
        let mut url = self.url(&[]);
        {
            let mut query = url.query_pairs_mut();
            for (key, value) in filter.query_pairs() {
                query.append_pair(key, &value);
            }
            query.append_pair("limit", &limit.to_string());
            if let Some(token) = after {
                query.append_pair("continue", token);
            }
        }
        url
    }

    /// Every declared Cluster, probed by the server now.
    pub async fn clusters(&self) -> Result<Vec<Named<ClusterStatus>>, RemoteError> {
        self.beside_apps("clusters").await
    }

    /// Every Notifier with its deliveries.
    pub async fn notifiers(&self) -> Result<Vec<Named<NotifierStatus>>, RemoteError> {
        self.beside_apps("notifiers").await
    }

    /// The list at `/api/v1/<what>`, beside `/api/v1/apps`.
    async fn beside_apps<T: DeserializeOwned>(&self, what: &str) -> Result<T, RemoteError> {
        let mut url = self.url(&[]);
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop().push(what);
        }
        self.send(self.http.get(url)).await
    }

    /// One App's status.
    pub async fn app(&self, app: &str) -> Result<Named<AppStatus>, RemoteError> {
        let url = self.url(&[app]);
        self.send(self.http.get(url)).await
    }

    /// The newest `limit` syncs of `app`, newest first.
    pub async fn history(&self, app: &str, limit: u32) -> Result<Vec<SyncRecord>, RemoteError> {
        self.app_log(app, "history", limit).await
    }

    /// The newest `limit` drift events of `app`, newest first.
    pub async fn drift(&self, app: &str, limit: u32) -> Result<Vec<AuditEvent>, RemoteError> {
        self.app_log(app, "events", limit).await
    }

    /// The newest `limit` operations asked of `app`, newest first.
    pub async fn operations(&self, app: &str, limit: u32) -> Result<Vec<Operation>, RemoteError> {
        self.app_log(app, "operations", limit).await
    }

    /// The newest `limit` entries of `app`'s log at `/apps/APP/<log>`.
    async fn app_log<T: DeserializeOwned>(
        &self,
        app: &str,
        log: &str,
        limit: u32,
    ) -> Result<Vec<T>, RemoteError> {
        let mut url = self.url(&[app, log]);
        url.query_pairs_mut()
            .append_pair("limit", &limit.to_string());
        self.send(self.http.get(url)).await
    }

    /// What a sync of `app` would change, compared by the server now.
    pub async fn diff(&self, app: &str) -> Result<AppDiff, RemoteError> {
        let url = self.url(&[app, "diff"]);
        self.send(self.http.get(url)).await
    }

    /// Asks the server to `action` `app` with the `query` parameters (a
    /// rollback's `to`, a sync's `overrideWindow`). Answers the App's status.
    pub async fn act(
        &self,
        app: &str,
        action: Action,
        query: &[(&str, &str)],
    ) -> Result<Named<AppStatus>, RemoteError> {
        let mut url = self.url(&[app, action.verb()]);
        for (key, value) in query {
            url.query_pairs_mut().append_pair(key, value);
        }
        self.send(self.http.post(url)).await.map_err(|e| match e {
            RemoteError::ReadRefused { .. } => self.refused(action, app),
            other => other,
        })
    }

    /// `/api/v1/apps/<segments>` under the base URL, each segment escaped.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["api", "v1", "apps"])
                .extend(segments);
        }
        url
    }

    fn server(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    fn refused(&self, action: Action, app: &str) -> RemoteError {
        let (server, action, app) = (self.server(), action.verb(), app.to_owned());
        if self.token.is_some() {
            RemoteError::WrongToken {
                server,
                action,
                app,
            }
        } else {
            RemoteError::MissingToken {
                server,
                action,
                app,
            }
        }
    }

    /// Sends `request` with the token, if any: servers may require one for reads too.
    async fn send<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, RemoteError> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let url = response.url().to_string();
        let status = response.status();
        if status.is_success() {
            return response
                .json()
                .await
                .map_err(|source| RemoteError::Decode { url, source });
        }
        if status == StatusCode::UNAUTHORIZED {
            let why = if self.token.is_some() {
                "the API token is wrong (check --token or DRIFTLESS_API_TOKEN)"
            } else {
                "it requires an API token for reads (pass --token or set DRIFTLESS_API_TOKEN)"
            };
            return Err(RemoteError::ReadRefused {
                server: self.server(),
                why,
            });
        }
        let body = response.text().await.unwrap_or_default();
        Err(RemoteError::Server {
            status,
            message: error_message(&url, status, &body),
        })
    }

    fn unreachable(&self, source: reqwest::Error) -> RemoteError {
        if refused(&source) {
            RemoteError::NotRunning {
                server: self.server(),
            }
        } else {
            RemoteError::Unreachable {
                server: self.server(),
                source,
            }
        }
    }
}

/// Whether an I/O error deep in the chain says the connection was refused.
fn refused(error: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// The server's `{"error": ...}` message, or what the body was when it is not one.
fn error_message(url: &str, status: StatusCode, body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    match parsed.as_ref().and_then(|v| v["error"].as_str()) {
        Some(message) => message.to_owned(),
        None => {
            let snippet: String = body.trim().chars().take(200).collect();
            format!(
                "{url} answered {status} without an error message (is it a driftless server?): {snippet}"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_escape_app_names_and_keep_a_path_prefix() {
        let client = Client::new("http://127.0.0.1:9480/driftless/", None).expect("client");
        assert_eq!(
            client.url(&["a b", "history"]).as_str(),
            "http://127.0.0.1:9480/driftless/api/v1/apps/a%20b/history"
        );
        let client = Client::new("http://127.0.0.1:9480", None).expect("client");
        assert_eq!(
            client.url(&[]).as_str(),
            "http://127.0.0.1:9480/api/v1/apps"
        );
    }

    #[test]
    fn list_urls_carry_the_filter_the_limit_and_the_token() {
        let client = Client::new("http://127.0.0.1:9480", None).expect("client");
        let filter = AppFilter {
            health: vec![driftless_api::status::HealthStatus::Degraded],
            labels: "env=prod,!old".parse().expect("selector"),
            name: "web app".to_owned(),
            ..AppFilter::default()
        };
        assert_eq!(
            client.list_url(&filter, 50, Some("YWZ0ZXI6d2Vi")).as_str(),
            "http://127.0.0.1:9480/api/v1/apps?health=Degraded&label=env%3Dprod%2C%21old\
             &q=web+app&limit=50&continue=YWZ0ZXI6d2Vi"
        );
        assert_eq!(
            client.list_url(&AppFilter::default(), 500, None).as_str(),
            "http://127.0.0.1:9480/api/v1/apps?limit=500"
        );
    }

    #[test]
    fn non_http_servers_are_refused() {
        for server in ["127.0.0.1:9480", "ftp://host", "mailto:x@y", "not a url"] {
            let err = Client::new(server, None).expect_err(server);
            assert!(
                matches!(err, RemoteError::BadServer { .. }),
                "{server}: {err}"
            );
        }
    }

    #[test]
    fn error_messages_come_from_the_body() {
        let url = "http://h/api/v1/apps/web";
        let status = StatusCode::NOT_FOUND;
        assert_eq!(
            error_message(url, status, r#"{"error":"app web not found"}"#),
            "app web not found"
        );
        let other = error_message(url, status, "<html>nope</html>");
        assert!(
            other.contains("404 Not Found") && other.contains("<html>nope"),
            "{other}"
        );
    }
}
