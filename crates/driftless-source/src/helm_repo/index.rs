//! A Helm repository's `index.yaml`: the versions of each chart with their
//! digests and download URLs, and the choice of a version by Helm's
//! constraint syntax.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::refspec::{comparators, highest_matching, tag_version};

/// An `index.yaml` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Not YAML.
    #[error("index {url}: {source}")]
    Yaml {
        /// The index URL, without any password.
        url: String,
        /// The cause.
        source: driftless_yaml::YamlError,
    },
    /// YAML without an `entries` mapping of chart lists.
    #[error("index {url}: {detail}")]
    Shape {
        /// The index URL, without any password.
        url: String,
        /// What is wrong.
        detail: String,
    },
}

/// A version constraint that Helm's syntax does not allow here.
#[derive(Debug, thiserror::Error)]
#[error("chart version constraint `{constraint}`: {reason}")]
pub struct ConstraintError {
    /// The constraint as given.
    pub constraint: String,
    /// What the parser objected to.
    pub reason: String,
}

/// One version of a chart in an index (or a tag of an OCI registry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChartVersion {
    /// The chart's name.
    pub name: String,
    /// Its version, as the index writes it (from an OCI tag, with Helm's
    /// `_` for `+` turned back).
    pub version: String,
    /// The SHA-256 of its archive (hex), when the index gives one; from an
    /// OCI registry, the chart layer's digest.
    pub digest: Option<String>,
    /// Where the archive is, absolute or relative to the repository URL;
    /// from an OCI registry, `oci://registry/repository:tag@manifest`.
    pub urls: Vec<String>,
    /// The OCI manifest's digest (`sha256:...`) of a chart resolved in a
    /// registry; `None` from an HTTP(S) index.
    pub manifest: Option<String>,
}

/// The charts of a repository, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Index {
    /// Every version of every chart, by chart name.
    pub entries: BTreeMap<String, Vec<ChartVersion>>,
}

impl Index {
    /// Reads the text of an `index.yaml` fetched from `url`.
    pub fn parse(text: &str, url: &str) -> Result<Index, IndexError> {
        let shape = |detail: String| IndexError::Shape {
            url: url.to_string(),
            detail,
        };
        let docs =
            driftless_yaml::parse_documents(text, url).map_err(|source| IndexError::Yaml {
                url: url.to_string(),
                source,
            })?;
        let entries = match docs.first().and_then(|d| d.get("entries")) {
            Some(Value::Object(entries)) => entries,
            Some(Value::Null) => return Ok(Index::default()),
            _ => return Err(shape("no `entries` mapping".to_string())),
        };
        let mut index = Index::default();
        for (name, versions) in entries {
            let Value::Array(versions) = versions else {
                return Err(shape(format!("entries.{name} is not a list")));
            };
            let list = versions
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    chart_version(name, v)
                        .ok_or_else(|| shape(format!("entries.{name}[{i}] has no version")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            index.entries.insert(name.clone(), list);
        }
        Ok(index)
    }

    /// The highest version of chart `name` that `constraint` allows.
    pub fn select(&self, name: &str, constraint: &Constraint) -> Option<&ChartVersion> {
        let versions = self.entries.get(name)?;
        let chosen = constraint.highest(versions.iter().map(|v| v.version.as_str()))?;
        versions.iter().find(|v| v.version == chosen)
    }
}

fn chart_version(name: &str, entry: &Value) -> Option<ChartVersion> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    Some(ChartVersion {
        name: name.to_string(),
        version: entry.get("version").and_then(text)?,
        digest: entry.get("digest").and_then(text).filter(|d| !d.is_empty()),
        urls: entry
            .get("urls")
            .and_then(Value::as_array)
            .map(|urls| urls.iter().filter_map(text).collect())
            .unwrap_or_default(),
        manifest: None,
    })
}

/// A chart version constraint in Helm's syntax: an exact version, or
/// comparators joined by spaces or commas (all must hold), alternatives
/// separated by `||`, hyphen ranges (`1.2 - 1.4`), `~`, `^` and wildcards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraint {
    alternatives: Vec<semver::VersionReq>,
}

impl Constraint {
    /// The candidate (a chart version or an OCI tag, read as a version with
    /// an optional leading `v`) with the highest version this allows.
    pub fn highest<'a>(
        &self,
        candidates: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Option<&'a str> {
        self.alternatives
            .iter()
            .filter_map(|req| highest_matching(req, candidates.clone()))
            .max_by(|(ta, a), (tb, b)| a.cmp(b).then_with(|| ta.cmp(tb)))
            .map(|(chosen, _)| chosen)
    }

    /// Parses `text`; empty means any released version, as in Helm.
    pub fn parse(text: &str) -> Result<Constraint, ConstraintError> {
        let error = |reason: String| ConstraintError {
            constraint: text.to_string(),
            reason,
        };
        let mut alternatives = Vec::new();
        for alternative in text.split("||") {
            let cargo = cargo_range(alternative.trim());
            let req = semver::VersionReq::parse(&cargo).map_err(|e| error(e.to_string()))?;
            alternatives.push(req);
        }
        Ok(Constraint { alternatives })
    }
}

/// One alternative of a Helm constraint in Cargo's syntax: a comparator
/// without an operator means equality in Helm (and `^` in Cargo), and
/// Helm allows a `v` before a version.
fn cargo_range(alternative: &str) -> String {
    if alternative.is_empty() {
        return "*".to_string();
    }
    if let Some((low, high)) = alternative.split_once(" - ") {
        return format!(">={}, <={}", bare(low.trim()), bare(high.trim()));
    }
    comparators(alternative)
        .iter()
        .map(|c| {
            let split = c.find(|ch: char| !"<>=~^".contains(ch)).unwrap_or(c.len());
            let (op, version) = c.split_at(split);
            let op = if op.is_empty() && tag_version(version).is_some() {
                "="
            } else {
                op
            };
            format!("{op}{}", bare(version))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn bare(version: &str) -> &str {
    version.strip_prefix('v').unwrap_or(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = "apiVersion: v1\nentries:\n  web:\n  - name: web\n    version: 1.14.2\n    digest: aa\n    urls: [web-1.14.2.tgz]\n  - name: web\n    version: 1.15.0\n    digest: bb\n    urls: [web-1.15.0.tgz]\n  - name: web\n    version: 1.14.10\n    digest: cc\n    urls: [https://cdn.example/web-1.14.10.tgz]\n  - name: web\n    version: 1.14.11-rc.1\n    urls: [web-1.14.11-rc.1.tgz]\ngenerated: \"2024-01-01T00:00:00Z\"\n";

    fn pick(constraint: &str) -> Option<String> {
        let index = Index::parse(INDEX, "http://repo/index.yaml").expect("index");
        let c = Constraint::parse(constraint).expect("constraint");
        index.select("web", &c).map(|v| v.version.clone())
    }

    #[test]
    fn the_highest_version_a_constraint_allows_wins() {
        assert_eq!(pick(">=1.14.0 <1.15.0").as_deref(), Some("1.14.10"));
        assert_eq!(pick(">=1.14.0, <1.15.0").as_deref(), Some("1.14.10"));
        assert_eq!(pick("~1.14").as_deref(), Some("1.14.10"));
        assert_eq!(pick("1.14.x").as_deref(), Some("1.14.10"));
        assert_eq!(pick("").as_deref(), Some("1.15.0"));
        assert_eq!(pick("1.14.0 - 1.14.5").as_deref(), Some("1.14.2"));
        assert_eq!(pick("<1.14.5 || >=2").as_deref(), Some("1.14.2"));
    }

    #[test]
    fn a_bare_version_is_exact_as_in_helm() {
        assert_eq!(pick("1.14.2").as_deref(), Some("1.14.2"));
        assert_eq!(pick("v1.14.2").as_deref(), Some("1.14.2"));
        assert_eq!(pick("1.14.3"), None);
    }

    #[test]
    fn pre_releases_only_when_asked() {
        assert_eq!(
            pick(">=1.14.11-rc.0 <1.15.0").as_deref(),
            Some("1.14.11-rc.1")
        );
        assert_eq!(pick(">=1.14.11 <1.15.0"), None);
    }

    #[test]
    fn digests_and_urls_are_read() {
        let index = Index::parse(INDEX, "http://repo/index.yaml").expect("index");
        let web = &index.entries["web"];
        assert_eq!(web[0].digest.as_deref(), Some("aa"));
        assert_eq!(web[2].urls, ["https://cdn.example/web-1.14.10.tgz"]);
        assert_eq!(web[3].digest, None);
    }

    #[test]
    fn a_bad_index_or_constraint_is_named() {
        let err =
            Index::parse("apiVersion: v1\n", "http://repo/index.yaml").expect_err("no entries");
        assert!(
            err.to_string()
                .contains("http://repo/index.yaml: no `entries`"),
            "{err}"
        );
        let err = Constraint::parse(">=banana").expect_err("bad");
        assert!(err.to_string().contains("`>=banana`"), "{err}");
    }
}
