//! `Server`: settings of `driftless serve`, read from the config file only.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{Kind, Object};
use crate::receiver::is_env_name;
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
    /// Bearer token clients must send; required unless listening on loopback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_token: Option<SecretValue>,
    /// Resource bounds of every App's render.
    #[serde(default)]
    pub render: RenderBounds,
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
        }
    }
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
            render: RenderBounds::default(),
        }
    }
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
            Ok(addr) if !addr.ip().is_loopback() && self.api_token.is_none() => {
                problems.push(FieldProblem::new(
                    "spec.apiToken",
                    format!("required when listening on {addr}, which is not a loopback address"),
                ));
            }
            Ok(_) => {}
        }
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
        if self.data_dir.trim().is_empty() {
            problems.push(FieldProblem::new("spec.dataDir", "must not be empty"));
        }
        if let Some(token) = &self.api_token {
            match (&token.env, &token.file) {
                (None, None) => problems.push(FieldProblem::new(
                    "spec.apiToken",
                    "one of env or file is required",
                )),
                (Some(_), Some(_)) => problems.push(FieldProblem::new(
                    "spec.apiToken",
                    "only one of env or file may be set",
                )),
                (Some(env), None) if !is_env_name(env) => problems.push(FieldProblem::new(
                    "spec.apiToken.env",
                    format!("{env:?} is not an environment variable name"),
                )),
                _ => {}
            }
        }
    }
}
