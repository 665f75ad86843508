//! `driftless serve`: load the config, start the engine and the HTTP server,
//! and pick up config changes without a restart.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use driftless_api::inspect::{AppDiff, OwnedTree};
use driftless_api::{Config, LoadError, ReceiverType, SecretValue, ServerSpec, load_config};
use driftless_engine::control::EngineControl;
use driftless_engine::runtime::{Engine, EngineError, EngineOptions, RenderWorker};

use crate::auth::{Access, Token};
use crate::router;
use crate::state::{Inspection, Inspector, Receiver, ServerState};
use crate::webhook::Provider;

/// How often the config files are checked for changes.
pub const RELOAD_CHECK: Duration = Duration::from_secs(1);
/// How often every App's history is pruned to the retention (new records prune their
/// own App at once; this ages out Apps that stopped syncing).
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Where the desired state comes from.
pub enum Desired {
    /// A config file or directory, reloaded when saved.
    Files(PathBuf),
    /// Objects read elsewhere (custom resources in a cluster): the engine starts
    /// with `config` and server settings `spec`, and `attach` receives the
    /// running engine to feed it changes.
    Given {
        /// The objects to start with.
        config: Box<Config>,
        /// Server settings (listen address, tokens, retention, bounds).
        spec: Box<ServerSpec>,
        /// Called once the engine runs and the server answers.
        attach: Box<dyn FnOnce(Running) + Send>,
    },
}

/// A running engine and server, for whoever feeds them desired state.
#[derive(Clone)]
pub struct Running {
    /// The engine.
    pub engine: Engine,
    state: ServerState,
}

impl Running {
    /// Makes the webhook receivers of `config` answer, each with the secret
    /// `secrets` holds for its name; returns the problems of receivers left out.
    pub fn set_receivers(
        &self,
        config: &Config,
        secrets: &HashMap<String, Vec<u8>>,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let mut out = HashMap::new();
        for r in config.receivers() {
            match secrets.get(r.name()) {
                Some(secret) => {
                    out.insert(r.name().to_owned(), receiver(r, secret.clone()));
                }
                None => problems.push(format!("{}: its secret is not available", r.key())),
            }
        }
        self.state.set_receivers(out);
        problems
    }

    /// Marks the instance as reconciling (`/readyz` answers ready and changes are
    /// accepted) or as a standby.
    pub fn set_ready(&self, ready: bool) {
        self.state.readiness().store(ready, Ordering::Release);
    }
}

/// Settings of one `driftless serve` run; flags win over the config's Server object.
pub struct ServeOptions {
    /// Where the desired state comes from.
    pub desired: Desired,
    /// State directory (`--data-dir`).
    pub data_dir: Option<PathBuf>,
    /// Listen address (`--listen`).
    pub listen: Option<SocketAddr>,
    /// Called with the bound address once the server answers.
    pub on_ready: Box<dyn FnOnce(SocketAddr) + Send>,
    /// The process that evaluates Jsonnet Apps within the render bounds.
    pub render_worker: Option<RenderWorker>,
    /// Apps reconciled at once (`--concurrency`); wins over `spec.concurrency`.
    pub concurrency: Option<u32>,
}

/// Why `driftless serve` could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The config is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] LoadError),
    /// A setting cannot be used (named in the message).
    #[error("{0}")]
    Setting(String),
    /// The engine could not start.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Binding or serving failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Runs until `shutdown` completes, then stops the engine cleanly.
pub async fn run(
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    match crate::process::raise_open_file_limit() {
        Ok(limit) => tracing::info!(
            "open-file limit {} (was {})",
            limit_text(limit.now),
            limit_text(limit.before)
        ),
        Err(e) => tracing::warn!("open-file limit unchanged, raising it failed: {e}"),
    }
    crate::process::private_file_creation();
    let (config, spec, feed) = match opts.desired {
        Desired::Files(path) => {
            let config = load_config(&path)?;
            let spec = config.server().map(|s| s.spec.clone()).unwrap_or_default();
            (config, spec, Feed::Files(path))
        }
        Desired::Given {
            config,
            spec,
            attach,
        } => (*config, *spec, Feed::Given(attach)),
    };
    let listen = match opts.listen {
        Some(addr) => addr,
        None => spec.listen.parse().map_err(|e| {
            ServeError::Setting(format!("Server spec.listen {:?}: {e}", spec.listen))
        })?,
    };
    let access = api_access(&spec)?;
    if matches!(feed, Feed::Files(_))
        && !listen.ip().is_loopback()
        && !spec.api.has_tokens(spec.api_token.as_ref())
    {
        return Err(ServeError::Setting(format!(
            "listening on {listen} (not loopback) needs a token: Server spec.apiToken or spec.api.tokens"
        )));
    }
    let receivers = match feed {
        Feed::Files(_) => receivers(&config).map_err(ServeError::Setting)?,
        Feed::Given(_) => HashMap::new(),
    };
    let data_dir = opts
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&spec.data_dir));
    let was_shared = crate::datadir::make_private(&data_dir)
        .map_err(|e| ServeError::Setting(format!("Server spec.dataDir: {e}")))?;
    let listener = router::bind(listen).await?;
    let bound = listener.local_addr()?;
    let mut engine_opts = EngineOptions::new(&data_dir);
    engine_opts.render_bounds = spec.render.clone();
    engine_opts.render_worker = opts.render_worker.clone();
    engine_opts.notifications = spec.notifications.clone();
    engine_opts.ignore_differences = spec.ignore_differences.clone();
    let concurrency = opts.concurrency.unwrap_or(spec.concurrency);
    if let Some(problem) = driftless_api::concurrency_problem(concurrency) {
        return Err(ServeError::Setting(format!("concurrency {problem}")));
    }
    engine_opts.queue.concurrency = concurrency as usize;
    let engine = Engine::start(config, engine_opts)?;
    engine.store().set_retention(spec.retention.clone());
    if was_shared {
        // Written before the directory was private: once, not on every start.
        tokio::spawn(tighten_data_dir(data_dir.clone()));
    }
    let pruning = tokio::spawn(prune_periodically(engine.store().clone()));
    let control = Arc::new(EngineControl::new(
        engine.store().clone(),
        engine.queue().clone(),
    ));
    let mut state = ServerState::new(engine.store().clone(), control, engine.metrics())
        .limits(spec.http.clone())
        .access(access);
    let pushes = engine.clone();
    let depth = engine.queue().clone();
    state = state
        .on_push(move |receiver, push| {
            let config = pushes.config();
            let Some(receiver) = config.receiver(receiver) else {
                return 0;
            };
            let matching = receiver.spec.resources.iter().filter(|name| {
                config
                    .git_source(name)
                    .is_some_and(|s| push.matches(&s.spec.url))
            });
            pushes.trigger_sources(matching.map(String::as_str))
        })
        .queue_depth(move || depth.depth());
    let sources = engine.clone();
    state = state.sources(move || sources.sources());
    let repositories = engine.clone();
    state = state.helm_repositories(move || repositories.helm_repositories());
    let artifacts = engine.clone();
    state = state.oci_sources(move || artifacts.oci_sources());
    let notifiers = engine.clone();
    state = state.notifiers(move || notifiers.notifiers());
    let desired = engine.clone();
    state = state.config(move || desired.config());
    state = state.inspector(Arc::new(EngineInspector(engine.clone())));
    let clusters = engine.clone();
    state = state.clusters(move || {
        let engine = clusters.clone();
        async move { engine.clusters().await }
    });
    state.set_receivers(receivers);
    tracing::info!(
        address = %bound,
        data_dir = %data_dir.display(),
        concurrency,
        "listening on http://{bound}, state in {}, up to {concurrency} Apps at once",
        data_dir.display()
    );
    let reload = match feed {
        Feed::Files(path) => {
            state.readiness().store(true, Ordering::Release);
            (opts.on_ready)(bound);
            Some(tokio::spawn(watch_config(
                path,
                engine.clone(),
                state.clone(),
            )))
        }
        Feed::Given(attach) => {
            (opts.on_ready)(bound);
            attach(Running {
                engine: engine.clone(),
                state: state.clone(),
            });
            None
        }
    };
    let served = router::serve(listener, state, shutdown).await;
    if let Some(reload) = reload {
        reload.abort();
    }
    pruning.abort();
    engine.shutdown().await;
    tracing::info!("stopped");
    Ok(served?)
}

/// How the running engine gets its changes.
enum Feed {
    /// Config files, watched.
    Files(PathBuf),
    /// Whoever `attach` hands the engine to.
    Given(Box<dyn FnOnce(Running) + Send>),
}

fn limit_text(limit: Option<u64>) -> String {
    limit.map_or_else(|| "unlimited".to_owned(), |n| n.to_string())
}

/// Removes group and other permissions below the data dir, for files written before
/// the umask was set (by an earlier version, or another tool).
async fn tighten_data_dir(dir: PathBuf) {
    let shown = dir.display().to_string();
    match tokio::task::spawn_blocking(move || crate::datadir::tighten_tree(&dir)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => {
            tracing::info!("data dir {shown}: removed group and other access from {n} files");
        }
        Ok(Err(e)) => tracing::warn!("data dir {shown}: {e}"),
        Err(e) => tracing::warn!("data dir {shown}: permission check failed: {e}"),
    }
}

/// Prunes the store to its retention at start and then every [`PRUNE_EVERY`].
async fn prune_periodically(store: driftless_engine::store::Store) {
    loop {
        let pass = store.clone();
        match tokio::task::spawn_blocking(move || pass.prune()).await {
            Ok(Ok(p)) if p.syncs + p.drift_events > 0 => tracing::info!(
                "state store: removed {} syncs and {} drift events beyond the retention",
                p.syncs,
                p.drift_events
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!("state store: pruning failed: {e}"),
            Err(e) => tracing::error!("state store: pruning failed: {e}"),
        }
        tokio::time::sleep(PRUNE_EVERY).await;
    }
}

/// The API's tokens with their values read, and whether reads need one.
fn api_access(spec: &ServerSpec) -> Result<Access, ServeError> {
    let mut tokens = Vec::new();
    if let Some(secret) = &spec.api_token {
        let value = read_secret_value(secret)
            .map_err(|e| ServeError::Setting(format!("Server spec.apiToken: {e}")))?;
        tokens.push(Token::legacy(&value));
    }
    for (i, token) in spec.api.tokens.iter().enumerate() {
        let value = read_secret_value(&token.secret).map_err(|e| {
            ServeError::Setting(format!("Server spec.api.tokens[{i}] ({}): {e}", token.name))
        })?;
        tokens.push(Token::new(&token.name, token.role, &value));
    }
    Access::new(spec.api.anonymous_read, tokens)
        .map_err(|e| ServeError::Setting(format!("Server spec.api.tokens: {e}")))
}

/// Reads a token from its environment variable or file.
fn read_secret_value(value: &SecretValue) -> Result<String, String> {
    let text = match (&value.env, &value.file) {
        (Some(var), _) => {
            std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?
        }
        (None, Some(file)) => {
            std::fs::read_to_string(file).map_err(|e| format!("reading {file}: {e}"))?
        }
        (None, None) => return Err("set env or file".to_owned()),
    };
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err("the token is empty".to_owned());
    }
    Ok(text)
}

/// The webhook receivers of `config` with their secrets read.
fn receivers(config: &Config) -> Result<HashMap<String, Receiver>, String> {
    let mut out = HashMap::new();
    for r in config.receivers() {
        let secret = match (&r.spec.secret_env, &r.spec.secret_ref) {
            (Some(var), _) => read_secret_value(&SecretValue {
                env: Some(var.clone()),
                file: None,
            })
            .map_err(|e| format!("{} spec.secretEnv: {e}", r.key()))?,
            (None, Some(_)) => {
                return Err(format!(
                    "{} spec.secretRef: Secrets are for in-cluster receivers; use secretEnv with driftless serve",
                    r.key()
                ));
            }
            (None, None) => return Err(format!("{}: no secret", r.key())),
        };
        out.insert(r.name().to_owned(), receiver(r, secret.into_bytes()));
    }
    Ok(out)
}

/// The receiver `r` declares, checking requests with `secret`.
fn receiver(r: &driftless_api::Receiver, secret: Vec<u8>) -> Receiver {
    let provider = match r.spec.type_ {
        ReceiverType::Github => Provider::Github,
        ReceiverType::Gitlab => Provider::Gitlab,
        ReceiverType::Gitea => Provider::Gitea,
        ReceiverType::GenericHmac => Provider::GenericHmac,
    };
    Receiver {
        provider,
        secret,
        events: r.spec.events.clone(),
    }
}

/// Size and modification time of every file the config is read from.
type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

fn fingerprint(path: &Path) -> Fingerprint {
    let mut out = Vec::new();
    collect(path, &mut out);
    out.sort();
    out
}

fn collect(path: &Path, out: &mut Fingerprint) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        for entry in entries.flatten() {
            collect(&entry.path(), out);
        }
    } else {
        out.push((path.to_path_buf(), meta.len(), meta.modified().ok()));
    }
}

/// Applies config changes as they are saved; an invalid config is rejected
/// whole and the running one kept.
async fn watch_config(path: PathBuf, engine: Engine, state: ServerState) {
    let mut seen = fingerprint(&path);
    loop {
        tokio::time::sleep(RELOAD_CHECK).await;
        let now = fingerprint(&path);
        if now == seen {
            continue;
        }
        seen = now;
        let loaded = load_config(&path)
            .map_err(|e| e.to_string())
            .and_then(|c| receivers(&c).map(|r| (c, r)));
        match loaded {
            Ok((config, receivers)) if config.digest() == engine.config().digest() => {
                drop((config, receivers));
            }
            Ok((config, receivers)) => {
                tracing::info!("config {}: reloaded", path.display());
                state.set_receivers(receivers);
                engine.apply_config(config);
            }
            Err(e) => tracing::warn!(
                "config {} rejected, the running config stays in force:\n{e}",
                path.display()
            ),
        }
    }
}

/// Inspects Apps through the engine's clusters.
struct EngineInspector(Engine);

impl Inspector for EngineInspector {
    fn owned_objects(&self, app: &str) -> Inspection<OwnedTree> {
        let (engine, app) = (self.0.clone(), app.to_owned());
        Box::pin(async move { engine.owned_objects(&app).await })
    }

    fn diff(&self, app: &str) -> Inspection<AppDiff> {
        let (engine, app) = (self.0.clone(), app.to_owned());
        Box::pin(async move { engine.diff(&app).await })
    }
}
