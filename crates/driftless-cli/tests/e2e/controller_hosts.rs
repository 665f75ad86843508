//! Host custom resources under `driftless controller`: real sshd hosts on
//! loopback ports reached with the key and known_hosts of a Secret, an App
//! for hosts from a Git repository, the App's and the Hosts' status, drift
//! restored, a wrong host key and a Secret without a key refused.

use std::time::{Duration, Instant};

use driftless_testenv::hosts::{Lab, available, whoami};
use serde_json::Value;

use crate::controller::Installed;
use crate::support::{GitServer, Repo, Serve};

const WAIT: Duration = Duration::from_secs(90);

/// A Host resource for test host `index` of `lab`, reached through Secret `secret`.
fn host_cr(lab: &Lab, index: usize, name: &str, role: &str, secret: &str) -> String {
    let host = &lab.hosts[index];
    format!(
        "apiVersion: driftless.dev/v1alpha1
kind: Host
metadata: {{name: {name}, labels: {{role: {role}}}}}
spec:
  address: 127.0.0.1
  port: {port}
  user: {user}
  secretRef: {{name: {secret}}}
  appsRoot: {apps}
  vars: {{region: region-of-{name}}}
---
",
        port = host.port,
        user = whoami(),
        apps = host.apps().display(),
    )
}

/// A GitSource polling `url` every second and an App for hosts of `hosts`.
fn source_and_host_app(url: &str, app: &str, hosts: &str, extra: &str) -> String {
    format!(
        "apiVersion: driftless.dev/v1alpha1
kind: GitSource
metadata: {{name: platform}}
spec: {{url: \"{url}\", ref: {{branch: main}}, interval: 1s}}
---
apiVersion: driftless.dev/v1alpha1
kind: App
metadata: {{name: {app}}}
spec:
  sourceRef: {{name: platform}}
  path: hosts/web
  interval: 1s
  selfHeal: true
  destination: {{hosts: {hosts}}}
  host: {{substitute: [\"*.conf\"], rollout: {{parallel: 2, stopOnFailure: false}}}}
{extra}"
    )
}

/// Creates (or updates) Secret `name` holding `identity` and `known_hosts`.
fn ssh_secret(inst: &Installed, name: &str, identity: &str, known_hosts: Option<&str>) {
    let mut data = serde_json::json!({ "identity": identity });
    if let Some(known) = known_hosts {
        data["known_hosts"] = Value::from(known);
    }
    let secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name}, "stringData": data});
    inst.kubectl(&["apply", "-f", "-"], Some(&secret.to_string()));
}

fn condition<'a>(object: &'a Value, type_: &str) -> &'a Value {
    object["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

/// The App's resources as (kind, name, health).
fn resources(app: &Value) -> Vec<(String, String, String)> {
    app["status"]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let field = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (field("kind"), field("name"), field("health"))
        })
        .collect()
}

/// Waits until `check` holds on the file's content (`None`: no file).
async fn wait_file(path: &std::path::Path, what: &str, check: impl Fn(Option<&str>) -> bool) {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).ok();
        if check(text.as_deref()) {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "{}: {what}; last {text:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn no_key_material(ctl: &Serve, identity: &str) {
    let log = ctl.log();
    assert!(
        !log.contains("PRIVATE KEY"),
        "the key's armour is in the log"
    );
    for line in identity
        .lines()
        .filter(|l| l.len() > 20 && !l.starts_with("-----"))
    {
        assert!(!log.contains(line), "a line of the key is in the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_resources_with_a_secret_get_the_release_and_a_wrong_host_key_is_refused() {
    if !available() {
        return;
    }
    let lab = Lab::start(3);
    let inst = Installed::new("e2e-ctl-hosts").await;
    let ns = inst.name().to_owned();
    let server = GitServer::start();
    let repo = Repo::new(&server, "platform");
    repo.write("hosts/web/etc/app.conf", "region=${region}\n");
    repo.write("hosts/web/index.html", "v1\n");
    let c1 = repo.push("first");
    let identity = std::fs::read_to_string(lab.identity()).expect("key");
    let known = |i: usize| std::fs::read_to_string(lab.hosts[i].known_hosts()).expect("known");
    // One Secret for both web hosts; h2's Secret records h0's key at h2's port.
    ssh_secret(&inst, "web-ssh", &identity, Some(&(known(0) + &known(1))));
    let wrong = known(0).replace(
        &lab.hosts[0].port.to_string(),
        &lab.hosts[2].port.to_string(),
    );
    ssh_secret(&inst, "edge-ssh", &identity, Some(&wrong));
    ssh_secret(&inst, "half-ssh", &identity, None);
    let manifests = [
        host_cr(&lab, 0, "h0", "web", "web-ssh"),
        host_cr(&lab, 1, "h1", "web", "web-ssh"),
        host_cr(&lab, 2, "edge", "edge", "edge-ssh"),
        // Points at h1, but its Secret lacks known_hosts: nothing reaches h1 for it.
        host_cr(&lab, 1, "half", "edge", "half-ssh"),
        source_and_host_app(&repo.url, "web", "{matchLabels: {role: web}}", "---\n"),
    ]
    .concat();
    let edge_app = source_and_host_app(&repo.url, "edge", "{names: [edge, half]}", "");
    let edge_app = edge_app
        .split("---\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    inst.kubectl(&["apply", "-f", "-"], Some(&(manifests + &edge_app)));
    let ctl = inst.controller(&[], None);

    let app = inst
        .wait("app", "web", "Ready on both hosts", |o| {
            condition(o, "Ready")["status"] == "True"
                && o["status"]["lastApplied"]["sha"] == c1.as_str()
        })
        .await;
    let qualified = |h: &str| format!("{ns}.{h}");
    assert_eq!(
        resources(&app),
        [
            ("Host".to_owned(), qualified("h0"), "Healthy".to_owned()),
            ("Host".to_owned(), qualified("h1"), "Healthy".to_owned()),
        ],
        "{app:#}"
    );
    let web = format!("{ns}.web");
    let conf = |i: usize| lab.hosts[i].app_root(&web).join("current/etc/app.conf");
    assert_eq!(
        std::fs::read_to_string(conf(0)).expect("h0"),
        "region=region-of-h0\n"
    );
    assert_eq!(
        std::fs::read_to_string(conf(1)).expect("h1"),
        "region=region-of-h1\n"
    );
    for host in ["h0", "h1"] {
        let object = inst
            .wait("host", host, "Ready", |o| {
                condition(o, "Ready")["status"] == "True"
            })
            .await;
        assert_eq!(
            condition(&object, "Ready")["reason"],
            "Reachable",
            "{object:#}"
        );
    }
    let history = &app["status"]["history"][0];
    assert_eq!(history["revision"]["sha"], c1.as_str(), "{app:#}");

    // A file edited on a host is restored (selfHeal).
    let page = lab.hosts[0].app_root(&web).join("current/index.html");
    std::fs::write(&page, "edited by hand\n").expect("edit");
    wait_file(&page, "restored", |t| t == Some("v1\n")).await;

    // The wrong host key: refused naming the Secret's key, nothing uploaded.
    let edge = inst
        .wait("host", "edge", "refused", |o| {
            condition(o, "Ready")["reason"] == "HostKeyMismatch"
        })
        .await;
    let message = condition(&edge, "Ready")["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains(&format!("Secret {ns}/edge-ssh key known_hosts line 1")),
        "{edge:#}"
    );
    assert_eq!(condition(&edge, "Ready")["status"], "False");
    // The Secret without known_hosts: a condition naming the Secret and the key.
    let half = inst
        .wait("host", "half", "refused", |o| {
            condition(o, "Ready")["reason"] == "SecretInvalid"
        })
        .await;
    let message = condition(&half, "Ready")["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains(&format!("Secret {ns}/half-ssh has no key known_hosts")),
        "{half:#}"
    );
    let edge_app = inst
        .wait("app", "edge", "failed on both", |o| {
            condition(o, "Ready")["status"] == "False" && resources(o).len() == 2
        })
        .await;
    let healths: Vec<String> = resources(&edge_app).into_iter().map(|r| r.2).collect();
    assert_eq!(healths, ["Degraded", "Degraded"], "{edge_app:#}");
    let edge_root = format!("{ns}.edge");
    assert_eq!(
        std::fs::read_dir(lab.hosts[2].apps())
            .expect("apps")
            .count(),
        0,
        "nothing uploaded to the host whose key did not match"
    );
    assert!(
        !lab.hosts[1].app_root(&edge_root).exists(),
        "nothing for half"
    );

    // The Secret corrected: the host key now matches and the release arrives.
    ssh_secret(&inst, "edge-ssh", &identity, Some(&known(2)));
    inst.wait("host", "edge", "Ready", |o| {
        condition(o, "Ready")["status"] == "True"
    })
    .await;
    let edge_conf = lab.hosts[2]
        .app_root(&edge_root)
        .join("current/etc/app.conf");
    wait_file(&edge_conf, "deployed", |t| {
        t == Some("region=region-of-edge\n")
    })
    .await;
    no_key_material(&ctl, &identity);
}
