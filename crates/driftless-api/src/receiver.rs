//! `Receiver`: an inbound webhook that makes sources fetch now.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{AGE_COLUMN, Kind, LocalRef, Object, PrinterColumn, READY_COLUMN};
use crate::status::ReceiverStatus;
use crate::validate::FieldProblem;

/// A `Receiver` object.
pub type Receiver = Object<ReceiverSpec>;

/// An inbound webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReceiverSpec {
    /// Payload and signature format.
    #[serde(rename = "type")]
    pub type_: ReceiverType,
    /// Secret whose `token` key verifies requests (in-cluster mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalRef>,
    /// Environment variable of the server process holding the token (standalone mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// Names of the GitSources a verified request triggers.
    pub resources: Vec<String>,
    /// Event types that trigger (e.g. `push`, `release`, `tag_push`); empty means push
    /// events (github, gitea: `push`; gitlab: `Push Hook`, `Tag Push Hook`, `System Hook`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
}

/// Webhook flavours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ReceiverType {
    /// GitHub: `X-Hub-Signature-256` HMAC.
    Github,
    /// GitLab: `X-Gitlab-Token` shared token.
    Gitlab,
    /// Gitea/Forgejo: `X-Gitea-Signature` HMAC.
    Gitea,
    /// Any sender: HMAC-SHA256 of the body in `X-Signature`.
    GenericHmac,
}

impl Kind for ReceiverSpec {
    const KIND: &'static str = "Receiver";
    const PLURAL: &'static str = "receivers";
    const SHORT_NAMES: &'static [&'static str] = &[];
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        PrinterColumn {
            name: "Type",
            type_: "string",
            json_path: ".spec.type",
        },
        READY_COLUMN,
        PrinterColumn {
            name: "Path",
            type_: "string",
            json_path: ".status.webhookPath",
        },
        AGE_COLUMN,
    ];
    type Status = ReceiverStatus;

    fn validate(&self, problems: &mut Vec<FieldProblem>) {
        if self.secret_ref.is_none() && self.secret_env.is_none() {
            problems.push(FieldProblem::new(
                "spec",
                "one of secretRef or secretEnv is required: unauthenticated webhooks are refused",
            ));
        }
        check_secret_source(
            self.secret_ref.as_ref(),
            self.secret_env.as_deref(),
            problems,
        );
        if self.resources.is_empty() {
            problems.push(FieldProblem::new(
                "spec.resources",
                "must name at least one GitSource",
            ));
        }
        if self.type_ == ReceiverType::GenericHmac && !self.events.is_empty() {
            problems.push(FieldProblem::new(
                "spec.events",
                "generic-hmac requests carry no event name: every signed request triggers; remove spec.events",
            ));
        }
        for (i, event) in self.events.iter().enumerate() {
            if event.trim().is_empty() {
                problems.push(FieldProblem::new(
                    format!("spec.events[{i}]"),
                    "must not be empty",
                ));
            }
        }
    }
}

/// Checks that at most one of `spec.secretRef` and `spec.secretEnv` is set and
/// that the variable's name is one.
pub(crate) fn check_secret_source(
    secret_ref: Option<&LocalRef>,
    secret_env: Option<&str>,
    problems: &mut Vec<FieldProblem>,
) {
    match (secret_ref, secret_env) {
        (Some(_), Some(_)) => problems.push(FieldProblem::new(
            "spec.secretEnv",
            "cannot be combined with spec.secretRef",
        )),
        (None, Some(env)) if !is_env_name(env) => problems.push(FieldProblem::new(
            "spec.secretEnv",
            format!("{env:?} is not an environment variable name"),
        )),
        _ => {}
    }
}

/// POSIX-portable variable names: letters, digits, underscore, no leading digit.
pub(crate) fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
