//! Comparison of desired and live objects: normalisation, secret masking and
//! unified YAML diffs with a per-object summary.
//!
//! For an exact comparison, pass as "desired" the server-side dry-run result
//! of applying the desired object: the live object carries defaults the API
//! server filled in, which a rendered manifest lacks.

use std::collections::{HashMap, HashSet};

use driftless_yaml::emit_document;
use serde::Serialize;
use serde_json::Value;
use similar::TextDiff;

use crate::object::{ObjectError, ObjectKey, ObjectRef};
use crate::secret::LAST_APPLIED;
pub use crate::secret::{MaskError, MaskedFields, SecretMasker};

/// Why a diff could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// An object has no usable identity.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// The same object appears twice on one side.
    #[error("{object} appears twice in the {side} objects")]
    Duplicate {
        /// The repeated object.
        object: String,
        /// `desired` or `live`.
        side: &'static str,
    },
    /// The desired and live objects given to compare are different objects.
    #[error("cannot compare {desired} with a different live object {live}")]
    Mismatch {
        /// The desired object.
        desired: String,
        /// The live object.
        live: String,
    },
    /// Neither a desired nor a live object was given.
    #[error("nothing to compare: neither a desired nor a live object was given")]
    Empty,
    /// An object has no YAML rendering (a number JSON cannot hold).
    #[error("rendering {object} as YAML: {source}")]
    Yaml {
        /// The object.
        object: String,
        /// The cause.
        source: driftless_yaml::YamlError,
    },
}

/// Metadata fields the API server manages; they never come from Git.
const SERVER_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "selfLink",
];

/// A copy of `obj` without server-managed metadata, the last-applied
/// annotation and status: what remains is what a manifest can declare.
pub fn normalize(obj: &Value) -> Value {
    let mut out = obj.clone();
    normalize_in_place(&mut out);
    out
}

/// [`normalize`] without the copy.
pub fn normalize_in_place(obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    map.shift_remove("status");
    if let Some(metadata) = map.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in SERVER_METADATA {
            metadata.shift_remove(*field);
        }
        let emptied = match metadata.get_mut("annotations") {
            Some(Value::Object(annotations)) => {
                annotations.shift_remove(LAST_APPLIED);
                annotations.is_empty()
            }
            _ => false,
        };
        // An annotation map left empty by the removal is not a difference.
        if emptied {
            metadata.shift_remove("annotations");
        }
    }
}

/// What applying the desired state would do to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// Desired but not live.
    Create,
    /// Both exist and differ.
    Update,
    /// Live but no longer desired.
    Delete,
    /// Both exist and match.
    Unchanged,
}

/// The comparison of one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectDiff {
    /// The object (desired side when present).
    pub object: ObjectRef,
    /// What would happen to it.
    pub change: ChangeKind,
    /// Unified diff of the normalised, masked YAML; empty when unchanged.
    pub diff: String,
}

/// Counts and per-object entries for a whole set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiffSummary {
    /// Objects to create.
    pub create: usize,
    /// Objects to update.
    pub update: usize,
    /// Objects to delete.
    pub delete: usize,
    /// Objects already as desired.
    pub unchanged: usize,
    /// One entry per object: desired objects in input order, then deletions.
    pub entries: Vec<ObjectDiff>,
}

impl DiffSummary {
    /// Whether anything would change (the `diff` command exits 1 then).
    pub fn has_changes(&self) -> bool {
        self.create + self.update + self.delete > 0
    }

    /// All non-empty per-object diffs, concatenated.
    pub fn patch(&self) -> String {
        self.entries.iter().map(|e| e.diff.as_str()).collect()
    }
}

/// Compares one desired object with its live counterpart; either may be absent.
pub fn diff_object(
    desired: Option<&Value>,
    live: Option<&Value>,
    masker: &SecretMasker,
) -> Result<ObjectDiff, DiffError> {
    let object = match (desired, live) {
        (Some(d), Some(l)) => {
            let (d, l) = (ObjectRef::from_object(d)?, ObjectRef::from_object(l)?);
            if d.key() != l.key() {
                return Err(DiffError::Mismatch {
                    desired: d.to_string(),
                    live: l.to_string(),
                });
            }
            d
        }
        (Some(obj), None) | (None, Some(obj)) => ObjectRef::from_object(obj)?,
        (None, None) => return Err(DiffError::Empty),
    };
    let prepare = |v: Option<&Value>| {
        v.map(|v| {
            let mut copy = v.clone();
            normalize_in_place(&mut copy);
            masker.mask_in_place(&mut copy);
            copy
        })
    };
    let desired = prepare(desired);
    let live = prepare(live);
    let change = match (&desired, &live) {
        (Some(_), None) => ChangeKind::Create,
        (None, _) => ChangeKind::Delete,
        (Some(d), Some(l)) if d == l => ChangeKind::Unchanged,
        (Some(_), Some(_)) => ChangeKind::Update,
    };
    if change == ChangeKind::Unchanged {
        return Ok(ObjectDiff {
            object,
            change,
            diff: String::new(),
        });
    }
    // Keys are written sorted, as kustomize and kubectl print them, so key
    // order never shows as a change.
    let name = object.describe();
    let render = |v: &Option<Value>| match v {
        Some(v) => emit_document(v).map_err(|source| DiffError::Yaml {
            object: name.clone(),
            source,
        }),
        None => Ok(String::new()),
    };
    let (old, new) = (render(&live)?, render(&desired)?);
    let diff = TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{name} (live)"), &format!("{name} (desired)"))
        .to_string();
    Ok(ObjectDiff {
        object,
        change,
        diff,
    })
}

/// Compares a desired set with the live objects. Objects are matched by group,
/// kind, namespace and name; live objects without a desired counterpart count
/// as deletions, so pass only live objects the App owns and may prune.
pub fn diff_sets<'a, 'b>(
    desired: impl IntoIterator<Item = &'a Value>,
    live: impl IntoIterator<Item = &'b Value>,
    masker: &SecretMasker,
) -> Result<DiffSummary, DiffError> {
    let mut live_by_key: HashMap<ObjectKey, &Value> = HashMap::new();
    let mut live_order = Vec::new();
    for obj in live {
        let key = ObjectRef::from_object(obj)?.key();
        if live_by_key.insert(key.clone(), obj).is_some() {
            return Err(duplicate(obj, "live"));
        }
        live_order.push(key);
    }
    let mut summary = DiffSummary::default();
    let mut seen = HashSet::new();
    for obj in desired {
        let key = ObjectRef::from_object(obj)?.key();
        if !seen.insert(key.clone()) {
            return Err(duplicate(obj, "desired"));
        }
        summary.record(diff_object(
            Some(obj),
            live_by_key.get(&key).copied(),
            masker,
        )?);
    }
    for key in live_order.iter().filter(|k| !seen.contains(*k)) {
        summary.record(diff_object(None, live_by_key.get(key).copied(), masker)?);
    }
    Ok(summary)
}

impl std::fmt::Display for DiffSummary {
    /// One line for people: `2 to create, 1 to update, 0 to delete, 7 unchanged`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} to create, {} to update, {} to delete, {} unchanged",
            self.create, self.update, self.delete, self.unchanged
        )
    }
}

impl DiffSummary {
    fn record(&mut self, entry: ObjectDiff) {
        match entry.change {
            ChangeKind::Create => self.create += 1,
            ChangeKind::Update => self.update += 1,
            ChangeKind::Delete => self.delete += 1,
            ChangeKind::Unchanged => self.unchanged += 1,
        }
        self.entries.push(entry);
    }
}

fn duplicate(obj: &Value, side: &'static str) -> DiffError {
    DiffError::Duplicate {
        object: ObjectRef::from_object(obj).map_or_else(|e| e.to_string(), |r| r.to_string()),
        side,
    }
}

#[cfg(test)]
#[path = "compare_tests.rs"]
mod tests;
