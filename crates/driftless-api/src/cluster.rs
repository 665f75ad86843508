//! `Cluster`: how to reach a Kubernetes API server.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{Kind, Object};
use crate::status::ClusterStatus;
use crate::validate::FieldProblem;

/// A `Cluster` object.
pub type Cluster = Object<ClusterSpec>;

/// How to reach a cluster: exactly one of `kubeconfig` or `inCluster: true`.
/// Apps without `destination.cluster` use the default cluster instead, which
/// needs no Cluster object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSpec {
    /// A kubeconfig file and context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<KubeconfigRef>,
    /// Use the ServiceAccount of the pod driftless runs in.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_cluster: bool,
}

/// A kubeconfig file and the context to use from it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeconfigRef {
    /// Path of the kubeconfig file; relative to the declaring file.
    pub path: String,
    /// Context name; absent means the file's current context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

impl Kind for ClusterSpec {
    const KIND: &'static str = "Cluster";
    const PLURAL: &'static str = "clusters";
    const SHORT_NAMES: &'static [&'static str] = &[];
    type Status = ClusterStatus;

    fn validate(&self, problems: &mut Vec<FieldProblem>) {
        match (&self.kubeconfig, self.in_cluster) {
            (None, false) => problems.push(FieldProblem::new(
                "spec",
                "one of kubeconfig or inCluster: true is required",
            )),
            (Some(_), true) => problems.push(FieldProblem::new(
                "spec.inCluster",
                "cannot be combined with spec.kubeconfig",
            )),
            (Some(kc), false) => {
                if kc.path.trim().is_empty() {
                    problems.push(FieldProblem::new(
                        "spec.kubeconfig.path",
                        "must not be empty",
                    ));
                }
                if kc.context.as_deref().is_some_and(|c| c.trim().is_empty()) {
                    problems.push(FieldProblem::new(
                        "spec.kubeconfig.context",
                        "must not be empty",
                    ));
                }
            }
            (None, true) => {}
        }
    }
}
