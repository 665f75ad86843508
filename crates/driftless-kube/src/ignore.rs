//! Ignored differences: fields of an App's objects that another writer owns
//! (an autoscaler's replicas, an injected CA bundle). They are not drift,
//! not a reason to write, and an apply over an existing object sends the
//! live value, so the other writer keeps it. A new object is created with
//! the values from Git.

use std::collections::HashSet;

use driftless_api::jq::JqPath;
use serde_json::Value;

pub use driftless_api::IgnoreDifference as IgnoreRule;

use crate::object::ObjectRef;

/// A rule's field that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreError {
    /// A JSON Pointer that does not start with `/`.
    #[error(
        "ignoreDifferences[{index}].jsonPointers: {pointer:?} is not a JSON Pointer (it must start with '/')"
    )]
    Pointer {
        /// Index of the rule.
        index: usize,
        /// The pointer.
        pointer: String,
    },
    /// A jq path expression that does not compile.
    #[error("ignoreDifferences[{index}].jqPathExpressions[{item}]: {problem}")]
    Jq {
        /// Index of the rule.
        index: usize,
        /// Index of the expression in the rule.
        item: usize,
        /// Why, quoting the expression.
        problem: String,
    },
    /// The jq path expressions of the rules that name an object gave no
    /// answer: a bound crossed (time, memory, depth) or the evaluation failed.
    #[error("ignoreDifferences: the jq path expressions for {object} gave no answer: {problem}")]
    JqFailed {
        /// The object.
        object: String,
        /// Why.
        problem: String,
    },
}

/// One rule with its pointers split into path segments and its jq path
/// expressions compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    rule: IgnoreRule,
    pointers: Vec<Vec<String>>,
    jq: Vec<JqPath>,
}

/// An App's ignore rules (with the server's defaults), ready to use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoredDifferences {
    rules: Vec<Rule>,
}

impl IgnoredDifferences {
    /// Checks and keeps `rules`.
    pub fn new(rules: Vec<IgnoreRule>) -> Result<Self, IgnoreError> {
        let mut parsed = Vec::with_capacity(rules.len());
        for (index, rule) in rules.into_iter().enumerate() {
            let mut pointers = Vec::new();
            for pointer in &rule.json_pointers {
                pointers.push(split_pointer(pointer).ok_or_else(|| IgnoreError::Pointer {
                    index,
                    pointer: pointer.clone(),
                })?);
            }
            let mut jq = Vec::new();
            for (item, expression) in rule.jq_path_expressions.iter().enumerate() {
                jq.push(
                    JqPath::compile(expression).map_err(|problem| IgnoreError::Jq {
                        index,
                        item,
                        problem,
                    })?,
                );
            }
            parsed.push(Rule { rule, pointers, jq });
        }
        Ok(Self { rules: parsed })
    }

    /// Whether no rule is set.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether some rule names `object`.
    pub fn applies_to(&self, object: &ObjectRef) -> bool {
        self.rules.iter().any(|r| matches(&r.rule, object))
    }

    /// The ignored paths of `object` whose manifest is `desired`: those owned
    /// by managers need `live`; jq expressions run on both, as Argo CD
    /// removes their fields from each side. An `Err` when jq expressions
    /// gave no answer: the caller must not write or revert the object.
    pub fn paths(
        &self,
        object: &ObjectRef,
        desired: &Value,
        live: Option<&Value>,
    ) -> Result<Vec<Vec<String>>, IgnoreError> {
        let mut out: Vec<Vec<String>> = Vec::new();
        let mut seen: HashSet<Vec<String>> = HashSet::new();
        let mut add = |path: Vec<String>, out: &mut Vec<Vec<String>>| {
            if seen.insert(path.clone()) {
                out.push(path);
            }
        };
        let rules: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| matches(&r.rule, object))
            .collect();
        let jq: Vec<JqPath> = rules.iter().flat_map(|r| r.jq.iter().cloned()).collect();
        let sides: Vec<&Value> = std::iter::once(desired).chain(live).collect();
        let answers =
            outside_the_runtime(|| driftless_api::jq::answers(&jq, &sides)).map_err(|problem| {
                IgnoreError::JqFailed {
                    object: object.to_string(),
                    problem,
                }
            })?;
        let mut answers = answers.into_iter();
        for rule in &rules {
            for pointer in &rule.pointers {
                add(pointer.clone(), &mut out);
            }
            for per_side in answers.by_ref().take(rule.jq.len()) {
                for path in per_side.into_iter().flatten().flatten() {
                    add(path, &mut out);
                }
            }
            if let Some(live) = live {
                for path in managed_paths(live, &rule.rule.managed_fields_managers) {
                    add(path, &mut out);
                }
            }
        }
        Ok(out)
    }
}

/// Runs `f`, which may wait for a worker process, so that the async runtime's
/// other tasks move to other threads meanwhile (on a multi-threaded runtime).
fn outside_the_runtime<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

fn matches(rule: &IgnoreRule, object: &ObjectRef) -> bool {
    rule.group == object.group
        && rule.kind == object.kind
        && rule.name.as_ref().is_none_or(|n| *n == object.name)
        && rule
            .namespace
            .as_ref()
            .is_none_or(|ns| object.namespace.as_ref() == Some(ns))
}

fn split_pointer(pointer: &str) -> Option<Vec<String>> {
    let rest = pointer.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

/// Paths of the fields `managers` own in `live`, from its `managedFields`.
/// A list entry (`k:`, `v:`, `i:`) stands for its whole list.
fn managed_paths(live: &Value, managers: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    if managers.is_empty() {
        return out;
    }
    let entries = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for entry in entries {
        let manager = entry.get("manager").and_then(Value::as_str);
        if manager.is_some_and(|m| managers.iter().any(|x| x == m))
            && let Some(fields) = entry.get("fieldsV1")
        {
            collect_fields(fields, &mut Vec::new(), &mut out);
        }
    }
    out
}

fn collect_fields(fields: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let Some(map) = fields.as_object() else {
        return;
    };
    let named: Vec<(&String, &Value)> = map.iter().filter(|(k, _)| k.as_str() != ".").collect();
    if named.is_empty() {
        if !path.is_empty() {
            out.push(path.clone());
        }
        return;
    }
    if named.iter().any(|(k, _)| !k.starts_with("f:")) {
        // Entries of a list: the list as a whole.
        if !path.is_empty() {
            out.push(path.clone());
        }
        return;
    }
    for (key, inner) in named {
        path.push(key["f:".len()..].to_owned());
        collect_fields(inner, path, out);
        path.pop();
    }
}

/// Whether `path` lies at or below one of `ignored`.
pub(crate) fn is_ignored(path: &[String], ignored: &[Vec<String>]) -> bool {
    ignored.iter().any(|i| path.starts_with(i))
}

/// Removes the values at `paths` from `manifest`.
pub(crate) fn strip(manifest: &mut Value, paths: &[Vec<String>]) {
    for path in paths {
        if let Some((last, parents)) = path.split_last()
            && let Some(parent) = walk_mut(manifest, parents)
        {
            remove_child(parent, last);
        }
    }
}

/// Sets each of `paths` in `manifest` to the value `live` holds there, or
/// removes it when `live` holds none. A list element past the end of the
/// manifest's list is appended (paths come in ascending order).
pub(crate) fn take_live(manifest: &mut Value, live: &Value, paths: &[Vec<String>]) {
    for path in paths {
        let Some((last, parents)) = path.split_last() else {
            continue;
        };
        let value = walk(live, path).cloned();
        match (value, walk_mut(manifest, parents)) {
            (Some(value), Some(Value::Object(map))) => {
                map.insert(last.clone(), value);
            }
            (Some(value), Some(Value::Array(items))) => match last.parse::<usize>() {
                Ok(i) if i < items.len() => items[i] = value,
                // An element only the live list has (one another writer added).
                Ok(i) if i == items.len() => items.push(value),
                _ => {}
            },
            (None, Some(parent)) => remove_child(parent, last),
            _ => {}
        }
    }
}

fn walk<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, segment| match v {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => items.get(segment.parse::<usize>().ok()?),
        _ => None,
    })
}

fn walk_mut<'a>(value: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |v, segment| match v {
        Value::Object(map) => map.get_mut(segment),
        Value::Array(items) => items.get_mut(segment.parse::<usize>().ok()?),
        _ => None,
    })
}

fn remove_child(parent: &mut Value, key: &str) {
    match parent {
        Value::Object(map) => {
            map.shift_remove(key);
        }
        Value::Array(items) => {
            if let Some(i) = key.parse::<usize>().ok().filter(|i| *i < items.len()) {
                items.remove(i);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment() -> ObjectRef {
        ObjectRef {
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
            namespace: Some("web".into()),
            name: "api".into(),
        }
    }

    fn rule(pointers: &[&str], managers: &[&str]) -> IgnoreRule {
        IgnoreRule {
            group: "apps".into(),
            kind: "Deployment".into(),
            json_pointers: pointers.iter().map(|p| (*p).to_owned()).collect(),
            managed_fields_managers: managers.iter().map(|m| (*m).to_owned()).collect(),
            ..IgnoreRule::default()
        }
    }

    #[test]
    fn rules_match_by_group_kind_and_optional_name_and_namespace() {
        let mut named = rule(&["/spec/replicas"], &[]);
        named.name = Some("other".into());
        let ignored = IgnoredDifferences::new(vec![named]).expect("valid");
        assert!(!ignored.applies_to(&deployment()));
        let mut in_ns = rule(&["/spec/replicas"], &[]);
        in_ns.namespace = Some("web".into());
        let ignored = IgnoredDifferences::new(vec![in_ns]).expect("valid");
        assert!(ignored.applies_to(&deployment()));
        assert_eq!(
            ignored
                .paths(&deployment(), &json!({}), None)
                .expect("answers"),
            [vec!["spec".to_owned(), "replicas".to_owned()]]
        );
    }

    #[test]
    fn pointers_unescape_and_a_pointer_without_a_slash_is_refused() {
        let ignored = IgnoredDifferences::new(vec![rule(
            &["/metadata/annotations/example.com~1hash"],
            &[],
        )])
        .expect("valid");
        assert_eq!(
            ignored
                .paths(&deployment(), &json!({}), None)
                .expect("answers")[0],
            ["metadata", "annotations", "example.com/hash"]
        );
        let err = IgnoredDifferences::new(vec![rule(&["spec/replicas"], &[])])
            .expect_err("not a pointer");
        assert!(
            err.to_string()
                .contains("ignoreDifferences[0].jsonPointers"),
            "{err}"
        );
    }

    #[test]
    fn fields_of_named_managers_are_ignored_lists_as_a_whole() {
        let live = json!({"metadata": {"managedFields": [
            {"manager": "hpa", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "injector", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {
                "f:containers": {"k:{\"name\":\"proxy\"}": {".": {}, "f:image": {}}}}}}}},
            {"manager": "driftless", "fieldsV1": {"f:spec": {"f:paused": {}}}}
        ]}});
        let ignored =
            IgnoredDifferences::new(vec![rule(&[], &["hpa", "injector"])]).expect("valid");
        let paths = ignored
            .paths(&deployment(), &json!({}), Some(&live))
            .expect("answers");
        assert_eq!(
            paths,
            [
                vec!["spec".to_owned(), "replicas".to_owned()],
                ["spec", "template", "spec", "containers"]
                    .map(str::to_owned)
                    .to_vec(),
            ]
        );
    }

    #[test]
    fn live_values_replace_ignored_fields_and_missing_ones_are_dropped() {
        let paths = vec![
            vec!["spec".to_owned(), "replicas".to_owned()],
            vec!["spec".to_owned(), "paused".to_owned()],
        ];
        let mut manifest = json!({"spec": {"replicas": 2, "paused": false, "image": "a"}});
        let live = json!({"spec": {"replicas": 5, "image": "b"}});
        take_live(&mut manifest, &live, &paths);
        assert_eq!(manifest, json!({"spec": {"replicas": 5, "image": "a"}}));
        strip(&mut manifest, &paths);
        assert_eq!(manifest, json!({"spec": {"image": "a"}}));
        assert!(is_ignored(&["spec".into(), "replicas".into()], &paths));
        assert!(!is_ignored(&["spec".into(), "image".into()], &paths));
    }

    fn jq_rule(expressions: &[&str]) -> IgnoreRule {
        IgnoreRule {
            group: "apps".into(),
            kind: "Deployment".into(),
            jq_path_expressions: expressions.iter().map(|e| (*e).to_owned()).collect(),
            ..IgnoreRule::default()
        }
    }

    #[test]
    fn jq_expressions_name_fields_of_both_sides_and_a_failing_one_none() {
        let ignored = IgnoredDifferences::new(vec![jq_rule(&[
            r#".spec.template.spec.containers[] | select(.name == "proxy")"#,
            ".metadata.annotations.hash",
            ".spec.selector.matchLabels[]",
        ])])
        .expect("valid");
        let desired = json!({"metadata": {"annotations": {"hash": "a"}},
            "spec": {"template": {"spec": {"containers": [{"name": "app"}]}}}});
        let live = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app"}, {"name": "proxy", "image": "envoy"}]}}}});
        let paths = ignored
            .paths(&deployment(), &desired, Some(&live))
            .expect("answers");
        assert_eq!(
            paths,
            [
                ["spec", "template", "spec", "containers", "1"]
                    .map(str::to_owned)
                    .to_vec(),
                ["metadata", "annotations", "hash"]
                    .map(str::to_owned)
                    .to_vec(),
            ],
            "`.[]` of null fails on both sides and names nothing"
        );
        // The container only the live object has is kept, as the other writer's.
        let mut manifest = desired.clone();
        take_live(&mut manifest, &live, &paths);
        assert_eq!(manifest["spec"], live["spec"]);
        assert_eq!(manifest["metadata"], json!({"annotations": {}}));
    }

    #[test]
    fn an_invalid_jq_expression_names_its_field() {
        let err = IgnoredDifferences::new(vec![
            rule(&["/spec/paused"], &[]),
            jq_rule(&[".a", ".b[ |"]),
        ])
        .expect_err("not jq");
        let message = err.to_string();
        assert!(
            message.starts_with("ignoreDifferences[1].jqPathExpressions[1]: \".b[ |\""),
            "{message}"
        );
    }
}
