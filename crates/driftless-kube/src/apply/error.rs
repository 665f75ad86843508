//! The errors of apply, diff and delete, and how API failures map to them.

use crate::inventory::InventoryError;
use crate::object::{OWNER_LABEL, ObjectError};
use crate::order::OrderError;
use crate::target::{Target, TargetError};
use crate::wait::WaitError;

/// Why an apply, diff or delete failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The cluster could not be reached or a kind not resolved.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// An object of the set is malformed.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// The set cannot be ordered.
    #[error(transparent)]
    Order(#[from] OrderError),
    /// The inventory could not be read or written.
    #[error(transparent)]
    Inventory(Box<InventoryError>),
    /// Objects did not become healthy.
    #[error(transparent)]
    Wait(#[from] WaitError),
    /// A hook failed (or could not be created): the sync stops.
    #[error("{phase} hook {object} failed: {reason}")]
    Hook {
        /// The phase it ran in.
        phase: crate::hooks::HookPhase,
        /// The hook object.
        object: String,
        /// Why: its Job condition or Pod state, and log lines when known.
        reason: String,
    },
    /// A hook annotation cannot be read.
    #[error(transparent)]
    HookSpec(#[from] crate::hooks::HookError),
    /// The ignored differences of an object could not be told.
    #[error(transparent)]
    Ignore(#[from] crate::ignore::IgnoreError),
    /// The same object appears twice in the set.
    #[error("{0} appears twice in the object set")]
    Duplicate(String),
    /// Another field manager owns fields this apply would change.
    #[error("{object}: conflict with field manager {}: {message} (apply with force to take the fields over)", .managers.join(", "))]
    Conflict {
        /// The object.
        object: String,
        /// The managers owning the contested fields.
        managers: Vec<String>,
        /// The API server's message, naming the fields.
        message: String,
    },
    /// The change touches a field that cannot change after creation.
    #[error(
        "{object}: field {field} is immutable: {message} (apply with force to delete and re-create)"
    )]
    Immutable {
        /// The object.
        object: String,
        /// The field's path.
        field: String,
        /// The API server's message.
        message: String,
    },
    /// RBAC denied the request.
    #[error("{object}: {action} forbidden for {user}: {message}")]
    Forbidden {
        /// The object.
        object: String,
        /// What was attempted (`apply`, `delete`, ...).
        action: &'static str,
        /// The identity the request was made as.
        user: String,
        /// The API server's message.
        message: String,
    },
    /// The object is owned by another App.
    #[error(
        "{object} belongs to app {owner} (label {OWNER_LABEL}); apply with force to take it over"
    )]
    OwnedByOtherApp {
        /// The object.
        object: String,
        /// The App named by its label.
        owner: String,
    },
    /// The object exists, no App owns it, and its adoption is refused.
    #[error(
        "{object} already exists and no app owns it (no label {OWNER_LABEL}; field managers: {}); not taking it over because {reason}",
        managers_or_none(.managers)
    )]
    AdoptionRefused {
        /// The object.
        object: String,
        /// Its field managers other than driftless.
        managers: Vec<String>,
        /// Why it is not adopted.
        reason: String,
    },
    /// Any other API failure on one object.
    #[error("{object}: {action} failed: {source}")]
    Api {
        /// The object.
        object: String,
        /// What was attempted.
        action: &'static str,
        /// What went wrong.
        source: kube::Error,
    },
    /// Secrets could not be masked for a diff.
    #[error(transparent)]
    Mask(#[from] crate::compare::MaskError),
    /// A diff could not be computed.
    #[error(transparent)]
    Diff(#[from] crate::compare::DiffError),
}

impl From<InventoryError> for ApplyError {
    fn from(e: InventoryError) -> Self {
        Self::Inventory(Box::new(e))
    }
}

fn managers_or_none(managers: &[String]) -> String {
    if managers.is_empty() {
        "none".to_owned()
    } else {
        managers.join(", ")
    }
}

/// Turns an API failure on `object` into the error that explains it best.
pub(crate) fn api_error(
    target: &Target,
    object: &str,
    action: &'static str,
    source: kube::Error,
) -> ApplyError {
    let kube::Error::Api(status) = &source else {
        return ApplyError::Api {
            object: object.to_owned(),
            action,
            source,
        };
    };
    let message = status.message.clone();
    let causes = status
        .details
        .as_ref()
        .map(|d| d.causes.as_slice())
        .unwrap_or_default();
    match status.code {
        409 if status.reason == "Conflict" && message.contains("conflict") => {
            let mut managers: Vec<String> = message
                .split("conflict with \"")
                .skip(1)
                .filter_map(|rest| rest.split('"').next())
                .map(str::to_owned)
                .collect();
            managers.dedup();
            ApplyError::Conflict {
                object: object.to_owned(),
                managers,
                message,
            }
        }
        422 if message.contains("immutable") || message.contains("updates to") => {
            let field = causes
                .iter()
                .find(|c| c.message.contains("immutable") || c.message.contains("forbidden"))
                .map(|c| c.field.clone())
                .unwrap_or_else(|| "(unnamed)".to_owned());
            ApplyError::Immutable {
                object: object.to_owned(),
                field,
                message,
            }
        }
        403 => ApplyError::Forbidden {
            object: object.to_owned(),
            action,
            user: target.user().unwrap_or("the kubeconfig user").to_owned(),
            message,
        },
        _ => ApplyError::Api {
            object: object.to_owned(),
            action,
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(value: serde_json::Value) -> kube::Error {
        kube::Error::Api(Box::new(
            serde_json::from_value(value).expect("valid status"),
        ))
    }

    fn target() -> Target {
        let config = kube::Config::new("https://127.0.0.1:1".parse().expect("valid uri"));
        Target::from_config(config).expect("a client needs no connection")
    }

    #[tokio::test]
    async fn api_failures_map_to_errors_that_name_the_cause() {
        let t = target();
        let conflict = status(json!({"code": 409, "reason": "Conflict",
            "message": "Apply failed with 2 conflicts: conflict with \"kubectl-edit\" using v1: .data.a\nconflict with \"ops\" using v1: .data.b"}));
        match api_error(&t, "v1/ConfigMap/ns/c", "apply", conflict) {
            ApplyError::Conflict { managers, .. } => assert_eq!(managers, ["kubectl-edit", "ops"]),
            other => panic!("{other}"),
        }
        let immutable = status(json!({"code": 422, "reason": "Invalid",
            "message": "Deployment.apps \"api\" is invalid: spec.selector: Invalid value: field is immutable",
            "details": {"causes": [{"field": "spec.selector", "message": "Invalid value: field is immutable"}]}}));
        let err = api_error(&t, "apps/v1/Deployment/ns/api", "apply", immutable);
        assert!(matches!(&err, ApplyError::Immutable { field, .. } if field == "spec.selector"));
        assert!(
            err.to_string()
                .starts_with("apps/v1/Deployment/ns/api: field spec.selector is immutable")
        );
        let denied = status(json!({"code": 403, "reason": "Forbidden", "message": "no"}));
        let err = api_error(&t, "v1/ConfigMap/ns/c", "delete", denied);
        assert_eq!(
            err.to_string(),
            "v1/ConfigMap/ns/c: delete forbidden for the kubeconfig user: no"
        );
    }
}
