//! Post-render `${VAR}` substitution with the semantics of Flux's postBuild.
//!
//! Each object is printed as YAML, substituted as text and read back, so a
//! variable can supply a number or boolean (`replicas: ${REPLICAS}`) exactly as
//! in Flux. Only the braced forms are variables; a bare `$NAME` stays as written.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::objects::Rendered;

/// Annotation that turns substitution off for one object.
pub const DISABLE_ANNOTATION: &str = "driftless.dev/substitute";

/// Variables to substitute after rendering.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Substitution {
    /// Variable names and values.
    pub vars: BTreeMap<String, String>,
    /// Fail on a variable that is unset and has no default.
    pub strict: bool,
}

/// Errors from substitution.
#[derive(Debug, thiserror::Error)]
pub enum SubstituteError {
    /// Strict mode met a variable with neither value nor default.
    #[error("{origin} ({object}): variable {name} is not set and has no default")]
    Unset {
        /// Variable name.
        name: String,
        /// The object's kind and name.
        object: String,
        /// Where the object came from.
        origin: String,
    },
    /// A `${` without its closing `}`.
    #[error("{origin} ({object}): unterminated variable reference starting at {snippet:?}")]
    Unterminated {
        /// The start of the reference.
        snippet: String,
        /// The object's kind and name.
        object: String,
        /// Where the object came from.
        origin: String,
    },
    /// The substituted text is no longer one valid object.
    #[error("{origin} ({object}): after substitution: {message}")]
    Reparse {
        /// What is wrong.
        message: String,
        /// The object's kind and name.
        object: String,
        /// Where the object came from.
        origin: String,
    },
}

/// Why expanding a text failed, before the object is known.
#[derive(Debug, PartialEq, Eq)]
pub enum ExpandError {
    /// A variable without value or default, in strict mode.
    Unset(String),
    /// A `${` without `}`; holds the text from there.
    Unterminated(String),
}

impl Substitution {
    /// Substitutes every object that has not opted out.
    pub fn apply(&self, items: Vec<Rendered>) -> Result<Vec<Rendered>, SubstituteError> {
        items.into_iter().map(|item| self.apply_one(item)).collect()
    }

    fn apply_one(&self, item: Rendered) -> Result<Rendered, SubstituteError> {
        let disabled = item
            .object
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(DISABLE_ANNOTATION))
            .and_then(Value::as_str)
            == Some("disabled");
        if disabled {
            return Ok(item);
        }
        let object = describe(&item.object);
        let reparse = |message: String| SubstituteError::Reparse {
            message,
            object: object.clone(),
            origin: item.origin.clone(),
        };
        let text = driftless_kustomize::to_yaml_stream(std::slice::from_ref(&item.object))
            .map_err(|e| reparse(e.to_string()))?;
        if !text.contains('$') {
            return Ok(item);
        }
        let out = self.expand(&text).map_err(|e| match e {
            ExpandError::Unset(name) => SubstituteError::Unset {
                name,
                object: object.clone(),
                origin: item.origin.clone(),
            },
            ExpandError::Unterminated(snippet) => SubstituteError::Unterminated {
                snippet,
                object: object.clone(),
                origin: item.origin.clone(),
            },
        })?;
        let mut docs = driftless_kustomize::parse_stream(&out, Path::new(&item.origin))
            .map_err(|e| reparse(e.to_string()))?;
        if docs.len() != 1 {
            return Err(reparse(format!("{} documents instead of one", docs.len())));
        }
        Ok(Rendered::new(docs.remove(0), item.origin))
    }

    /// Expands variables in `text`: `${VAR}`, `${VAR:-default}`, `${VAR:=default}`
    /// (default when unset or empty), `${VAR-default}`, `${VAR=default}` (default
    /// when unset), and `$$` as a literal `$`.
    pub fn expand(&self, text: &str) -> Result<String, ExpandError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            if let Some(after) = tail.strip_prefix("$$") {
                out.push('$');
                rest = after;
            } else if tail.starts_with("${") {
                let Some(len) = closing_brace(tail) else {
                    let snippet: String = tail.chars().take(40).collect();
                    return Err(ExpandError::Unterminated(snippet));
                };
                match self.reference(&tail[2..len])? {
                    Some(value) => out.push_str(&value),
                    None => out.push_str(&tail[..=len]),
                }
                rest = &tail[len + 1..];
            } else {
                out.push('$');
                rest = &tail[1..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Resolves the inside of `${...}`; `None` when it is not a variable
    /// reference at all (it is then kept as written).
    fn reference(&self, inner: &str) -> Result<Option<String>, ExpandError> {
        let name_len = inner
            .char_indices()
            .find(|&(i, c)| !(c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
            .map_or(inner.len(), |(i, _)| i);
        if name_len == 0 {
            return Ok(None);
        }
        let (name, op) = inner.split_at(name_len);
        let value = self.vars.get(name);
        let (default, empty_counts) = if op.is_empty() {
            (None, false)
        } else if let Some(d) = op.strip_prefix(":-").or_else(|| op.strip_prefix(":=")) {
            (Some(d), true)
        } else if let Some(d) = op.strip_prefix('-').or_else(|| op.strip_prefix('=')) {
            (Some(d), false)
        } else {
            return Ok(None);
        };
        match (value, default) {
            (Some(v), Some(d)) if empty_counts && v.is_empty() => self.expand(d).map(Some),
            (Some(v), _) => Ok(Some(v.clone())),
            (None, Some(d)) => self.expand(d).map(Some),
            (None, None) if self.strict => Err(ExpandError::Unset(name.to_string())),
            // Flux (like envsubst) writes an unset variable as the empty string.
            (None, None) => Ok(Some(String::new())),
        }
    }
}

/// Index of the `}` closing the `${` at the start of `text`, counting nested braces.
fn closing_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in text.bytes().enumerate().skip(1) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `Kind namespace/name` of an object, for messages.
pub(crate) fn describe(object: &Value) -> String {
    let get = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or("");
    let ns = get("/metadata/namespace");
    let name = get("/metadata/name");
    let kind = get("/kind");
    if ns.is_empty() {
        format!("{kind} {name}")
    } else {
        format!("{kind} {ns}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{ExpandError, Substitution};
    use crate::objects::Rendered;

    fn subst(strict: bool) -> Substitution {
        Substitution {
            vars: [("REGION", "eu-1"), ("EMPTY", ""), ("N", "3")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            strict,
        }
    }

    #[test]
    fn envsubst_forms() {
        let s = subst(false);
        let cases = [
            ("${REGION}", "eu-1"),
            ("a-${REGION}-b", "a-eu-1-b"),
            ("${MISSING:=dflt}", "dflt"),
            ("${MISSING:-dflt}", "dflt"),
            ("${EMPTY:-dflt}", "dflt"),
            ("${EMPTY-dflt}", ""),
            ("${MISSING-dflt}", "dflt"),
            ("${REGION:=dflt}", "eu-1"),
            ("${MISSING:=${REGION}}", "eu-1"),
            ("$${REGION}", "${REGION}"),
            ("cost $$5", "cost $5"),
            ("$REGION stays", "$REGION stays"),
            ("${MISSING}", ""),
            ("${not-a-var}", "a-var"),
            ("${a.b}", "${a.b}"),
            ("${}", "${}"),
            ("end $", "end $"),
        ];
        for (input, want) in cases {
            assert_eq!(s.expand(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn strict_mode_names_the_variable() {
        let s = subst(true);
        assert_eq!(
            s.expand("x ${NOPE} y"),
            Err(ExpandError::Unset("NOPE".into()))
        );
        assert_eq!(s.expand("${NOPE:=ok}").as_deref(), Ok("ok"));
        assert!(matches!(
            s.expand("${REGION"),
            Err(ExpandError::Unterminated(_))
        ));
    }

    #[test]
    fn objects_are_substituted_with_types_and_can_opt_out() {
        let s = subst(true);
        let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web-${REGION}", "namespace": "ns"},
            "spec": {"replicas": "${N}"}});
        let opted_out = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "raw", "annotations": {"driftless.dev/substitute": "disabled"}},
            "data": {"script": "echo ${NOPE}"}});
        let out = s
            .apply(vec![
                Rendered::new(deploy, "d.yaml#0"),
                Rendered::new(opted_out.clone(), "c.yaml#0"),
            ])
            .expect("substituted");
        assert_eq!(out[0].object["metadata"]["name"], json!("web-eu-1"));
        // "${N}" prints as a plain scalar, so the value reads back as a number, as in Flux.
        assert_eq!(out[0].object["spec"]["replicas"], json!(3));
        assert_eq!(out[1].object, opted_out);

        let bare = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "w"}, "spec": {"replicas": "${NOPE}"}});
        let err = s
            .apply(vec![Rendered::new(bare, "w.yaml#1")])
            .expect_err("unset");
        assert_eq!(
            err.to_string(),
            "w.yaml#1 (Deployment w): variable NOPE is not set and has no default"
        );
    }
}
