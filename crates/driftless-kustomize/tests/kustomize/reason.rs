//! Whether an error case fails for the reason kustomize fails: the texts and
//! error kinds a conformance case's `meta.json` records from kustomize's own
//! test, compared with driftless's error.

use std::path::Path;

use driftless_kustomize::{Error, KustomizationError, YamlError};
use serde_json::Value;

/// What a case says about its error.
#[derive(Debug, Default)]
pub struct Expectation {
    /// Texts the message must contain.
    contains: Vec<String>,
    /// Texts the message must be (see [`equals`]).
    equals: Vec<String>,
    /// Regular expressions the message must match.
    regex: Vec<String>,
    /// kustomize error predicates (`IsMissingKustomizationFileError`, ...).
    kinds: Vec<String>,
}

impl Expectation {
    /// Reads `meta.json` in `case`; a case without one states no reason.
    pub fn load(case: &Path) -> Result<Expectation, String> {
        let path = case.join("meta.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(Expectation::default());
        };
        let meta: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let list = |key: &str| -> Result<Vec<String>, String> {
            match meta.get(key) {
                None => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| format!("{}: {key} holds a non-string", path.display()))
                    })
                    .collect(),
                Some(_) => Err(format!("{}: {key} is not a list", path.display())),
            }
        };
        Ok(Expectation {
            contains: list("error_contains")?,
            equals: list("error_equals")?,
            regex: list("error_regex")?,
            kinds: list("error_kinds")?,
        })
    }

    /// True when the case records no reason at all (any error is accepted).
    pub fn is_unstated(&self) -> bool {
        self.contains.is_empty()
            && self.equals.is_empty()
            && self.regex.is_empty()
            && self.kinds.is_empty()
    }

    /// Checks `err` (raised building `case`) against every recorded reason;
    /// `Err` says which one it misses.
    pub fn check(&self, case: &Path, err: &Error) -> Result<(), String> {
        let message = strip_case_dir(&err.to_string(), case);
        for text in &self.contains {
            if !message.contains(text.as_str()) {
                return Err(format!("error lacks {text:?}: {message}"));
            }
        }
        for text in &self.equals {
            if !equals(&message, text, case) {
                return Err(format!("error is not {text:?}: {message}"));
            }
        }
        for pattern in &self.regex {
            let re = regex::Regex::new(pattern).map_err(|e| format!("bad error_regex: {e}"))?;
            if !re.is_match(&message) {
                return Err(format!("error does not match /{pattern}/: {message}"));
            }
        }
        for kind in &self.kinds {
            if !is_kind(err, kind)? {
                return Err(format!("error is not kustomize's {kind}: {message}"));
            }
        }
        Ok(())
    }
}

/// kustomize's tests build in an in-memory file system rooted at `/`; the
/// case directory stands for that root, so its absolute path is removed from
/// our message ('<case>/overlay' reads '/overlay').
pub fn strip_case_dir(message: &str, case: &Path) -> String {
    let mut out = message.to_owned();
    let canonical = case.canonicalize().ok();
    for dir in canonical.iter().map(|p| p.as_path()).chain([case]) {
        let dir = dir.display().to_string();
        if !dir.is_empty() {
            out = out.replace(&dir, "");
        }
    }
    out
}

/// Our message equals kustomize's, allowing the one thing driftless adds:
/// a leading `<file>: ` naming the file at fault, which must exist in the case.
fn equals(message: &str, expected: &str, case: &Path) -> bool {
    if message == expected {
        return true;
    }
    let Some(file) = message
        .strip_suffix(expected)
        .and_then(|rest| rest.strip_suffix(": "))
    else {
        return false;
    };
    file.starts_with('/') && !file.contains(": ") && case.join(&file[1..]).exists()
}

/// kustomize's error predicates, mapped to driftless's error variants.
fn is_kind(err: &Error, kind: &str) -> Result<bool, String> {
    match kind {
        // The build directory (or a directory resource) has no kustomization file.
        "IsMissingKustomizationFileError" => Ok(matches!(
            err,
            Error::Kustomization(KustomizationError::NotFound(_))
        )),
        // A file kustomize reads is not YAML.
        "IsMalformedYAMLError" => Ok(matches!(
            err,
            Error::Yaml(YamlError::Syntax { .. })
                | Error::Kustomization(KustomizationError::Yaml(YamlError::Syntax { .. }))
        )),
        other => Err(format!("unknown error kind {other} in meta.json")),
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::{Expectation, equals, strip_case_dir};
    use driftless_kustomize::{Error, KustomizationError, YamlError};

    fn case() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/app-base")
    }

    #[test]
    fn the_case_directory_reads_as_the_root() {
        let case = case();
        let msg = format!("file '{}/shared/p.yaml' is bad", case.display());
        assert_eq!(strip_case_dir(&msg, &case), "file '/shared/p.yaml' is bad");
    }

    #[test]
    fn equality_allows_only_a_leading_existing_file() {
        let case = case();
        assert!(equals("boom", "boom", &case));
        assert!(equals("/base/kustomization.yaml: boom", "boom", &case));
        assert!(!equals("/no-such-file.yaml: boom", "boom", &case));
        assert!(!equals(
            "/base/kustomization.yaml: more: boom",
            "boom",
            &case
        ));
        assert!(!equals("boom and more", "boom", &case));
    }

    #[test]
    fn kinds_match_the_variant_not_the_words() {
        let case = case();
        let missing = Expectation {
            kinds: vec!["IsMissingKustomizationFileError".into()],
            ..Expectation::default()
        };
        let not_found = Error::Kustomization(KustomizationError::NotFound(case.clone()));
        assert!(missing.check(&case, &not_found).is_ok());
        let look_alike = Error::Invalid {
            path: case.clone(),
            message: not_found.to_string(),
        };
        assert!(missing.check(&case, &look_alike).is_err());
        let malformed = Expectation {
            kinds: vec!["IsMalformedYAMLError".into()],
            ..Expectation::default()
        };
        let syntax = Error::Yaml(YamlError::Syntax {
            origin: "x.yaml".into(),
            line: 1,
            column: 1,
            message: "bad".into(),
        });
        assert!(malformed.check(&case, &syntax).is_ok());
        assert!(malformed.check(&case, &not_found).is_err());
        let unknown = Expectation {
            kinds: vec!["IsSomethingElse".into()],
            ..Expectation::default()
        };
        assert!(unknown.check(&case, &syntax).is_err());
    }

    #[test]
    fn contains_and_equals_are_all_required() {
        let case = case();
        let exp = Expectation {
            contains: vec!["accumulating resources".into(), "base".into()],
            ..Expectation::default()
        };
        let err = |m: &str| Error::Invalid {
            path: case.join("kustomization.yaml"),
            message: m.into(),
        };
        assert!(
            exp.check(&case, &err("accumulating resources from 'base'"))
                .is_ok()
        );
        assert!(exp.check(&case, &err("accumulating resources")).is_err());
        assert!(Expectation::default().is_unstated());
        assert!(!exp.is_unstated());
    }
}
