//! `helmCharts:` inflated with the `helm` binary (only when enabled).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::kustomization::Kustomization;
use crate::loader::{Loader, parse_resources};
use crate::origin::Origin;
use crate::resource::Resource;
use crate::{Error, Options};

/// Runs the helm commands of a build in place of [`Command::output`], e.g.
/// with a deadline and a memory limit. An error is reported as the cause
/// of the failed `helm` run.
pub trait HelmRunner: std::fmt::Debug + Send + Sync {
    /// Runs `cmd` to its end and returns what it printed.
    fn output(&self, cmd: Command) -> std::io::Result<Output>;
}

/// A private scratch directory, removed on drop: helm gets its own config,
/// cache and data homes there so a build never reads or writes the user's
/// helm state, and inline values are written there. The name is fresh and
/// random, so concurrent builds (and other programs) never share one.
fn scratch_dir() -> Result<tempfile::TempDir, Error> {
    tempfile::Builder::new()
        .prefix("driftless-kustomize-helm-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .map_err(|source| Error::Io {
            path: std::env::temp_dir(),
            source,
        })
}

/// Inflates every `helmCharts` entry of `k` into resources.
pub fn inflate(loader: &Loader, k: &Kustomization, opts: &Options) -> Result<Vec<Resource>, Error> {
    let charts = k.list("helmCharts")?;
    if charts.is_empty() {
        return Ok(Vec::new());
    }
    if !opts.enable_helm {
        return Err(Error::invalid(
            &k.path,
            "helmCharts requires helm to be enabled (--enable-helm)",
        ));
    }
    let helm = opts
        .helm_command
        .clone()
        .unwrap_or_else(|| PathBuf::from("helm"));
    let globals = k.fields.get("helmGlobals").cloned().unwrap_or(Value::Null);
    let home = globals
        .get("chartHome")
        .and_then(Value::as_str)
        .unwrap_or("charts");
    // The chart home may not exist yet (helm pulls into it); inside a
    // repository it must still resolve there, as helm reads and writes it.
    let chart_home = match &loader.repository {
        Some(_) => loader.resolve(home)?,
        None => loader.root.join(home),
    };
    loader.observe(&chart_home);
    let scratch = scratch_dir()?;
    let run = Helm {
        runner: opts.helm_runner.as_deref(),
        scratch: scratch.path(),
        k,
    };
    let mut out = Vec::new();
    for chart in charts {
        let text = template(&helm, &chart_home, &chart, &run, loader)?;
        let origin = k.path.display().to_string();
        let mut resources = parse_resources(&text, Path::new(&origin))?;
        for r in &mut resources {
            r.origin = Some(Origin::Generated {
                configured_in: k.path.clone(),
                kind: "HelmChartInflationGenerator".into(),
                name: None,
            });
        }
        out.extend(resources);
    }
    Ok(out)
}

fn template(
    helm: &Path,
    chart_home: &Path,
    chart: &Value,
    run: &Helm<'_>,
    loader: &Loader,
) -> Result<String, Error> {
    let (k, scratch) = (run.k, run.scratch);
    let s = |f: &str| chart.get(f).and_then(Value::as_str).unwrap_or("");
    let flag = |f: &str| chart.get(f).and_then(Value::as_bool).unwrap_or(false);
    let name = s("name");
    if name.is_empty() {
        return Err(Error::invalid(&k.path, "helmCharts entry without a name"));
    }
    let version = s("version");
    let chart_dir = locate_chart(helm, chart_home, name, version, s("repo"), run, loader)?;
    // helm reads the whole chart: templates, values, helpers, subcharts.
    loader.observe_tree(&chart_dir);
    // helm follows links inside the chart by itself.
    if let Some(repo) = &loader.repository {
        crate::confine::check_tree(repo, &chart_dir)
            .map_err(|e| crate::loader::refused(&k.path, format!("helmCharts {name}"), e))?;
    }
    let mut cmd = Command::new(helm);
    cmd.arg("template");
    let release = s("releaseName");
    cmd.arg(if release.is_empty() {
        "release-name"
    } else {
        release
    });
    cmd.arg(&chart_dir);
    if !s("namespace").is_empty() {
        cmd.args(["--namespace", s("namespace")]);
    }
    if !s("nameTemplate").is_empty() {
        cmd.args(["--name-template", s("nameTemplate")]);
    }
    if !s("valuesFile").is_empty() {
        cmd.arg("--values")
            .arg(values_file(loader, s("valuesFile"), name, scratch)?);
    }
    for extra in chart
        .get("additionalValuesFiles")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        cmd.arg("--values")
            .arg(additional_values_file(loader, extra)?);
    }
    if let Some(inline) = chart.get("valuesInline").filter(|v| v.is_object()) {
        let file = scratch.join(format!("{name}-inline-values.yaml"));
        let text = crate::yaml::emit_document(inline)?;
        std::fs::write(&file, text).map_err(|source| Error::Io {
            path: file.clone(),
            source,
        })?;
        cmd.arg("--values").arg(&file);
    }
    if flag("includeCRDs") {
        cmd.arg("--include-crds");
    }
    if flag("skipTests") {
        cmd.arg("--skip-tests");
    }
    if flag("skipHooks") {
        cmd.arg("--no-hooks");
    }
    if !s("kubeVersion").is_empty() {
        cmd.args(["--kube-version", s("kubeVersion")]);
    }
    for api in chart
        .get("apiVersions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        cmd.args(["--api-versions", api]);
    }
    run.run(cmd, &format!("helm template {name}"))
}

/// The path helm reads `valuesFile` from: the file in the kustomization's
/// tree, or a URL fetched (as kustomize v5.5.0 GETs it) into `scratch`.
fn values_file(
    loader: &Loader,
    entry: &str,
    chart: &str,
    scratch: &Path,
) -> Result<PathBuf, Error> {
    if !crate::remote::is_http_url(entry) {
        return loader.resolve(entry);
    }
    let (_, bytes) = loader.read_bytes("helmCharts valuesFile", entry)?;
    let file = scratch.join(format!("{chart}-url-values.yaml"));
    std::fs::write(&file, bytes).map_err(|source| Error::Io {
        path: file.clone(),
        source,
    })?;
    Ok(file)
}

/// The path of an `additionalValuesFiles` entry. kustomize v5.5.0 hands
/// these to helm as paths under the kustomization, so a URL there fails;
/// it is refused with a message that says why.
fn additional_values_file(loader: &Loader, entry: &str) -> Result<PathBuf, Error> {
    if crate::remote::is_http_url(entry) {
        return Err(Error::invalid(
            &loader.file,
            format!(
                "helmCharts additionalValuesFiles: '{entry}': only local files are read \
                 here (kustomize passes the URL to helm as a path); use valuesFile for a URL"
            ),
        ));
    }
    loader.resolve(entry)
}

/// Finds the chart below `chart_home`, pulling it from `repo` when missing
/// (as kustomize does, into `<chartHome>/<name>-<version>`).
fn locate_chart(
    helm: &Path,
    chart_home: &Path,
    name: &str,
    version: &str,
    repo: &str,
    run: &Helm<'_>,
    loader: &Loader,
) -> Result<PathBuf, Error> {
    let k = run.k;
    let versioned = chart_home.join(format!("{name}-{version}")).join(name);
    let plain = chart_home.join(name);
    loader.observe(&versioned.join("Chart.yaml"));
    loader.observe(&plain.join("Chart.yaml"));
    if !version.is_empty() && versioned.join("Chart.yaml").is_file() {
        return Ok(versioned);
    }
    if plain.join("Chart.yaml").is_file() {
        return Ok(plain);
    }
    if repo.is_empty() {
        return Err(Error::invalid(
            &k.path,
            format!(
                "chart '{name}' not found in {} and no repo to pull it from",
                chart_home.display()
            ),
        ));
    }
    let dest = if version.is_empty() {
        chart_home.to_path_buf()
    } else {
        chart_home.join(format!("{name}-{version}"))
    };
    let mut cmd = Command::new(helm);
    cmd.args(["pull", "--untar", "--untardir"])
        .arg(&dest)
        .args(["--repo", repo, name]);
    if !version.is_empty() {
        cmd.args(["--version", version]);
    }
    run.run(cmd, &format!("helm pull {name}"))?;
    Ok(dest.join(name))
}

/// How the helm commands of one build run: in `scratch`, through `runner`
/// when there is one, failing with errors that name the kustomization `k`.
struct Helm<'a> {
    runner: Option<&'a dyn HelmRunner>,
    scratch: &'a Path,
    k: &'a Kustomization,
}

impl Helm<'_> {
    fn run(&self, mut cmd: Command, what: &str) -> Result<String, Error> {
        let k = self.k;
        for (var, sub) in [
            ("HELM_CONFIG_HOME", "config"),
            ("HELM_CACHE_HOME", "cache"),
            ("HELM_DATA_HOME", "data"),
        ] {
            cmd.env(var, self.scratch.join(sub));
        }
        let program = cmd.get_program().to_string_lossy().into_owned();
        let output = match self.runner {
            Some(runner) => runner.output(cmd),
            None => cmd.output(),
        }
        .map_err(|e| Error::invalid(&k.path, format!("{what}: running {program}: {e}")))?;
        if !output.status.success() {
            return Err(Error::invalid(
                &k.path,
                format!(
                    "{what} failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            ));
        }
        String::from_utf8(output.stdout)
            .map_err(|_| Error::invalid(&k.path, format!("{what}: output is not UTF-8")))
    }
}
