//! `HelmRepository`: a Helm chart repository (an `index.yaml` over HTTP(S),
//! or an OCI registry) that Apps take charts from.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::meta::{AGE_COLUMN, Kind, LocalRef, Object, PrinterColumn, READY_COLUMN, STATUS_COLUMN};
use crate::status::HelmRepositoryStatus;
use crate::validate::FieldProblem;

/// A `HelmRepository` object.
pub type HelmRepository = Object<HelmRepositorySpec>;

/// Default poll interval of a HelmRepository (its index rarely changes).
pub const DEFAULT_HELM_REPOSITORY_INTERVAL: Duration = Duration::from_secs(600);
/// Default time limit of one poll or chart download.
pub const DEFAULT_HELM_REPOSITORY_TIMEOUT: Duration = Duration::from_secs(60);

/// Desired state of a HelmRepository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HelmRepositorySpec {
    /// `https://` or `http://` URL of a repository serving `index.yaml`, or
    /// `oci://host/path` of a registry whose repositories are the charts.
    pub url: String,
    /// How often the index (or the registry's tags) is polled; one
    /// conditional request when nothing changed.
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// Time limit of one poll or one chart download.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// Secret with `username`+`password` or `bearerToken`, and/or `ca.crt`
    /// (extra certificate authorities, PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalRef>,
    /// PEM file of extra certificate authorities; relative to the declaring file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Stop polling while true; the last index and charts stay in use.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
}

fn default_interval() -> Duration {
    DEFAULT_HELM_REPOSITORY_INTERVAL
}

fn default_timeout() -> Duration {
    DEFAULT_HELM_REPOSITORY_TIMEOUT
}

impl Kind for HelmRepositorySpec {
    const KIND: &'static str = "HelmRepository";
    const PLURAL: &'static str = "helmrepositories";
    const SHORT_NAMES: &'static [&'static str] = &["helmrepo"];
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        PrinterColumn {
            name: "URL",
            type_: "string",
            json_path: ".spec.url",
        },
        READY_COLUMN,
        STATUS_COLUMN,
        AGE_COLUMN,
    ];
    type Status = HelmRepositoryStatus;

    fn validate(&self, problems: &mut Vec<FieldProblem>) {
        let url = self.url.trim();
        let scheme_ok = ["https://", "http://", "oci://"]
            .iter()
            .any(|s| url.starts_with(s) && url.len() > s.len());
        if !scheme_ok {
            problems.push(FieldProblem::new(
                "spec.url",
                format!(
                    "{:?} is not a Helm repository URL (https://, http:// or oci://host/path)",
                    without_userinfo(url)
                ),
            ));
        }
        if let Some(ca) = &self.ca_file
            && ca.is_empty()
        {
            problems.push(FieldProblem::new("spec.caFile", "must not be empty"));
        }
        for (field, value) in [
            ("spec.interval", self.interval),
            ("spec.timeout", self.timeout),
        ] {
            if value.get().is_zero() {
                problems.push(FieldProblem::new(field, "must be greater than zero"));
            }
        }
    }
}

/// `url` without the `user:password@` part a URL may carry.
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// A chart taken from a [`HelmRepository`] instead of the App's path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HelmChart {
    /// The HelmRepository's name.
    pub repository: String,
    /// The chart's name in the repository.
    pub name: String,
    /// A version or a Helm version constraint (`>=1.14.0 <1.15.0`, `~1.2`,
    /// `*`); the highest version it allows is rendered.
    #[serde(default = "any_version")]
    pub version: String,
}

fn any_version() -> String {
    "*".to_owned()
}

/// Values for a chart from a Secret or ConfigMap key, as Flux's `valuesFrom`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValuesReference {
    /// `Secret` or `ConfigMap`.
    pub kind: ValuesKind,
    /// Its name, in the App's namespace (`driftless-system` under `serve`).
    pub name: String,
    /// The key holding a YAML mapping of values.
    #[serde(default = "values_key")]
    pub values_key: String,
    /// Do not fail when the object or key is missing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

fn values_key() -> String {
    "values.yaml".to_owned()
}

/// Kinds values can come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ValuesKind {
    /// A Secret.
    Secret,
    /// A ConfigMap.
    ConfigMap,
}

impl ValuesKind {
    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secret => "Secret",
            Self::ConfigMap => "ConfigMap",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(url: &str) -> Vec<FieldProblem> {
        let spec: HelmRepositorySpec =
            serde_json::from_value(serde_json::json!({"url": url})).expect("spec decodes");
        let mut problems = Vec::new();
        spec.validate(&mut problems);
        problems
    }

    #[test]
    fn repository_urls_are_http_https_or_oci() {
        assert!(problems("https://charts.example.com").is_empty());
        assert!(problems("http://127.0.0.1:8080/charts").is_empty());
        assert!(problems("oci://registry.example.com/charts").is_empty());
        let bad = problems("ftp://u:secret@example.com/charts");
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].field, "spec.url");
        assert!(!bad[0].message.contains("secret"), "{}", bad[0].message);
        assert_eq!(problems("oci://").len(), 1);
    }

    #[test]
    fn a_chart_without_version_takes_the_highest() {
        let chart: HelmChart =
            serde_json::from_value(serde_json::json!({"repository": "r", "name": "c"}))
                .expect("chart decodes");
        assert_eq!(chart.version, "*");
        let values: ValuesReference =
            serde_json::from_value(serde_json::json!({"kind": "Secret", "name": "v"}))
                .expect("values decode");
        assert_eq!(values.values_key, "values.yaml");
    }
}
