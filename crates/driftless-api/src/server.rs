//! `Server`: settings of `driftless serve`, read from the config file only.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::access::{ApiAccess, validate_secret};
use crate::duration::Duration;
use crate::ignore::IgnoreDifference;
use crate::meta::{Kind, Object};
use crate::notifier::NotificationDelivery;
use crate::validate::FieldProblem;

/// A `Server` object.
pub type Server = Object<ServerSpec>;

/// Address `driftless serve` listens on when the config says nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9480";
/// Directory of the embedded state store when the config says nothing.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/driftless";

/// Settings of the standalone server. Command-line flags win over them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerSpec {
    /// `host:port` of the REST API, webhooks and metrics.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Directory of the state store (history, inventories, caches); relative to the declaring file.
    #[serde(default = "default_data_dir")]
    pub data_dir: String,
    /// One bearer token with the `admin` role (named `apiToken` in the audit log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_token: Option<SecretValue>,
    /// Named API tokens with roles, and whether reads need a token.
    #[serde(default)]
    pub api: ApiAccess,
    /// Bounds on HTTP connections: timeouts, connection cap, body size.
    #[serde(default)]
    pub http: HttpLimits,
    /// How much sync history and drift audit the state store keeps.
    #[serde(default)]
    pub retention: Retention,
    /// Resource bounds of every App's render.
    #[serde(default)]
    pub render: RenderBounds,
    /// Apps reconciled at once (fetch, render, apply, health); read at start.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Base URL users reach the web UI at (e.g. `https://driftless.example.com`):
    /// notifications and commit statuses link to the App's page under it.
    #[serde(
        default,
        rename = "externalURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub external_url: Option<String>,
    /// How notifications are delivered: tries, waits, pace, queue.
    #[serde(default)]
    pub notifications: NotificationDelivery,
    /// Ignored differences of every App, before each App's own (e.g. the
    /// `caBundle` of webhook configurations that cert-manager injects); read at start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_differences: Vec<IgnoreDifference>,
}

/// Default of `concurrency`.
pub const DEFAULT_CONCURRENCY: u32 = 4;
/// Largest `concurrency`.
pub const MAX_CONCURRENCY: u32 = 1024;

fn default_concurrency() -> u32 {
    DEFAULT_CONCURRENCY
}

/// Why `concurrency` cannot be used, if it cannot (the config's field and the
/// command-line flag share this check).
pub fn concurrency_problem(concurrency: u32) -> Option<String> {
    (!(1..=MAX_CONCURRENCY).contains(&concurrency))
        .then(|| format!("{concurrency} is out of range: 1 to {MAX_CONCURRENCY}"))
}

/// Resource bounds of one render; an App whose render crosses one fails alone.
/// Its time limit is the App's `timeout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenderBounds {
    /// Memory of the process that evaluates a Jsonnet App, in MiB.
    #[serde(default = "default_memory_limit_mib", rename = "memoryLimitMiB")]
    pub memory_limit_mib: u64,
    /// Bytes one render reads (manifest files, helm's output, a Jsonnet result), in MiB.
    #[serde(default = "default_input_limit_mib", rename = "inputLimitMiB")]
    pub input_limit_mib: u64,
    /// Objects one App may render.
    #[serde(default = "default_object_limit")]
    pub object_limit: u64,
    /// Whether kustomize remote resources (Git URLs, HTTP(S) files) are
    /// fetched at all; `false` fails every render that names one, whatever
    /// the App says.
    #[serde(default = "default_kustomize_remote_resources")]
    pub kustomize_remote_resources: bool,
}

/// Default of `render.memoryLimitMiB`.
pub const DEFAULT_MEMORY_LIMIT_MIB: u64 = 1024;
/// Default of `render.inputLimitMiB`.
pub const DEFAULT_INPUT_LIMIT_MIB: u64 = 64;
/// Default of `render.objectLimit`.
pub const DEFAULT_OBJECT_LIMIT: u64 = 10_000;

impl Default for RenderBounds {
    fn default() -> Self {
        Self {
            memory_limit_mib: DEFAULT_MEMORY_LIMIT_MIB,
            input_limit_mib: DEFAULT_INPUT_LIMIT_MIB,
            object_limit: DEFAULT_OBJECT_LIMIT,
            kustomize_remote_resources: true,
        }
    }
}

fn default_kustomize_remote_resources() -> bool {
    true
}

fn default_memory_limit_mib() -> u64 {
    DEFAULT_MEMORY_LIMIT_MIB
}

fn default_input_limit_mib() -> u64 {
    DEFAULT_INPUT_LIMIT_MIB
}

fn default_object_limit() -> u64 {
    DEFAULT_OBJECT_LIMIT
}

impl Default for ServerSpec {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            data_dir: default_data_dir(),
            api_token: None,
            api: ApiAccess::default(),
            http: HttpLimits::default(),
            retention: Retention::default(),
            render: RenderBounds::default(),
            concurrency: DEFAULT_CONCURRENCY,
            external_url: None,
            notifications: NotificationDelivery::default(),
            ignore_differences: Vec::new(),
        }
    }
}

/// Time a client has to send a request's headers, from the connection opening.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to send a request body, from the end of its headers.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Time a keep-alive connection may wait for its next request.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections served at once; more are answered 503 and closed.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 1024;
/// Largest accepted request body (4 MiB): webhook payloads are far smaller.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 4 << 20;

/// Limits that keep slow or numerous clients from exhausting the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpLimits {
    /// Deadline for a request's headers, counted from the first byte (or the connection opening).
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: Duration,
    /// Deadline for a request's body, counted from the end of its headers.
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: Duration,
    /// Connections served at once; one over the cap is answered 503 and closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Largest request body in bytes; larger ones are answered 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

fn default_header_read_timeout() -> Duration {
    DEFAULT_HEADER_READ_TIMEOUT
}

fn default_body_read_timeout() -> Duration {
    DEFAULT_BODY_READ_TIMEOUT
}

fn default_idle_timeout() -> Duration {
    DEFAULT_IDLE_TIMEOUT
}

fn default_max_connections() -> u32 {
    DEFAULT_MAX_CONNECTIONS
}

fn default_max_body_bytes() -> u64 {
    DEFAULT_MAX_BODY_BYTES
}

/// Syncs kept per App by default.
pub const DEFAULT_RETAINED_SYNCS: u32 = 1000;
/// Drift events kept per App by default.
pub const DEFAULT_RETAINED_DRIFT_EVENTS: u32 = 1000;
/// Records older than this are removed by default (90 days).
pub const DEFAULT_RETENTION_MAX_AGE: Duration = Duration::from_secs(90 * 86_400);

/// Bounds on the state store: per App, the newest records up to a count and an age.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retention {
    /// Syncs kept per App, newest first.
    #[serde(default = "default_retained_syncs")]
    pub syncs: u32,
    /// Drift events kept per App, newest first.
    #[serde(default = "default_retained_drift_events")]
    pub drift_events: u32,
    /// Records older than this are removed; `0` keeps them regardless of age.
    #[serde(default = "default_retention_max_age")]
    pub max_age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            syncs: DEFAULT_RETAINED_SYNCS,
            drift_events: DEFAULT_RETAINED_DRIFT_EVENTS,
            max_age: DEFAULT_RETENTION_MAX_AGE,
        }
    }
}

fn default_retained_syncs() -> u32 {
    DEFAULT_RETAINED_SYNCS
}

fn default_retained_drift_events() -> u32 {
    DEFAULT_RETAINED_DRIFT_EVENTS
}

fn default_retention_max_age() -> Duration {
    DEFAULT_RETENTION_MAX_AGE
}

fn default_listen() -> String {
    DEFAULT_LISTEN.to_owned()
}

fn default_data_dir() -> String {
    DEFAULT_DATA_DIR.to_owned()
}

/// A secret read at start-up, never written in the config itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretValue {
    /// Environment variable holding the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// File holding the value (trailing newline ignored); relative to the declaring file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// The Server kind has no status: it is never a CustomResource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NoStatus {}

impl Kind for ServerSpec {
    const KIND: &'static str = "Server";
    const PLURAL: &'static str = "servers";
    const SHORT_NAMES: &'static [&'static str] = &[];
    const CUSTOM_RESOURCE: bool = false;
    type Status = NoStatus;

    fn validate(&self, problems: &mut Vec<FieldProblem>) {
        let addr = self.listen.parse::<std::net::SocketAddr>();
        match &addr {
            Err(_) => problems.push(FieldProblem::new(
                "spec.listen",
                format!(
                    "{:?} is not an address (expected e.g. 127.0.0.1:9480 or [::]:9480)",
                    self.listen
                ),
            )),
            Ok(addr)
                if !addr.ip().is_loopback() && !self.api.has_tokens(self.api_token.as_ref()) =>
            {
                problems.push(FieldProblem::new(
                    "spec.apiToken",
                    format!(
                        "a token (spec.apiToken or spec.api.tokens) is required when listening \
                         on {addr}, which is not a loopback address"
                    ),
                ));
            }
            Ok(_) => {}
        }
        if let Some(url) = &self.external_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            problems.push(FieldProblem::new(
                "spec.externalURL",
                format!("{url:?} is not an http:// or https:// URL"),
            ));
        }
        self.http.validate(problems);
        self.retention.validate(problems);
        self.notifications.validate(problems);
        crate::ignore::validate(&self.ignore_differences, problems);
        let bounds = [
            ("spec.render.memoryLimitMiB", self.render.memory_limit_mib),
            ("spec.render.inputLimitMiB", self.render.input_limit_mib),
            ("spec.render.objectLimit", self.render.object_limit),
        ];
        for (field, value) in bounds {
            if value == 0 {
                problems.push(FieldProblem::new(field, "must be at least 1"));
            }
        }
        if let Some(problem) = concurrency_problem(self.concurrency) {
            problems.push(FieldProblem::new("spec.concurrency", problem));
        }
        if self.data_dir.trim().is_empty() {
            problems.push(FieldProblem::new("spec.dataDir", "must not be empty"));
        }
        if let Some(token) = &self.api_token {
            validate_secret(token, "spec.apiToken", problems);
        }
        self.api.validate(problems);
        if !self.api.anonymous_read && !self.api.has_tokens(self.api_token.as_ref()) {
            problems.push(FieldProblem::new(
                "spec.api.anonymousRead",
                "false needs a token to read with (spec.apiToken or spec.api.tokens)",
            ));
        }
    }
}

impl HttpLimits {
    fn validate(&self, problems: &mut Vec<FieldProblem>) {
        for (field, value) in [
            ("spec.http.headerReadTimeout", self.header_read_timeout),
            ("spec.http.bodyReadTimeout", self.body_read_timeout),
            ("spec.http.idleTimeout", self.idle_timeout),
        ] {
            if value.get().is_zero() {
                problems.push(FieldProblem::new(
                    field,
                    "must be longer than 0: without it a silent client holds a connection forever",
                ));
            }
        }
        if self.max_connections == 0 {
            problems.push(FieldProblem::new(
                "spec.http.maxConnections",
                "must be at least 1",
            ));
        }
        if self.max_body_bytes < 1024 {
            problems.push(FieldProblem::new(
                "spec.http.maxBodyBytes",
                format!(
                    "{} is too small for any webhook payload (at least 1024)",
                    self.max_body_bytes
                ),
            ));
        }
    }
}

impl Retention {
    fn validate(&self, problems: &mut Vec<FieldProblem>) {
        if self.syncs == 0 {
            problems.push(FieldProblem::new(
                "spec.retention.syncs",
                "must be at least 1: the newest sync is the App's history",
            ));
        }
    }
}
