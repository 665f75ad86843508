//! The engine's config made from the custom resources: every valid object in,
//! every invalid one out with the reasons, never all-or-nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use driftless_api::{Config, Document, Naming, Problems};
use serde_json::{Value, json};

use crate::objects::{CrKind, CrObject};

/// Identifies a custom resource: kind, namespace, name.
pub type ObjectKey = (CrKind, String, String);

/// The key of `object`.
pub fn key_of(object: &CrObject) -> ObjectKey {
    (object.kind, object.namespace(), object.name())
}

/// What the custom resources make.
#[derive(Debug)]
pub struct Desired {
    /// Every valid object not being deleted.
    pub config: Config,
    /// Objects left out, with what is wrong with each (`field: message`).
    pub rejected: BTreeMap<ObjectKey, Vec<String>>,
}

/// Builds the config from `objects`; an object with a problem is left out (and
/// the objects that refer to it, which then have a problem of their own).
pub fn build(objects: &[CrObject], cross_namespace: bool) -> Desired {
    let naming = Naming::Namespaced { cross_namespace };
    let mut docs: Vec<(ObjectKey, Document)> = objects
        .iter()
        .filter(|o| !o.deleting())
        .map(|o| (key_of(o), document(o)))
        .collect();
    let mut rejected: BTreeMap<ObjectKey, Vec<String>> = BTreeMap::new();
    // Each round leaves out at least one object, so this ends.
    loop {
        let attempt = docs.iter().map(|(_, d)| d.clone());
        let problems = match Config::from_named_documents(attempt, naming) {
            Ok(config) => return Desired { config, rejected },
            Err(Problems(problems)) => problems,
        };
        let by_file: BTreeMap<&PathBuf, &ObjectKey> =
            docs.iter().map(|(k, d)| (&d.file, k)).collect();
        let mut out = BTreeSet::new();
        for problem in problems {
            let Some(key) = by_file.get(&problem.file) else {
                continue;
            };
            let what = match &problem.field {
                Some(field) => format!("{field}: {}", problem.message),
                None => problem.message.clone(),
            };
            rejected.entry((*key).clone()).or_default().push(what);
            out.insert((*key).clone());
        }
        if out.is_empty() {
            // Problems that name no object: nothing can be kept apart.
            for (key, _) in &docs {
                let why = "the config made of the custom resources is invalid".to_owned();
                rejected.entry(key.clone()).or_default().push(why);
            }
            docs.clear();
        } else {
            docs.retain(|(k, _)| !out.contains(k));
        }
    }
}

/// A hash of what the config is made of: each object's identity, generation
/// (which changes with the spec), labels, annotations and deletion.
pub fn fingerprint(objects: &[CrObject]) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    // The watch caches list objects in no fixed order.
    let mut each: Vec<u64> = objects
        .iter()
        .map(|object| {
            let mut hasher = DefaultHasher::new();
            let meta = &object.object.metadata;
            object.kind.hash(&mut hasher);
            (&meta.namespace, &meta.name, &meta.uid, meta.generation).hash(&mut hasher);
            (&meta.labels, &meta.annotations).hash(&mut hasher);
            meta.deletion_timestamp.is_some().hash(&mut hasher);
            hasher.finish()
        })
        .collect();
    each.sort_unstable();
    let mut hasher = DefaultHasher::new();
    each.hash(&mut hasher);
    hasher.finish()
}

/// The config document of a custom resource: its envelope and spec, named by
/// its path in the API so problems point at it.
fn document(object: &CrObject) -> Document {
    let meta = &object.object.metadata;
    let spec = object
        .object
        .data
        .get("spec")
        .cloned()
        .unwrap_or(Value::Null);
    let value = json!({
        "apiVersion": driftless_api::API_VERSION,
        "kind": object.kind.kind(),
        "metadata": {
            "name": meta.name,
            "namespace": meta.namespace,
            "labels": meta.labels.clone().unwrap_or_default(),
            "annotations": meta.annotations.clone().unwrap_or_default(),
            "generation": meta.generation,
        },
        "spec": spec,
    });
    Document {
        file: PathBuf::from(format!(
            "{}/{}/{}",
            object.namespace(),
            object.kind.plural(),
            object.name()
        )),
        index: 1,
        value,
    }
}

/// The decoded, qualified App of a custom resource (for deleting it).
pub fn app_of(object: &CrObject, cross_namespace: bool) -> Result<driftless_api::App, String> {
    match driftless_api::decode_namespaced(document(object).value, cross_namespace) {
        Ok(driftless_api::AnyObject::App(app)) => Ok(*app),
        Ok(other) => Err(format!("{} is not an App", other.key())),
        Err(problems) => Err(problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect::<Vec<_>>()
            .join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kube::api::DynamicObject;

    use super::*;

    fn object(kind: CrKind, ns: &str, name: &str, spec: Value) -> CrObject {
        let mut o = DynamicObject::new(name, &kind.resource()).within(ns);
        o.data = json!({ "spec": spec });
        o.metadata.generation = Some(3);
        CrObject {
            kind,
            object: Arc::new(o),
        }
    }

    fn source(ns: &str) -> CrObject {
        let spec = json!({"url": "https://git.example.com/p.git", "ref": {"branch": "main"}});
        object(CrKind::GitSource, ns, "platform", spec)
    }

    fn app(ns: &str, name: &str, source: &str) -> CrObject {
        let spec = json!({"sourceRef": {"name": source}, "path": "apps/web"});
        object(CrKind::App, ns, name, spec)
    }

    #[test]
    fn invalid_objects_are_left_out_with_their_reasons() {
        let mut broken = app("team-a", "broken", "platform");
        Arc::make_mut(&mut broken.object).data["spec"]["interval"] = json!("soon");
        let objects = vec![
            source("team-a"),
            app("team-a", "web", "platform"),
            broken,
            app("team-b", "orphan", "platform"),
            app("team-a", "cross", "team-b/platform"),
        ];
        let desired = build(&objects, false);
        let apps: Vec<&str> = desired.config.apps().map(|a| a.name()).collect();
        assert_eq!(apps, ["team-a.web"]);
        let app = desired.config.app("team-a.web").expect("kept");
        assert_eq!(app.metadata.generation, Some(3));
        let reasons = |ns: &str, name: &str| {
            desired.rejected[&(CrKind::App, ns.to_owned(), name.to_owned())].join("\n")
        };
        assert!(reasons("team-a", "broken").contains("spec.interval"));
        assert!(reasons("team-b", "orphan").contains("spec.sourceRef.name"));
        assert!(reasons("team-a", "cross").contains("--allow-cross-namespace-refs"));
    }

    #[test]
    fn the_fingerprint_follows_specs_and_labels_not_order_or_status() {
        let objects = vec![source("team-a"), app("team-a", "web", "platform")];
        let reversed: Vec<CrObject> = objects.iter().rev().cloned().collect();
        assert_eq!(fingerprint(&objects), fingerprint(&reversed));
        let mut with_status = objects.clone();
        Arc::make_mut(&mut with_status[1].object).data["status"] = json!({"sync": "Synced"});
        assert_eq!(fingerprint(&objects), fingerprint(&with_status));
        let mut edited = objects.clone();
        Arc::make_mut(&mut edited[1].object).metadata.generation = Some(4);
        assert_ne!(fingerprint(&objects), fingerprint(&edited));
        let mut labelled = objects.clone();
        let labels = [("sharding.driftless.dev/key".to_owned(), "a".to_owned())];
        Arc::make_mut(&mut labelled[0].object).metadata.labels = Some(labels.into());
        assert_ne!(fingerprint(&objects), fingerprint(&labelled));
    }

    #[test]
    fn objects_being_deleted_are_left_out() {
        let mut web = app("team-a", "web", "platform");
        Arc::make_mut(&mut web.object).metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        let desired = build(&[source("team-a"), web], false);
        assert_eq!(desired.config.apps().count(), 0);
        assert!(desired.rejected.is_empty());
        assert_eq!(desired.config.git_sources().count(), 1);
    }
}
