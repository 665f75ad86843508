//! `OCISource`: an artifact of manifests in an OCI registry (one tar.gz
//! layer, as `driftless artifact push` and `flux push artifact` store it),
//! followed by tag, version range or digest.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::meta::{AGE_COLUMN, Kind, LocalRef, Object, PrinterColumn, READY_COLUMN, STATUS_COLUMN};
use crate::source::{DEFAULT_SOURCE_INTERVAL, DEFAULT_SOURCE_TIMEOUT};
use crate::status::GitSourceStatus;
use crate::validate::FieldProblem;

/// An `OCISource` object.
pub type OciSource = Object<OciSourceSpec>;

/// The tag an OCISource follows when its `ref` names nothing.
pub const DEFAULT_OCI_TAG: &str = "latest";

/// Desired state of an OCISource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OciSourceSpec {
    /// The repository, `oci://host[:port]/path`, without a tag or digest.
    pub url: String,
    /// The artifact to follow; `latest` when it names nothing.
    #[serde(rename = "ref", default, skip_serializing_if = "OciRef::is_empty")]
    pub oci_ref: OciRef,
    /// How often the registry is asked for the artifact's digest: one
    /// manifest request, or one tag listing for a version range.
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// Time limit of one poll or one pull.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// Secret with `username`+`password` or `bearerToken`, and/or `ca.crt`
    /// (extra certificate authorities, PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalRef>,
    /// PEM file of extra certificate authorities; relative to the declaring file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Plain HTTP instead of HTTPS (a registry on a trusted network).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// Stop polling while true; the last artifact stays in use.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
}

/// Which artifact of the repository an OCISource follows: at most one field is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OciRef {
    /// A tag, followed as it moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The highest tag a version range accepts (`>=1.0.0 <2.0.0`, `~1.2`, `^1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,
    /// One manifest digest, `sha256:<64 hex>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl OciRef {
    fn is_empty(&self) -> bool {
        self == &OciRef::default()
    }

    /// How the ref reads in a status or a log: `tag`, `semver RANGE` or the digest.
    pub fn label(&self) -> String {
        match (&self.tag, &self.semver, &self.digest) {
            (_, _, Some(digest)) => digest.clone(),
            (_, Some(range), _) => format!("semver {range}"),
            (Some(tag), _, _) => tag.clone(),
            _ => DEFAULT_OCI_TAG.to_owned(),
        }
    }
}

fn default_interval() -> Duration {
    DEFAULT_SOURCE_INTERVAL
}

fn default_timeout() -> Duration {
    DEFAULT_SOURCE_TIMEOUT
}

impl Kind for OciSourceSpec {
    const KIND: &'static str = "OCISource";
    const PLURAL: &'static str = "ocisources";
    const SHORT_NAMES: &'static [&'static str] = &["ocisrc"];
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        PrinterColumn {
            name: "URL",
            type_: "string",
            json_path: ".spec.url",
        },
        PrinterColumn {
            name: "Digest",
            type_: "string",
            json_path: ".status.artifact.revision.sha",
        },
        READY_COLUMN,
        STATUS_COLUMN,
        AGE_COLUMN,
    ];
    type Status = GitSourceStatus;

    fn validate(&self, problems: &mut Vec<FieldProblem>) {
        check_repository_url(&self.url, problems);
        let r = &self.oci_ref;
        let set = [&r.tag, &r.semver, &r.digest]
            .iter()
            .filter(|f| f.is_some())
            .count();
        if set > 1 {
            problems.push(FieldProblem::new(
                "spec.ref",
                "set at most one of tag, semver and digest",
            ));
        }
        if let Some(tag) = &r.tag
            && !valid_tag(tag)
        {
            problems.push(FieldProblem::new(
                "spec.ref.tag",
                format!(
                    "{tag:?} is not a tag: 1 to 128 letters, digits, '_', '.' or '-', \
                     not starting with '.' or '-'"
                ),
            ));
        }
        if let Some(range) = &r.semver
            && range.trim().is_empty()
        {
            problems.push(FieldProblem::new("spec.ref.semver", "must not be empty"));
        }
        if let Some(digest) = &r.digest
            && !valid_digest(digest)
        {
            problems.push(FieldProblem::new(
                "spec.ref.digest",
                format!("{digest:?} is not a digest: sha256: and 64 lowercase hex digits"),
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

/// Checks `url` is `oci://host[:port]/path` with no tag, digest or credentials.
fn check_repository_url(url: &str, problems: &mut Vec<FieldProblem>) {
    let mut bad = |why: &str| {
        problems.push(FieldProblem::new(
            "spec.url",
            format!("{url:?} is not an OCI repository: {why}"),
        ));
    };
    let Some(rest) = url.strip_prefix("oci://") else {
        return bad("it must start with oci://");
    };
    let Some((host, path)) = rest.split_once('/') else {
        return bad("it names no repository after the registry (oci://host/path)");
    };
    if host.is_empty() || host.contains('@') {
        return bad("the registry must be a host name with an optional port, without credentials");
    }
    if path.is_empty()
        || path.contains('@')
        || path
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
    {
        bad("give the tag or digest in spec.ref, not in the URL");
    }
}

/// Whether `tag` is a valid OCI tag.
fn valid_tag(tag: &str) -> bool {
    let ok_first = tag
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    ok_first
        && tag.len() <= 128
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Whether `digest` is `sha256:` and 64 lowercase hex digits.
fn valid_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str, oci_ref: OciRef) -> OciSourceSpec {
        OciSourceSpec {
            url: url.into(),
            oci_ref,
            interval: default_interval(),
            timeout: default_timeout(),
            secret_ref: None,
            ca_file: None,
            insecure: false,
            suspend: false,
        }
    }

    fn problems(spec: &OciSourceSpec) -> Vec<String> {
        let mut out = Vec::new();
        spec.validate(&mut out);
        out.iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect()
    }

    #[test]
    fn a_repository_with_one_ref_is_valid() {
        for r in [
            OciRef::default(),
            OciRef {
                tag: Some("v1.2.0".into()),
                ..OciRef::default()
            },
            OciRef {
                semver: Some(">=1.0.0 <2.0.0".into()),
                ..OciRef::default()
            },
            OciRef {
                digest: Some(format!("sha256:{}", "a".repeat(64))),
                ..OciRef::default()
            },
        ] {
            assert_eq!(
                problems(&spec("oci://127.0.0.1:5000/team/app", r)),
                Vec::<String>::new()
            );
        }
    }

    #[test]
    fn bad_urls_and_refs_name_their_field() {
        let tagged = problems(&spec("oci://reg/team/app:v1", OciRef::default()));
        assert!(
            tagged[0].starts_with("spec.url:") && tagged[0].contains("spec.ref"),
            "{tagged:?}"
        );
        let https = problems(&spec("https://reg/team/app", OciRef::default()));
        assert!(https[0].contains("oci://"), "{https:?}");
        let two = OciRef {
            tag: Some("v1".into()),
            digest: Some("sha256:00".into()),
            ..OciRef::default()
        };
        let found = problems(&spec("oci://reg/app", two));
        assert!(
            found.iter().any(|p| p.starts_with("spec.ref:")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|p| p.starts_with("spec.ref.digest:")),
            "{found:?}"
        );
        let tag = OciRef {
            tag: Some("-bad".into()),
            ..OciRef::default()
        };
        let found = problems(&spec("oci://reg/app", tag));
        assert!(found[0].starts_with("spec.ref.tag:"), "{found:?}");
    }
}
