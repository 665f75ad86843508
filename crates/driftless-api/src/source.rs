//! `GitSource`: a Git repository and the revision to follow.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::meta::{AGE_COLUMN, Kind, LocalRef, Object, PrinterColumn, READY_COLUMN, STATUS_COLUMN};
use crate::status::GitSourceStatus;
use crate::validate::{FieldProblem, check_url};

/// A `GitSource` object.
pub type GitSource = Object<GitSourceSpec>;

/// Default poll interval of a GitSource (as Flux: one minute).
pub const DEFAULT_SOURCE_INTERVAL: Duration = Duration::from_secs(60);
/// Default timeout of one fetch.
pub const DEFAULT_SOURCE_TIMEOUT: Duration = Duration::from_secs(60);

/// Key of a GitSource's Secret holding extra certificate authorities (PEM)
/// that an HTTPS server's certificate is checked against.
pub const CA_KEY: &str = "ca.crt";
/// Key of an SSH Secret (a GitSource's, a Host's) holding the private key.
pub const IDENTITY_KEY: &str = "identity";
/// Key of an SSH Secret holding the known_hosts lines the server's key is checked against.
pub const KNOWN_HOSTS_KEY: &str = "known_hosts";

/// Desired state of a GitSource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitSourceSpec {
    /// Repository URL: https://, http://, ssh://, git://, file:// or scp-like `git@host:path`.
    pub url: String,
    /// The revision to follow; exactly one of its fields is set.
    #[serde(rename = "ref")]
    pub git_ref: GitRef,
    /// How often to poll for new commits (webhooks trigger sooner).
    #[serde(default = "default_source_interval")]
    pub interval: Duration,
    /// Time limit of one fetch.
    #[serde(default = "default_source_timeout")]
    pub timeout: Duration,
    /// Secret with credentials: `username`+`password` or `bearerToken` for
    /// HTTPS, `identity` (+ `known_hosts`) for SSH; and/or `ca.crt`, extra
    /// certificate authorities for HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalRef>,
    /// PEM file of extra certificate authorities for HTTPS; relative to the declaring file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Signature verification; unsigned or untrusted revisions are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Verification>,
    /// gitignore-style lines of paths to leave out of the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<String>,
    /// Stop polling while true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
}

fn default_source_interval() -> Duration {
    DEFAULT_SOURCE_INTERVAL
}

fn default_source_timeout() -> Duration {
    DEFAULT_SOURCE_TIMEOUT
}

/// The revision a GitSource follows: exactly one field is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitRef {
    /// Tip of a branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// A fixed tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Highest tag matching a semver range, e.g. `>=1.0.0 <2.0.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,
    /// A full commit id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// A full reference name such as `refs/pull/42/head`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl GitRef {
    /// The set fields as (field name, value) pairs.
    pub fn set_fields(&self) -> Vec<(&'static str, &str)> {
        [
            ("branch", &self.branch),
            ("tag", &self.tag),
            ("semver", &self.semver),
            ("commit", &self.commit),
            ("name", &self.name),
        ]
        .into_iter()
        .filter_map(|(field, value)| value.as_deref().map(|v| (field, v)))
        .collect()
    }
}

/// Which signatures a GitSource requires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Verification {
    /// Signature format.
    pub provider: VerifyProvider,
    /// What must be signed.
    #[serde(default)]
    pub mode: VerifyMode,
    /// Secret holding the allowed signers (ssh) or the public keyring (openpgp).
    pub secret_ref: LocalRef,
}

/// Signature format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyProvider {
    /// SSH signatures checked against an allowed-signers file.
    Ssh,
    /// OpenPGP signatures checked against a keyring.
    Openpgp,
}

/// What must carry a trusted signature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyMode {
    /// The commit that is checked out.
    #[default]
    HeadCommit,
    /// The annotated tag (with `ref.tag` or `ref.semver`).
    Tag,
}

impl Kind for GitSourceSpec {
    const KIND: &'static str = "GitSource";
    const PLURAL: &'static str = "gitsources";
    const SHORT_NAMES: &'static [&'static str] = &["gs"];
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        PrinterColumn {
            name: "URL",
            type_: "string",
            json_path: ".spec.url",
        },
        READY_COLUMN,
        PrinterColumn {
            name: "Revision",
            type_: "string",
            json_path: ".status.artifact.revision",
        },
        STATUS_COLUMN,
        AGE_COLUMN,
    ];
    type Status = GitSourceStatus;

    fn validate(&self, problems: &mut Vec<FieldProblem>) {
        check_url("spec.url", &self.url, problems);
        let set = self.git_ref.set_fields();
        match set.as_slice() {
            [] => problems.push(FieldProblem::new(
                "spec.ref",
                "one of branch, tag, semver, commit or name is required",
            )),
            [(field, value)] => check_ref_value(field, value, problems),
            [_, _, ..] => {
                let names: Vec<&str> = set.iter().map(|(f, _)| *f).collect();
                problems.push(FieldProblem::new(
                    "spec.ref",
                    format!(
                        "exactly one of branch, tag, semver, commit or name may be set, found {}",
                        names.join(" and ")
                    ),
                ));
            }
        }
        if let Some(verify) = &self.verify
            && verify.mode == VerifyMode::Tag
            && self.git_ref.tag.is_none()
            && self.git_ref.semver.is_none()
        {
            problems.push(FieldProblem::new(
                "spec.verify.mode",
                "mode tag needs spec.ref.tag or spec.ref.semver",
            ));
        }
        if let Some(ca) = &self.ca_file
            && ca.is_empty()
        {
            problems.push(FieldProblem::new("spec.caFile", "must not be empty"));
        }
        if self.timeout.get().is_zero() {
            problems.push(FieldProblem::new(
                "spec.timeout",
                "must be greater than zero",
            ));
        }
        if self.interval.get().is_zero() {
            problems.push(FieldProblem::new(
                "spec.interval",
                "must be greater than zero",
            ));
        }
    }
}

fn check_ref_value(field: &str, value: &str, problems: &mut Vec<FieldProblem>) {
    let path = format!("spec.ref.{field}");
    if value.trim().is_empty() {
        problems.push(FieldProblem::new(path, "must not be empty"));
        return;
    }
    match field {
        "commit"
            if !(value.len() == 40 || value.len() == 64)
                || !value.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            problems.push(FieldProblem::new(
                path,
                format!("{value:?} is not a full commit id (40 or 64 hex digits)"),
            ));
        }
        "name" if !value.starts_with("refs/") => problems.push(FieldProblem::new(
            path,
            format!("{value:?} is not a full reference name (expected refs/...)"),
        )),
        _ => {}
    }
}
