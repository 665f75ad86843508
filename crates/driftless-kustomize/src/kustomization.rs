//! Reading a kustomization file and checking its fields.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::yaml;

/// File names a kustomization may have, in the order kustomize looks for them.
pub const FILE_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Fields a kustomization may contain.
const KNOWN_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "resources",
    "bases",
    "components",
    "crds",
    "namespace",
    "namePrefix",
    "nameSuffix",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "patches",
    "patchesStrategicMerge",
    "patchesJson6902",
    "images",
    "imageTags",
    "replicas",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "replacements",
    "vars",
    "configurations",
    "openapi",
    "generators",
    "transformers",
    "validators",
    "helmCharts",
    "helmGlobals",
    "helmChartInflationGenerator",
    "buildMetadata",
    "sortOptions",
];

/// Errors reading a kustomization.
#[derive(Debug, thiserror::Error)]
pub enum KustomizationError {
    /// None of the accepted file names exists.
    #[error(
        "unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization' in directory '{0}'"
    )]
    NotFound(PathBuf),
    /// More than one of the accepted file names exists.
    #[error("found multiple kustomization files under: {0}")]
    Multiple(PathBuf),
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid YAML.
    #[error(transparent)]
    Yaml(#[from] yaml::YamlError),
    /// The file holds something other than one mapping.
    #[error("{0}: a kustomization must be a single YAML mapping")]
    NotAMapping(PathBuf),
    /// A field kustomize does not know.
    #[error("{path}: invalid Kustomization: json: unknown field \"{field}\"")]
    UnknownField {
        /// The file.
        path: PathBuf,
        /// The offending field.
        field: String,
    },
    /// A field has the wrong shape.
    #[error("{path}: field '{field}' {problem}")]
    BadField {
        /// The file.
        path: PathBuf,
        /// The offending field.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// A parsed kustomization file.
#[derive(Debug, Clone)]
pub struct Kustomization {
    /// The file it came from.
    pub path: PathBuf,
    /// The raw fields.
    pub fields: Map<String, Value>,
}

impl Kustomization {
    /// Finds and parses the kustomization file in `dir`.
    pub fn load(dir: &Path) -> Result<Kustomization, KustomizationError> {
        let found: Vec<PathBuf> = FILE_NAMES
            .iter()
            .map(|n| dir.join(n))
            .filter(|p| p.is_file())
            .collect();
        let path = match found.as_slice() {
            [] => return Err(KustomizationError::NotFound(dir.to_path_buf())),
            [one] => one.clone(),
            _ => return Err(KustomizationError::Multiple(dir.to_path_buf())),
        };
        let text = std::fs::read_to_string(&path).map_err(|source| KustomizationError::Read {
            path: path.clone(),
            source,
        })?;
        Self::parse(&text, &path)
    }

    /// Parses kustomization text read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Kustomization, KustomizationError> {
        let docs = yaml::parse_documents_lenient(text, &path.display().to_string())?;
        let fields = match docs.into_iter().next() {
            None => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(KustomizationError::NotAMapping(path.to_path_buf())),
        };
        let mut fields = fix_field_case(fields);
        for key in fields.keys() {
            if !KNOWN_FIELDS.contains(&key.as_str()) {
                return Err(KustomizationError::UnknownField {
                    path: path.to_path_buf(),
                    field: key.clone(),
                });
            }
        }
        // `bases` is the legacy spelling of directory resources.
        if let Some(Value::Array(bases)) = fields.remove("bases") {
            let res = fields
                .entry("resources")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(r) = res {
                r.extend(bases);
            }
        }
        Ok(Kustomization {
            path: path.to_path_buf(),
            fields,
        })
    }

    /// The kind (`Kustomization` or `Component`).
    pub fn kind(&self) -> &str {
        self.str("kind").unwrap_or("Kustomization")
    }

    /// A string field.
    pub fn str(&self, field: &str) -> Option<&str> {
        self.fields.get(field).and_then(Value::as_str)
    }

    /// A field that must be a list of strings.
    pub fn strings(&self, field: &str) -> Result<Vec<String>, KustomizationError> {
        match self.fields.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(self.bad(field, "must be a list of strings")),
                })
                .collect(),
            Some(_) => Err(self.bad(field, "must be a list")),
        }
    }

    /// A field that must be a list (of anything).
    pub fn list(&self, field: &str) -> Result<Vec<Value>, KustomizationError> {
        match self.fields.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items.clone()),
            Some(_) => Err(self.bad(field, "must be a list")),
        }
    }

    /// A field that must be a string-to-string map.
    pub fn string_map(&self, field: &str) -> Result<Vec<(String, String)>, KustomizationError> {
        match self.fields.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(m)) => Ok(m
                .iter()
                .map(|(k, v)| (k.clone(), crate::resource::scalar_text(v)))
                .collect()),
            Some(_) => Err(self.bad(field, "must be a map")),
        }
    }

    /// Builds a field error naming this file.
    pub fn bad(&self, field: &str, problem: &str) -> KustomizationError {
        KustomizationError::BadField {
            path: self.path.clone(),
            field: field.to_string(),
            problem: problem.to_string(),
        }
    }
}

/// kustomize accepts field names in any letter case and fixes them.
fn fix_field_case(fields: Map<String, Value>) -> Map<String, Value> {
    fields
        .into_iter()
        .map(|(k, v)| {
            let fixed = KNOWN_FIELDS
                .iter()
                .find(|known| known.eq_ignore_ascii_case(&k))
                .map_or(k, |known| known.to_string());
            (fixed, v)
        })
        .collect()
}
