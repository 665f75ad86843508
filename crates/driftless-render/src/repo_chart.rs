//! Charts from Helm repositories: an archive, verified by its digest before
//! it gets here, rendered by `helm template` with values in Flux's order of
//! precedence: the chart's own, values files from a checkout, values from
//! Secrets and ConfigMaps in the order listed, then inline values.

use std::path::Path;

use serde_json::Value;

use crate::helm::{self, Shown};
use crate::{Error, ObjectSet, RenderOptions, limits, paths};

/// A packaged chart to render.
#[derive(Clone, Debug)]
pub struct RepositoryChart<'a> {
    /// The chart archive (`.tgz`).
    pub archive: &'a Path,
    /// The chart's name.
    pub name: &'a str,
    /// Its version.
    pub version: &'a str,
    /// Values from Secrets and ConfigMaps, in order (each a mapping).
    pub values_from: &'a [Value],
}

/// Renders `chart` with `opts`: `opts.helm.values_files` are relative to
/// `opts.root` (a checkout; nothing outside it is read) and come first,
/// then `chart.values_from`, then `opts.helm.values`. The release is
/// `opts.helm.release_name`, else the chart's name.
pub fn render_chart(chart: &RepositoryChart<'_>, opts: &RenderOptions) -> Result<ObjectSet, Error> {
    let mut values = Vec::new();
    if !opts.helm.values_files.is_empty() {
        let root = paths::canonical(&opts.root)?;
        for file in &opts.helm.values_files {
            values.push(paths::resolve_inside(&root, &root, file)?);
        }
    }
    let release = opts.helm.release_name.as_deref().unwrap_or(chart.name);
    let label = format!("chart {} {}", chart.name, chart.version);
    let shown = Shown {
        limits: label.clone(),
        origin: format!("helm template {label}"),
    };
    let worker = opts.worker.as_ref();
    let items = helm::template(
        chart.archive,
        release,
        &shown,
        &values,
        chart.values_from,
        &opts.helm,
        &opts.limits,
        worker,
    )?;
    limits::check_objects(&label, items.len(), opts.limits.max_objects)?;
    let items = match &opts.substitute {
        Some(subst) => subst.apply(items)?,
        None => items,
    };
    Ok(ObjectSet::new(items)?)
}
