//! Rendering a revision for an App: its snapshot, the path check, the
//! substitution variables read from the cluster, and the cached render: a
//! revision that changed nothing the App's last render read reuses its set.

use std::collections::BTreeMap;
use std::sync::Arc;

use driftless_api::App;
use driftless_api::history::RemoteRevision;
use driftless_render::decrypt::EncryptedFields;
use driftless_render::{Cached, ObjectSet};
use driftless_source::{Revision, Snapshot, SourceSpec};

use super::clusters::{ClusterError, config_map, secret};
use super::decrypt::{app_keys, decrypt_app};
use super::error::ReconcileError;
use super::outcome::check_app_path;
use super::sources::secret_namespace;
use super::{Inner, lock, spec};
use crate::metrics::RenderResult;

/// What a render of an App gave: its objects and the remote resources it
/// read, with their revisions, for the sync's record.
pub(crate) struct RenderedApp {
    pub(crate) set: Arc<ObjectSet>,
    pub(crate) remotes: Vec<RemoteRevision>,
    /// The fields that were encrypted in Git, which diffs mask.
    pub(crate) encrypted: EncryptedFields,
}

impl Inner {
    /// Snapshot and render of `revision` for `app`, cached by what the
    /// render read and the options (substitution variables included).
    pub(crate) async fn render(
        self: &Arc<Self>,
        app: &App,
        target: &driftless_kube::Target,
        source_spec: SourceSpec,
        revision: &Revision,
    ) -> Result<RenderedApp, ReconcileError> {
        let snapshot = self.snapshot(source_spec.clone(), revision.clone()).await?;
        lock(&self.snapshots).insert(app.name().to_owned(), snapshot.clone());
        self.render_snapshot(app, target, &source_spec, &snapshot, revision)
            .await
    }

    /// Renders `app` from a snapshot of `revision` of `source` (cached like
    /// [`Self::render`]; `source` lends its credentials to remote bases on its host).
    pub(crate) async fn render_snapshot(
        self: &Arc<Self>,
        app: &App,
        target: &driftless_kube::Target,
        source: &SourceSpec,
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
        opts.remote = spec::remote_sources(app, &self.render_bounds, &self.fetcher, source);
        // A chart's dependencies missing from its `charts/` come from their
        // repositories, as `helm dependency build` takes them, unless the
        // server or the App keeps renders off the network.
        if opts.remote.is_some() {
            opts.chart_repositories = Some(self.chart_repos.clone());
        }
        let dir = snapshot.dir.join(app.spec.path.trim_start_matches('/'));
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
