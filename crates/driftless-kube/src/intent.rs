//! The applied intent of one object: the manifest as driftless sends it
//! (owner label, defaulted namespace, digest annotation), and the comparison
//! of that intent with a live object that decides whether a write is needed.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::object::{ObjectError, ObjectRef, set_owner};
use crate::sync_options::SyncOptions;
use crate::target::Resource;

/// Annotation holding the digest of the intent last applied. A live object
/// whose digest matches and whose fields still hold the intended values needs
/// no write; a changed digest means fields may have left the manifest, which
/// only a new apply removes.
pub const DIGEST_ANNOTATION: &str = "driftless.dev/applied-digest";

/// One object ready to be sent.
#[derive(Debug, Clone)]
pub struct Intent {
    /// Identity after namespace defaulting.
    pub object: ObjectRef,
    /// The manifest to apply, digest annotation included.
    pub manifest: Value,
    /// The digest stored in [`DIGEST_ANNOTATION`].
    pub digest: String,
    /// The API resource serving the kind.
    pub resource: Resource,
    /// How the object is written, pruned and deleted.
    pub options: SyncOptions,
}

impl Intent {
    /// Builds the intent of `manifest` for `app`. Namespaced objects without
    /// a namespace get `namespace`; cluster-scoped ones are left as written.
    pub fn new(
        manifest: &Value,
        app: &str,
        namespace: &str,
        resource: Resource,
    ) -> Result<Self, ObjectError> {
        let options = SyncOptions::of(manifest)?;
        let mut manifest = manifest.clone();
        set_owner(&mut manifest, app)?;
        let mut object = ObjectRef::from_object(&manifest)?;
        if resource.namespaced && object.namespace.is_none() {
            manifest["metadata"]["namespace"] = Value::String(namespace.to_owned());
            object.namespace = Some(namespace.to_owned());
        }
        let metadata = manifest["metadata"]
            .as_object_mut()
            .expect("set_owner leaves metadata a mapping");
        if let Some(Value::Object(annotations)) = metadata.get_mut("annotations") {
            // A digest copied from a live object must not feed the new digest.
            annotations.shift_remove(DIGEST_ANNOTATION);
            if annotations.is_empty() {
                metadata.shift_remove("annotations");
            }
        }
        let digest = digest(&manifest);
        let metadata = manifest["metadata"]
            .as_object_mut()
            .expect("set_owner leaves metadata a mapping");
        let annotations = metadata
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if !annotations.is_object() {
            return Err(ObjectError::NotAMapping {
                field: "metadata.annotations",
                context: object.to_string(),
            });
        }
        annotations[DIGEST_ANNOTATION] = Value::String(digest.clone());
        Ok(Self {
            object,
            manifest,
            digest,
            resource,
            options,
        })
    }

    /// The intent with the fields at `ignored` left to other writers: its
    /// digest leaves them out, so their changes never call for a write,
    /// and over an existing object (`live`) it sends the live values.
    pub(crate) fn ignoring(mut self, ignored: &[Vec<String>], live: Option<&Value>) -> Self {
        if ignored.is_empty() {
            return self;
        }
        let mut bare = self.manifest.clone();
        if let Some(Value::Object(annotations)) = bare.pointer_mut("/metadata/annotations") {
            annotations.shift_remove(DIGEST_ANNOTATION);
        }
        let mut stripped = bare.clone();
        crate::ignore::strip(&mut stripped, ignored);
        self.digest = digest(&stripped);
        if let Some(live) = live {
            crate::ignore::take_live(&mut bare, live, ignored);
        }
        if let Some(Value::Object(annotations)) = bare.pointer_mut("/metadata/annotations") {
            annotations.insert(
                DIGEST_ANNOTATION.to_owned(),
                Value::String(self.digest.clone()),
            );
        }
        self.manifest = bare;
        self
    }

    /// Whether `live` already is what applying this intent would make it.
    pub fn satisfied_by(&self, live: &Value) -> bool {
        crate::object::annotation(live, DIGEST_ANNOTATION) == Some(self.digest.as_str())
            && drifted_fields(&self.manifest, live).is_empty()
    }
}

/// Hex SHA-256 of the compact JSON of `manifest`.
pub fn digest(manifest: &Value) -> String {
    let bytes = serde_json::to_vec(manifest).expect("JSON values always serialize");
    let hash = Sha256::digest(&bytes);
    hash.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Dotted paths of the fields `desired` sets that `live` does not hold with
/// the same value. Fields only `live` has (defaults, other managers' fields,
/// status) do not count. A list counts as one field: it drifts when its
/// length or any element differs.
pub fn drifted_fields(desired: &Value, live: &Value) -> Vec<String> {
    drifted_paths(desired, live)
        .iter()
        .map(|p| p.join("."))
        .collect()
}

/// [`drifted_fields`] as path segments (label keys may hold dots).
pub fn drifted_paths(desired: &Value, live: &Value) -> Vec<Vec<String>> {
    let folded = fold_string_data(desired);
    let desired = folded.as_ref().unwrap_or(desired);
    let mut out = Vec::new();
    if let (Some(d), Some(l)) = (desired.as_object(), live.as_object()) {
        for (key, value) in d {
            if key == "status" {
                continue;
            }
            compare(value, l.get(key), &mut vec![key.clone()], &mut out);
        }
    } else if !covers(desired, live, None, None) {
        out.push(Vec::new());
    }
    out
}

/// A Secret's `stringData` as the API server stores it: base64 in `data`,
/// overriding `data` entries of the same key. `None` when there is nothing to
/// fold, so a Secret declared with `stringData` does not look drifted forever.
fn fold_string_data(desired: &Value) -> Option<Value> {
    use base64::Engine as _;
    if desired.get("kind")?.as_str()? != "Secret" || desired.get("apiVersion")?.as_str()? != "v1" {
        return None;
    }
    let string_data = desired.get("stringData")?.as_object()?;
    let mut folded = desired.clone();
    let object = folded.as_object_mut()?;
    let mut data = match object.shift_remove("data") {
        Some(Value::Object(data)) => data,
        _ => Map::new(),
    };
    for (key, value) in string_data {
        let text = value.as_str()?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(text);
        data.insert(key.clone(), Value::String(encoded));
    }
    object.shift_remove("stringData");
    object.insert("data".to_owned(), Value::Object(data));
    Some(folded)
}

fn compare(
    desired: &Value,
    live: Option<&Value>,
    path: &mut Vec<String>,
    out: &mut Vec<Vec<String>>,
) {
    match (desired, live) {
        (Value::Null, _) => {}
        (Value::Object(d), Some(Value::Object(l))) => {
            for (key, value) in d {
                path.push(key.clone());
                compare(value, l.get(key), path, out);
                path.pop();
            }
        }
        // The API server leaves out empty lists and maps: absent is the same.
        (d, None) if is_empty_collection(d) => {}
        (_, None) => out.push(path.clone()),
        (d, Some(l)) => {
            let key = path.last().map(String::as_str);
            let parent = path.len().checked_sub(2).map(|i| path[i].as_str());
            if !covers(d, l, parent, key) {
                out.push(path.clone());
            }
        }
    }
}

/// An empty list or map, which the API server does not store.
fn is_empty_collection(value: &Value) -> bool {
    match value {
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// Whether `live` holds everything `desired` says (objects may have more keys).
/// Whether `live` holds every value `desired` sets. `key` is the field
/// `desired` sits in and `parent` the field of the map around it, so that
/// quantities (which the API server rewrites canonically) compare by value.
fn covers(desired: &Value, live: &Value, parent: Option<&str>, key: Option<&str>) -> bool {
    match (desired, live) {
        (Value::Null, _) => true,
        (Value::Object(d), Value::Object(l)) => d.iter().all(|(k, v)| match l.get(k) {
            Some(lv) => covers(v, lv, key, Some(k)),
            None => v.is_null() || is_empty_collection(v),
        }),
        (Value::Array(d), Value::Array(l)) => {
            d.len() == l.len() && d.iter().zip(l).all(|(dv, lv)| covers(dv, lv, parent, key))
        }
        (Value::Number(d), Value::Number(l)) if d == l || d.as_f64() == l.as_f64() => true,
        (d, l) if d == l => true,
        (d, l) => {
            crate::quantity::is_quantity_field(parent, key) && crate::quantity::same_quantity(d, l)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ApiResource;
    use serde_json::json;

    fn config_maps() -> Resource {
        Resource {
            api: ApiResource {
                group: String::new(),
                version: "v1".into(),
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                plural: "configmaps".into(),
            },
            namespaced: true,
        }
    }

    #[test]
    fn intent_defaults_namespace_and_stamps_owner_and_digest() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"k": "v"}});
        let intent = Intent::new(&cm, "web", "prod", config_maps()).expect("valid");
        assert_eq!(intent.object.namespace.as_deref(), Some("prod"));
        assert_eq!(
            intent.manifest["metadata"]["labels"][crate::OWNER_LABEL],
            "web"
        );
        assert_eq!(
            intent.manifest["metadata"]["annotations"][DIGEST_ANNOTATION],
            intent.digest.as_str()
        );
        let again = Intent::new(&intent.manifest, "web", "prod", config_maps()).expect("valid");
        assert_eq!(again.digest, intent.digest, "a stamped digest is ignored");
        let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"k": "w"}});
        let changed = Intent::new(&other, "web", "prod", config_maps()).expect("valid");
        assert_ne!(changed.digest, intent.digest);
    }

    #[test]
    fn resource_quantities_in_canonical_form_are_not_drift() {
        let container = |cpu: Value, memory: Value| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"template": {"spec": {"containers": [{"name": "web",
                    "resources": {"limits": {"cpu": cpu, "memory": memory}}}]}}}})
        };
        let desired = container(json!(1), json!("1.5Gi"));
        let live = container(json!("1"), json!("1536Mi"));
        assert!(drifted_fields(&desired, &live).is_empty());
        let edited = container(json!("2"), json!("1536Mi"));
        assert_eq!(
            drifted_fields(&desired, &edited),
            ["spec.template.spec.containers"]
        );
        let labelled = |v: Value| json!({"metadata": {"labels": {"version": v}}});
        assert_eq!(
            drifted_fields(&labelled(json!("1.0")), &labelled(json!("1"))),
            ["metadata.labels.version"]
        );
    }

    #[test]
    fn secret_string_data_matches_its_stored_base64_form() {
        let desired = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
            "data": {"user": "YWRh", "password": "b2xk"}, "stringData": {"password": "hunter2"}});
        let live = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
            "data": {"user": "YWRh", "password": "aHVudGVyMg=="}, "type": "Opaque"});
        assert!(drifted_fields(&desired, &live).is_empty());
        let changed = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
            "data": {"user": "YWRh", "password": "b3RoZXI="}});
        assert_eq!(drifted_fields(&desired, &changed), ["data.password"]);
    }

    #[test]
    fn empty_lists_and_maps_the_server_leaves_out_are_not_drift() {
        let desired = json!({"spec": {"names": {"kind": "Cluster", "shortNames": []},
            "versions": [{"name": "v1", "subresources": {}}]}});
        let live = json!({"spec": {"names": {"kind": "Cluster"},
            "versions": [{"name": "v1"}]}});
        assert!(drifted_fields(&desired, &live).is_empty());
        let emptied = json!({"spec": {"names": {"kind": "Cluster", "shortNames": ["c"]}}});
        let desired = json!({"spec": {"names": {"shortNames": []}}});
        assert_eq!(
            drifted_fields(&desired, &emptied),
            ["spec.names.shortNames"]
        );
    }

    #[test]
    fn drift_ignores_server_additions_and_names_changed_fields() {
        let desired = json!({"metadata": {"name": "d", "labels": {"a": "1"}},
            "spec": {"replicas": 2, "template": {"containers": [{"name": "c", "image": "x"}]}}});
        let live = json!({"metadata": {"name": "d", "uid": "u", "labels": {"a": "1", "b": "2"}},
            "spec": {"replicas": 2.0, "progressDeadlineSeconds": 600,
                "template": {"containers": [{"name": "c", "image": "x", "imagePullPolicy": "Always"}]}},
            "status": {"replicas": 2}});
        assert!(drifted_fields(&desired, &live).is_empty());
        let edited = json!({"metadata": {"name": "d", "labels": {}},
            "spec": {"replicas": 3, "template": {"containers": []}}});
        assert_eq!(
            drifted_fields(&desired, &edited),
            [
                "metadata.labels.a",
                "spec.replicas",
                "spec.template.containers"
            ]
        );
    }
}
