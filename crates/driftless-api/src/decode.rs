//! Turning one parsed YAML/JSON document into a typed object, with every
//! problem named by field path.

use serde_json::Value;

use crate::meta::{API_VERSION, Kind, Object};
use crate::validate::{FieldProblem, check_dns_label, did_you_mean};
use crate::{
    AppSpec, ClusterSpec, GitSourceSpec, HelmRepositorySpec, HostSpec, NotifierSpec, OciSourceSpec,
    ReceiverSpec, ServerSpec, SyncWindowSpec,
};

/// Every kind a config may hold.
pub const KINDS: [&str; 10] = [
    "GitSource",
    "App",
    "Cluster",
    "Receiver",
    "Notifier",
    "Server",
    "Host",
    "SyncWindow",
    "HelmRepository",
    "OCISource",
];

/// A decoded object of any kind (boxed: specs differ much in size).
#[derive(Debug, Clone, PartialEq)]
pub enum AnyObject {
    /// A GitSource.
    GitSource(Box<Object<GitSourceSpec>>),
    /// An App.
    App(Box<Object<AppSpec>>),
    /// A Cluster.
    Cluster(Box<Object<ClusterSpec>>),
    /// A Receiver.
    Receiver(Box<Object<ReceiverSpec>>),
    /// A Notifier.
    Notifier(Box<Object<NotifierSpec>>),
    /// Server settings.
    Server(Box<Object<ServerSpec>>),
    /// A Host.
    Host(Box<Object<HostSpec>>),
    /// A SyncWindow.
    SyncWindow(Box<Object<SyncWindowSpec>>),
    /// A HelmRepository.
    HelmRepository(Box<Object<HelmRepositorySpec>>),
    /// An OCISource.
    OciSource(Box<Object<OciSourceSpec>>),
}

impl AnyObject {
    /// `Kind/name`.
    pub fn key(&self) -> String {
        match self {
            Self::GitSource(o) => o.key(),
            Self::App(o) => o.key(),
            Self::Cluster(o) => o.key(),
            Self::Receiver(o) => o.key(),
            Self::Notifier(o) => o.key(),
            Self::Server(o) => o.key(),
            Self::Host(o) => o.key(),
            Self::SyncWindow(o) => o.key(),
            Self::HelmRepository(o) => o.key(),
            Self::OciSource(o) => o.key(),
        }
    }
}

/// What a document is, as far as can be told before decoding it: for naming
/// it in problems even when its body is broken.
pub fn describe(value: &Value) -> Option<String> {
    let kind = value.get("kind")?.as_str()?;
    let name = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    Some(format!("{kind}/{name}"))
}

/// [`describe`] for a custom resource: `Kind/NAMESPACE.NAME`, the name the
/// engine knows it by (see [`crate::scope`]).
pub fn describe_namespaced(value: &Value) -> Option<String> {
    let plain = describe(value)?;
    match value.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => {
            let (kind, name) = plain.split_once('/')?;
            Some(format!("{kind}/{}", crate::scope::qualified_name(ns, name)))
        }
        None => Some(plain),
    }
}

/// Decodes and checks one document. Returns the object, or all problems found.
pub fn decode(value: Value) -> Result<AnyObject, Vec<FieldProblem>> {
    let Some(map) = value.as_object() else {
        return Err(vec![FieldProblem::new(
            "(document)",
            format!(
                "expected a mapping with apiVersion and kind, found {}",
                type_name(&value)
            ),
        )]);
    };
    let mut problems = Vec::new();
    match map.get("apiVersion").and_then(Value::as_str) {
        None => problems.push(FieldProblem::new("apiVersion", "required")),
        Some(API_VERSION) => {}
        Some(other) => problems.push(FieldProblem::new(
            "apiVersion",
            format!("unknown apiVersion {other:?} (expected {API_VERSION:?})"),
        )),
    }
    let kind = match map.get("kind").and_then(Value::as_str) {
        None => {
            problems.push(FieldProblem::new(
                "kind",
                format!("required, one of {}", KINDS.join(", ")),
            ));
            None
        }
        Some(k) if KINDS.contains(&k) => Some(k.to_owned()),
        Some(k) => {
            problems.push(FieldProblem::new(
                "kind",
                format!("unknown kind {k:?}{}", did_you_mean(k, KINDS)),
            ));
            None
        }
    };
    let (Some(kind), true) = (kind, problems.is_empty()) else {
        return Err(problems);
    };
    match kind.as_str() {
        "GitSource" => typed(value).map(Box::new).map(AnyObject::GitSource),
        "App" => typed(value).map(Box::new).map(AnyObject::App),
        "Cluster" => typed(value).map(Box::new).map(AnyObject::Cluster),
        "Receiver" => typed(value).map(Box::new).map(AnyObject::Receiver),
        "Notifier" => typed(value).map(Box::new).map(AnyObject::Notifier),
        "Host" => typed(value).map(Box::new).map(AnyObject::Host),
        "SyncWindow" => typed(value).map(Box::new).map(AnyObject::SyncWindow),
        "HelmRepository" => typed(value).map(Box::new).map(AnyObject::HelmRepository),
        "OCISource" => typed(value).map(Box::new).map(AnyObject::OciSource),
        _ => typed(value).map(Box::new).map(AnyObject::Server),
    }
}

fn typed<S: Kind>(value: Value) -> Result<Object<S>, Vec<FieldProblem>> {
    match serde_path_to_error::deserialize::<_, Object<S>>(&value) {
        Ok(object) => {
            let problems = semantic_problems(&object);
            if problems.is_empty() {
                Ok(object)
            } else {
                Err(problems)
            }
        }
        Err(e) => Err(broken_document_problems::<S>(&value, serde_problem(&e))),
    }
}

/// Problems serde cannot see: names and the kind's own rules.
fn semantic_problems<S: Kind>(object: &Object<S>) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    check_dns_label("metadata.name", &object.metadata.name, &mut problems);
    if let Some(ns) = &object.metadata.namespace {
        check_dns_label("metadata.namespace", ns, &mut problems);
    }
    object.spec.validate(&mut problems);
    problems
}

/// Everything wrong with a document serde refused, not only serde's first
/// error: all unknown and missing fields, and, when the unknown fields were
/// the only trouble, the kind's own rules on what remains. The schema walk
/// costs a schema generation, so it runs only for broken documents.
fn broken_document_problems<S: Kind>(value: &Value, first: FieldProblem) -> Vec<FieldProblem> {
    let shape = crate::shape::check::<S>(value);
    let mut problems = shape.problems.clone();
    if !problems.iter().any(|p| p.field == first.field) {
        problems.insert(0, first);
    }
    if !shape.unknown.is_empty() {
        let mut pruned = value.clone();
        shape.prune(&mut pruned);
        if let Ok(object) = serde_json::from_value::<Object<S>>(pruned) {
            problems.extend(semantic_problems(&object));
        }
    }
    problems
}

/// Rewrites serde's messages so the field path names the field at fault and
/// unknown fields come with a suggestion.
fn serde_problem(err: &serde_path_to_error::Error<serde_json::Error>) -> FieldProblem {
    let path = err.path().to_string();
    let parent = if path == "." {
        String::new()
    } else {
        path.clone()
    };
    let join = |field: &str| {
        if parent.is_empty() {
            field.to_owned()
        } else {
            format!("{parent}.{field}")
        }
    };
    let message = err.inner().to_string();
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some(field) = rest.split('`').next()
    {
        return FieldProblem::new(join(field), "required field is missing");
    }
    if let Some((field, expected)) = parse_unknown_field(&message) {
        // serde_path_to_error already puts the unknown key at the end of the path.
        let at = if path.ends_with(&field) {
            path.clone()
        } else {
            join(&field)
        };
        let hint = did_you_mean(&field, expected.iter().map(String::as_str));
        let list = if expected.is_empty() {
            "no fields are allowed here".to_owned()
        } else {
            format!("allowed: {}", expected.join(", "))
        };
        return FieldProblem::new(at, format!("unknown field{hint}; {list}"));
    }
    if let Some((variant, expected)) = parse_unknown_variant(&message) {
        let hint = did_you_mean(&variant, expected.iter().map(String::as_str));
        return FieldProblem::new(
            parent,
            format!(
                "unknown value {variant:?}{hint}; allowed: {}",
                expected.join(", ")
            ),
        );
    }
    let field = if parent.is_empty() {
        "(document)".to_owned()
    } else {
        parent
    };
    FieldProblem::new(field, message)
}

/// Splits serde's "unknown field `x`, expected one of `a`, `b`" message.
fn parse_unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, tail) = rest.split_once('`')?;
    Some((field.to_owned(), backticked(tail)))
}

/// Splits serde's "unknown variant `x`, expected one of `a`, `b`" message.
fn parse_unknown_variant(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown variant `")?;
    let (variant, tail) = rest.split_once('`')?;
    Some((variant.to_owned(), backticked(tail)))
}

/// The `quoted` words of a serde message tail.
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "an empty document",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
