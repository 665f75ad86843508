//! Helm charts, rendered by the `helm template` binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use driftless_source::helm_repo::{ChartRepositories, DependencyError};
use serde_json::Value;

use crate::helm_run::{self, HelmExit, HelmRunError};
use crate::limits::{LimitError, RenderLimits, shown_dir};
use crate::objects::{Rendered, expand_lists};
use crate::paths::{self, PathError};
use crate::reads::ReadLog;
use crate::worker::RenderWorker;

/// Settings for `helm template`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HelmOptions {
    /// The helm binary (default: `$DRIFTLESS_HELM`, else `helm` on PATH).
    pub command: Option<PathBuf>,
    /// Release name (default: the chart directory's name).
    pub release_name: Option<String>,
    /// `--namespace`
    pub namespace: Option<String>,
    /// Values files relative to the chart directory; they must stay inside the repository root.
    pub values_files: Vec<PathBuf>,
    /// Inline values, applied after the files (a mapping).
    pub values: Option<Value>,
    /// `--include-crds`
    pub include_crds: bool,
    /// `--skip-tests`
    pub skip_tests: bool,
    /// `--kube-version`
    pub kube_version: Option<String>,
    /// `--api-versions`, one per entry.
    pub api_versions: Vec<String>,
}

/// Errors from rendering a chart.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    /// A path is refused or unreadable.
    #[error(transparent)]
    Path(#[from] PathError),
    /// Inline values are not a mapping.
    #[error("helm values for {chart}: inline values must be a mapping, not {found}")]
    Values {
        /// The chart directory.
        chart: PathBuf,
        /// What was given.
        found: &'static str,
    },
    /// The helm binary could not be started.
    #[error("running {command} for chart {chart}: {source}{}", spawn_hint(source))]
    Spawn {
        /// The command.
        command: String,
        /// The chart directory.
        chart: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A scratch directory for helm could not be prepared.
    #[error("preparing helm scratch directory {path}: {source}")]
    Scratch {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// helm exited with an error.
    #[error("helm template {chart} failed: {stderr}")]
    Failed {
        /// The chart directory.
        chart: PathBuf,
        /// What helm printed.
        stderr: String,
    },
    /// helm ran too long or printed too much.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// The chart's dependencies could not be taken from their repositories.
    #[error(transparent)]
    Dependencies(#[from] DependencyError),
    /// helm printed something that is not a YAML stream.
    #[error("helm template {chart}: output is not valid YAML: {source}")]
    Output {
        /// The chart directory.
        chart: PathBuf,
        /// The cause.
        source: driftless_kustomize::Error,
    },
}

/// A private directory for helm's config, cache and data homes and the
/// inline values file, removed on drop. The name is fresh and random, so
/// concurrent renders (and kustomize's `helmCharts`) never share one.
fn scratch_dir() -> Result<tempfile::TempDir, HelmError> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix("driftless-helm-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .map_err(|source| HelmError::Scratch {
            path: std::env::temp_dir(),
            source,
        })
}

/// What to do when the helm binary is missing.
fn spawn_hint(source: &std::io::Error) -> &'static str {
    if source.kind() == std::io::ErrorKind::NotFound {
        " (the helm binary was not found: install helm or give its path)"
    } else {
        ""
    }
}

/// The helm binary to run: the option, `$DRIFTLESS_HELM`, or `helm` on PATH.
pub fn helm_command(opts: &HelmOptions) -> PathBuf {
    if let Some(cmd) = &opts.command {
        return cmd.clone();
    }
    match std::env::var_os("DRIFTLESS_HELM") {
        Some(cmd) if !cmd.is_empty() => PathBuf::from(cmd),
        _ => PathBuf::from("helm"),
    }
}

/// Renders the chart in `chart` (canonical, inside the canonical `root`);
/// helm is killed at the time limit or once its output passes the byte limit
/// and, started through `worker`, limited in memory. The chart is read
/// whole, and so recorded in `log`, with the values files. Dependencies
/// missing from its `charts/` are taken from their repositories through
/// `repos`, into a copy of the chart.
pub fn render(
    root: &Path,
    chart: &Path,
    opts: &HelmOptions,
    limits: &RenderLimits,
    worker: Option<&RenderWorker>,
    log: &ReadLog,
    repos: Option<&ChartRepositories>,
) -> Result<Vec<Rendered>, HelmError> {
    log.tree(chart);
    // helm follows symlinks in the chart by itself, so refuse escaping ones first.
    paths::check_tree(root, chart)?;
    let scratch = scratch_dir()?;
    let built = match repos {
        Some(repos) => repos.with_dependencies(chart, scratch.path())?,
        None => None,
    };
    if built.is_some() {
        log.fetched_charts();
    }
    let mut values = Vec::new();
    for file in &opts.values_files {
        log.entry(&chart.join(file));
        values.push(paths::resolve_inside(root, chart, file)?);
    }
    let release = opts.release_name.clone().unwrap_or_else(|| {
        chart.file_name().map_or_else(
            || "release".to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    });
    let shown = Shown {
        limits: shown_dir(root, chart),
        origin: format!("helm template {}", paths::display_relative(root, chart)),
    };
    let path = built.as_deref().unwrap_or(chart);
    template(path, &release, &shown, &values, &[], opts, limits, worker)
}

/// How messages and object origins name a chart.
pub(crate) struct Shown {
    /// In limit errors.
    pub limits: String,
    /// As the origin of rendered objects (`helm template ...`).
    pub origin: String,
}

/// Runs `helm template` on `chart` (a directory or an archive) as `release`,
/// with the values files `values` (absolute), then the value layers
/// `layers`, then the inline values of `opts`, later ones winning.
#[allow(clippy::too_many_arguments)]
pub(crate) fn template(
    chart: &Path,
    release: &str,
    shown: &Shown,
    values: &[PathBuf],
    layers: &[Value],
    opts: &HelmOptions,
    limits: &RenderLimits,
    worker: Option<&RenderWorker>,
) -> Result<Vec<Rendered>, HelmError> {
    let scratch = scratch_dir()?;
    let command = helm_command(opts);
    let mut cmd = Command::new(&command);
    cmd.arg("template").arg(release).arg(chart);
    for file in values {
        cmd.arg("--values").arg(file);
    }
    let inline = opts.values.iter();
    for (i, layer) in layers.iter().chain(inline).enumerate() {
        if !layer.is_object() {
            return Err(HelmError::Values {
                chart: chart.to_path_buf(),
                found: crate::objects::type_name(layer),
            });
        }
        // JSON is YAML, so helm reads the values from a JSON file.
        let path = scratch.path().join(format!("values-{i}.json"));
        std::fs::write(&path, layer.to_string()).map_err(|source| HelmError::Scratch {
            path: path.clone(),
            source,
        })?;
        cmd.arg("--values").arg(path);
    }
    flags(&mut cmd, opts);
    // Private homes keep the user's repositories and plugins out of a render.
    for (var, sub) in [
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_DATA_HOME", "data"),
    ] {
        cmd.env(var, scratch.path().join(sub));
    }
    let what = format!("helm template {}", shown.limits);
    let end = helm_run::run(&mut cmd, worker, limits, &what, &shown.limits);
    let stdout = match end {
        Ok(HelmExit { status, stdout, .. }) if status.success() => stdout,
        Ok(HelmExit { stderr, .. }) => {
            return Err(HelmError::Failed {
                chart: chart.to_path_buf(),
                stderr,
            });
        }
        Err(HelmRunError::Limit(e)) => return Err(e.into()),
        Err(HelmRunError::Spawn(source)) => {
            return Err(HelmError::Spawn {
                command: command.display().to_string(),
                chart: chart.to_path_buf(),
                source,
            });
        }
    };
    parse_output(chart, &String::from_utf8_lossy(&stdout), &shown.origin)
}

/// The flags of `opts` other than values.
fn flags(cmd: &mut Command, opts: &HelmOptions) {
    if let Some(ns) = &opts.namespace {
        cmd.arg("--namespace").arg(ns);
    }
    if opts.include_crds {
        cmd.arg("--include-crds");
    }
    if opts.skip_tests {
        cmd.arg("--skip-tests");
    }
    if let Some(v) = &opts.kube_version {
        cmd.arg("--kube-version").arg(v);
    }
    for v in &opts.api_versions {
        cmd.arg("--api-versions").arg(v);
    }
}

/// The objects of helm's output, each named after its template.
fn parse_output(chart: &Path, text: &str, shown: &str) -> Result<Vec<Rendered>, HelmError> {
    let mut out = Vec::new();
    for (source, chunk) in split_sources(text) {
        let origin = match source {
            Some(file) => format!("{shown} ({file})"),
            None => shown.to_string(),
        };
        let docs =
            driftless_kustomize::parse_stream(chunk, Path::new(&origin)).map_err(|source| {
                HelmError::Output {
                    chart: chart.to_path_buf(),
                    source,
                }
            })?;
        for (i, doc) in docs.into_iter().enumerate() {
            expand_lists(doc, &format!("{origin}#{i}"), &mut out);
        }
    }
    Ok(out)
}

/// Splits helm's output at `---` lines, pairing each part with the template
/// named in its `# Source:` comment so errors can point at the template.
fn split_sources(text: &str) -> Vec<(Option<&str>, &str)> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" && offset > start {
            parts.push(&text[start..offset]);
            start = offset;
        }
        offset += line.len();
    }
    parts.push(&text[start..]);
    parts
        .into_iter()
        .map(|part| {
            let source = part
                .lines()
                .find_map(|l| l.strip_prefix("# Source: "))
                .map(str::trim);
            (source, part)
        })
        .collect()
}
