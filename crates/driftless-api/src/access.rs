//! Who may use the REST API: named bearer tokens, each with a role.
//!
//! Roles follow one rule: `operate` may only make the cluster follow Git
//! (sync now, resume following); `admin` may also hold it away from Git's
//! head (suspend, rollback). Reads need no token unless `anonymousRead` is off.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::receiver::is_env_name;
use crate::server::SecretValue;
use crate::validate::{FieldProblem, dns_label_error};

/// Name the legacy `spec.apiToken` gets in the audit log; it is not a DNS
/// label, so no named token can take it.
pub const LEGACY_TOKEN_NAME: &str = "apiToken";

/// What a token holder may do; each role includes the ones before it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// Read Apps, Clusters, history and events.
    Read,
    /// Also sync an App now and resume a suspended one.
    Operate,
    /// Also suspend an App and roll it back to an earlier revision.
    Admin,
}

impl Role {
    /// The role's name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Operate => "operate",
            Self::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Server.spec.api`: access to the REST API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiAccess {
    /// Whether reads (`GET /api/v1/...`) are allowed without a token.
    #[serde(default = "default_anonymous_read")]
    pub anonymous_read: bool,
    /// Named tokens; the name is what the audit log records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<ApiToken>,
}

impl Default for ApiAccess {
    fn default() -> Self {
        Self {
            anonymous_read: default_anonymous_read(),
            tokens: Vec::new(),
        }
    }
}

fn default_anonymous_read() -> bool {
    true
}

/// One named bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiToken {
    /// Name recorded in the audit log for every mutation made with this token.
    pub name: String,
    /// What the token may do.
    pub role: Role,
    /// Where the token's value is read at start-up.
    pub secret: SecretValue,
}

impl ApiAccess {
    /// Field problems of `spec.api`.
    pub(crate) fn validate(&self, problems: &mut Vec<FieldProblem>) {
        let mut seen = std::collections::BTreeSet::new();
        for (i, token) in self.tokens.iter().enumerate() {
            let field = format!("spec.api.tokens[{i}]");
            if let Some(why) = dns_label_error(&token.name) {
                problems.push(FieldProblem::new(format!("{field}.name"), why));
            } else if !seen.insert(token.name.as_str()) {
                problems.push(FieldProblem::new(
                    format!("{field}.name"),
                    format!("{:?} is used by an earlier token", token.name),
                ));
            }
            validate_secret(&token.secret, &format!("{field}.secret"), problems);
        }
    }

    /// Whether any token is configured, counting the legacy `apiToken`.
    pub fn has_tokens(&self, legacy: Option<&SecretValue>) -> bool {
        legacy.is_some() || !self.tokens.is_empty()
    }
}

/// Checks that a secret names exactly one well-formed source.
pub(crate) fn validate_secret(secret: &SecretValue, field: &str, problems: &mut Vec<FieldProblem>) {
    match (&secret.env, &secret.file) {
        (None, None) => problems.push(FieldProblem::new(field, "one of env or file is required")),
        (Some(_), Some(_)) => problems.push(FieldProblem::new(
            field,
            "only one of env or file may be set",
        )),
        (Some(env), None) if !is_env_name(env) => problems.push(FieldProblem::new(
            format!("{field}.env"),
            format!("{env:?} is not an environment variable name"),
        )),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str, env: &str) -> ApiToken {
        ApiToken {
            name: name.to_owned(),
            role: Role::Operate,
            secret: SecretValue {
                env: Some(env.to_owned()),
                file: None,
            },
        }
    }

    #[test]
    fn roles_are_ordered_from_read_to_admin() {
        assert!(Role::Read < Role::Operate && Role::Operate < Role::Admin);
        let parsed: Vec<Role> =
            serde_json::from_str(r#"["read","operate","admin"]"#).expect("roles parse");
        assert_eq!(parsed, [Role::Read, Role::Operate, Role::Admin]);
    }

    #[test]
    fn token_names_must_be_unique_labels_and_secrets_well_formed() {
        let access = ApiAccess {
            anonymous_read: false,
            tokens: vec![
                token("ci", "CI_TOKEN"),
                token("ci", "OTHER"),
                token("Bad_Name", "X"),
                token(LEGACY_TOKEN_NAME, "Y"),
                token("ops", "1NOT-AN-ENV"),
            ],
        };
        let mut problems = Vec::new();
        access.validate(&mut problems);
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 4, "{text:#?}");
        assert!(text[0].starts_with("spec.api.tokens[1].name: \"ci\" is used"));
        assert!(text[1].starts_with("spec.api.tokens[2].name"));
        assert!(text[2].starts_with("spec.api.tokens[3].name"));
        assert!(text[3].starts_with("spec.api.tokens[4].secret.env"));
    }
}
