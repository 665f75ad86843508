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
    /// The file sets nothing besides apiVersion and kind (kustomize refuses it).
    #[error("{0}: kustomization.yaml is empty (it sets nothing besides apiVersion and kind)")]
    Empty(PathBuf),
    /// A field kustomize does not know.
    #[error("{path}: invalid Kustomization: json: unknown field \"{field}\"")]
    UnknownField {
        /// The file.
        path: PathBuf,
        /// The offending field.
        field: String,
    },
    /// A field has the wrong type (reported as kustomize's JSON decoding does).
    #[error("{path}: invalid Kustomization: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// `kind` or `apiVersion` is not one kustomize reads (kustomize's words).
    #[error("{path}: Failed to read kustomization file: {problem}")]
    WrongType {
        /// The file.
        path: PathBuf,
        /// What is wrong, one problem a line.
        problem: String,
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

/// Whether a kustomization holds nothing but its type: kustomize compares the
/// decoded kustomization with an empty one, so fields that decode to their zero
/// value (null, `""`, `false`, `0`) count as unset while `[]` and `{}` do not.
/// kustomize's check of `kind` and `apiVersion`: a Component must be
/// `kustomize.config.k8s.io/v1alpha1`, a Kustomization `.../v1beta1`.
fn type_problems(fields: &Map<String, Value>) -> Vec<String> {
    let text = |f: &str| fields.get(f).and_then(Value::as_str).unwrap_or("");
    let (kind, api_version) = (text("kind"), text("apiVersion"));
    let mut problems = Vec::new();
    if !matches!(kind, "" | "Kustomization" | "Component") {
        problems.push("kind should be Kustomization or Component".to_string());
    }
    let required = if kind == "Component" {
        "kustomize.config.k8s.io/v1alpha1"
    } else {
        "kustomize.config.k8s.io/v1beta1"
    };
    if !api_version.is_empty() && api_version != required {
        // kustomize fills in a missing kind before the check.
        let kind = if kind.is_empty() {
            "Kustomization"
        } else {
            kind
        };
        problems.push(format!("apiVersion for {kind} should be {required}"));
    }
    problems
}

fn sets_nothing(fields: &Map<String, Value>) -> bool {
    fields
        .iter()
        .filter(|(key, _)| !matches!(key.as_str(), "apiVersion" | "kind"))
        .all(|(_, value)| match value {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Bool(b) => !b,
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::Array(_) | Value::Object(_) => false,
        })
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
    /// The kustomization file of `dir` (exactly one of [`FILE_NAMES`]).
    pub fn locate(dir: &Path) -> Result<PathBuf, KustomizationError> {
        let found: Vec<PathBuf> = FILE_NAMES
            .iter()
            .map(|n| dir.join(n))
            .filter(|p| p.is_file())
            .collect();
        match found.as_slice() {
            [] => Err(KustomizationError::NotFound(dir.to_path_buf())),
            [one] => Ok(one.clone()),
            _ => Err(KustomizationError::Multiple(dir.to_path_buf())),
        }
    }

    /// Reads and parses the file at `real`, naming it `shown`.
    pub fn read(real: &Path, shown: &Path) -> Result<Kustomization, KustomizationError> {
        let text = std::fs::read_to_string(real).map_err(|source| KustomizationError::Read {
            path: shown.to_path_buf(),
            source,
        })?;
        Self::parse(&text, shown)
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
        check_types(&fields).map_err(|problem| KustomizationError::Invalid {
            path: path.to_path_buf(),
            problem,
        })?;
        if sets_nothing(&fields) {
            return Err(KustomizationError::Empty(path.to_path_buf()));
        }
        let problems = type_problems(&fields);
        if !problems.is_empty() {
            return Err(KustomizationError::WrongType {
                path: path.to_path_buf(),
                problem: problems.join("\n"),
            });
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

/// Expected JSON types of kustomization fields.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    Int,
    StrList,
    StrMap,
}

impl Ty {
    fn go_name(self) -> &'static str {
        match self {
            Ty::Str | Ty::StrList | Ty::StrMap => "string",
            Ty::Int => "int64",
        }
    }
}

pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks one value against `ty`; `at` names it as Go's decoder would.
fn check(v: &Value, ty: Ty, at: &str) -> Result<(), String> {
    let bad = |found: &Value| {
        Err(format!(
            "json: cannot unmarshal {} into Go struct field {at} of type {}",
            json_kind(found),
            ty.go_name()
        ))
    };
    match (ty, v) {
        (_, Value::Null) => Ok(()),
        (Ty::Str, Value::String(_)) | (Ty::Int, Value::Number(_)) => Ok(()),
        (Ty::StrList, Value::Array(items)) => items
            .iter()
            .try_for_each(|i| if i.is_string() { Ok(()) } else { bad(i) }),
        (Ty::StrMap, Value::Object(m)) => m.values().try_for_each(|i| {
            if i.is_string() || i.is_null() {
                Ok(())
            } else {
                bad(i)
            }
        }),
        (_, other) => bad(other),
    }
}

/// A list field, the Go type of its items, and the typed members of each item.
type NestedFields = (&'static str, &'static str, &'static [(&'static str, Ty)]);

/// Rejects fields whose types kustomize's decoder would refuse.
fn check_types(fields: &Map<String, Value>) -> Result<(), String> {
    const TOP: &[(&str, Ty)] = &[
        ("apiVersion", Ty::Str),
        ("kind", Ty::Str),
        ("namespace", Ty::Str),
        ("namePrefix", Ty::Str),
        ("nameSuffix", Ty::Str),
        ("resources", Ty::StrList),
        ("bases", Ty::StrList),
        ("components", Ty::StrList),
        ("crds", Ty::StrList),
        ("configurations", Ty::StrList),
        ("generators", Ty::StrList),
        ("transformers", Ty::StrList),
        ("validators", Ty::StrList),
        ("patchesStrategicMerge", Ty::StrList),
        ("buildMetadata", Ty::StrList),
        ("commonLabels", Ty::StrMap),
        ("commonAnnotations", Ty::StrMap),
    ];
    for (field, ty) in TOP {
        if let Some(v) = fields.get(*field) {
            check(v, *ty, &format!("Kustomization.{field}"))?;
        }
    }
    let nested: &[NestedFields] = &[
        (
            "images",
            "Image",
            &[
                ("name", Ty::Str),
                ("newName", Ty::Str),
                ("newTag", Ty::Str),
                ("digest", Ty::Str),
            ],
        ),
        (
            "replicas",
            "Replica",
            &[("name", Ty::Str), ("count", Ty::Int)],
        ),
        ("labels", "Label", &[("pairs", Ty::StrMap)]),
        (
            "configMapGenerator",
            "ConfigMapArgs",
            &[
                ("name", Ty::Str),
                ("namespace", Ty::Str),
                ("behavior", Ty::Str),
                ("literals", Ty::StrList),
                ("files", Ty::StrList),
                ("envs", Ty::StrList),
                ("env", Ty::Str),
            ],
        ),
        (
            "secretGenerator",
            "SecretArgs",
            &[
                ("name", Ty::Str),
                ("namespace", Ty::Str),
                ("behavior", Ty::Str),
                ("type", Ty::Str),
                ("literals", Ty::StrList),
                ("files", Ty::StrList),
                ("envs", Ty::StrList),
                ("env", Ty::Str),
            ],
        ),
    ];
    for (field, go_type, members) in nested {
        let Some(Value::Array(items)) = fields.get(*field) else {
            continue;
        };
        for item in items {
            for (member, ty) in *members {
                if let Some(v) = item.get(*member) {
                    check(v, *ty, &format!("{go_type}.{field}.{member}"))?;
                }
            }
        }
    }
    Ok(())
}
