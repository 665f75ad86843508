//! Loading and validating configs: the example config, and every kind of
//! problem reported with file, document, object and field.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use driftless_api::status::ConditionStatus;
use driftless_api::{
    AnyObject, Config, Document, LoadError, Problem, RenderKind, decode, load_config,
};

const HEADER: &str = "apiVersion: driftless.dev/v1alpha1\n";

fn source(name: &str) -> String {
    format!(
        "{HEADER}kind: GitSource\nmetadata: {{name: {name}}}\nspec:\n  url: https://git.example.com/r.git\n  ref: {{branch: main}}\n"
    )
}

fn app(name: &str, extra: &str) -> String {
    format!(
        "{HEADER}kind: App\nmetadata: {{name: {name}}}\nspec:\n  sourceRef: {{name: platform}}\n  path: apps/{name}\n{extra}"
    )
}

fn parse(text: &str) -> Result<Config, Vec<Problem>> {
    let file = Path::new("config.yaml");
    let values = driftless_yaml::parse_documents(text, &file.display().to_string())
        .expect("test YAML parses");
    let docs = values.into_iter().enumerate().map(|(i, value)| Document {
        file: file.to_path_buf(),
        index: i + 1,
        value,
    });
    Config::from_documents(docs).map_err(|p| p.0)
}

/// The problems of a config as display strings.
fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => Vec::new(),
        Err(p) => p.iter().map(ToString::to_string).collect(),
    }
}

/// The field path of each problem line.
fn fields_of(found: &[String]) -> Vec<&str> {
    found
        .iter()
        .map(|p| p.split(": ").nth(1).unwrap_or(""))
        .collect()
}

fn stream(docs: &[String]) -> String {
    docs.join("---\n")
}

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/config")
}

#[test]
fn example_config_validates() {
    let config = load_config(&example_dir()).unwrap_or_else(|e| panic!("{e}"));
    let web = config.app("web-prod").expect("web-prod is declared");
    assert_eq!(web.spec.depends_on, ["infra"]);
    assert_eq!(web.spec.render.kind, RenderKind::Kustomize);
    assert_eq!(web.spec.interval.get().as_secs(), 600);
    let infra = config.app("infra").expect("infra is declared");
    assert_eq!(
        infra.spec.interval.get().as_secs(),
        300,
        "App interval defaults to 5m"
    );
    assert!(!infra.spec.self_heal, "selfHeal is opt-in");
    let source = config.git_source("platform").expect("platform is declared");
    assert_eq!(source.spec.git_ref.branch.as_deref(), Some("main"));
    assert!(config.cluster("prod").is_some());
    assert!(config.receiver("platform-push").is_some());
    assert_eq!(
        config.server().map(|s| s.spec.listen.as_str()),
        Some("0.0.0.0:9480")
    );
    assert_eq!(config.apps_in_dependency_order(), ["infra", "web-prod"]);
    assert_eq!(config.apps_of_source("platform").count(), 2);
    assert!(config.digest().starts_with("sha256:"));
}

#[test]
fn design_minimal_config_applies_defaults() {
    let text = format!(
        "{}---\n{}",
        source("platform"),
        app("web", "  destination: {namespace: web}\n  prune: true\n")
    );
    let config = parse(&text).unwrap_or_else(|p| panic!("{p:?}"));
    let web = config.app("web").expect("declared");
    assert_eq!(
        web.spec.destination.cluster, None,
        "no cluster means the default cluster"
    );
    assert!(web.spec.prune);
    assert!(!web.spec.allow_empty_prune);
    assert_eq!(web.spec.render.kind, RenderKind::Auto);
    let src = config.git_source("platform").expect("declared");
    assert_eq!(
        src.spec.interval.get().as_secs(),
        60,
        "GitSource interval defaults to 1m"
    );
}

#[test]
fn digest_ignores_file_layout_and_order_but_not_content() {
    let a = stream(&[source("platform"), app("web", ""), app("api", "")]);
    let b = stream(&[app("api", ""), source("platform"), app("web", "")]);
    let c = stream(&[
        source("platform"),
        app("web", "  prune: true\n"),
        app("api", ""),
    ]);
    let digest = |t: &str| parse(t).map(|c| c.digest().to_owned()).expect("valid");
    assert_eq!(digest(&a), digest(&b));
    assert_ne!(digest(&a), digest(&c));
}

#[test]
fn invalid_duration_names_field_and_value() {
    let text = stream(&[source("platform"), app("web", "  interval: 5 minutes\n")]);
    assert_eq!(
        problems(&text),
        [
            "config.yaml (document 2, App/web): spec.interval: invalid duration \"5 minutes\" (expected e.g. 30s, 5m, 1h)"
        ]
    );
}

#[test]
fn unknown_field_suggests_the_close_name() {
    let text = stream(&[source("platform"), app("web", "  selfHeall: true\n")]);
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("config.yaml (document 2, App/web): spec.selfHeall: unknown field (did you mean \"selfHeal\"?); allowed: "),
        "{found:?}"
    );
    let nested = stream(&[
        source("platform"),
        app("web", "  destination: {namspace: web}\n"),
    ]);
    let found = problems(&nested);
    assert!(
        found[0].contains("spec.destination.namspace: unknown field (did you mean \"namespace\"?)"),
        "{found:?}"
    );
}

#[test]
fn all_unknown_and_missing_fields_of_one_document_are_reported() {
    let text = format!(
        "{HEADER}kind: App\nmetadata: {{name: web}}\nspec:\n  selfHeall: true\n  destination: {{namspace: web}}\n  retry: {{backoff: {{factr: 2}}}}\n  render: {{helm: {{relaseName: x}}}}\n"
    );
    let found = problems(&text);
    let fields = fields_of(&found);
    assert_eq!(
        fields,
        [
            "spec.selfHeall",
            "spec.destination.namspace",
            "spec.retry.backoff.factr",
            "spec.render.helm.relaseName",
            "spec.sourceRef",
        ],
        "{found:#?}"
    );
    assert!(
        found[2].contains("(did you mean \"factor\"?)"),
        "{}",
        found[2]
    );
}

#[test]
fn rules_still_run_when_the_only_trouble_is_unknown_fields() {
    let text = stream(&[
        source("platform"),
        app(
            "web",
            "  prun: true\n  allowEmptyPrune: true\n  destination: {namespace: Web}\n",
        ),
    ]);
    let found = problems(&text);
    let fields = fields_of(&found);
    assert_eq!(
        fields,
        [
            "spec.prun",
            "spec.destination.namespace",
            "spec.allowEmptyPrune"
        ],
        "{found:#?}"
    );
}

#[test]
fn missing_required_field_names_its_path() {
    let text = format!(
        "{HEADER}kind: GitSource\nmetadata: {{name: platform}}\nspec:\n  ref: {{branch: main}}\n"
    );
    assert_eq!(
        problems(&text),
        ["config.yaml (document 1, GitSource/platform): spec.url: required field is missing"]
    );
}

#[test]
fn ref_needs_exactly_one_option() {
    let both = format!(
        "{HEADER}kind: GitSource\nmetadata: {{name: a}}\nspec:\n  url: https://h/r.git\n  ref: {{branch: main, tag: v1}}\n"
    );
    let neither = format!(
        "{HEADER}kind: GitSource\nmetadata: {{name: b}}\nspec:\n  url: https://h/r.git\n  ref: {{}}\n"
    );
    assert_eq!(
        problems(&stream(&[both, neither])),
        [
            "config.yaml (document 1, GitSource/a): spec.ref: exactly one of branch, tag, semver, commit or name may be set, found branch and tag",
            "config.yaml (document 2, GitSource/b): spec.ref: one of branch, tag, semver, commit or name is required",
        ]
    );
}

#[test]
fn unknown_kind_and_api_version() {
    let kind = format!("{HEADER}kind: Ap\nmetadata: {{name: a}}\nspec: {{}}\n");
    let version =
        "apiVersion: driftless.dev/v1\nkind: App\nmetadata: {name: b}\nspec: {}\n".to_owned();
    assert_eq!(
        problems(&stream(&[kind, version])),
        [
            "config.yaml (document 1, Ap/a): kind: unknown kind \"Ap\" (did you mean \"App\"?)",
            "config.yaml (document 2, App/b): apiVersion: unknown apiVersion \"driftless.dev/v1\" (expected \"driftless.dev/v1alpha1\")",
        ]
    );
}

#[test]
fn names_must_be_dns_labels_and_unique_per_kind() {
    let text = stream(&[source("platform"), source("platform"), app("Web_1", "")]);
    let found = problems(&text);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(
        found[0],
        "config.yaml (document 3, App/Web_1): metadata.name: \"Web_1\" is not a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit)"
    );
    assert_eq!(
        found[1],
        "config.yaml (document 2, GitSource/platform): metadata.name: duplicate name, first declared in config.yaml (document 1)"
    );
}

#[test]
fn dangling_references_are_named_with_suggestions() {
    let text = stream(&[
        source("platfrom"),
        app(
            "web",
            "  destination: {cluster: prod}\n  dependsOn: [infra]\n",
        ),
        format!(
            "{HEADER}kind: Receiver\nmetadata: {{name: hook}}\nspec:\n  type: github\n  secretEnv: HOOK\n  resources: [platform]\n"
        ),
    ]);
    assert_eq!(
        problems(&text),
        [
            "config.yaml (document 2, App/web): spec.sourceRef.name: GitSource \"platform\" not found (did you mean \"platfrom\"?)",
            "config.yaml (document 2, App/web): spec.destination.cluster: Cluster \"prod\" not found",
            "config.yaml (document 2, App/web): spec.dependsOn[0]: App \"infra\" not found",
            "config.yaml (document 3, Receiver/hook): spec.resources[0]: GitSource \"platform\" not found (did you mean \"platfrom\"?)",
        ]
    );
}

#[test]
fn references_to_broken_objects_are_not_reported_again() {
    let broken_source = format!(
        "{HEADER}kind: GitSource\nmetadata: {{name: platform}}\nspec:\n  url: https://h/r.git\n  ref: {{branch: main}}\n  interval: often\n"
    );
    let text = stream(&[broken_source, app("web", "")]);
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains("GitSource/platform): spec.interval"),
        "{found:?}"
    );
}

#[test]
fn dependents_of_an_app_are_the_apps_whose_depends_on_names_it() {
    let text = stream(&[
        source("platform"),
        app("db", ""),
        app("web", "  dependsOn: [db]\n"),
        app("api", "  dependsOn: [db, web]\n"),
    ]);
    let config = parse(&text).expect("valid");
    assert_eq!(config.dependents_of("db"), ["api", "web"]);
    assert_eq!(config.dependents_of("web"), ["api"]);
    assert!(config.dependents_of("api").is_empty());
    assert!(config.dependents_of("unknown").is_empty());
}

#[test]
fn dependency_cycles_are_named() {
    let text = stream(&[
        source("platform"),
        app("a", "  dependsOn: [b]\n"),
        app("b", "  dependsOn: [c]\n"),
        app("c", "  dependsOn: [a]\n"),
        app("d", "  dependsOn: [d]\n"),
    ]);
    assert_eq!(
        problems(&text),
        [
            "config.yaml (document 5, App/d): spec.dependsOn[0]: an App cannot depend on itself",
            "config.yaml (document 2, App/a): spec.dependsOn: dependency cycle: App/a -> App/b -> App/c -> App/a",
        ]
    );
}

#[test]
fn field_checks_of_each_kind() {
    let text = stream(&[
        format!(
            "{HEADER}kind: GitSource\nmetadata: {{name: s}}\nspec:\n  url: github.com/org/repo\n  ref: {{commit: abc}}\n"
        ),
        format!(
            "{HEADER}kind: App\nmetadata: {{name: a}}\nspec:\n  sourceRef: {{name: s}}\n  path: ../outside\n  destination: {{namespace: Web}}\n  render: {{kind: plain, helm: {{releaseName: x}}}}\n"
        ),
        format!("{HEADER}kind: Cluster\nmetadata: {{name: c}}\nspec: {{}}\n"),
        format!(
            "{HEADER}kind: Receiver\nmetadata: {{name: r}}\nspec: {{type: gitlab, resources: [s]}}\n"
        ),
        format!(
            "{HEADER}kind: Server\nmetadata: {{name: server}}\nspec: {{listen: \"0.0.0.0:80\"}}\n"
        ),
        format!(
            "{HEADER}kind: App\nmetadata: {{name: b}}\nspec:\n  sourceRef: {{name: s}}\n  render: {{kind: helmm}}\n"
        ),
    ]);
    let found = problems(&text);
    let fields = fields_of(&found);
    assert_eq!(
        fields,
        [
            "spec.url",
            "spec.ref.commit",
            "spec.path",
            "spec.destination.namespace",
            "spec.render.helm",
            "spec",
            "spec",
            "spec.apiToken",
            "spec.render.kind",
        ],
        "{found:#?}"
    );
    assert!(
        found[8].contains("unknown value \"helmm\" (did you mean \"helm\"?)"),
        "{}",
        found[8]
    );
}

#[test]
fn server_concurrency_defaults_to_4_and_must_be_between_1_and_1024() {
    let server =
        |spec: &str| format!("{HEADER}kind: Server\nmetadata: {{name: s}}\nspec: {spec}\n");
    assert!(problems(&stream(&[server("{concurrency: 1024}")])).is_empty());
    for bad in ["0", "1025"] {
        let found = problems(&stream(&[server(&format!("{{concurrency: {bad}}}"))]));
        assert_eq!(fields_of(&found), ["spec.concurrency"], "{found:?}");
        assert!(found[0].contains("out of range: 1 to 1024"), "{found:?}");
    }
    assert_eq!(driftless_api::ServerSpec::default().concurrency, 4);
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("driftless-api-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Self(dir)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().expect("file in a directory"))
            .expect("create parent");
        std::fs::write(&path, text).expect("write file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn directory_load_reports_problems_of_all_files_together() {
    let dir = Scratch::new();
    dir.write("a/sources.yaml", &source("platform"));
    dir.write("b/apps.yml", &app("web", "  timeout: soon\n"));
    dir.write("c/broken.yaml", "kind: [unclosed\n");
    dir.write(".hidden/skip.yaml", "not: [valid");
    dir.write("notes.txt", "ignored");
    let err = load_config(&dir.0).expect_err("two files have problems");
    let LoadError::Invalid(problems) = err else {
        panic!("expected problems, got {err}");
    };
    let text = problems.to_string();
    assert!(text.starts_with("2 problems in config"), "{text}");
    let broken = dir.0.join("c/broken.yaml");
    let parse_line = format!("{}: 2:1: while parsing", broken.display());
    assert!(text.contains(&parse_line), "{text}");
    assert_eq!(
        text.matches(&broken.display().to_string()).count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("apps.yml (document 1, App/web): spec.timeout: invalid duration \"soon\""),
        "{text}"
    );
}

#[test]
fn local_paths_are_relative_to_the_declaring_file() {
    let dir = Scratch::new();
    let clusters = format!(
        "{HEADER}kind: Cluster\nmetadata: {{name: rel}}\nspec: {{kubeconfig: {{path: kube/prod.yaml}}}}\n---\n{HEADER}kind: Cluster\nmetadata: {{name: abs}}\nspec: {{kubeconfig: {{path: /etc/kube.yaml}}}}\n"
    );
    dir.write("envs/clusters.yaml", &clusters);
    dir.write(
        "server.yaml",
        &format!("{HEADER}kind: Server\nmetadata: {{name: s}}\nspec: {{dataDir: state}}\n"),
    );
    let config = load_config(&dir.0).unwrap_or_else(|e| panic!("{e}"));
    let path = |name: &str| {
        config
            .cluster(name)
            .and_then(|c| c.spec.kubeconfig.as_ref())
            .map(|k| PathBuf::from(&k.path))
    };
    assert_eq!(path("rel"), Some(dir.0.join("envs/kube/prod.yaml")));
    assert_eq!(path("abs"), Some(PathBuf::from("/etc/kube.yaml")));
    let data_dir = config.server().map(|s| PathBuf::from(&s.spec.data_dir));
    assert_eq!(data_dir, Some(dir.0.join("state")));
}

#[test]
fn load_errors_name_the_path() {
    let dir = Scratch::new();
    let missing = dir.0.join("nope.yaml");
    let err = load_config(&missing).expect_err("missing file");
    assert!(
        err.to_string()
            .starts_with(&format!("reading config {}", missing.display())),
        "{err}"
    );
    let err = load_config(&dir.0).expect_err("empty dir");
    assert!(matches!(err, LoadError::Empty(_)), "{err}");
    let file = dir.write("one.yaml", &stream(&[source("platform"), app("web", "")]));
    let config = load_config(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.apps().count(), 1);
}

#[test]
fn objects_round_trip_through_json() {
    let config = load_config(&example_dir()).unwrap_or_else(|e| panic!("{e}"));
    let mut values = Vec::new();
    values.extend(config.git_sources().map(serde_json::to_value));
    values.extend(config.apps().map(serde_json::to_value));
    values.extend(config.clusters().map(serde_json::to_value));
    values.extend(config.receivers().map(serde_json::to_value));
    values.extend(config.server().map(serde_json::to_value));
    let docs = values.into_iter().enumerate().map(|(i, v)| Document {
        file: PathBuf::from("round-trip.json"),
        index: i + 1,
        value: v.expect("objects serialize"),
    });
    let again = Config::from_documents(docs).unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(again.digest(), config.digest());
    assert_eq!(again.app("web-prod"), config.app("web-prod"));
}

#[test]
fn custom_resource_from_an_api_server_decodes() {
    let cr = serde_json::json!({
        "apiVersion": "driftless.dev/v1alpha1",
        "kind": "GitSource",
        "metadata": {
            "name": "platform",
            "namespace": "flux-system",
            "uid": "5f0c2c1e-7d43-4c55-9d3b-1a1c0e2a9f10",
            "resourceVersion": "4711",
            "generation": 3,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}]
        },
        "spec": {"url": "https://h/r.git", "ref": {"tag": "v1.2.0"}},
        "status": {
            "observedGeneration": 3,
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "Fetched",
                "message": "ok", "lastTransitionTime": "2026-01-01T00:00:01Z"
            }],
            "artifact": {"revision": {"refLabel": "v1.2.0", "sha": "0123"}, "author": "A <a@example.com>", "subject": "release"}
        }
    });
    let AnyObject::GitSource(source) = decode(cr).unwrap_or_else(|p| panic!("{p:?}")) else {
        panic!("decoded as another kind");
    };
    assert_eq!(source.metadata.generation, Some(3));
    assert_eq!(source.spec.git_ref.tag.as_deref(), Some("v1.2.0"));
    let status = source.status.expect("status decoded");
    assert_eq!(
        status.artifact.map(|a| a.revision.to_string()).as_deref(),
        Some("v1.2.0@sha1:0123")
    );
    assert_eq!(status.conditions[0].status, ConditionStatus::True);
}

/// (kind, spec in flow YAML, expected "field: message" start).
const SPEC_CASES: &[(&str, &str, &str)] = &[
    (
        "GitSource",
        "{url: https://h/r.git, ref: {name: pull/1}}",
        "spec.ref.name: \"pull/1\" is not a full reference name",
    ),
    (
        "GitSource",
        "{url: https://h/r.git, ref: {branch: main}, verify: {provider: ssh, mode: tag, secretRef: {name: k}}}",
        "spec.verify.mode: mode tag needs spec.ref.tag or spec.ref.semver",
    ),
    (
        "GitSource",
        "{url: https://h/r.git, ref: {branch: main}, interval: 0}",
        "spec.interval: must be greater than zero",
    ),
    (
        "App",
        "{sourceRef: {name: s}, prune: false, allowEmptyPrune: true}",
        "spec.allowEmptyPrune: has no effect unless spec.prune is true",
    ),
    (
        "App",
        "{sourceRef: {name: s}, retry: {backoff: {duration: 1m, maxDuration: 10s}}}",
        "spec.retry.backoff.maxDuration: 10s is shorter than spec.retry.backoff.duration 1m",
    ),
    (
        "App",
        "{sourceRef: {name: s}, render: {helm: {valuesFiles: [/etc/values.yaml]}}}",
        "spec.render.helm.valuesFiles[0]: \"/etc/values.yaml\" must be relative to the source root",
    ),
    (
        "Cluster",
        "{inCluster: true, kubeconfig: {path: k.yaml}}",
        "spec.inCluster: cannot be combined with spec.kubeconfig",
    ),
    (
        "Receiver",
        "{type: github, secretEnv: A, secretRef: {name: b}, resources: [s]}",
        "spec.secretEnv: cannot be combined with spec.secretRef",
    ),
    (
        "Receiver",
        "{type: github, secretEnv: 1BAD, resources: [s]}",
        "spec.secretEnv: \"1BAD\" is not an environment variable name",
    ),
    (
        "Server",
        "{listen: \"127.0.0.1:9480\", apiToken: {env: T, file: /run/t}}",
        "spec.apiToken: only one of env or file may be set",
    ),
    (
        "Server",
        "{api: {anonymousRead: false}}",
        "spec.api.anonymousRead: false needs a token to read with",
    ),
    (
        "Server",
        "{listen: \"0.0.0.0:9480\", api: {tokens: [{name: ci, role: operate, secret: {env: CI}}, {name: ci, role: read, secret: {file: t}}]}}",
        "spec.api.tokens[1].name: \"ci\" is used by an earlier token",
    ),
    (
        "Server",
        "{api: {tokens: [{name: ci, role: owner, secret: {env: CI}}]}}",
        "spec.api.tokens[0].role: unknown value \"owner\"",
    ),
    (
        "Server",
        "{listen: localhost}",
        "spec.listen: \"localhost\" is not an address",
    ),
];

#[test]
fn spec_rules_of_each_kind() {
    for (kind, spec, want) in SPEC_CASES {
        let text = stream(&[
            source("s"),
            format!("{HEADER}kind: {kind}\nmetadata: {{name: x}}\nspec: {spec}\n"),
        ]);
        let found = problems(&text);
        let prefix = format!("config.yaml (document 2, {kind}/x): {want}");
        assert!(
            found.len() == 1 && found[0].starts_with(&prefix),
            "{kind} {spec}: expected {prefix:?}, found {found:#?}"
        );
    }
}

#[test]
fn ignored_differences_name_each_bad_rule_and_pointer() {
    let good = "  ignoreDifferences:\n  - {group: apps, kind: Deployment, jsonPointers: [/spec/replicas]}\n  - {kind: Service, managedFieldsManagers: [cloud-controller]}\n";
    assert!(problems(&stream(&[source("platform"), app("web", good)])).is_empty());
    let bad = "  ignoreDifferences:\n  - {group: apps, kind: Deployment, jsonPointers: [spec/replicas]}\n  - {kind: \"\"}\n";
    let found = problems(&stream(&[source("platform"), app("web", bad)]));
    assert_eq!(
        found,
        [
            "config.yaml (document 2, App/web): spec.ignoreDifferences[0].jsonPointers[0]: \"spec/replicas\" is not a JSON Pointer (it must start with '/')",
            "config.yaml (document 2, App/web): spec.ignoreDifferences[1].kind: must not be empty",
            "config.yaml (document 2, App/web): spec.ignoreDifferences[1]: names no field: give jsonPointers, jqPathExpressions or managedFieldsManagers",
        ]
    );
}

#[test]
fn sync_windows_and_manual_apps_load_and_bad_windows_name_their_fields() {
    let window = |name: &str, spec: &str| {
        format!("{HEADER}kind: SyncWindow\nmetadata: {{name: {name}}}\nspec: {spec}\n")
    };
    let good = stream(&[
        source("platform"),
        app("web", "  syncPolicy: manual\n"),
        window(
            "freeze",
            "{kind: deny, schedule: \"0 22 * * fri\", duration: 60h, timeZone: Europe/Berlin, apps: [\"web*\"]}",
        ),
    ]);
    let config = parse(&good).expect("valid");
    let web = config.app("web").expect("App");
    assert_eq!(web.spec.sync_policy, driftless_api::SyncPolicy::Manual);
    let windows: Vec<_> = config.sync_windows().collect();
    assert_eq!(windows[0].name(), "freeze");
    assert_eq!(windows[0].spec.kind, driftless_api::WindowKind::Deny);

    let bad = stream(&[
        source("platform"),
        app("web", "  syncPolicy: sometimes\n"),
        window(
            "cron",
            "{kind: deny, schedule: \"0 25 * * *\", duration: 1h, apps: [web]}",
        ),
        window(
            "span",
            "{kind: deny, schedule: \"@daily\", duration: soon, apps: [web]}",
        ),
        window(
            "zone",
            "{kind: allow, schedule: \"@daily\", duration: 1h, timeZone: Europe/Nowhere, apps: [web]}",
        ),
        window("whom", "{kind: allow, schedule: \"@daily\", duration: 1h}"),
    ]);
    let found = problems(&bad);
    assert_eq!(
        fields_of(&found),
        [
            "spec.syncPolicy",
            "spec.schedule",
            "spec.duration",
            "spec.timeZone",
            "spec.apps"
        ],
        "{found:#?}"
    );
    assert!(found[1].starts_with("config.yaml (document 3, SyncWindow/cron): spec.schedule: invalid cron schedule \"0 25 * * *\": hour"), "{}", found[1]);
    assert!(
        found[2].contains("invalid duration \"soon\""),
        "{}",
        found[2]
    );
    assert!(
        found[3].contains("unknown time zone \"Europe/Nowhere\""),
        "{}",
        found[3]
    );
}

#[test]
fn jq_path_expressions_and_the_servers_ignore_list_are_checked() {
    let good = "  ignoreDifferences:\n  - kind: Deployment\n    group: apps\n    jqPathExpressions: ['.spec.template.spec.containers[] | select(.name == \"proxy\")']\n";
    assert!(problems(&stream(&[source("platform"), app("web", good)])).is_empty());
    let bad =
        "  ignoreDifferences:\n  - {kind: Deployment, jqPathExpressions: ['.spec', '.spec[']}\n";
    let found = problems(&stream(&[source("platform"), app("web", bad)]));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with(
            "config.yaml (document 2, App/web): spec.ignoreDifferences[0].jqPathExpressions[1]: \".spec[\" does not parse as jq"
        ),
        "{found:#?}"
    );
    let server =
        |spec: &str| format!("{HEADER}kind: Server\nmetadata: {{name: s}}\nspec: {spec}\n");
    let webhooks = "{ignoreDifferences: [{group: admissionregistration.k8s.io, kind: MutatingWebhookConfiguration, jqPathExpressions: ['.webhooks[]?.clientConfig.caBundle']}]}";
    assert!(problems(&stream(&[source("platform"), server(webhooks)])).is_empty());
    let found = problems(&stream(&[
        source("platform"),
        server("{ignoreDifferences: [{kind: Secret, jqPathExpressions: ['.data |']}]}"),
    ]));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with(
            "config.yaml (document 2, Server/s): spec.ignoreDifferences[0].jqPathExpressions[0]:"
        ),
        "{found:#?}"
    );
}

#[test]
fn an_app_refers_to_an_oci_source_by_kind_and_name() {
    let oci = format!(
        "{HEADER}kind: OCISource\nmetadata: {{name: manifests}}\nspec:\n  url: oci://registry.example/team/manifests\n  ref: {{semver: \">=1.0.0\"}}\n"
    );
    let web = format!(
        "{HEADER}kind: App\nmetadata: {{name: web}}\nspec:\n  sourceRef: {{kind: OCISource, name: manifests}}\n  path: deploy\n"
    );
    let config = parse(&stream(&[oci.clone(), web])).expect("valid config");
    let declared = config.oci_source("manifests").expect("declared");
    assert_eq!(declared.spec.interval.get().as_secs(), 60);
    assert_eq!(declared.spec.oci_ref.label(), "semver >=1.0.0");
    let apps: Vec<&str> = config
        .apps_of(driftless_api::SourceKind::OciSource, "manifests")
        .map(|a| a.name())
        .collect();
    assert_eq!(apps, ["web"]);
    assert_eq!(config.apps_of_source("manifests").count(), 0);

    // A GitSource of that name does not stand in for the OCISource, and the
    // other way round.
    let git_named_alike = format!(
        "{HEADER}kind: App\nmetadata: {{name: api}}\nspec:\n  sourceRef: {{kind: OCISource, name: platform}}\n"
    );
    let found = problems(&stream(&[source("platform"), oci, git_named_alike]));
    assert_eq!(
        found,
        [
            "config.yaml (document 3, App/api): spec.sourceRef.name: OCISource \"platform\" not found"
        ],
        "{found:?}"
    );
    let bad = format!(
        "{HEADER}kind: OCISource\nmetadata: {{name: tagged}}\nspec:\n  url: oci://registry.example/team/manifests:v1\n  ref: {{tag: v1, digest: \"sha256:12\"}}\n"
    );
    let found = problems(&bad);
    let fields = fields_of(&found);
    assert!(fields.contains(&"spec.url"), "{found:?}");
    assert!(fields.contains(&"spec.ref"), "{found:?}");
    assert!(fields.contains(&"spec.ref.digest"), "{found:?}");
}
