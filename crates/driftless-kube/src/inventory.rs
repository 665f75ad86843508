//! The inventory: the list of objects an App owns in a cluster, kept in a
//! ConfigMap per App so that pruning knows what an earlier sync created even
//! when the objects have since left the desired set.

use std::collections::{BTreeSet, HashSet};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::FIELD_MANAGER;
use crate::object::{ObjectKey, ObjectRef};
use crate::target::{Target, is_not_found};

/// Namespace holding inventories unless the caller names another.
pub const DEFAULT_INVENTORY_NAMESPACE: &str = "driftless-system";
/// Label on an inventory ConfigMap naming its App.
pub const INVENTORY_LABEL: &str = "app.driftless.dev/inventory";
/// Key of the ConfigMap data holding the object list.
const OBJECTS_KEY: &str = "objects";

/// Why an inventory could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The API server refused or failed a read.
    #[error("reading the inventory of app {app} (ConfigMap {namespace}/{name}): {source}")]
    Read {
        /// The App.
        app: String,
        /// The ConfigMap's namespace.
        namespace: String,
        /// The ConfigMap's name.
        name: String,
        /// What went wrong.
        source: kube::Error,
    },
    /// The API server refused or failed a write.
    #[error("writing the inventory of app {app} (ConfigMap {namespace}/{name}): {source}")]
    Write {
        /// The App.
        app: String,
        /// The ConfigMap's namespace.
        namespace: String,
        /// The ConfigMap's name.
        name: String,
        /// What went wrong.
        source: kube::Error,
    },
    /// The ConfigMap exists but does not hold an inventory of this App.
    #[error("ConfigMap {namespace}/{name} is not the inventory of app {app}: {detail}")]
    Corrupt {
        /// The App.
        app: String,
        /// The ConfigMap's namespace.
        namespace: String,
        /// The ConfigMap's name.
        name: String,
        /// What is wrong with it.
        detail: String,
    },
}

/// The objects one App owns, as last recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// The recorded objects, sorted.
    pub objects: BTreeSet<ObjectRef>,
}

impl Inventory {
    /// This inventory with `objects` added. An object listed under another
    /// API version is listed under the new one instead, as the one served now.
    pub fn with(&self, objects: impl IntoIterator<Item = ObjectRef>) -> Self {
        let added: BTreeSet<ObjectRef> = objects.into_iter().collect();
        let keys: HashSet<ObjectKey> = added.iter().map(ObjectRef::key).collect();
        let mut merged: BTreeSet<ObjectRef> = self
            .objects
            .iter()
            .filter(|o| !keys.contains(&o.key()))
            .cloned()
            .collect();
        merged.extend(added);
        Self { objects: merged }
    }
}

/// Where an App's inventory lives.
#[derive(Debug, Clone)]
pub struct InventoryStore {
    app: String,
    namespace: String,
    name: String,
}

impl InventoryStore {
    /// The inventory of `app` in `namespace`.
    pub fn new(app: &str, namespace: &str) -> Self {
        Self {
            app: app.to_owned(),
            namespace: namespace.to_owned(),
            name: config_map_name(app),
        }
    }

    /// Name of the ConfigMap.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads the inventory; an absent ConfigMap is an empty inventory.
    pub async fn load(&self, target: &Target) -> Result<Inventory, InventoryError> {
        let api: Api<ConfigMap> = Api::namespaced(target.client().clone(), &self.namespace);
        let found = match api.get_opt(&self.name).await {
            Ok(found) => found,
            // Without its namespace there is no inventory yet.
            Err(e) if is_not_found(&e) => None,
            Err(source) => return Err(self.read_error(source)),
        };
        let Some(cm) = found else {
            return Ok(Inventory::default());
        };
        let owner = cm
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(INVENTORY_LABEL));
        if owner.map(String::as_str) != Some(self.app.as_str()) {
            return Err(self.corrupt(format!("label {INVENTORY_LABEL} is {owner:?}")));
        }
        let text = cm
            .data
            .as_ref()
            .and_then(|d| d.get(OBJECTS_KEY))
            .map_or("[]", String::as_str);
        let objects: Vec<ObjectRef> = serde_json::from_str(text)
            .map_err(|e| self.corrupt(format!("data.{OBJECTS_KEY}: {e}")))?;
        Ok(Inventory {
            objects: objects.into_iter().collect(),
        })
    }

    /// Writes `inventory`, creating the namespace when needed: the namespace
    /// is written only after the API server said it is missing, so an
    /// ordinary save is one request.
    pub async fn save(&self, target: &Target, inventory: &Inventory) -> Result<(), InventoryError> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let list: Vec<&ObjectRef> = inventory.objects.iter().collect();
        let text = serde_json::to_string(&list).expect("object references always serialize");
        let cm = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": self.name, "namespace": self.namespace,
                "labels": {INVENTORY_LABEL: self.app}},
            "data": {OBJECTS_KEY: text},
        });
        let api: Api<ConfigMap> = Api::namespaced(target.client().clone(), &self.namespace);
        match api.patch(&self.name, &params, &Patch::Apply(&cm)).await {
            Ok(_) => return Ok(()),
            Err(e) if is_not_found(&e) => {}
            Err(source) => return Err(self.write_error(source)),
        }
        let namespaces: Api<Namespace> = Api::all(target.client().clone());
        let ns = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": self.namespace}});
        namespaces
            .patch(&self.namespace, &params, &Patch::Apply(&ns))
            .await
            .map_err(|source| self.write_error(source))?;
        api.patch(&self.name, &params, &Patch::Apply(&cm))
            .await
            .map_err(|source| self.write_error(source))?;
        Ok(())
    }

    /// Removes the inventory (after everything it listed is gone).
    pub async fn remove(&self, target: &Target) -> Result<(), InventoryError> {
        let api: Api<ConfigMap> = Api::namespaced(target.client().clone(), &self.namespace);
        match api.delete(&self.name, &Default::default()).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(source) => Err(self.write_error(source)),
        }
    }

    fn read_error(&self, source: kube::Error) -> InventoryError {
        InventoryError::Read {
            app: self.app.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        }
    }

    fn write_error(&self, source: kube::Error) -> InventoryError {
        InventoryError::Write {
            app: self.app.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        }
    }

    fn corrupt(&self, detail: String) -> InventoryError {
        InventoryError::Corrupt {
            app: self.app.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            detail,
        }
    }
}

/// ConfigMap names are lowercase DNS subdomains; App names are label values
/// that may hold capitals and underscores.
fn config_map_name(app: &str) -> String {
    let cleaned: String = app
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            'a'..='z' | '0'..='9' | '-' | '.' => c,
            _ => '-',
        })
        .collect();
    format!("inventory.{cleaned}")
}

#[cfg(test)]
mod tests {
    use super::{Inventory, config_map_name};
    use crate::object::ObjectRef;

    fn object(version: &str, name: &str) -> ObjectRef {
        ObjectRef {
            group: "autoscaling".into(),
            version: version.into(),
            kind: "HorizontalPodAutoscaler".into(),
            namespace: Some("web".into()),
            name: name.into(),
        }
    }

    #[test]
    fn adding_keeps_the_old_objects_and_the_newest_version() {
        let old = Inventory {
            objects: [object("v1", "a"), object("v1", "b")].into(),
        };
        let merged = old.with([object("v2", "b"), object("v2", "c")]);
        let listed: Vec<String> = merged.objects.iter().map(ToString::to_string).collect();
        assert_eq!(
            listed,
            [
                "autoscaling/v1/HorizontalPodAutoscaler/web/a",
                "autoscaling/v2/HorizontalPodAutoscaler/web/b",
                "autoscaling/v2/HorizontalPodAutoscaler/web/c",
            ]
        );
        assert_eq!(merged.with([object("v2", "c")]), merged, "nothing new");
    }

    #[test]
    fn inventory_names_are_dns_subdomains() {
        assert_eq!(config_map_name("web-prod"), "inventory.web-prod");
        assert_eq!(config_map_name("Web_Prod"), "inventory.web-prod");
    }
}
