//! Transformer configurations (`configurations:`): extra field specs that
//! extend the built-in tables for custom resource kinds.

use serde_json::Value;

use crate::Error;
use crate::fieldspec::FieldSpec;
use crate::kustomization::Kustomization;
use crate::loader::Loader;
use crate::resource::Gvk;

/// Field specs added by `configurations:` files (and inherited from bases).
#[derive(Clone, Debug, Default)]
pub struct TransformerConfig {
    /// Extra name references: target kind and the referring fields.
    pub name_reference: Vec<(Gvk, Vec<FieldSpec>)>,
    /// Extra label fields for `commonLabels`.
    pub common_labels: Vec<FieldSpec>,
    /// Extra label fields for `labels`.
    pub labels: Vec<FieldSpec>,
    /// Extra annotation fields.
    pub common_annotations: Vec<FieldSpec>,
    /// Extra `$(VAR)` fields.
    pub var_reference: Vec<FieldSpec>,
    /// Extra image fields.
    pub images: Vec<FieldSpec>,
    /// Extra replica fields.
    pub replicas: Vec<FieldSpec>,
    /// Name fields that take `namePrefix` (replacing the default when set).
    pub name_prefix: Vec<FieldSpec>,
    /// Name fields that take `nameSuffix` (replacing the default when set).
    pub name_suffix: Vec<FieldSpec>,
}

impl TransformerConfig {
    /// Adds everything from `other`.
    pub fn merge(&mut self, other: &TransformerConfig) {
        self.name_reference
            .extend(other.name_reference.iter().cloned());
        self.common_labels
            .extend(other.common_labels.iter().cloned());
        self.labels.extend(other.labels.iter().cloned());
        self.common_annotations
            .extend(other.common_annotations.iter().cloned());
        self.var_reference
            .extend(other.var_reference.iter().cloned());
        self.images.extend(other.images.iter().cloned());
        self.replicas.extend(other.replicas.iter().cloned());
        self.name_prefix.extend(other.name_prefix.iter().cloned());
        self.name_suffix.extend(other.name_suffix.iter().cloned());
    }

    /// Reads the `configurations:` files of a kustomization.
    pub fn load(loader: &Loader, k: &Kustomization) -> Result<TransformerConfig, Error> {
        let mut cfg = TransformerConfig::default();
        for entry in k.strings("configurations")? {
            let (path, text) = loader.read(&entry)?;
            for doc in crate::yaml::parse_documents(&text, &path.display().to_string())? {
                cfg.read_doc(&doc);
            }
        }
        Ok(cfg)
    }

    fn read_doc(&mut self, doc: &Value) {
        let specs = |field: &str| -> Vec<FieldSpec> {
            doc.get(field)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(FieldSpec::from_value).collect())
                .unwrap_or_default()
        };
        self.common_labels.extend(specs("commonLabels"));
        self.labels.extend(specs("labels"));
        self.common_annotations.extend(specs("commonAnnotations"));
        self.var_reference.extend(specs("varReference"));
        self.images.extend(specs("images"));
        self.replicas.extend(specs("replicas"));
        self.name_prefix.extend(specs("namePrefix"));
        self.name_suffix.extend(specs("nameSuffix"));
        for entry in doc
            .get("nameReference")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let s = |k: &str| {
                entry
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let target = Gvk {
                group: s("group"),
                version: s("version"),
                kind: s("kind"),
            };
            let referrers: Vec<FieldSpec> = entry
                .get("fieldSpecs")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(FieldSpec::from_value).collect())
                .unwrap_or_default();
            self.name_reference.push((target, referrers));
        }
    }
}
