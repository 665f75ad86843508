//! The objects the cluster creates for an App's workloads, found through
//! their owner references: a Deployment's ReplicaSets and their Pods, a
//! StatefulSet's or DaemonSet's Pods, a CronJob's Jobs and their Pods.
//! They are read, never written, with the App's identity.

use std::collections::{BTreeSet, HashMap};

use kube::api::ListParams;
use serde_json::Value;

use crate::apply::{ApplyError, ApplyOptions, api_error, tenant};
use driftless_api::inspect::{OwnedObject, OwnedTree};

use crate::health::assess;
use crate::object::ObjectRef;
use crate::target::{Target, typed};

/// Owned objects reported per App at most; a Deployment scaled to
/// hundreds of Pods still answers quickly.
pub const TREE_LIMIT: usize = 500;

/// Objects asked for per list request.
const LIST_PAGE: u32 = 500;

/// Objects read from the cluster per call at most: a namespace with many
/// thousands of Pods costs a few list pages, and the answer says it was cut.
const READ_LIMIT: usize = 2000;

/// Levels below an App object: CronJob -> Job -> Pod is the deepest chain.
const DEPTH: usize = 3;

/// The kinds listed to find owned objects, and which owner kinds need them.
const CHILD_KINDS: [(&str, &str, &str, &[&str]); 3] = [
    ("apps", "v1", "ReplicaSet", &["Deployment"]),
    ("batch", "v1", "Job", &["CronJob"]),
    (
        "",
        "v1",
        "Pod",
        &[
            "Deployment",
            "ReplicaSet",
            "StatefulSet",
            "DaemonSet",
            "Job",
            "CronJob",
        ],
    ),
];

/// The objects owned, directly or through other owned objects, by `roots`
/// (an App's objects). Only the namespaces and kinds that can hold such
/// objects are listed, with the App's identity (`opts.impersonate`).
pub async fn owned_tree(
    target: &Target,
    opts: &ApplyOptions,
    roots: &[ObjectRef],
) -> Result<OwnedTree, ApplyError> {
    owned_tree_paged(target, opts, roots, LIST_PAGE, READ_LIMIT).await
}

/// [`owned_tree`] listing `page` objects per request and reading at most
/// `read_limit` (after the page that reaches it); for tests of the paging.
#[doc(hidden)]
pub async fn owned_tree_paged(
    target: &Target,
    opts: &ApplyOptions,
    roots: &[ObjectRef],
    page: u32,
    read_limit: usize,
) -> Result<OwnedTree, ApplyError> {
    let reader = tenant(target, opts)?;
    let mut listed: HashMap<String, Vec<Value>> = HashMap::new();
    // Objects read so far, and whether a namespace held more than were read.
    let (mut read, mut cut) = (0, false);
    let namespaces: BTreeSet<&str> = roots
        .iter()
        .filter_map(|r| r.namespace.as_deref())
        .collect();
    for namespace in namespaces {
        let kinds_here: BTreeSet<&str> = roots
            .iter()
            .filter(|r| r.namespace.as_deref() == Some(namespace))
            .map(|r| r.kind.as_str())
            .collect();
        for (group, version, kind, owners) in CHILD_KINDS {
            if !owners.iter().any(|o| kinds_here.contains(o)) {
                continue;
            }
            let probe = ObjectRef {
                group: group.to_owned(),
                version: version.to_owned(),
                kind: kind.to_owned(),
                namespace: Some(namespace.to_owned()),
                name: String::new(),
            };
            let Some(resource) = reader.try_resolve(&probe).await? else {
                continue;
            };
            let api = reader.api(&resource, Some(namespace));
            let what = format!("{kind}s in namespace {namespace}");
            let mut params = ListParams::default().limit(page);
            loop {
                let list = api
                    .list(&params)
                    .await
                    .map_err(|e| api_error(&reader, &what, "list", e))?;
                read += list.items.len();
                let items = list.items.into_iter().map(|i| typed(i, &resource));
                listed
                    .entry(namespace.to_owned())
                    .or_default()
                    .extend(items);
                match list.metadata.continue_ {
                    Some(next) if !next.is_empty() => {
                        if read >= read_limit {
                            cut = true;
                            break;
                        }
                        params = params.continue_token(&next);
                    }
                    _ => break,
                }
            }
        }
    }
    let mut tree = arrange(roots, &listed);
    tree.truncated |= cut;
    Ok(tree)
}

/// A reference from an object to its owner.
struct OwnerRef<'a> {
    kind: &'a str,
    name: &'a str,
    uid: &'a str,
}

fn owner_refs(obj: &Value) -> impl Iterator<Item = OwnerRef<'_>> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| OwnerRef {
            kind: r.get("kind").and_then(Value::as_str).unwrap_or_default(),
            name: r.get("name").and_then(Value::as_str).unwrap_or_default(),
            uid: r.get("uid").and_then(Value::as_str).unwrap_or_default(),
        })
}

fn meta<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Builds the tree from the listed objects of each namespace: children of
/// the roots are matched by owner kind and name, deeper ones by owner uid.
fn arrange(roots: &[ObjectRef], listed: &HashMap<String, Vec<Value>>) -> OwnedTree {
    let mut tree = OwnedTree::default();
    for root in roots {
        let Some(namespace) = root.namespace.as_deref() else {
            continue;
        };
        let Some(objects) = listed.get(namespace) else {
            continue;
        };
        let children: Vec<&Value> = objects
            .iter()
            .filter(|o| owner_refs(o).any(|r| r.kind == root.kind && r.name == root.name))
            .collect();
        let owner = format!("{}/{}", root.kind, root.name);
        descend(&mut tree, objects, children, namespace, &owner, 1);
    }
    tree
}

fn descend(
    tree: &mut OwnedTree,
    objects: &[Value],
    mut children: Vec<&Value>,
    namespace: &str,
    owner: &str,
    depth: usize,
) {
    children.sort_by(|a, b| {
        let key = |o: &Value| {
            (
                o["kind"].as_str().unwrap_or_default().to_owned(),
                meta(o, "name").to_owned(),
            )
        };
        key(a).cmp(&key(b))
    });
    for child in children {
        if tree.objects.len() >= TREE_LIMIT {
            tree.truncated = true;
            return;
        }
        let kind = child["kind"].as_str().unwrap_or_default();
        let name = meta(child, "name");
        let health = assess(child);
        tree.objects.push(OwnedObject {
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            owner: owner.to_owned(),
            depth,
            health: health.status,
            message: health.message,
        });
        let uid = meta(child, "uid");
        if depth >= DEPTH || uid.is_empty() {
            continue;
        }
        let grandchildren: Vec<&Value> = objects
            .iter()
            .filter(|o| owner_refs(o).any(|r| r.uid == uid))
            .collect();
        let me = format!("{kind}/{name}");
        descend(tree, objects, grandchildren, namespace, &me, depth + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn owned(kind: &str, name: &str, uid: &str, owner: (&str, &str, &str)) -> Value {
        json!({"apiVersion": "v1", "kind": kind,
            "metadata": {"name": name, "namespace": "shop", "uid": uid,
                "ownerReferences": [{"kind": owner.0, "name": owner.1, "uid": owner.2}]},
            "status": {"phase": "Running"}})
    }

    fn root(kind: &str, name: &str) -> ObjectRef {
        ObjectRef {
            group: "apps".into(),
            version: "v1".into(),
            kind: kind.into(),
            namespace: Some("shop".into()),
            name: name.into(),
        }
    }

    #[test]
    fn pods_sit_beneath_their_replica_set_beneath_the_deployment() {
        let objects = vec![
            owned("Pod", "web-7c-b", "p2", ("ReplicaSet", "web-7c", "rs1")),
            owned("ReplicaSet", "web-7c", "rs1", ("Deployment", "web", "d1")),
            owned("Pod", "web-7c-a", "p1", ("ReplicaSet", "web-7c", "rs1")),
            owned("Pod", "other-x", "p3", ("ReplicaSet", "other-1", "rs9")),
            owned("ReplicaSet", "api-5", "rs2", ("Deployment", "api", "d2")),
        ];
        let listed = HashMap::from([("shop".to_owned(), objects)]);
        let tree = arrange(&[root("Deployment", "web")], &listed);
        let rows: Vec<(usize, &str, &str)> = tree
            .objects
            .iter()
            .map(|o| (o.depth, o.name.as_str(), o.owner.as_str()))
            .collect();
        assert_eq!(
            rows,
            [
                (1, "web-7c", "Deployment/web"),
                (2, "web-7c-a", "ReplicaSet/web-7c"),
                (2, "web-7c-b", "ReplicaSet/web-7c"),
            ]
        );
        assert!(!tree.truncated);
    }

    #[test]
    fn a_huge_tree_is_cut_at_the_limit_and_says_so() {
        let mut objects = vec![owned(
            "ReplicaSet",
            "big-1",
            "rs",
            ("Deployment", "big", "d"),
        )];
        for i in 0..TREE_LIMIT + 20 {
            objects.push(owned(
                "Pod",
                &format!("big-1-{i:04}"),
                &format!("p{i}"),
                ("ReplicaSet", "big-1", "rs"),
            ));
        }
        let listed = HashMap::from([("shop".to_owned(), objects)]);
        let tree = arrange(&[root("Deployment", "big")], &listed);
        assert_eq!(tree.objects.len(), TREE_LIMIT);
        assert!(tree.truncated);
    }

    #[test]
    fn an_object_of_another_namespace_with_the_same_owner_name_is_not_taken() {
        let listed = HashMap::from([(
            "other".to_owned(),
            vec![owned(
                "ReplicaSet",
                "web-1",
                "rs",
                ("Deployment", "web", "d"),
            )],
        )]);
        let tree = arrange(&[root("Deployment", "web")], &listed);
        assert!(tree.objects.is_empty());
    }
}
