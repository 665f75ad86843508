//! Jsonnet through jrsonnet, with go-jsonnet as the oracle.

use std::path::{Path, PathBuf};
use std::process::Command;

use driftless_render::{Error, JsonnetError, JsonnetOptions, RenderKind, render};
use serde_json::{Value, json};

use crate::{Repo, names};

use driftless_testenv::tools::go_jsonnet;

/// Evaluates with go-jsonnet, passing the same settings on its command line.
fn oracle(repo: &Repo, main: &Path, opts: &JsonnetOptions) -> Value {
    let mut cmd = Command::new(go_jsonnet());
    for lib in &opts.lib_paths {
        cmd.arg("-J").arg(repo.root().join(lib));
    }
    for (flag, vars) in [
        ("--ext-str", &opts.ext_vars),
        ("--ext-code", &opts.ext_code),
        ("--tla-str", &opts.tla_vars),
        ("--tla-code", &opts.tla_code),
    ] {
        for (k, v) in vars {
            cmd.arg(flag).arg(format!("{k}={v}"));
        }
    }
    let out = cmd.arg(main).output().expect("run go-jsonnet");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("go-jsonnet prints JSON")
}

const LIB: &str = r#"{
  labels(app):: { app: app, 'app.kubernetes.io/managed-by': 'driftless' },
  configMap(name, data):: {
    apiVersion: 'v1', kind: 'ConfigMap',
    metadata: { name: name, labels: $.labels(name) },
    data: data,
  },
}
"#;

const MAIN: &str = r#"local k = import 'k.libsonnet';
local params = import 'params.libsonnet';
function(replicas=1, suffix='x')
[
  k.configMap('settings-' + suffix, {
    env: std.extVar('env'),
    region: std.asciiUpper(std.extVar('region')),
    joined: std.join(',', std.map(function(i) std.toString(i * 2), std.range(1, 5))),
    sorted: std.manifestJsonEx(std.sort(['b', 'c', 'a']), ''),
    yaml: std.manifestYamlDoc({ a: [1, 2], b: { c: 'd' } }),
    encoded: std.base64('driftless'),
    formatted: std.format('%s-%05d-%.2f', ['v', 42, 3.14159]),
  }),
  {
    apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: { name: 'web', labels: k.labels('web') },
    spec: {
      replicas: replicas,
      template: { spec: { containers: [
        { name: c, image: params.images[c] } for c in std.objectFields(params.images)
      ] } },
    },
  },
] + std.extVar('extra')
"#;

fn program(repo: &Repo) -> (PathBuf, JsonnetOptions) {
    repo.write("vendor/k.libsonnet", LIB);
    repo.write(
        "apps/web/params.libsonnet",
        "{ images: { web: 'nginx:1.27', sidecar: 'envoy:1.30' } }\n",
    );
    let main = repo.write("apps/web/main.jsonnet", MAIN);
    repo.write("apps/web/other.jsonnet", "{}");
    let opts = JsonnetOptions {
        main: None,
        lib_paths: vec!["vendor".into()],
        ext_vars: [("env", "prod"), ("region", "eu-west-1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ext_code: [(
            "extra".to_string(),
            "[{apiVersion: 'v1', kind: 'Namespace', metadata: {name: 'web'}}]".to_string(),
        )]
        .into_iter()
        .collect(),
        tla_vars: [("suffix".to_string(), "prod".to_string())]
            .into_iter()
            .collect(),
        tla_code: [("replicas".to_string(), "2 + 1".to_string())]
            .into_iter()
            .collect(),
    };
    (main, opts)
}

#[test]
fn output_equals_go_jsonnet() {
    let repo = Repo::new();
    let (main, jsonnet) = program(&repo);
    let mut opts = repo.opts();
    opts.jsonnet = jsonnet.clone();
    assert_eq!(
        driftless_render::detect(&repo.path("apps/web")).expect("detect"),
        RenderKind::Jsonnet
    );
    let set = render(&repo.path("apps/web"), &opts).expect("render");
    let ours = Value::Array(set.iter().cloned().collect());
    assert_eq!(ours, oracle(&repo, &main, &jsonnet));
    // Hand-checked values, so a shared bug in both implementations still shows.
    assert_eq!(names(&set), ["settings-prod", "web", "web"]);
    assert_eq!(ours[0]["data"]["joined"], "2,4,6,8,10");
    assert_eq!(ours[0]["data"]["region"], "EU-WEST-1");
    assert_eq!(ours[0]["data"]["formatted"], "v-00042-3.14");
    assert_eq!(
        ours[0]["data"]["yaml"],
        "\"a\":\n- 1\n- 2\n\"b\":\n  \"c\": \"d\""
    );
    assert_eq!(ours[1]["spec"]["replicas"], 3);
    assert_eq!(
        ours[1]["spec"]["template"]["spec"]["containers"][0],
        json!({"name": "sidecar", "image": "envoy:1.30"})
    );
    assert_eq!(set.items()[0].origin, "apps/web/main.jsonnet at [0]");
}

#[test]
fn nested_objects_are_walked_in_key_order() {
    let repo = Repo::new();
    repo.write(
        "tk/main.jsonnet",
        r#"{
  zeta: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'z' } },
  alpha: {
    deep: [{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' } }],
    list: { apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'sa' } }] },
    nothing: null,
  },
}"#,
    );
    let set = render(&repo.path("tk"), &repo.opts()).expect("render");
    assert_eq!(names(&set), ["s", "sa", "z"]);
    assert_eq!(set.items()[0].origin, "tk/main.jsonnet at .alpha.deep[0]");

    repo.write("tk/main.jsonnet", "{ a: { b: 'just a string' } }");
    let err = render(&repo.path("tk"), &repo.opts()).expect_err("scalar");
    assert_eq!(
        err.to_string(),
        "tk/main.jsonnet: expected objects at \".a.b\", found a string"
    );
}

#[test]
fn imports_may_not_leave_the_root() {
    let repo = Repo::new();
    let outside = Repo::new();
    outside.write(
        "secret.libsonnet",
        "{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'stolen' } }",
    );
    // Both scratch roots sit in the same temp dir, so `../..` from `app/` reaches the other.
    let other = outside
        .root()
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let rel = format!("../../{other}/secret.libsonnet");
    for import in [rel.as_str(), "/etc/hostname"] {
        repo.write("app/main.jsonnet", &format!("[import '{import}']"));
        let err = render(&repo.path("app"), &repo.opts()).expect_err(import);
        let msg = err.to_string();
        assert!(
            msg.contains("outside the repository root")
                || msg.contains("absolute imports are refused"),
            "{msg}"
        );
        assert!(msg.starts_with("app/main.jsonnet: "), "{msg}");
    }
    std::os::unix::fs::symlink(
        outside.path("secret.libsonnet"),
        repo.path("app/link.libsonnet"),
    )
    .expect("link");
    repo.write("app/main.jsonnet", "[import 'link.libsonnet']");
    let err = render(&repo.path("app"), &repo.opts()).expect_err("symlink");
    assert!(
        err.to_string().contains("outside the repository root"),
        "{err}"
    );

    let mut opts = repo.opts();
    opts.jsonnet.lib_paths = vec!["../..".into()];
    let err = render(&repo.path("app"), &opts).expect_err("lib path");
    assert!(
        err.to_string().contains("outside the repository root"),
        "{err}"
    );
}

#[test]
fn main_file_choice() {
    let repo = Repo::new();
    repo.write(
        "app/a.jsonnet",
        "[{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' } }]",
    );
    repo.write(
        "app/b.jsonnet",
        "[{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'b' } }]",
    );
    let err = render(&repo.path("app"), &repo.opts()).expect_err("ambiguous");
    assert!(
        matches!(err, Error::Jsonnet(JsonnetError::Main { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("a.jsonnet, b.jsonnet"), "{err}");
    let mut opts = repo.opts();
    opts.jsonnet.main = Some("b.jsonnet".into());
    assert_eq!(names(&render(&repo.path("app"), &opts).expect("b")), ["b"]);
    std::fs::remove_file(repo.path("app/b.jsonnet")).expect("rm");
    assert_eq!(
        names(&render(&repo.path("app"), &repo.opts()).expect("only a")),
        ["a"]
    );
}

#[test]
fn runaway_programs_fail_cleanly() {
    let repo = Repo::new();
    let cases = [
        ("local f(x) = f(x + 1) + 1; f(0)", "stack"),
        ("local a = { b: error 'boom here' }; [a.b]", "boom here"),
        ("{ a: ", "main.jsonnet"),
        ("std.extVar('nope')", "nope"),
        (
            "local f(n) = if n == 0 then {} else { a: f(n - 1) }; f(120)",
            "nested deeper than 100 levels",
        ),
        (
            "local f(n) = if n == 0 then {} else { a: f(n - 1) }; f(150)",
            "recursion limit",
        ),
    ];
    for (code, needle) in cases {
        repo.write("app/main.jsonnet", code);
        let started = std::time::Instant::now();
        let err = render(&repo.path("app"), &repo.opts()).expect_err(code);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{code}"
        );
        let msg = err.to_string();
        assert!(msg.starts_with("app/main.jsonnet: "), "{msg}");
        assert!(msg.to_lowercase().contains(needle), "{code}: {msg}");
    }
}

/// A known difference from go-jsonnet: jrsonnet prints the shortest decimal
/// that reads back as the same float, go-jsonnet always 17 significant digits.
#[test]
fn float_to_string_differs_from_go_jsonnet() {
    let repo = Repo::new();
    let main = repo.write(
        "app/main.jsonnet",
        "[{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'f' }, data: { third: std.toString(1 / 3), half: std.toString(0.5) } }]",
    );
    let set = render(&repo.path("app"), &repo.opts()).expect("render");
    let ours = set.iter().next().expect("object")["data"].clone();
    let theirs = oracle(&repo, &main, &JsonnetOptions::default())[0]["data"].clone();
    assert_eq!(ours["half"], theirs["half"]);
    assert_eq!(ours["third"], "0.3333333333333333");
    assert_eq!(theirs["third"], "0.33333333333333331");
}
