//! Output ordering: kustomize's legacy kind-based order or input order.

use serde_json::Value;

use crate::Error;
use crate::kustomization::Kustomization;
use crate::resource::{Gvk, Resource};

const ORDER_FIRST: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];

const ORDER_LAST: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// The place of `kind` in kustomize's default kind order (negative for the
/// kinds it puts first, positive for those it puts last, else zero).
pub fn legacy_rank(kind: &str) -> i64 {
    if let Some(i) = ORDER_FIRST.iter().position(|k| *k == kind) {
        return i as i64 - ORDER_FIRST.len() as i64;
    }
    if let Some(i) = ORDER_LAST.iter().position(|k| *k == kind) {
        return 1 + i as i64;
    }
    0
}

/// A legacy sort with its first and last kinds.
pub struct SortSpec {
    first: Vec<String>,
    last: Vec<String>,
    fifo: bool,
}

impl SortSpec {
    /// kustomize's default legacy order.
    pub fn legacy() -> SortSpec {
        SortSpec {
            first: ORDER_FIRST.iter().map(|s| s.to_string()).collect(),
            last: ORDER_LAST.iter().map(|s| s.to_string()).collect(),
            fifo: false,
        }
    }

    /// Reads `sortOptions:`, if present.
    pub fn from_kustomization(k: &Kustomization) -> Result<Option<SortSpec>, Error> {
        let Some(opts) = k.fields.get("sortOptions") else {
            return Ok(None);
        };
        Self::from_value(opts)
            .map(Some)
            .map_err(|m| Error::invalid(&k.path, m))
    }

    /// Reads a `sortOptions` value.
    pub fn from_value(opts: &Value) -> Result<SortSpec, String> {
        let order = opts.get("order").and_then(Value::as_str).unwrap_or("");
        let legacy = opts.get("legacySortOptions");
        match order {
            "fifo" => {
                if legacy.is_some() {
                    return Err("the field 'sortOptions.legacySortOptions' is set but the selected sort order is 'fifo', not 'legacy'".into());
                }
                Ok(SortSpec {
                    first: Vec::new(),
                    last: Vec::new(),
                    fifo: true,
                })
            }
            "legacy" => {
                let Some(l) = legacy else {
                    return Ok(SortSpec::legacy());
                };
                let list = |f: &str| -> Vec<String> {
                    l.get(f)
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default()
                };
                Ok(SortSpec {
                    first: list("orderFirst"),
                    last: list("orderLast"),
                    fifo: false,
                })
            }
            other => Err(format!(
                "the field 'sortOptions.order' must be one of [fifo, legacy], not '{other}'"
            )),
        }
    }

    fn rank(&self, kind: &str) -> i64 {
        if let Some(i) = self.first.iter().position(|k| k == kind) {
            return i as i64 - self.first.len() as i64;
        }
        if let Some(i) = self.last.iter().position(|k| k == kind) {
            return 1 + i as i64;
        }
        0
    }
}

fn gvk_string(g: &Gvk) -> String {
    let or = |s: &str, d: &str| {
        if s.is_empty() {
            d.to_string()
        } else {
            s.to_string()
        }
    };
    format!(
        "{}_{}_{}",
        or(&g.group, "~G"),
        or(&g.version, "~V"),
        or(&g.kind, "~K")
    )
}

/// Sorts resources in place.
pub fn apply(res: &mut [Resource], spec: &SortSpec) {
    if spec.fifo {
        return;
    }
    res.sort_by_cached_key(|r| {
        let id = r.cur_id();
        let ns = if id.namespace.is_empty() {
            "~X".to_string()
        } else {
            id.namespace.clone()
        };
        let g = gvk_string(&id.gvk);
        (
            spec.rank(&id.gvk.kind),
            g.clone(),
            format!("{g}|{ns}|{}", id.name),
        )
    });
}
