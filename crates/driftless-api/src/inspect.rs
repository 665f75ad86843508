//! What the API and the web UI show about an App's live objects beyond its
//! status: the objects the cluster created for them (Deployment ->
//! ReplicaSet -> Pod) and the difference between Git and the cluster.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::status::HealthStatus;

/// One object the cluster created for an App's object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnedObject {
    /// Kind, e.g. `ReplicaSet`.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The owner it sits beneath: `Kind/name` in the same namespace.
    pub owner: String,
    /// 1 for a child of an App object, 2 for a grandchild, and so on.
    pub depth: usize,
    /// Its health.
    pub health: HealthStatus,
    /// Why, in the object's own words.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// `GET /api/v1/apps/{name}/tree`: the objects owned by the App's objects,
/// depth first (each object right after its owner).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnedTree {
    /// Objects, depth first.
    pub objects: Vec<OwnedObject>,
    /// More objects exist than are listed.
    #[serde(default)]
    pub truncated: bool,
}

/// What a sync would do to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// In Git, not in the cluster.
    Create,
    /// In both, different.
    Update,
    /// In the cluster, owned by the App, no longer in Git: a prune deletes it.
    Delete,
}

/// One object whose live state differs from Git.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectChange {
    /// `group/version`, or `version` for the core group.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Namespace; empty for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Name.
    pub name: String,
    /// What a sync would do.
    pub change: Change,
    /// Unified diff from the live object to the one Git gives, as YAML with
    /// sorted keys; Secret values are replaced by keyed digests.
    pub diff: String,
}

/// What a sync of an App whose syncs are manual would change, from the
/// comparison of its last reconcile (the full diff is on the API's diff route).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingSync {
    /// The commit compared.
    pub revision: String,
    /// Objects a sync would create.
    pub create: usize,
    /// Objects a sync would change.
    pub update: usize,
    /// Objects a sync would prune.
    pub delete: usize,
    /// The objects that differ, in Git order, then those a prune deletes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<PendingObject>,
}

/// One object a sync would change, without its diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingObject {
    /// What a sync would do.
    pub change: Change,
    /// Kind.
    pub kind: String,
    /// Namespace; empty for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl PendingSync {
    /// Whether a sync would change nothing.
    pub fn is_empty(&self) -> bool {
        self.create + self.update + self.delete == 0
    }
}

impl std::fmt::Display for PendingSync {
    /// `2 to create, 1 to update, 0 to prune: create Deployment web/web, ...`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} to create, {} to update, {} to prune",
            self.create, self.update, self.delete
        )?;
        for (i, o) in self.objects.iter().enumerate() {
            let change = match o.change {
                Change::Create => "create",
                Change::Update => "update",
                Change::Delete => "prune",
            };
            let sep = if i == 0 { ": " } else { ", " };
            let ns = if o.namespace.is_empty() {
                String::new()
            } else {
                format!("{}/", o.namespace)
            };
            write!(f, "{sep}{change} {} {ns}{}", o.kind, o.name)?;
        }
        Ok(())
    }
}

impl AppDiff {
    /// The summary of this diff an App's status carries.
    pub fn pending(&self) -> PendingSync {
        let objects = self.objects.iter().map(|o| PendingObject {
            change: o.change,
            kind: o.kind.clone(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
        });
        PendingSync {
            revision: self.revision.clone(),
            create: self.create,
            update: self.update,
            delete: self.delete,
            objects: objects.collect(),
        }
    }
}

/// `GET /api/v1/apps/{name}/diff`: the App's objects in Git, at the revision
/// it follows (its pin, else its source's latest commit), against the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppDiff {
    /// The commit compared.
    pub revision: String,
    /// Objects a sync would create.
    pub create: usize,
    /// Objects a sync would change.
    pub update: usize,
    /// Objects a sync would prune.
    pub delete: usize,
    /// Objects already as in Git.
    pub unchanged: usize,
    /// The objects that differ, in Git order, then those a prune deletes.
    pub objects: Vec<ObjectChange>,
}
