//! Rendering a revision for an App: its snapshot, the path check, the
//! substitution variables read from the cluster, and the cached render: a
//! revision that changed nothing the App's last render read reuses its set.

use std::collections::BTreeMap;
use std::sync::Arc;

use driftless_api::App;
use driftless_api::history::{ChartRevision, RemoteRevision};
use driftless_render::decrypt::EncryptedFields;
use driftless_render::{Cached, ObjectSet};
use driftless_source::{Revision, Snapshot};

use super::clusters::{ClusterError, config_map, secret};
use super::decrypt::{app_keys, decrypt_app};
use super::error::ReconcileError;
use super::outcome::check_app_path;
use super::sources::{Origin, secret_namespace};
use super::{Inner, charts, lock, spec};
use crate::metrics::RenderResult;

/// What a render of an App gave: its objects and the remote resources it
/// read, with their revisions, for the sync's record.
pub(crate) struct RenderedApp {
    pub(crate) set: Arc<ObjectSet>,
    pub(crate) remotes: Vec<RemoteRevision>,
    /// The fields that were encrypted in Git, which diffs mask.
    pub(crate) encrypted: EncryptedFields,
    /// The chart version rendered, for an App whose chart comes from a HelmRepository.
    pub(crate) chart: Option<ChartRevision>,
}

impl Inner {
    /// Snapshot and render of `revision` for `app`, cached by what the
    /// render read and the options (substitution variables included).
    pub(crate) async fn render(
        self: &Arc<Self>,
        app: &App,
        target: &driftless_kube::Target,
        origin: &Origin,
        revision: &Revision,
    ) -> Result<RenderedApp, ReconcileError> {
        let snapshot = self.snapshot(origin, revision).await?;
        lock(&self.snapshots).insert(app.name().to_owned(), snapshot.clone());
        self.render_snapshot(app, target, origin, &snapshot, revision)
            .await
    }

    /// Renders `app` from a snapshot of `revision` of `origin` (cached like
    /// [`Self::render`]; a Git origin lends its credentials to remote bases on its host).
    pub(crate) async fn render_snapshot(
        self: &Arc<Self>,
        app: &App,
        target: &driftless_kube::Target,
        origin: &Origin,
        snapshot: &Snapshot,
        revision: &Revision,
    ) -> Result<RenderedApp, ReconcileError> {
        check_app_path(
            &snapshot.dir,
            &app.spec.path,
            &revision.sha,
            &app.spec.source_ref.name,
        )?;
        let vars = self
            .substitutions(app, target)
            .await
            .map_err(ReconcileError::Substitution)?;
        // Before the render: it decrypts kustomize generator sources with them.
        let keys = app_keys(app, target).await?.map(Arc::new);
        let mut opts = spec::render_options(app, &snapshot.dir, vars);
        opts.decryption_keys = keys.clone();
        opts.limits = spec::render_limits(app, &self.render_bounds);
        opts.worker = self.render_worker.clone();
        opts.helm.command.clone_from(&self.helm_command);
        opts.kustomize.helm_command.clone_from(&self.helm_command);
        if let Some(chart) = charts::app_chart(app) {
            return self
                .render_repository_chart(app, target, chart, opts, keys.as_deref())
                .await;
        }
        opts.remote = spec::remote_sources(app, &self.render_bounds, &self.fetcher, origin.git());
        // A chart's dependencies missing from its `charts/` come from their
        // repositories, as `helm dependency build` takes them, unless the
        // server or the App keeps renders off the network.
        let dir = snapshot.dir.join(app.spec.path.trim_start_matches('/'));
        if opts.remote.is_some() {
            opts.chart_repositories = Some(self.dependency_repositories(app, &dir).await);
        }
        let inner = self.clone();
        let rendered =
            tokio::task::spawn_blocking(move || inner.renders.get_or_render(&dir, &opts))
                .await
                .map_err(ReconcileError::RenderTask)?;
        let result = match &rendered {
            Ok(cached) if cached.reused() => RenderResult::Reused,
            Ok(_) => RenderResult::Rendered,
            Err(_) => RenderResult::Failed,
        };
        self.metrics.count_render(result);
        if let Ok(cached) = &rendered {
            for used in &cached.remotes {
                tracing::info!(
                    app = %app.name(),
                    revision = %revision.sha,
                    remote = %used.url,
                    remote_revision = %used.revision,
                    "rendered with remote resource {} at {}",
                    used.url,
                    used.revision
                );
            }
        }
        let Cached { set, remotes, .. } = rendered.map_err(|source| ReconcileError::Render {
            path: app.spec.path.clone(),
            source: Box::new(source),
        })?;
        // After the cache, in memory only: the cache keeps the encrypted set.
        let (set, encrypted) = match decrypt_app(app, keys.as_deref(), &set)? {
            Some((plain, fields)) => (Arc::new(plain), fields),
            None => (set, EncryptedFields::new()),
        };
        Ok(RenderedApp {
            chart: None,
            set,
            remotes: remotes
                .into_iter()
                .map(|r| RemoteRevision {
                    url: r.url,
                    revision: r.revision,
                })
                .collect(),
            encrypted,
        })
    }

    /// Renders the chart `app` takes from a HelmRepository, with its values
    /// files from the App's path in the snapshot `opts` is rooted at, its
    /// `valuesFrom` and inline values. Not cached: the chart is on disk,
    /// and the values may come from the cluster.
    async fn render_repository_chart(
        self: &Arc<Self>,
        app: &App,
        target: &driftless_kube::Target,
        chart: &driftless_api::HelmChart,
        mut opts: driftless_render::RenderOptions,
        keys: Option<&driftless_sops::Keys>,
    ) -> Result<RenderedApp, ReconcileError> {
        let pinned = self
            .store
            .app(app.name())
            .ok()
            .flatten()
            .and_then(|s| s.pinned)
            .and_then(|p| p.chart);
        let resolved = self.resolve_chart(app, chart, pinned.as_ref()).await?;
        let values_from = self.values_from(app, target).await?;
        // Relative to the App's path, as for a chart in Git.
        let dir = app.spec.path.trim_matches('/');
        for file in &mut opts.helm.values_files {
            *file = std::path::Path::new(dir).join(&*file);
        }
        let revision = resolved.revision.clone();
        let label = format!("chart {} {}", revision.name, revision.version);
        let rendered = tokio::task::spawn_blocking(move || {
            let chart = driftless_render::RepositoryChart {
                archive: &resolved.archive,
                name: &resolved.revision.name,
                version: &resolved.revision.version,
                values_from: &values_from,
            };
            driftless_render::render_chart(&chart, &opts)
        })
        .await
        .map_err(ReconcileError::RenderTask)?;
        self.metrics.count_render(if rendered.is_ok() {
            RenderResult::Rendered
        } else {
            RenderResult::Failed
        });
        let set = rendered.map_err(|source| ReconcileError::Render {
            path: label,
            source: Box::new(source),
        })?;
        let (set, encrypted) = match decrypt_app(app, keys, &set)? {
            Some((plain, fields)) => (Arc::new(plain), fields),
            None => (Arc::new(set), EncryptedFields::new()),
        };
        Ok(RenderedApp {
            set,
            remotes: Vec::new(),
            encrypted,
            chart: Some(revision),
        })
    }

    /// Variables for `${var}` substitution: those of the ConfigMaps, then of
    /// the Secrets it names (later ones winning), then the App's own `vars`,
    /// which win over both, as documented on `Substitutions::vars`.
    async fn substitutions(
        &self,
        app: &App,
        target: &driftless_kube::Target,
    ) -> Result<Option<BTreeMap<String, String>>, ClusterError> {
        let Some(subst) = &app.spec.substitutions else {
            return Ok(None);
        };
        let namespace = secret_namespace(&app.metadata);
        let mut vars = BTreeMap::new();
        for r in &subst.from_config_map {
            vars.extend(config_map(target, namespace, &r.name).await?);
        }
        for r in &subst.from_secret {
            vars.extend(secret(target, namespace, &r.name).await?);
        }
        vars.extend(subst.vars.clone());
        Ok(Some(vars))
    }
}
