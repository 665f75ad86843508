//! Transformer configurations (`configurations:`): extra field specs that
//! extend the built-in tables for custom resource kinds.

use serde_json::Value;

use crate::Error;
use crate::fieldspec::FieldSpec;
use crate::kustomization::Kustomization;
use crate::loader::Loader;
use crate::resource::Gvk;

/// The schema strategic merge consults: the built-in one, or a custom one
/// (`openapi.path`) that describes extra kinds.
#[derive(Clone, Debug, Default)]
pub enum Schema {
    /// Nothing chosen at this level or below: the built-in schema.
    #[default]
    Inherited,
    /// `openapi.version`: the built-in schema, chosen explicitly.
    Builtin,
    /// `openapi.path` of a base or component: kinds the custom schema
    /// declares, plus the built-in ones (kustomize has parsed its built-in
    /// schema by then and adds the custom definitions to it).
    Custom(Vec<crate::openapi::CustomKind>),
    /// `openapi.path` of the top kustomization: the custom schema alone, for
    /// the whole build. Built-in kinds it does not declare have no schema,
    /// and only the lists it marks merge.
    CustomAlone(Vec<crate::openapi::CustomKind>),
}

impl Schema {
    /// True when lists of `gvk` resources merge by the built-in keys.
    pub fn knows(&self, gvk: &Gvk) -> bool {
        if matches!(self, Schema::CustomAlone(_)) {
            return false;
        }
        let api_version = if gvk.group.is_empty() {
            gvk.version.clone()
        } else {
            format!("{}/{}", gvk.group, gvk.version)
        };
        if crate::smp::has_builtin_schema(&api_version, &gvk.kind) {
            return true;
        }
        match self {
            Schema::Custom(kinds) => kinds.iter().any(|k| k.gvk == *gvk),
            _ => false,
        }
    }

    /// The schema `k`'s `openapi:` chooses (`Inherited` without one); a
    /// custom schema adds to the built-in one, as below the top.
    pub fn load(loader: &Loader, k: &Kustomization) -> Result<Schema, Error> {
        let Some(openapi) = k.fields.get("openapi") else {
            return Ok(Schema::Inherited);
        };
        let Some(path) = openapi.get("path").and_then(Value::as_str) else {
            return Ok(Schema::Builtin);
        };
        let (file, text) = loader.read("openapi", path)?;
        let docs = crate::yaml::parse_documents(&text, &file.display().to_string())?;
        Ok(docs
            .first()
            .map(|doc| Schema::Custom(crate::openapi::kinds(doc)))
            .unwrap_or(Schema::Builtin))
    }

    /// The schema the top kustomization fixes for the whole build, if it
    /// names one: kustomize sets it before building anything and ignores
    /// what bases and components say.
    pub fn top(loader: &Loader, k: &Kustomization) -> Result<Option<Schema>, Error> {
        Ok(match Schema::load(loader, k)? {
            Schema::Inherited => None,
            Schema::Custom(kinds) => Some(Schema::CustomAlone(kinds)),
            fixed => Some(fixed),
        })
    }

    /// How the custom schema says `gvk`'s list fields merge, if it declares
    /// the kind.
    pub fn custom_lists(&self, gvk: &Gvk) -> Option<&crate::openapi::CustomLists> {
        match self {
            Schema::Custom(kinds) | Schema::CustomAlone(kinds) => {
                kinds.iter().find(|k| k.gvk == *gvk).map(|k| &k.lists)
            }
            _ => None,
        }
    }
}

/// Field specs added by `configurations:` files (and inherited from bases).
#[derive(Clone, Debug, Default)]
pub struct TransformerConfig {
    /// Extra name references: target kind and the referring fields.
    pub name_reference: Vec<(Gvk, Vec<FieldSpec>)>,
    /// Extra label fields for `commonLabels` (and `labels` with selectors).
    pub common_labels: Vec<FieldSpec>,
    /// Extra namespace fields for `namespace:`.
    pub namespace: Vec<FieldSpec>,
    /// Extra label fields for `labels`.
    pub labels: Vec<FieldSpec>,
    /// Extra pod-template label fields for `labels` with `includeTemplates`.
    pub template_labels: Vec<FieldSpec>,
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
    /// The schema in effect for strategic merge patches.
    pub schema: Schema,
}

impl TransformerConfig {
    /// Adds everything from `other`.
    pub fn merge(&mut self, other: &TransformerConfig) {
        self.name_reference
            .extend(other.name_reference.iter().cloned());
        self.common_labels
            .extend(other.common_labels.iter().cloned());
        self.labels.extend(other.labels.iter().cloned());
        self.template_labels
            .extend(other.template_labels.iter().cloned());
        self.namespace.extend(other.namespace.iter().cloned());
        self.common_annotations
            .extend(other.common_annotations.iter().cloned());
        self.var_reference
            .extend(other.var_reference.iter().cloned());
        self.images.extend(other.images.iter().cloned());
        self.replicas.extend(other.replicas.iter().cloned());
        self.name_prefix.extend(other.name_prefix.iter().cloned());
        self.name_suffix.extend(other.name_suffix.iter().cloned());
        if matches!(self.schema, Schema::Inherited) {
            self.schema = other.schema.clone();
        }
    }

    /// Reads the `configurations:` files of a kustomization.
    pub fn load(loader: &Loader, k: &Kustomization) -> Result<TransformerConfig, Error> {
        let mut cfg = TransformerConfig {
            schema: Schema::load(loader, k)?,
            ..TransformerConfig::default()
        };
        for entry in k.strings("crds")? {
            let (path, text) = loader.read("crds", &entry)?;
            crate::crds::read(&mut cfg, &path, &entry, &text)?;
        }
        for entry in k.strings("configurations")? {
            let (path, text) = loader.read("configurations", &entry)?;
            // kustomize reads the first document of each file only.
            let docs = crate::yaml::parse_documents(&text, &path.display().to_string())?;
            if let Some(doc) = docs.first() {
                cfg.read_doc(doc);
            }
        }
        Ok(cfg)
    }

    /// Refuses, as kustomize does even when the transformer is unused, specs
    /// that disagree on `create` with another for the same field (a built-in
    /// one of kustomize's tables or another `configurations:` spec, of this
    /// kustomization or of a base or component).
    pub fn check_conflicts(&self, path: &std::path::Path) -> Result<(), Error> {
        use crate::fieldspec as fs;
        type Defaults = fn() -> Vec<FieldSpec>;
        let lists: [(&str, Defaults, &Vec<FieldSpec>); 10] = [
            ("NamePrefix", fs::name_specs, &self.name_prefix),
            ("NameSuffix", fs::name_specs, &self.name_suffix),
            ("NameSpace", fs::namespace_config_specs, &self.namespace),
            (
                "CommonAnnotations",
                fs::annotation_specs,
                &self.common_annotations,
            ),
            ("CommonLabels", fs::common_label_specs, &self.common_labels),
            ("Labels", Vec::new, &self.labels),
            (
                "TemplateLabels",
                fs::template_label_config_specs,
                &self.template_labels,
            ),
            ("VarReference", fs::var_reference_specs, &self.var_reference),
            ("Images", fs::image_config_specs, &self.images),
            ("Replicas", fs::replica_specs, &self.replicas),
        ];
        for (field, defaults, custom) in lists.into_iter().filter(|l| !l.2.is_empty()) {
            if let Err(c) = fs::settle(defaults(), custom) {
                return Err(crate::transform::conflict(path, field, &c));
            }
        }
        crate::nameref::check_custom(&self.name_reference)
            .map_err(|c| crate::transform::conflict(path, "NameReference", &c))
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
        self.template_labels.extend(specs("templateLabels"));
        self.namespace.extend(specs("namespace"));
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
