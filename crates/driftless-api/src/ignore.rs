//! An App's ignored differences: fields of its objects that another writer
//! owns, left out of drift, diffs and writes (as Argo CD's
//! `ignoreDifferences`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::validate::FieldProblem;

/// Fields of some of an App's objects that another writer owns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IgnoreDifference {
    /// API group of the objects; empty for the core group.
    #[serde(default)]
    pub group: String,
    /// Kind of the objects.
    pub kind: String,
    /// Only the object of this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only objects in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Fields by JSON Pointer, e.g. `/spec/replicas`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json_pointers: Vec<String>,
    /// Fields by jq path expression (as `del(EXPR)` would remove them), e.g.
    /// `.webhooks[]?.clientConfig.caBundle`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jq_path_expressions: Vec<String>,
    /// Every field these field managers own in the live object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_fields_managers: Vec<String>,
}

/// Reports rules that name no kind or no field, pointers that are not JSON
/// Pointers and jq path expressions that do not compile.
pub(crate) fn validate(rules: &[IgnoreDifference], problems: &mut Vec<FieldProblem>) {
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("spec.ignoreDifferences[{i}]");
        if rule.kind.is_empty() {
            problems.push(FieldProblem::new(format!("{at}.kind"), "must not be empty"));
        }
        if rule.json_pointers.is_empty()
            && rule.jq_path_expressions.is_empty()
            && rule.managed_fields_managers.is_empty()
        {
            problems.push(FieldProblem::new(
                at.clone(),
                "names no field: give jsonPointers, jqPathExpressions or managedFieldsManagers",
            ));
        }
        for (j, expression) in rule.jq_path_expressions.iter().enumerate() {
            if let Err(problem) = crate::jq::JqPath::compile(expression) {
                problems.push(FieldProblem::new(
                    format!("{at}.jqPathExpressions[{j}]"),
                    problem,
                ));
            }
        }
        for (j, pointer) in rule.json_pointers.iter().enumerate() {
            if !pointer.starts_with('/') {
                problems.push(FieldProblem::new(
                    format!("{at}.jsonPointers[{j}]"),
                    format!("{pointer:?} is not a JSON Pointer (it must start with '/')"),
                ));
            }
        }
    }
}
