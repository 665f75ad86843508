//! `App`: a path in a source, rendered and applied to a cluster.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::decryption::Decryption;
use crate::duration::Duration;
use crate::helm_repo::{HelmChart, ValuesReference};
use crate::host::{HostDelivery, HostSelector};
use crate::ignore::IgnoreDifference;
use crate::meta::{AGE_COLUMN, Kind, LocalRef, Object, PrinterColumn, READY_COLUMN, STATUS_COLUMN};
use crate::status::AppStatus;
use crate::validate::{FieldProblem, check_dns_label, check_relative_path};

/// An `App` object.
pub type App = Object<AppSpec>;

/// Default reconcile interval of an App (drift is also caught by watches).
pub const DEFAULT_APP_INTERVAL: Duration = Duration::from_secs(300);
/// Default time limit of one apply including the wait for health.
pub const DEFAULT_APP_TIMEOUT: Duration = Duration::from_secs(300);

/// Desired state of an App.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppSpec {
    /// The source holding the manifests.
    pub source_ref: SourceRef,
    /// Directory inside the source, relative to its root; empty means the root.
    #[serde(default)]
    pub path: String,
    /// How to turn the directory into objects.
    #[serde(default)]
    pub render: Render,
    /// Where to apply.
    #[serde(default)]
    pub destination: Destination,
    /// Delete objects this App applied before that the source no longer has.
    #[serde(default)]
    pub prune: bool,
    /// Allow a prune when the render produced no objects at all.
    #[serde(default)]
    pub allow_empty_prune: bool,
    /// Fields of the App's objects that another writer owns: not drift,
    /// not shown in diffs, and not written over.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_differences: Vec<IgnoreDifference>,
    /// How the dependents of pruned objects go (an object's own
    /// `PrunePropagationPolicy` sync option overrides it).
    #[serde(default, skip_serializing_if = "PrunePropagation::is_background")]
    pub prune_propagation: PrunePropagation,
    /// `automatic`: each new commit is applied; `manual`: each new commit is
    /// compared and shown, and applied only when a user syncs.
    #[serde(default, skip_serializing_if = "SyncPolicy::is_automatic")]
    pub sync_policy: SyncPolicy,
    /// Revert changes made to live objects outside Git as soon as they are seen.
    #[serde(default)]
    pub self_heal: bool,
    /// How often to reconcile even when nothing signalled a change.
    #[serde(default = "default_app_interval")]
    pub interval: Duration,
    /// Retries after a failed reconcile.
    #[serde(default)]
    pub retry: Retry,
    /// Apps that must be Ready before this one is applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Wait until applied objects are healthy before reporting Ready.
    #[serde(default)]
    pub wait: bool,
    /// Time limit of one apply (and its wait).
    #[serde(default = "default_app_timeout")]
    pub timeout: Duration,
    /// `${var}` substitution in rendered manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substitutions: Option<Substitutions>,
    /// ServiceAccount to impersonate while applying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Stop reconciling while true.
    #[serde(default)]
    pub suspend: bool,
    /// Recreate objects whose immutable fields changed.
    #[serde(default)]
    pub force: bool,
    /// Take over live objects that no App owns yet, recording each in the
    /// sync history and the audit log; when false, such an object fails the
    /// sync instead. A manifest annotated `driftless.dev/adopt: "false"`
    /// refuses for itself.
    #[serde(default = "yes")]
    pub adopt_existing: bool,
    /// Releases, hooks, health check and rollout of an App deployed to hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostDelivery>,
    /// Decryption of rendered objects encrypted by sops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decryption: Option<Decryption>,
}

fn yes() -> bool {
    true
}

fn default_app_interval() -> Duration {
    DEFAULT_APP_INTERVAL
}

fn default_app_timeout() -> Duration {
    DEFAULT_APP_TIMEOUT
}

/// How the API server deletes the dependents of a pruned object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PrunePropagation {
    /// The object goes at once; its dependents are collected afterwards.
    #[default]
    Background,
    /// The object goes once its dependents are gone.
    Foreground,
    /// The object goes; its dependents stay, without owner.
    Orphan,
}

impl PrunePropagation {
    fn is_background(&self) -> bool {
        *self == Self::Background
    }
}

/// Who starts an App's syncs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncPolicy {
    /// New commits, drift (with selfHeal) and intervals apply on their own.
    #[default]
    Automatic,
    /// New commits are compared and shown; only a user's sync applies them,
    /// and drift is reported, never reverted.
    Manual,
}

impl SyncPolicy {
    fn is_automatic(&self) -> bool {
        *self == Self::Automatic
    }
}

/// Reference to the source of an App.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceRef {
    /// Kind of the source: `GitSource` (the default) or `OCISource`.
    #[serde(default)]
    pub kind: SourceKind,
    /// Name of the source.
    pub name: String,
}

/// Kinds an App can take its manifests from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SourceKind {
    /// A [`crate::GitSource`].
    #[default]
    GitSource,
    /// An [`crate::OciSource`].
    #[serde(rename = "OCISource")]
    OciSource,
}

impl SourceKind {
    /// The kind as written in a config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GitSource => "GitSource",
            Self::OciSource => "OCISource",
        }
    }
}

/// Rendering options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Render {
    /// Renderer; `auto` detects kustomization.yaml, Chart.yaml, main.jsonnet, else plain.
    #[serde(default)]
    pub kind: RenderKind,
    /// Options for Helm charts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<HelmRender>,
    /// Options for Jsonnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jsonnet: Option<JsonnetRender>,
    /// Options for plain manifest directories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain: Option<PlainRender>,
    /// Options for kustomize.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<KustomizeRender>,
}

/// Which renderer turns a directory into objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RenderKind {
    /// Detect from the directory's files.
    #[default]
    Auto,
    /// `kustomize build`.
    Kustomize,
    /// `helm template`.
    Helm,
    /// Jsonnet evaluation.
    Jsonnet,
    /// YAML/JSON files as they are.
    Plain,
}

impl RenderKind {
    /// The name used in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Kustomize => "kustomize",
            Self::Helm => "helm",
            Self::Jsonnet => "jsonnet",
            Self::Plain => "plain",
        }
    }
}

/// Helm options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HelmRender {
    /// Release name; defaults to the App name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_name: Option<String>,
    /// Release namespace; defaults to the destination namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Values files relative to the chart directory (to the App's path for
    /// a chart from a repository), merged in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values_files: Vec<String>,
    /// A chart from a HelmRepository instead of the chart in the App's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<HelmChart>,
    /// Values from Secrets and ConfigMaps, merged in order after the values
    /// files and before the inline values (Flux's order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values_from: Vec<ValuesReference>,
    /// Inline values, merged last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub values: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Jsonnet options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JsonnetRender {
    /// Entry file relative to the App path; defaults to `main.jsonnet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main: Option<String>,
    /// External variables (`std.extVar`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ext_vars: BTreeMap<String, String>,
    /// Top-level arguments.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tlas: BTreeMap<String, String>,
    /// Import search paths relative to the source root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lib_paths: Vec<String>,
}

/// Plain directory options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlainRender {
    /// Descend into subdirectories.
    #[serde(default)]
    pub recursive: bool,
    /// Glob patterns of files to read; empty means `*.yaml`, `*.yml`, `*.json`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Glob patterns of files to skip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

/// kustomize options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KustomizeRender {
    /// Allow `helmCharts` in kustomizations (runs the helm binary).
    #[serde(default)]
    pub enable_helm: bool,
    /// Whether files outside the kustomization root may be read.
    #[serde(default)]
    pub load_restrictor: LoadRestrictor,
    /// Fetch remote resources (Git URLs, HTTP(S) files) that kustomizations
    /// name, as kustomize does; `false` fails a render that names one.
    /// The server's `render.kustomizeRemoteResources: false` overrides it.
    #[serde(default = "remote_resources_default")]
    pub remote_resources: bool,
}

impl Default for KustomizeRender {
    fn default() -> Self {
        Self {
            enable_helm: false,
            load_restrictor: LoadRestrictor::default(),
            remote_resources: true,
        }
    }
}

fn remote_resources_default() -> bool {
    true
}

/// kustomize load restriction: the kustomize library's own option type.
pub use driftless_yaml::LoadRestrictor;

/// Where an App's objects go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Destination {
    /// Name of a Cluster object; absent means the default cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Namespace for namespaced objects that name none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Create the namespace when it does not exist.
    #[serde(default)]
    pub create_namespace: bool,
    /// Hosts to deploy the App's file tree to, instead of a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<HostSelector>,
}

impl Destination {
    /// Where an App goes, for people: `CLUSTER/NAMESPACE` (`default` and `-`
    /// when unset), or the hosts it selects.
    pub fn describe(&self) -> String {
        match &self.hosts {
            Some(hosts) => format!("hosts: {hosts}"),
            None => format!(
                "{}/{}",
                self.cluster.as_deref().unwrap_or("default"),
                self.namespace.as_deref().unwrap_or("-")
            ),
        }
    }
}

/// Retry policy after a failed reconcile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retry {
    /// Attempts before giving up until the next change; absent means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Delay between attempts.
    #[serde(default)]
    pub backoff: Backoff,
}

/// Exponential back-off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Backoff {
    /// First delay.
    #[serde(default = "default_backoff_duration")]
    pub duration: Duration,
    /// Multiplier applied after each failure.
    #[serde(default = "default_backoff_factor")]
    pub factor: u32,
    /// Longest delay.
    #[serde(default = "default_backoff_max")]
    pub max_duration: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            duration: default_backoff_duration(),
            factor: default_backoff_factor(),
            max_duration: default_backoff_max(),
        }
    }
}

fn default_backoff_duration() -> Duration {
    Duration::from_secs(5)
}

fn default_backoff_factor() -> u32 {
    2
}

fn default_backoff_max() -> Duration {
    Duration::from_secs(300)
}

/// `${var}` substitution settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Substitutions {
    /// Inline variables; they win over the referenced Secrets and ConfigMaps.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    /// Fail the render when a `${var}` has no value and no default.
    #[serde(default)]
    pub strict: bool,
    /// Secrets whose keys become variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_secret: Vec<LocalRef>,
    /// ConfigMaps whose keys become variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_config_map: Vec<LocalRef>,
}

impl Kind for AppSpec {
    const KIND: &'static str = "App";
    const PLURAL: &'static str = "apps";
    const SHORT_NAMES: &'static [&'static str] = &["dapp"];
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        READY_COLUMN,
        PrinterColumn {
            name: "Sync",
            type_: "string",
            json_path: ".status.sync",
        },
        PrinterColumn {
            name: "Health",
            type_: "string",
            json_path: ".status.health",
        },
        PrinterColumn {
            name: "Revision",
            type_: "string",
            json_path: ".status.lastApplied.sha",
        },
        STATUS_COLUMN,
        AGE_COLUMN,
    ];
    type Status = AppStatus;

    fn validate(&self, problems: &mut Vec<FieldProblem>) {
        check_relative_path("spec.path", &self.path, problems);
        if let Some(ns) = &self.destination.namespace {
            check_dns_label("spec.destination.namespace", ns, problems);
        }
        if let Some(sa) = &self.service_account_name {
            check_dns_label("spec.serviceAccountName", sa, problems);
        }
        self.validate_render(problems);
        if let Some(decryption) = &self.decryption {
            decryption.validate(problems);
        }
        crate::ignore::validate(&self.ignore_differences, problems);
        crate::host::validate_app(self, problems);
        if self.interval.get().is_zero() {
            problems.push(FieldProblem::new(
                "spec.interval",
                "must be greater than zero",
            ));
        }
        if self.timeout.get().is_zero() {
            problems.push(FieldProblem::new(
                "spec.timeout",
                "must be greater than zero",
            ));
        }
        let backoff = &self.retry.backoff;
        if backoff.factor == 0 {
            problems.push(FieldProblem::new(
                "spec.retry.backoff.factor",
                "must be at least 1",
            ));
        }
        if backoff.max_duration < backoff.duration {
            problems.push(FieldProblem::new(
                "spec.retry.backoff.maxDuration",
                format!(
                    "{} is shorter than spec.retry.backoff.duration {}",
                    backoff.max_duration, backoff.duration
                ),
            ));
        }
        if self.self_heal && self.sync_policy == SyncPolicy::Manual {
            problems.push(FieldProblem::new(
                "spec.selfHeal",
                "has no effect with spec.syncPolicy manual: drift is reported, never reverted",
            ));
        }
        if self.allow_empty_prune && !self.prune {
            problems.push(FieldProblem::new(
                "spec.allowEmptyPrune",
                "has no effect unless spec.prune is true",
            ));
        }
    }
}

impl AppSpec {
    /// Options for one renderer only make sense with that renderer or `auto`.
    fn validate_render(&self, problems: &mut Vec<FieldProblem>) {
        let kind = self.render.kind;
        let given = [
            ("helm", RenderKind::Helm, self.render.helm.is_some()),
            (
                "jsonnet",
                RenderKind::Jsonnet,
                self.render.jsonnet.is_some(),
            ),
            ("plain", RenderKind::Plain, self.render.plain.is_some()),
            (
                "kustomize",
                RenderKind::Kustomize,
                self.render.kustomize.is_some(),
            ),
        ];
        for (field, owner, set) in given {
            if set && kind != RenderKind::Auto && kind != owner {
                problems.push(FieldProblem::new(
                    format!("spec.render.{field}"),
                    format!(
                        "options for {field} given but spec.render.kind is {}",
                        kind.as_str()
                    ),
                ));
            }
        }
        if let Some(helm) = &self.render.helm {
            if let Some(ns) = &helm.namespace {
                check_dns_label("spec.render.helm.namespace", ns, problems);
            }
            for (i, file) in helm.values_files.iter().enumerate() {
                check_relative_path(
                    &format!("spec.render.helm.valuesFiles[{i}]"),
                    file,
                    problems,
                );
            }
            if let Some(chart) = &helm.chart {
                for (field, value) in [
                    ("repository", &chart.repository),
                    ("name", &chart.name),
                    ("version", &chart.version),
                ] {
                    if value.trim().is_empty() {
                        let field = format!("spec.render.helm.chart.{field}");
                        problems.push(FieldProblem::new(field, "must not be empty"));
                    }
                }
                if chart.name.contains('/') {
                    problems.push(FieldProblem::new(
                        "spec.render.helm.chart.name",
                        format!("{:?} is a chart name, not a path", chart.name),
                    ));
                }
            }
            for (i, from) in helm.values_from.iter().enumerate() {
                if from.name.trim().is_empty() {
                    let field = format!("spec.render.helm.valuesFrom[{i}].name");
                    problems.push(FieldProblem::new(field, "must not be empty"));
                }
                if from.values_key.trim().is_empty() {
                    let field = format!("spec.render.helm.valuesFrom[{i}].valuesKey");
                    problems.push(FieldProblem::new(field, "must not be empty"));
                }
            }
        }
        if let Some(jsonnet) = &self.render.jsonnet {
            if let Some(main) = &jsonnet.main {
                check_relative_path("spec.render.jsonnet.main", main, problems);
            }
            for (i, lib) in jsonnet.lib_paths.iter().enumerate() {
                check_relative_path(&format!("spec.render.jsonnet.libPaths[{i}]"), lib, problems);
            }
        }
    }
}
