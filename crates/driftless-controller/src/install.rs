//! The manifests that install the controller: CRDs, and the controller itself
//! (Namespace, ServiceAccount, RBAC, Deployments, Service, optional volume).

use serde_json::{Value, json};

/// Default namespace of the controller.
pub const DEFAULT_NAMESPACE: &str = "driftless-system";
/// Name of the controller's ServiceAccount, Service and unsharded Deployment.
pub const NAME: &str = "driftless-controller";
/// Port of the API, webhooks and metrics in the pod.
pub const PORT: u16 = 9480;
/// Where the state store lives in the pod.
pub const DATA_DIR: &str = "/var/lib/driftless";
/// The user the container runs as (not root).
pub const USER: i64 = 65532;

/// What to install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallOptions {
    /// Namespace of the controller.
    pub namespace: String,
    /// Container image.
    pub image: String,
    /// One more Deployment per shard key, each reconciling the objects labelled with it.
    pub shards: Vec<String>,
    /// Size of a PersistentVolumeClaim for the state store (e.g. `1Gi`); an
    /// emptyDir when `None`.
    pub persistence: Option<String>,
}

impl InstallOptions {
    /// Defaults: the default namespace, the image of this version, no shards, emptyDir.
    pub fn new(version: &str) -> Self {
        Self {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            image: format!("ghcr.io/driftless-dev/driftless:v{version}"),
            shards: Vec::new(),
            persistence: None,
        }
    }
}

/// The CustomResourceDefinitions of every driftless kind served as a custom resource
/// (settings kinds are not).
pub fn crds() -> Vec<Value> {
    driftless_api::schema::crds()
        .into_iter()
        .map(|(_, crd)| crd)
        .collect()
}

/// Everything but the CRDs, in the order they apply.
pub fn controller(opts: &InstallOptions) -> Vec<Value> {
    let ns = opts.namespace.as_str();
    let labels =
        json!({"app.kubernetes.io/name": "driftless", "app.kubernetes.io/component": "controller"});
    let meta = |name: &str| json!({"name": name, "namespace": ns, "labels": labels});
    let mut out = vec![
        json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": labels}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(NAME)}),
        // Applying arbitrary objects needs every verb on every resource, as Flux
        // grants by default; docs/controller.md says how to narrow it per App.
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": format!("{NAME}-{ns}"), "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": ns}]}),
    ];
    if let Some(size) = &opts.persistence {
        out.push(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta(NAME),
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}}));
    }
    out.push(deployment(opts, None));
    for shard in &opts.shards {
        out.push(deployment(opts, Some(shard)));
    }
    out.push(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": meta(NAME),
        "spec": {"selector": selector(None),
            "ports": [{"name": "http", "port": PORT, "targetPort": "http"}]}}),
    );
    out
}

/// Deployment name of a shard (or of the unsharded instance).
pub fn deployment_name(shard: Option<&str>) -> String {
    match shard {
        Some(key) => format!("{NAME}-{key}"),
        None => NAME.to_owned(),
    }
}

fn selector(shard: Option<&str>) -> Value {
    json!({"app.kubernetes.io/name": "driftless", "app.kubernetes.io/instance": deployment_name(shard)})
}

fn deployment(opts: &InstallOptions, shard: Option<&str>) -> Value {
    let name = deployment_name(shard);
    let mut args = vec![
        "controller".to_owned(),
        format!("--listen=0.0.0.0:{PORT}"),
        format!("--data-dir={DATA_DIR}"),
        format!("--namespace={}", opts.namespace),
        "--leader-elect".to_owned(),
    ];
    if let Some(key) = shard {
        args.push(format!("--shard={key}"));
    }
    let data = match (&opts.persistence, shard) {
        (Some(_), None) => json!({"name": "data", "persistentVolumeClaim": {"claimName": NAME}}),
        _ => json!({"name": "data", "emptyDir": {}}),
    };
    let probe =
        |path: &str| json!({"httpGet": {"path": path, "port": "http"}, "periodSeconds": 10});
    let mut labels = selector(shard);
    labels["app.kubernetes.io/component"] = json!("controller");
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": opts.namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            // One writer of the store at a time: the new pod starts after the old one stopped.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector(shard)},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": NAME,
                    "securityContext": {"runAsNonRoot": true, "runAsUser": USER, "runAsGroup": USER,
                        "fsGroup": USER, "seccompProfile": {"type": "RuntimeDefault"}},
                    "terminationGracePeriodSeconds": 30,
                    "containers": [{
                        "name": "controller",
                        "image": opts.image,
                        "args": args,
                        "env": [
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        ],
                        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
                        "livenessProbe": probe("/healthz"),
                        "readinessProbe": probe("/readyz"),
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "128Mi"},
                            "limits": {"cpu": "2", "memory": "1Gi"},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "runAsNonRoot": true,
                            "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "volumeMounts": [
                            {"name": "data", "mountPath": DATA_DIR},
                            {"name": "tmp", "mountPath": "/tmp"},
                        ],
                    }],
                    "volumes": [data, {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_shard_gets_a_deployment_of_its_own() {
        let mut opts = InstallOptions::new("1.2.3");
        opts.shards = vec!["a".into(), "b".into()];
        let objects = controller(&opts);
        let deployments: Vec<&Value> = objects
            .iter()
            .filter(|o| o["kind"] == "Deployment")
            .collect();
        assert_eq!(deployments.len(), 3);
        let args = &deployments[1]["spec"]["template"]["spec"]["containers"][0]["args"];
        assert!(
            args.as_array()
                .is_some_and(|a| a.contains(&json!("--shard=a")))
        );
        assert_eq!(deployments[1]["metadata"]["name"], "driftless-controller-a");
    }

    #[test]
    fn the_crds_leave_out_the_settings_kind() {
        let kinds: Vec<String> = crds()
            .iter()
            .map(|c| {
                c["spec"]["names"]["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "GitSource",
                "App",
                "Cluster",
                "Receiver",
                "Notifier",
                "Host",
                "SyncWindow",
                "HelmRepository",
                "OCISource"
            ]
        );
    }
}
