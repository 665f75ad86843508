//! The local control plane behaves like a real cluster: the controller-manager,
//! scheduler and simulated kubelets (kwok) work together.

use std::time::Duration;

use driftless_testenv::{shared, wait_until};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::core::GroupVersionKind;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(60);

fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("test object is valid")
}

fn web_deployment(replicas: i32) -> Deployment {
    from_json(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}
            }
        }
    }))
}

#[tokio::test]
async fn deployment_becomes_available_and_its_pods_are_collected_on_delete() {
    let ns = shared().namespace("deploy").await.expect("namespace");
    let deployments: Api<Deployment> = ns.api();
    deployments
        .create(&PostParams::default(), &web_deployment(2))
        .await
        .expect("create deployment");

    wait_until(
        TIMEOUT,
        "deployment web Available with 2 ready replicas",
        || {
            let deployments = deployments.clone();
            async move {
                let Ok(d) = deployments.get("web").await else {
                    return false;
                };
                let status = d.status.unwrap_or_default();
                let available = status
                    .conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Available" && c.status == "True");
                available
                    && status.ready_replicas == Some(2)
                    && status.available_replicas == Some(2)
            }
        },
    )
    .await
    .expect("deployment available");

    let pods: Api<Pod> = ns.api();
    let running = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("list pods");
    assert_eq!(running.items.len(), 2, "two pods run for two replicas");
    for pod in &running.items {
        let spec = pod.spec.as_ref().expect("pod spec");
        assert_eq!(
            spec.node_name.as_deref(),
            Some("kwok-node-0"),
            "scheduled onto the fake node"
        );
    }

    deployments
        .delete("web", &DeleteParams::background())
        .await
        .expect("delete deployment");
    wait_until(
        TIMEOUT,
        "pods of deleted deployment garbage-collected",
        || {
            let pods = pods.clone();
            async move {
                pods.list(&ListParams::default().labels("app=web"))
                    .await
                    .is_ok_and(|l| l.items.is_empty())
            }
        },
    )
    .await
    .expect("pods collected");
}

#[tokio::test]
async fn job_runs_to_completion() {
    let ns = shared().namespace("job").await.expect("namespace");
    let jobs: Api<Job> = ns.api();
    let job: Job = from_json(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "migrate"},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "migrate", "image": "busybox:1.36", "command": ["true"]}]
            }}
        }
    }));
    jobs.create(&PostParams::default(), &job)
        .await
        .expect("create job");
    wait_until(TIMEOUT, "job migrate Complete", || {
        let jobs = jobs.clone();
        async move {
            let Ok(j) = jobs.get("migrate").await else {
                return false;
            };
            let status = j.status.unwrap_or_default();
            status
                .conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Complete" && c.status == "True")
                && status.succeeded == Some(1)
        }
    })
    .await
    .expect("job complete");
}

#[tokio::test]
async fn custom_resource_definition_is_established_and_serves_its_resources() {
    let env = shared();
    let ns = env.namespace("crd").await.expect("namespace");
    // A CRD is cluster-wide: its group carries the namespace name so parallel
    // runs never collide.
    let group = format!("{}.test.driftless.dev", ns.name());
    let crd_name = format!("widgets.{group}");
    let crd: CustomResourceDefinition = from_json(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                }}}
            }]
        }
    }));
    let client = ns.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("create crd");
    wait_until(TIMEOUT, "CRD Established", || {
        let crds = crds.clone();
        let crd_name = crd_name.clone();
        async move {
            let Ok(c) = crds.get(&crd_name).await else {
                return false;
            };
            c.status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        }
    })
    .await
    .expect("crd established");

    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(&group, "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> = Api::namespaced_with(client, ns.name(), &resource);
    let widget: DynamicObject = from_json(json!({
        "apiVersion": format!("{group}/v1"), "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"size": 3}
    }));
    // The new resource may take a moment to be served after Established.
    wait_until(TIMEOUT, "custom resource created", || {
        let widgets = widgets.clone();
        let widget = widget.clone();
        async move {
            widgets
                .create(&PostParams::default(), &widget)
                .await
                .is_ok()
        }
    })
    .await
    .expect("create widget");
    let read = widgets.get("w1").await.expect("read widget");
    assert_eq!(read.data["spec"]["size"], json!(3));

    crds.delete(&crd_name, &DeleteParams::default())
        .await
        .expect("delete crd");
}

#[test]
fn kubectl_sees_the_fake_node_ready() {
    let out = shared()
        .kubectl()
        .args(["get", "nodes", "--no-headers"])
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("kwok-node-0 "))
        .unwrap_or_else(|| panic!("node kwok-node-0 listed, got:\n{text}"));
    let status = line.split_whitespace().nth(1).expect("status column");
    assert_eq!(status, "Ready", "node line: {line}");
}
