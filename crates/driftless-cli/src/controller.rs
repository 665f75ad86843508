//! `driftless controller`, `driftless install` and `driftless uninstall`.

use std::time::Duration;

use anyhow::{Context, anyhow};
use driftless_api::{ServerSpec, load_config};
use driftless_controller::install::{self, InstallOptions};
use driftless_controller::{ControllerError, ControllerOptions, FINALIZER, Scope};
use driftless_kube::lease::LeaseSettings;
use driftless_kube::{ApplyOptions, Target};

use crate::args::{ControllerArgs, InstallArgs, KubeconfigArgs, UninstallArgs};
use crate::exit::{Failure, Outcome};

/// Inventory (app) name of the controller's manifests.
const INSTALL_APP: &str = "driftless";
/// Inventory (app) name of the CRDs, removed only on request.
const CRDS_APP: &str = "driftless-crds";

pub fn run(args: &ControllerArgs) -> Outcome {
    crate::logging::init(&args.run.log)?;
    let server = server_settings(args)?;
    let in_pod = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let identity = identity();
    let leader_election = args.leader_elect.unwrap_or(in_pod).then(|| {
        let name = match &args.shard {
            Some(key) => format!("driftless-controller-{key}"),
            None => "driftless-controller".to_owned(),
        };
        let mut settings = LeaseSettings::new(&args.namespace, name, &identity);
        // A standby takes over within 14 s of the leader's death.
        settings.lease_duration = Duration::from_secs(12);
        settings.renew_deadline = Duration::from_secs(8);
        settings
    });
    if let Some(settings) = &leader_election {
        settings.validate().map_err(Failure::input)?;
    }
    let render_worker = Some(crate::render::worker().map_err(Failure::operational)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Failure::operational)?;
    runtime.block_on(async {
        let config = kube::Config::infer()
            .await
            .map_err(|e| Failure::input(anyhow!("no cluster to reconcile: {e}")))?;
        let client = driftless_kube::requests::client(config).map_err(Failure::operational)?;
        let opts = ControllerOptions {
            client,
            scope: Scope {
                namespace: args.watch_namespace.clone(),
                shard: args.shard.clone(),
            },
            cross_namespace_refs: args.allow_cross_namespace_refs,
            leader_election,
            identity,
            server,
            data_dir: args.run.data_dir.clone(),
            listen: args.run.listen,
            render_worker,
            on_ready: Box::new(|_| {}),
        };
        driftless_controller::run(opts, crate::serve::shutdown_signal())
            .await
            .map_err(|e| match e {
                ControllerError::Serve(driftless_server::serve::ServeError::Setting(_)) => {
                    Failure::input(e)
                }
                _ => Failure::operational(e),
            })
    })?;
    Ok(0)
}

/// The Server object of `--config`, or the defaults.
fn server_settings(args: &ControllerArgs) -> Result<ServerSpec, Failure> {
    let mut spec = match &args.config {
        Some(path) => server_file(path)?,
        None => ServerSpec::default(),
    };
    if let Some(n) = args.run.concurrency {
        spec.concurrency = n;
    }
    Ok(spec)
}

/// The Server object of `--config`, which may hold nothing else.
fn server_file(path: &std::path::Path) -> Result<ServerSpec, Failure> {
    let config = load_config(path).map_err(Failure::input)?;
    let others = config.git_sources().count()
        + config.apps().count()
        + config.clusters().count()
        + config.receivers().count();
    if others > 0 {
        return Err(Failure::input(anyhow!(
            "{}: the controller reads GitSources, Apps, Clusters and Receivers from the cluster; \
             this file may hold only a Server object",
            path.display()
        )));
    }
    Ok(config.server().map(|s| s.spec.clone()).unwrap_or_default())
}

/// This instance's name: the pod's, else the host's, with the process id.
fn identity() -> String {
    if let Some(pod) = std::env::var("POD_NAME").ok().filter(|p| !p.is_empty()) {
        return pod;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "driftless".to_owned());
    format!("{host}-{}", std::process::id())
}

fn install_options(args: &InstallArgs) -> InstallOptions {
    let mut opts = InstallOptions::new(env!("CARGO_PKG_VERSION"));
    opts.namespace.clone_from(&args.namespace);
    if let Some(image) = &args.image {
        opts.image.clone_from(image);
    }
    opts.shards.clone_from(&args.shards);
    opts.persistence.clone_from(&args.persistence);
    opts
}

pub fn install(args: &InstallArgs) -> Outcome {
    let opts = install_options(args);
    if args.export {
        let mut objects = install::crds();
        objects.extend(install::controller(&opts));
        let text = driftless_yaml::emit_stream(&objects).map_err(Failure::operational)?;
        print!("{text}");
        return Ok(0);
    }
    let timeout: driftless_api::Duration = args
        .timeout
        .parse()
        .map_err(|e| Failure::input(anyhow!("--timeout: {e}")))?;
    block_on(async {
        let target = connect(&args.cluster).await?;
        let mut crd_opts = apply_options(CRDS_APP, &opts.namespace);
        crd_opts.wait = true;
        crd_opts.timeout = timeout.get();
        let mut controller_opts = apply_options(INSTALL_APP, &opts.namespace);
        controller_opts.prune = true;
        controller_opts.wait = true;
        controller_opts.timeout = timeout.get();
        controller_opts.create_namespace = true;
        eprintln!("installing the CRDs");
        driftless_kube::apply(&target, &install::crds(), &crd_opts, &|_| {})
            .await
            .context("applying the CRDs")
            .map_err(Failure::operational)?;
        eprintln!(
            "installing the controller in namespace {} and waiting until it runs",
            opts.namespace
        );
        let report = driftless_kube::apply(
            &target,
            &install::controller(&opts),
            &controller_opts,
            &|_| {},
        )
        .await
        .context("applying the controller")
        .map_err(Failure::operational)?;
        print_report("installed", &report);
        Ok(0)
    })
}

pub fn uninstall(args: &UninstallArgs) -> Outcome {
    block_on(async {
        let target = connect(&args.cluster).await?;
        let opts = apply_options(INSTALL_APP, &args.namespace);
        let report = driftless_kube::delete_app(&target, &opts, &|_| {})
            .await
            .context("removing the controller")
            .map_err(Failure::operational)?;
        eprintln!(
            "controller removed: {} objects deleted",
            report.deleted.len()
        );
        if args.crds {
            let released = release_apps(&target).await?;
            eprintln!("{released} Apps released (their objects stay)");
            let opts = apply_options(CRDS_APP, &args.namespace);
            let report = driftless_kube::delete_app(&target, &opts, &|_| {})
                .await
                .context("removing the CRDs")
                .map_err(Failure::operational)?;
            eprintln!("CRDs removed: {} deleted", report.deleted.len());
        }
        Ok(0)
    })
}

/// Takes the finalizer off every App: without a controller nothing would
/// remove it, and the CRDs could not go.
async fn release_apps(target: &Target) -> Result<usize, Failure> {
    use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
    let resource = driftless_controller::objects::CrKind::App.resource();
    let api: Api<DynamicObject> = Api::all_with(target.client().clone(), &resource);
    let apps = api
        .list(&ListParams::default())
        .await
        .context("listing Apps")
        .map_err(Failure::operational)?;
    let mut released = 0;
    for app in apps {
        let finalizers = app.metadata.finalizers.clone().unwrap_or_default();
        if !finalizers.iter().any(|f| f == FINALIZER) {
            continue;
        }
        let kept: Vec<&String> = finalizers.iter().filter(|f| *f != FINALIZER).collect();
        let ns = app.metadata.namespace.clone().unwrap_or_default();
        let name = app.metadata.name.clone().unwrap_or_default();
        let api: Api<DynamicObject> = Api::namespaced_with(target.client().clone(), &ns, &resource);
        let patch = serde_json::json!({"metadata": {"finalizers": kept}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("releasing App {ns}/{name}"))
            .map_err(Failure::operational)?;
        released += 1;
    }
    Ok(released)
}

/// One line with the counts of an apply, then each object created or updated.
pub(crate) fn print_report(done: &str, report: &driftless_kube::ApplyReport) {
    eprintln!(
        "{done}: {} objects created, {} updated, {} unchanged",
        report.created.len(),
        report.updated.len(),
        report.unchanged.len()
    );
    for object in &report.created {
        eprintln!("  created {object}");
    }
    for object in &report.updated {
        eprintln!("  updated {object}");
    }
}

fn apply_options(app: &str, namespace: &str) -> ApplyOptions {
    let mut opts = ApplyOptions::new(app);
    opts.inventory_namespace = namespace.to_owned();
    opts
}

pub(crate) async fn connect(args: &KubeconfigArgs) -> Result<Target, Failure> {
    Target::connect(args.kubeconfig.as_deref(), args.context.as_deref())
        .await
        .map_err(Failure::input)
}

pub(crate) fn block_on(future: impl Future<Output = Outcome>) -> Outcome {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Failure::operational)?
        .block_on(future)
}
