//! `Host`: a machine reached over SSH, the settings of an App that deploys
//! file trees to hosts (`spec.host`, `destination.hosts`), and the per-host
//! record of a rollout that history keeps.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::meta::{AGE_COLUMN, Kind, LocalRef, Object, PrinterColumn, READY_COLUMN};
use crate::status::{Condition, HealthStatus};
use crate::validate::FieldProblem;

/// A `Host` object.
pub type Host = Object<HostSpec>;

/// Default SSH port.
pub const DEFAULT_SSH_PORT: u16 = 22;
/// Default directory under which each App gets `<appsRoot>/<app>`.
pub const DEFAULT_APPS_ROOT: &str = "/var/lib/driftless/apps";
/// Default number of releases kept on a host.
pub const DEFAULT_KEEP_RELEASES: u32 = 5;
/// Default time limit of one hook.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(300);
/// Default time limit of one health-check attempt.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach a host: address, user, key and the host keys to trust.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostSpec {
    /// Host name or address.
    pub address: String,
    /// SSH port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// User to log in as.
    pub user: String,
    /// Private key file (standalone mode); relative to the declaring file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_file: Option<String>,
    /// Secret of the Host's namespace holding keys `identity` (the private
    /// key) and `known_hosts` (the host keys to trust), as a GitSource's SSH
    /// Secret does (in-cluster mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalRef>,
    /// known_hosts file the host key is checked against; relative to the
    /// declaring file. Required with `identityFile`: host keys are always checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts_file: Option<String>,
    /// Directory under which each App gets `<appsRoot>/<app>`.
    #[serde(default = "default_apps_root")]
    pub apps_root: String,
    /// Per-host `${VAR}` substitution variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
}

fn default_port() -> u16 {
    DEFAULT_SSH_PORT
}

fn default_apps_root() -> String {
    DEFAULT_APPS_ROOT.to_owned()
}

/// Observed state of a Host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostStatus {
    /// Ready: the host was last reached and its key checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl Kind for HostSpec {
    const KIND: &'static str = "Host";
    const PLURAL: &'static str = "hosts";
    const SHORT_NAMES: &'static [&'static str] = &["dhost"];
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        PrinterColumn {
            name: "Address",
            type_: "string",
            json_path: ".spec.address",
        },
        READY_COLUMN,
        AGE_COLUMN,
    ];
    type Status = HostStatus;

    fn validate(&self, problems: &mut Vec<FieldProblem>) {
        for (field, value) in [("spec.address", &self.address), ("spec.user", &self.user)] {
            if value.trim().is_empty() {
                problems.push(FieldProblem::new(field, "must not be empty"));
            } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                problems.push(FieldProblem::new(
                    field,
                    format!("{value:?} must not contain spaces"),
                ));
            }
        }
        if self.port == 0 {
            problems.push(FieldProblem::new("spec.port", "must be 1 to 65535"));
        }
        match (&self.identity_file, &self.secret_ref) {
            (None, None) => problems.push(FieldProblem::new(
                "spec",
                "one of identityFile or secretRef is required",
            )),
            (Some(_), Some(_)) => problems.push(FieldProblem::new(
                "spec.secretRef",
                "cannot be combined with spec.identityFile",
            )),
            (Some(_), None) if self.known_hosts_file.is_none() => problems.push(FieldProblem::new(
                "spec.knownHostsFile",
                "required with spec.identityFile: host keys are always checked",
            )),
            (None, Some(_)) if self.known_hosts_file.is_some() => problems.push(FieldProblem::new(
                "spec.knownHostsFile",
                "cannot be combined with spec.secretRef, whose Secret holds key known_hosts",
            )),
            _ => {}
        }
        if !self.apps_root.starts_with('/') || self.apps_root.split('/').any(|p| p == "..") {
            problems.push(FieldProblem::new(
                "spec.appsRoot",
                format!("{:?} must be an absolute path without '..'", self.apps_root),
            ));
        }
        check_var_names("spec.vars", &self.vars, problems);
    }
}

/// Records a problem for each key that is not a `${VAR}` name.
pub(crate) fn check_var_names(
    field: &str,
    vars: &BTreeMap<String, String>,
    problems: &mut Vec<FieldProblem>,
) {
    for name in vars.keys() {
        if !crate::receiver::is_env_name(name) {
            problems.push(FieldProblem::new(
                format!("{field}.{name}"),
                "is not a variable name (letters, digits and '_', no leading digit)",
            ));
        }
    }
}

/// Which Hosts an App deploys to: exactly one of `matchLabels` or `names`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostSelector {
    /// Hosts carrying all of these labels (in-cluster: of the App's namespace).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Hosts by name, rolled out in this order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

impl std::fmt::Display for HostSelector {
    /// `names a, b` or `matchLabels role=web,env=prod`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.names.is_empty() {
            let labels: Vec<String> = self
                .match_labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            write!(f, "matchLabels {}", labels.join(","))
        } else {
            write!(f, "names {}", self.names.join(", "))
        }
    }
}

impl HostSelector {
    /// The selected Hosts: in `names` order, or by name for labels.
    pub fn select<'a>(&self, hosts: impl IntoIterator<Item = &'a Host>) -> Vec<&'a Host> {
        let hosts: Vec<&Host> = hosts.into_iter().collect();
        if !self.names.is_empty() {
            return self
                .names
                .iter()
                .filter_map(|n| hosts.iter().copied().find(|h| h.name() == n))
                .collect();
        }
        let mut chosen: Vec<&Host> = hosts
            .into_iter()
            .filter(|h| {
                self.match_labels
                    .iter()
                    .all(|(k, v)| h.metadata.labels.get(k) == Some(v))
            })
            .collect();
        chosen.sort_by(|a, b| a.name().cmp(b.name()));
        chosen
    }

    pub(crate) fn validate(&self, problems: &mut Vec<FieldProblem>) {
        let field = "spec.destination.hosts";
        match (self.match_labels.is_empty(), self.names.is_empty()) {
            (true, true) => problems.push(FieldProblem::new(
                field,
                "one of matchLabels or names is required",
            )),
            (false, false) => problems.push(FieldProblem::new(
                format!("{field}.names"),
                "cannot be combined with matchLabels",
            )),
            _ => {}
        }
    }
}

/// How an App's tree is delivered to its hosts (`spec.host`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostDelivery {
    /// Releases kept on each host; the current and the previous one are never removed.
    #[serde(default = "default_keep_releases")]
    pub keep_releases: u32,
    /// Globs (`*.conf`, `etc/**`) of files where `${VAR}` is replaced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub substitute: Vec<String>,
    /// Commands run around the switch.
    #[serde(default)]
    pub hooks: Hooks,
    /// Check run after the switch; a failure switches back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// How many hosts at a time, and whether a failure stops the rest.
    #[serde(default)]
    pub rollout: Rollout,
}

fn default_keep_releases() -> u32 {
    DEFAULT_KEEP_RELEASES
}

impl Default for HostDelivery {
    fn default() -> Self {
        Self {
            keep_releases: DEFAULT_KEEP_RELEASES,
            substitute: Vec::new(),
            hooks: Hooks::default(),
            health_check: None,
            rollout: Rollout::default(),
        }
    }
}

/// Shell commands run on the host in the new release's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hooks {
    /// Before `current` is switched; a failure leaves the current release in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_switch: Option<String>,
    /// After the switch (and again after a switch back), e.g. a service reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_switch: Option<String>,
    /// Time limit of one hook; a hook still running then is killed.
    #[serde(default = "default_hook_timeout")]
    pub timeout: Duration,
}

fn default_hook_timeout() -> Duration {
    DEFAULT_HOOK_TIMEOUT
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            before_switch: None,
            after_switch: None,
            timeout: DEFAULT_HOOK_TIMEOUT,
        }
    }
}

/// A health check: exactly one of `command` or `http`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    /// Shell command run on the host; exit status 0 is healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// An HTTP GET made through the SSH connection to an address seen from the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheck>,
    /// Time limit of one attempt.
    #[serde(default = "default_health_timeout")]
    pub timeout: Duration,
    /// Further attempts after a failed one.
    #[serde(default)]
    pub retries: u32,
    /// Pause between attempts.
    #[serde(default = "default_health_interval")]
    pub interval: Duration,
}

fn default_health_timeout() -> Duration {
    DEFAULT_HEALTH_TIMEOUT
}

fn default_health_interval() -> Duration {
    Duration::from_secs(2)
}

/// An HTTP health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpCheck {
    /// `http://host:port/path`, as the host itself would reach it.
    pub url: String,
    /// Status code that means healthy.
    #[serde(default = "default_expect_status")]
    pub expect_status: u16,
}

fn default_expect_status() -> u16 {
    200
}

/// Rollout order over many hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rollout {
    /// Hosts deployed at the same time.
    #[serde(default = "default_parallel")]
    pub parallel: u32,
    /// A failed host stops the rollout before the hosts not started yet.
    #[serde(default = "default_stop_on_failure")]
    pub stop_on_failure: bool,
}

fn default_parallel() -> u32 {
    1
}

fn default_stop_on_failure() -> bool {
    true
}

impl Default for Rollout {
    fn default() -> Self {
        Self {
            parallel: default_parallel(),
            stop_on_failure: default_stop_on_failure(),
        }
    }
}

impl HostDelivery {
    pub(crate) fn validate(&self, problems: &mut Vec<FieldProblem>) {
        if self.keep_releases < 2 {
            problems.push(FieldProblem::new(
                "spec.host.keepReleases",
                "must be at least 2 (the current release and the one to switch back to)",
            ));
        }
        for (i, glob) in self.substitute.iter().enumerate() {
            if glob.trim().is_empty() || glob.starts_with('/') {
                problems.push(FieldProblem::new(
                    format!("spec.host.substitute[{i}]"),
                    format!("{glob:?} must be a non-empty glob relative to the App path"),
                ));
            }
        }
        if self.hooks.timeout.get().is_zero() {
            problems.push(FieldProblem::new(
                "spec.host.hooks.timeout",
                "must be greater than zero",
            ));
        }
        if let Some(check) = &self.health_check {
            check.validate(problems);
        }
        if self.rollout.parallel == 0 {
            problems.push(FieldProblem::new(
                "spec.host.rollout.parallel",
                "must be at least 1",
            ));
        }
    }
}

impl HealthCheck {
    fn validate(&self, problems: &mut Vec<FieldProblem>) {
        let field = "spec.host.healthCheck";
        match (&self.command, &self.http) {
            (None, None) => problems.push(FieldProblem::new(
                field,
                "one of command or http is required",
            )),
            (Some(_), Some(_)) => problems.push(FieldProblem::new(
                format!("{field}.http"),
                "cannot be combined with command",
            )),
            (Some(c), None) if c.trim().is_empty() => problems.push(FieldProblem::new(
                format!("{field}.command"),
                "must not be empty",
            )),
            (None, Some(http)) => {
                if !http.url.starts_with("http://") {
                    problems.push(FieldProblem::new(
                        format!("{field}.http.url"),
                        format!("{:?} must start with http://", http.url),
                    ));
                }
                if !(100..=599).contains(&http.expect_status) {
                    problems.push(FieldProblem::new(
                        format!("{field}.http.expectStatus"),
                        "must be an HTTP status code (100 to 599)",
                    ));
                }
            }
            _ => {}
        }
        if self.timeout.get().is_zero() {
            problems.push(FieldProblem::new(
                format!("{field}.timeout"),
                "must be greater than zero",
            ));
        }
    }
}

/// How one host's part of a rollout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum HostResult {
    /// The new release is current and healthy.
    Succeeded,
    /// The host already ran this release unchanged; nothing was done.
    Unchanged,
    /// The release failed its health check and the previous one is current again.
    RolledBack,
    /// Unreachable, refused, or a step failed; the current release was left as it was.
    Failed,
    /// Not started: an earlier host failed and the rollout stops on failure.
    Skipped,
}

impl HostResult {
    /// The word users see.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "Succeeded",
            Self::Unchanged => "Unchanged",
            Self::RolledBack => "RolledBack",
            Self::Failed => "Failed",
            Self::Skipped => "Skipped",
        }
    }
}

/// One host's part of a rollout, as history records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostRollout {
    /// Host name.
    pub host: String,
    /// Commit rolled out.
    pub revision: String,
    /// How it ended.
    pub result: HostResult,
    /// Health of the host's App after the rollout.
    pub health: HealthStatus,
    /// Whether the previous release was switched back to.
    pub rolled_back: bool,
    /// Commit of the release that was current before, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// Files sent (the rest were hard-linked from the previous release).
    pub files_sent: u64,
    /// Time spent uploading.
    pub upload: Duration,
    /// Time of the whole host rollout, connection included.
    pub total: Duration,
    /// The error, or the failed check's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The host parts of an App: hosts exclude a cluster, and `spec.host` needs hosts.
pub(crate) fn validate_app(spec: &crate::AppSpec, problems: &mut Vec<FieldProblem>) {
    let destination = &spec.destination;
    match &destination.hosts {
        Some(selector) => {
            selector.validate(problems);
            for (field, set) in [
                ("cluster", destination.cluster.is_some()),
                ("namespace", destination.namespace.is_some()),
            ] {
                if set {
                    problems.push(FieldProblem::new(
                        format!("spec.destination.{field}"),
                        "cannot be combined with spec.destination.hosts",
                    ));
                }
            }
        }
        None if spec.host.is_some() => problems.push(FieldProblem::new(
            "spec.host",
            "has no effect without spec.destination.hosts",
        )),
        None => {}
    }
    if let Some(delivery) = &spec.host {
        delivery.validate(problems);
    }
    // An App for hosts reaches no cluster, so it cannot read its objects.
    if let (Some(_), Some(subst)) = (&destination.hosts, &spec.substitutions) {
        for (field, set) in [
            ("fromConfigMap", !subst.from_config_map.is_empty()),
            ("fromSecret", !subst.from_secret.is_empty()),
        ] {
            if set {
                problems.push(FieldProblem::new(
                    format!("spec.substitutions.{field}"),
                    "cannot be used with spec.destination.hosts (it is read from a cluster); \
                     use spec.substitutions.vars or the Hosts' vars",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{Config, Document};

    fn config(values: Vec<serde_json::Value>) -> Result<Config, Vec<String>> {
        let docs = values.into_iter().enumerate().map(|(i, value)| Document {
            file: "hosts.yaml".into(),
            index: i + 1,
            value,
        });
        Config::from_documents(docs).map_err(|p| p.0.iter().map(ToString::to_string).collect())
    }

    fn source() -> serde_json::Value {
        json!({"apiVersion": "driftless.dev/v1alpha1", "kind": "GitSource", "metadata": {"name": "platform"},
               "spec": {"url": "https://git.example.com/p.git", "ref": {"branch": "main"}}})
    }

    fn host(name: &str, spec: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "driftless.dev/v1alpha1", "kind": "Host",
               "metadata": {"name": name, "labels": {"role": "web"}}, "spec": spec})
    }

    fn app(spec: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "driftless.dev/v1alpha1", "kind": "App", "metadata": {"name": "web-hosts"}, "spec": spec})
    }

    #[test]
    fn hosts_and_a_host_app_load_with_defaults_and_select_by_label() {
        let cfg = config(vec![
            source(),
            host("web-2", json!({"address": "10.0.0.6", "user": "deploy",
                "identityFile": "keys/deploy", "knownHostsFile": "/etc/driftless/known_hosts"})),
            host("web-1", json!({"address": "10.0.0.5", "user": "deploy",
                "identityFile": "keys/deploy", "knownHostsFile": "/etc/driftless/known_hosts"})),
            app(json!({"sourceRef": {"name": "platform"}, "path": "hosts/web",
                "destination": {"hosts": {"matchLabels": {"role": "web"}}},
                "host": {"substitute": ["*.conf"], "healthCheck": {"command": "true", "retries": 3}}})),
        ])
        .expect("valid config");
        let web1 = cfg.host("web-1").expect("web-1 loaded");
        assert_eq!(web1.spec.port, 22);
        assert_eq!(web1.spec.apps_root, "/var/lib/driftless/apps");
        assert_eq!(web1.spec.identity_file.as_deref(), Some("keys/deploy"));
        let app = cfg.app("web-hosts").expect("app loaded");
        let delivery = app.spec.host.as_ref().expect("spec.host");
        assert_eq!(delivery.keep_releases, 5);
        assert_eq!(delivery.rollout.parallel, 1);
        assert!(delivery.rollout.stop_on_failure);
        let names: Vec<&str> = cfg.hosts_of(app).iter().map(|h| h.name()).collect();
        assert_eq!(names, ["web-1", "web-2"]);
    }

    #[test]
    fn every_problem_names_file_object_and_field() {
        let problems = config(vec![
            source(),
            host(
                "web-1",
                json!({"address": "", "user": "deploy", "identityFile": "k", "appsRoot": "rel/path",
                "vars": {"1bad": "x"}}),
            ),
            app(json!({"sourceRef": {"name": "platform"},
                "destination": {"hosts": {"names": ["web-1", "web-9"]}, "namespace": "web"},
                "host": {"keepReleases": 1, "healthCheck": {"http": {"url": "https://x/"}},
                         "rollout": {"parallel": 0}}})),
        ])
        .expect_err("invalid config");
        assert_eq!(
            problems,
            [
                "hosts.yaml (document 2, Host/web-1): spec.address: must not be empty",
                "hosts.yaml (document 2, Host/web-1): spec.knownHostsFile: required with spec.identityFile: host keys are always checked",
                "hosts.yaml (document 2, Host/web-1): spec.appsRoot: \"rel/path\" must be an absolute path without '..'",
                "hosts.yaml (document 2, Host/web-1): spec.vars.1bad: is not a variable name (letters, digits and '_', no leading digit)",
                "hosts.yaml (document 3, App/web-hosts): spec.destination.namespace: cannot be combined with spec.destination.hosts",
                "hosts.yaml (document 3, App/web-hosts): spec.host.keepReleases: must be at least 2 (the current release and the one to switch back to)",
                "hosts.yaml (document 3, App/web-hosts): spec.host.healthCheck.http.url: \"https://x/\" must start with http://",
                "hosts.yaml (document 3, App/web-hosts): spec.host.rollout.parallel: must be at least 1",
            ]
        );
        let from_cluster = config(vec![
            source(),
            host(
                "web-1",
                json!({"address": "10.0.0.5", "user": "deploy",
                "identityFile": "k", "knownHostsFile": "/k"}),
            ),
            app(json!({"sourceRef": {"name": "platform"},
                "destination": {"hosts": {"names": ["web-1"]}},
                "substitutions": {"fromSecret": [{"name": "s"}], "vars": {"A": "1"}}})),
        ])
        .expect_err("a Secret read from a cluster");
        assert_eq!(
            from_cluster,
            [
                "hosts.yaml (document 3, App/web-hosts): spec.substitutions.fromSecret: cannot be used with spec.destination.hosts (it is read from a cluster); use spec.substitutions.vars or the Hosts' vars"
            ]
        );
        let dangling = config(vec![
            source(),
            app(json!({"sourceRef": {"name": "platform"}, "destination": {"hosts": {"names": ["web-9"]}}})),
        ])
        .expect_err("dangling host");
        assert_eq!(
            dangling,
            [
                "hosts.yaml (document 2, App/web-hosts): spec.destination.hosts.names[0]: Host \"web-9\" not found"
            ]
        );
    }
}
