//! The committed CRDs and JSON schemas match what the types generate, and the
//! CRDs are accepted by a real Kubernetes API server.
//!
//! Regenerate with `DRIFTLESS_BLESS=1 cargo test -p driftless-api --test generated`.

use std::path::{Path, PathBuf};
use std::process::Command;

use driftless_api::schema::{crd_yaml, crds, json_schemas};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Expected files (path relative to the crate, content).
fn generated() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for (name, crd) in crds() {
        let yaml = crd_yaml(&crd).expect("CRDs are plain data");
        files.push((Path::new("crds").join(name), yaml));
    }
    for (kind, schema) in json_schemas() {
        let mut text = serde_json::to_string_pretty(&schema).expect("schemas are plain data");
        text.push('\n');
        files.push((
            Path::new("schemas").join(format!("{}.json", kind.to_lowercase())),
            text,
        ));
    }
    files
}

#[test]
fn committed_files_are_up_to_date() {
    let bless = std::env::var_os("DRIFTLESS_BLESS").is_some();
    let mut stale = Vec::new();
    for (rel, want) in generated() {
        let path = crate_dir().join(&rel);
        if bless {
            std::fs::create_dir_all(path.parent().expect("generated files sit in a directory"))
                .expect("create output directory");
            std::fs::write(&path, &want).expect("write generated file");
            continue;
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have != want {
            stale.push(rel.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "generated files differ from the committed ones: {stale:?}; regenerate with DRIFTLESS_BLESS=1"
    );
}

#[test]
fn no_stray_files_in_generated_directories() {
    let expected: Vec<PathBuf> = generated().into_iter().map(|(rel, _)| rel).collect();
    for dir in ["crds", "schemas"] {
        let entries = std::fs::read_dir(crate_dir().join(dir)).expect("generated directory exists");
        for entry in entries {
            let rel = Path::new(dir).join(entry.expect("readable directory").file_name());
            assert!(
                expected.contains(&rel),
                "{} is not generated any more",
                rel.display()
            );
        }
    }
}

#[test]
fn crds_are_structural_and_have_status_subresource() {
    for (name, crd) in crds() {
        let version = &crd["spec"]["versions"][0];
        assert_eq!(
            version["subresources"]["status"],
            serde_json::json!({}),
            "{name}"
        );
        let schema = serde_json::to_string(&version["schema"]).expect("plain data");
        for forbidden in [
            "$ref",
            "\"additionalProperties\":false",
            "oneOf",
            "\"format\":\"uint",
        ] {
            assert!(!schema.contains(forbidden), "{name} contains {forbidden}");
        }
        let columns: Vec<&str> = version["additionalPrinterColumns"]
            .as_array()
            .expect("columns")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert!(
            columns.contains(&"Ready") && columns.contains(&"Age"),
            "{name}: {columns:?}"
        );
    }
}

fn kubectl() -> Command {
    driftless_testenv::shared().kubectl()
}

fn run(mut cmd: Command) -> String {
    let out = cmd.output().expect("kubectl runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn crds_apply_to_a_real_api_server() {
    // Server-side apply is an upsert: unlike a client-side apply it cannot
    // race with another test installing the same CRDs (read, then create).
    let mut cmd = kubectl();
    cmd.args([
        "apply",
        "--server-side",
        "--force-conflicts",
        "--dry-run=server",
    ])
    .args(["-o", "name", "-f"])
    .arg(crate_dir().join("crds"));
    let out = run(cmd);
    for (name, _) in crds() {
        let plural = name
            .trim_start_matches("driftless.dev_")
            .trim_end_matches(".yaml");
        assert!(
            out.contains(&format!(
                "customresourcedefinition.apiextensions.k8s.io/{plural}.driftless.dev"
            )),
            "{plural} missing from: {out}"
        );
    }
}

/// Installs the CRDs (idempotent: server-side apply) and waits until served.
fn install_crds() {
    let mut cmd = kubectl();
    cmd.args(["apply", "--server-side", "--force-conflicts", "-f"])
        .arg(crate_dir().join("crds"));
    run(cmd);
    let mut wait = kubectl();
    wait.args(["wait", "--for=condition=Established", "--timeout=60s", "-f"])
        .arg(crate_dir().join("crds"));
    run(wait);
}

/// `kubectl apply --dry-run=server` of `files`; the output or the error text.
fn dry_run_apply(files: &[PathBuf]) -> Result<String, String> {
    let mut cmd = kubectl();
    cmd.args(["apply", "--dry-run=server", "-n", "default", "-o", "name"]);
    for file in files {
        cmd.arg("-f").arg(file);
    }
    let out = cmd.output().expect("kubectl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

#[test]
fn example_config_is_accepted_as_custom_resources() {
    install_crds();
    let examples = crate_dir().join("../../examples/config");
    // Server settings are read from config files only, never served as a CR.
    let files: Vec<PathBuf> = ["sources.yaml", "apps.yaml", "cluster.yaml", "receiver.yaml"]
        .iter()
        .map(|f| examples.join(f))
        .collect();
    let out = dry_run_apply(&files).unwrap_or_else(|e| panic!("example objects refused: {e}"));
    for object in [
        "gitsource.driftless.dev/platform",
        "app.driftless.dev/infra",
        "app.driftless.dev/web-prod",
        "cluster.driftless.dev/prod",
        "receiver.driftless.dev/platform-push",
    ] {
        assert!(out.contains(object), "{object} missing from: {out}");
    }
}

#[test]
fn api_server_refuses_what_the_schema_forbids() {
    install_crds();
    let dir = std::env::temp_dir().join(format!("driftless-api-crd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    let bad = [
        ("duration", "interval: 5 minutes", "spec.interval"),
        ("enum", "render: {kind: helmm}", "spec.render.kind"),
    ];
    for (case, line, field) in bad {
        let file = dir.join(format!("{case}.yaml"));
        let text = format!(
            "apiVersion: driftless.dev/v1alpha1\nkind: App\nmetadata: {{name: bad-{case}}}\nspec:\n  sourceRef: {{name: platform}}\n  {line}\n"
        );
        std::fs::write(&file, text).expect("write manifest");
        let err = dry_run_apply(&[file]).expect_err(case);
        assert!(err.contains(field), "{case}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
