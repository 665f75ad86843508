//! Name-reference fix-ups: after renames (prefix, suffix, hash), fields that
//! name another resource of the build are updated to its final name.

use serde_json::Value;

use crate::fieldspec::{FieldSpec, split_path, visit_path};
use crate::resource::{Gvk, ResId, Resource};

/// Where pod specs live, for the kinds whose ConfigMap and Secret
/// references kustomize v5.5.0 follows (not ReplicationController).
const CONFIG_POD_SPECS: &[(&str, &str)] = &[
    ("Pod", "spec"),
    ("PodTemplate", "template/spec"),
    ("Deployment", "spec/template/spec"),
    ("ReplicaSet", "spec/template/spec"),
    ("DaemonSet", "spec/template/spec"),
    ("StatefulSet", "spec/template/spec"),
    ("Job", "spec/template/spec"),
    ("CronJob", "spec/jobTemplate/spec/template/spec"),
];

/// Where pod specs live, for the kinds whose ServiceAccount, claim and
/// PriorityClass references kustomize v5.5.0 follows (not ReplicaSet).
const OTHER_POD_SPECS: &[(&str, &str)] = &[
    ("Pod", "spec"),
    ("StatefulSet", "spec/template/spec"),
    ("Deployment", "spec/template/spec"),
    ("ReplicationController", "spec/template/spec"),
    ("CronJob", "spec/jobTemplate/spec/template/spec"),
    ("Job", "spec/template/spec"),
    ("DaemonSet", "spec/template/spec"),
];

const CONFIGMAP_IN_POD: &[&str] = &[
    "volumes/configMap/name",
    "containers/env/valueFrom/configMapKeyRef/name",
    "initContainers/env/valueFrom/configMapKeyRef/name",
    "containers/envFrom/configMapRef/name",
    "initContainers/envFrom/configMapRef/name",
    "volumes/projected/sources/configMap/name",
];

const SECRET_IN_POD: &[&str] = &[
    "volumes/secret/secretName",
    "containers/env/valueFrom/secretKeyRef/name",
    "initContainers/env/valueFrom/secretKeyRef/name",
    "containers/envFrom/secretRef/name",
    "initContainers/envFrom/secretRef/name",
    "imagePullSecrets/name",
    "volumes/projected/sources/secret/name",
];

/// One entry of the name-reference table.
struct Rule {
    target: Gvk,
    referrers: Vec<FieldSpec>,
}

fn gvk(group: &str, version: &str, kind: &str) -> Gvk {
    Gvk {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
    }
}

fn pod_specs(kinds: &[(&str, &str)], paths: &[&str]) -> Vec<FieldSpec> {
    let mut v = Vec::new();
    for (kind, prefix) in kinds {
        for p in paths {
            v.push(FieldSpec::new(
                "",
                "",
                kind,
                &format!("{prefix}/{p}"),
                false,
            ));
        }
    }
    v
}

fn rules() -> Vec<Rule> {
    let fs = |g: &str, k: &str, p: &str| FieldSpec::new(g, "", k, p, false);
    let ingress_annotation = |name: &str| {
        fs(
            "",
            "Ingress",
            &format!("metadata/annotations/{}", name.replace('/', "\\/")),
        )
    };
    let mut secret_refs = pod_specs(CONFIG_POD_SPECS, SECRET_IN_POD);
    secret_refs.extend([
        fs("", "Ingress", "spec/tls/secretName"),
        ingress_annotation("ingress.kubernetes.io/auth-secret"),
        ingress_annotation("nginx.ingress.kubernetes.io/auth-secret"),
        ingress_annotation("nginx.ingress.kubernetes.io/auth-tls-secret"),
        fs("", "ServiceAccount", "imagePullSecrets/name"),
        fs("", "StorageClass", "parameters/secretName"),
        fs("", "StorageClass", "parameters/adminSecretName"),
        fs("", "StorageClass", "parameters/userSecretName"),
        fs("", "StorageClass", "parameters/secretRef"),
        fs("rbac.authorization.k8s.io", "Role", "rules/resourceNames"),
        fs(
            "rbac.authorization.k8s.io",
            "ClusterRole",
            "rules/resourceNames",
        ),
        FieldSpec::new(
            "serving.knative.dev",
            "v1",
            "Service",
            "spec/template/spec/containers/env/valueFrom/secretKeyRef/name",
            false,
        ),
        fs("", "PersistentVolume", "spec/azureFile/secretName"),
    ]);
    let mut sa_refs = pod_specs(OTHER_POD_SPECS, &["serviceAccountName"]);
    sa_refs.extend([
        fs("rbac.authorization.k8s.io", "RoleBinding", "subjects/name"),
        fs(
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            "subjects/name",
        ),
    ]);
    let scale = |k: &str| Rule {
        target: gvk("", "", k),
        referrers: vec![fs(
            "",
            "HorizontalPodAutoscaler",
            "spec/scaleTargetRef/name",
        )],
    };
    vec![
        Rule {
            target: gvk("", "v1", "ConfigMap"),
            referrers: {
                let mut v = pod_specs(CONFIG_POD_SPECS, CONFIGMAP_IN_POD);
                v.extend([
                    fs("", "Node", "spec/configSource/configMap"),
                    fs("rbac.authorization.k8s.io", "Role", "rules/resourceNames"),
                    fs(
                        "rbac.authorization.k8s.io",
                        "ClusterRole",
                        "rules/resourceNames",
                    ),
                    ingress_annotation("nginx.ingress.kubernetes.io/fastcgi-params-configmap"),
                ]);
                v
            },
        },
        Rule {
            target: gvk("", "v1", "Secret"),
            referrers: secret_refs,
        },
        Rule {
            target: gvk("", "v1", "Service"),
            referrers: vec![
                fs("", "Ingress", "spec/rules/http/paths/backend/serviceName"),
                fs("", "Ingress", "spec/backend/serviceName"),
                fs("", "Ingress", "spec/rules/http/paths/backend/service/name"),
                fs("", "Ingress", "spec/defaultBackend/service/name"),
                fs("apps", "StatefulSet", "spec/serviceName"),
                fs("", "APIService", "spec/service/name"),
                fs(
                    "",
                    "MutatingWebhookConfiguration",
                    "webhooks/clientConfig/service/name",
                ),
                fs(
                    "",
                    "ValidatingWebhookConfiguration",
                    "webhooks/clientConfig/service/name",
                ),
            ],
        },
        Rule {
            target: gvk("", "v1", "ServiceAccount"),
            referrers: sa_refs,
        },
        Rule {
            target: gvk("rbac.authorization.k8s.io", "", "Role"),
            referrers: vec![fs(
                "rbac.authorization.k8s.io",
                "RoleBinding",
                "roleRef/name",
            )],
        },
        Rule {
            target: gvk("rbac.authorization.k8s.io", "", "ClusterRole"),
            referrers: vec![
                fs("rbac.authorization.k8s.io", "RoleBinding", "roleRef/name"),
                fs(
                    "rbac.authorization.k8s.io",
                    "ClusterRoleBinding",
                    "roleRef/name",
                ),
            ],
        },
        Rule {
            target: gvk("", "v1", "PersistentVolumeClaim"),
            referrers: pod_specs(
                OTHER_POD_SPECS,
                &["volumes/persistentVolumeClaim/claimName"],
            ),
        },
        Rule {
            target: gvk("", "v1", "PersistentVolume"),
            referrers: vec![
                fs("", "PersistentVolumeClaim", "spec/volumeName"),
                fs(
                    "rbac.authorization.k8s.io",
                    "ClusterRole",
                    "rules/resourceNames",
                ),
            ],
        },
        Rule {
            target: gvk("scheduling.k8s.io", "", "PriorityClass"),
            referrers: pod_specs(OTHER_POD_SPECS, &["priorityClassName"]),
        },
        Rule {
            target: gvk("storage.k8s.io", "", "StorageClass"),
            referrers: vec![
                fs("", "PersistentVolumeClaim", "spec/storageClassName"),
                fs("", "PersistentVolume", "spec/storageClassName"),
                fs(
                    "apps",
                    "StatefulSet",
                    "spec/volumeClaimTemplates/spec/storageClassName",
                ),
            ],
        },
        Rule {
            target: gvk(
                "admissionregistration.k8s.io",
                "",
                "ValidatingAdmissionPolicy",
            ),
            referrers: vec![fs(
                "admissionregistration.k8s.io",
                "ValidatingAdmissionPolicyBinding",
                "spec/policyName",
            )],
        },
        scale("Deployment"),
        scale("ReplicaSet"),
        scale("StatefulSet"),
        scale("ReplicationController"),
    ]
}

/// Updates every name reference to its referral's final name.
pub fn fix_references(
    res: &mut [Resource],
    cfg: &crate::config::TransformerConfig,
) -> Result<(), String> {
    let snapshot: Vec<Resource> = res.to_vec();
    // Every identity each resource has had, computed once for all lookups.
    let ids: Vec<Vec<ResId>> = snapshot.iter().map(Resource::all_ids).collect();
    let index: Vec<(&Resource, &[ResId])> =
        snapshot.iter().zip(ids.iter().map(Vec::as_slice)).collect();
    let mut all = rules();
    all.extend(cfg.name_reference.iter().map(|(target, referrers)| Rule {
        target: target.clone(),
        referrers: referrers.clone(),
    }));
    for rule in all {
        for (ri, referrer) in res.iter_mut().enumerate() {
            let rgvk = referrer.gvk();
            for spec in &rule.referrers {
                if !rgvk.is_selected_by(&spec.gvk) {
                    continue;
                }
                let referrer_snapshot = &snapshot[ri];
                let mut error = None;
                visit_path(
                    &mut referrer.obj,
                    &split_path(&spec.path),
                    false,
                    &mut |m, key| {
                        if error.is_some() {
                            return;
                        }
                        let is_subject = spec.path == "subjects/name";
                        if is_subject
                            && m.get("kind").and_then(Value::as_str)
                                != Some(rule.target.kind.as_str())
                        {
                            return;
                        }
                        if spec.path == "roleRef/name"
                            && m.get("kind").and_then(Value::as_str)
                                != Some(rule.target.kind.as_str())
                        {
                            return;
                        }
                        // A list of names: each element is a reference.
                        if let Some(Value::Array(items)) = m.get_mut(key) {
                            for item in items.iter_mut() {
                                let Value::String(old) = item else { continue };
                                match select(
                                    &index,
                                    referrer_snapshot,
                                    &rule.target,
                                    old,
                                    None,
                                    false,
                                ) {
                                    Ok(Some(found)) => {
                                        *item = Value::String(found.name().to_string())
                                    }
                                    Ok(None) => {}
                                    Err(e) => error = Some(e),
                                }
                            }
                            return;
                        }
                        let Some(Value::String(old)) = m.get(key) else {
                            return;
                        };
                        if is_subject
                            && m.get("namespace")
                                .is_some_and(|ns| ns.is_null() || ns.as_str() == Some(""))
                        {
                            error = Some(format!(
                                "Invalid Input: namespace is blank for resource {}",
                                referrer_snapshot.cur_id()
                            ));
                            return;
                        }
                        // Subjects and webhook/API service references carry the
                        // referral's namespace beside its name.
                        let service_ref = spec.path.ends_with("clientConfig/service/name")
                            || spec.path == "spec/service/name";
                        let subject_ns = if is_subject || service_ref {
                            m.get("namespace")
                                .and_then(Value::as_str)
                                .map(str::to_string)
                        } else {
                            None
                        };
                        match select(
                            &index,
                            referrer_snapshot,
                            &rule.target,
                            old,
                            subject_ns.as_deref(),
                            is_subject,
                        ) {
                            Ok(Some(found)) => {
                                let new_name = found.name().to_string();
                                let new_ns = found.namespace().map(str::to_string);
                                m.insert(key.to_string(), Value::String(new_name));
                                if let Some(ns) = new_ns
                                    && (is_subject || (service_ref && m.contains_key("namespace")))
                                {
                                    m.insert("namespace".into(), Value::String(ns));
                                }
                            }
                            Ok(None) => {}
                            Err(e) => error = Some(e),
                        }
                    },
                );
                if let Some(e) = error {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// Picks the referral named `old`. A subject (`renamed_only`) is a map whose
/// name and namespace both come from the referral: as in kustomize, only a
/// referral renamed or moved by the build (one with previous identities) is
/// looked up by a previous name, in the namespace the subject names (the
/// binding's when it names none).
fn select<'a>(
    all: &[(&'a Resource, &[ResId])],
    referrer: &Resource,
    target: &Gvk,
    old: &str,
    subject_ns: Option<&str>,
    renamed_only: bool,
) -> Result<Option<&'a Resource>, String> {
    let referrer_id = referrer.cur_id();
    let named = |id: &ResId| id.name == old && id.gvk.is_selected_by(target);
    let mut candidates: Vec<&Resource> = all
        .iter()
        .filter(|(r, ids)| {
            if renamed_only {
                r.prev_ids.iter().any(named)
            } else {
                ids.iter().any(named)
            }
        })
        .map(|(r, _)| *r)
        .collect();
    if candidates.is_empty() {
        return Ok(None);
    }
    if !referrer_id.gvk.is_cluster_scoped() {
        candidates.retain(|c| {
            let cid = c.cur_id();
            if cid.gvk.is_cluster_scoped() {
                return true;
            }
            match subject_ns {
                Some(ns) => c
                    .all_ids()
                    .iter()
                    .any(|id| id.effective_namespace() == ns_or_default(ns)),
                // A subject without a namespace names one in the binding's
                // namespace, where the referral is or was before it moved.
                None if renamed_only => c
                    .all_ids()
                    .iter()
                    .any(|id| id.effective_namespace() == referrer_id.effective_namespace()),
                None => cid.effective_namespace() == referrer_id.effective_namespace(),
            }
        });
    } else if let Some(ns) = subject_ns {
        candidates.retain(|c| {
            c.all_ids()
                .iter()
                .any(|id| id.effective_namespace() == ns_or_default(ns))
        });
    }
    // Prefer referrals renamed along the same kustomization path, strictly
    // first, then letting a side that was never renamed match anything.
    for lenient in [false, true] {
        if candidates.len() > 1 {
            let same: Vec<&Resource> = candidates
                .iter()
                .copied()
                .filter(|c| c.same_affixes(referrer, lenient))
                .collect();
            if !same.is_empty() {
                candidates = same;
            }
        }
    }
    match candidates.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        [first, rest @ ..] => {
            // Same name everywhere (and, for a subject, which takes the
            // namespace too, the same namespace): the most recently
            // accumulated copy is the one kustomize's output follows (e.g. an
            // overlay's moved Service).
            let alike = |c: &&Resource| {
                c.name() == first.name() && (!renamed_only || c.namespace() == first.namespace())
            };
            if rest.iter().all(alike) {
                Ok(Some(*rest.last().unwrap_or(first)))
            } else {
                let ids: Vec<String> = candidates.iter().map(|c| c.cur_id().to_string()).collect();
                Err(format!(
                    "found multiple possible referrals: {} (for {} '{old}' referenced by {})",
                    ids.join(", "),
                    target.kind,
                    referrer.cur_id()
                ))
            }
        }
    }
}

fn ns_or_default(ns: &str) -> &str {
    if ns.is_empty() { "default" } else { ns }
}
