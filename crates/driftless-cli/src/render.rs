//! `driftless render DIR`.

use std::collections::BTreeMap;

use driftless_kustomize::{LoadRestrictor, Reorder};
use driftless_render::{RenderKind, RenderLimits, RenderOptions, RenderWorker, Substitution};

use driftless_render::decrypt::EncryptedFields;

use crate::args::{
    DecryptArgs, KindArg, LoadRestrictorArg, Output, RenderArgs, RenderInput, ReorderArg,
};
use crate::exit::{Failure, Outcome};

pub fn run(args: &RenderArgs) -> Outcome {
    let (set, _) = render_decrypted(&args.input, &args.decrypt)?;
    let text = match args.output {
        Output::Yaml => set.to_yaml().map_err(Failure::operational)?,
        Output::Json => {
            let items: Vec<_> = set.iter().collect();
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
            let mut text = serde_json::to_string_pretty(&list).map_err(Failure::operational)?;
            text.push('\n');
            text
        }
    };
    print!("{text}");
    Ok(0)
}

/// Renders the input and, with `--decrypt`, decrypts the objects sops
/// encrypted, in memory; with the fields that were encrypted, which diffs mask.
pub fn render_decrypted(
    input: &RenderInput,
    decrypt: &DecryptArgs,
) -> Result<(driftless_render::ObjectSet, EncryptedFields), Failure> {
    // Keys are read before anything renders, so a bad key file is reported first.
    let keys = decrypt
        .decrypt
        .then(|| decryption_keys(decrypt).map(std::sync::Arc::new))
        .transpose()?;
    // Generator sources encrypted by sops are decrypted during the build.
    let set = render(input, keys.clone())?;
    let fields = driftless_render::decrypt::encrypted_fields(&set);
    match keys {
        Some(keys) => {
            let plain = driftless_render::decrypt::decrypt_objects(&set, &keys);
            Ok((plain.map_err(Failure::input)?, fields))
        }
        None => Ok((set, fields)),
    }
}

/// The keys `--decrypt` uses: the environment's, then the files named.
fn decryption_keys(args: &DecryptArgs) -> Result<driftless_sops::Keys, Failure> {
    let mut keys = driftless_sops::Keys::from_env().map_err(Failure::input)?;
    for file in &args.age_key_file {
        keys.add_age_key_file(file).map_err(Failure::input)?;
    }
    for file in &args.pgp_key_file {
        keys.add_pgp_key_file(file).map_err(Failure::input)?;
    }
    Ok(keys)
}

/// Renders the input directory, decrypting encrypted kustomize generator
/// sources with `keys`; every failure is the user's input to fix.
pub fn render(
    args: &RenderInput,
    keys: Option<std::sync::Arc<driftless_sops::Keys>>,
) -> Result<driftless_render::ObjectSet, Failure> {
    let dir = args.dir();
    if !dir.is_dir() {
        return Err(Failure::input(anyhow::anyhow!(
            "{}: not a directory",
            dir.display()
        )));
    }
    let mut opts = options(args).map_err(Failure::input)?;
    opts.decryption_keys = keys;
    driftless_render::render(dir, &opts).map_err(Failure::input)
}

/// The hidden first argument that makes this binary a render worker.
pub const WORKER_ARG: &str = "__render-worker";

/// This binary as the render worker that evaluates Jsonnet within the limits.
pub fn worker() -> std::io::Result<RenderWorker> {
    RenderWorker::current_exe(&[WORKER_ARG])
}

/// The render limits the arguments ask for.
fn limits(args: &RenderInput) -> anyhow::Result<RenderLimits> {
    const MIB: u64 = 1024 * 1024;
    let timeout: driftless_api::Duration = args
        .render_timeout
        .parse()
        .map_err(|e| anyhow::anyhow!("--render-timeout: {e}"))?;
    if timeout.get().is_zero() {
        anyhow::bail!("--render-timeout: must be more than zero");
    }
    Ok(RenderLimits {
        max_input_bytes: args.input_limit_mib.saturating_mul(MIB),
        max_objects: usize::try_from(args.object_limit).unwrap_or(usize::MAX),
        max_memory: args.memory_limit_mib.saturating_mul(MIB),
        timeout: timeout.get(),
    })
}

/// Builds render options from the raw arguments, rejecting malformed ones first.
fn options(args: &RenderInput) -> anyhow::Result<RenderOptions> {
    let root = match &args.root {
        Some(root) => root.clone(),
        None => default_root(args.dir()),
    };
    let mut opts = RenderOptions::new(root);
    opts.kind = args.kind.map(|k| match k {
        KindArg::Kustomize => RenderKind::Kustomize,
        KindArg::Helm => RenderKind::Helm,
        KindArg::Jsonnet => RenderKind::Jsonnet,
        KindArg::Plain => RenderKind::Plain,
    });
    opts.kustomize.reorder = match args.reorder {
        ReorderArg::Legacy => Reorder::Legacy,
        ReorderArg::None => Reorder::None,
    };
    opts.kustomize.load_restrictor = match args.load_restrictor {
        LoadRestrictorArg::RootOnly => LoadRestrictor::RootOnly,
        LoadRestrictorArg::None => LoadRestrictor::None,
    };
    opts.kustomize.enable_helm = args.enable_helm;
    opts.kustomize.helm_command = args.helm_command.clone();
    opts.helm.command = args.helm_command.clone();
    opts.helm.release_name = args.release_name.clone();
    opts.helm.values_files = args.values_files.clone();
    opts.plain.recursive = args.recursive;
    opts.plain.include = args.include.clone();
    opts.plain.exclude = args.exclude.clone();
    opts.limits = limits(args)?;
    opts.worker = Some(worker()?);
    // Remote bases and files are read as kustomize reads them, unless refused;
    // without a cache directory a remote entry fails naming its URL.
    let cache = args
        .cache_dir
        .clone()
        .or_else(crate::source::default_cache_dir);
    if let Some(cache) = cache.filter(|_| !args.no_remote_resources) {
        // A chart's dependencies missing from its `charts/` come from their
        // repositories, as `helm dependency build` takes them, with the
        // user's `helm registry login` credentials for `oci://` ones.
        let mut charts = driftless_source::ChartRepositories::new(&cache.join("charts"));
        if let Some(logins) = driftless_source::helm_repo::helm_registry_config() {
            charts = charts.with_registry_logins(logins);
        }
        opts.chart_repositories = Some(std::sync::Arc::new(charts));
        let fetcher = std::sync::Arc::new(driftless_source::Fetcher::new(cache));
        opts.remote = Some(driftless_render::RemoteSources::new(fetcher));
    }
    if !args.vars.is_empty() || args.strict_vars {
        let mut vars = BTreeMap::new();
        for pair in &args.vars {
            let Some((name, value)) = pair.split_once('=') else {
                anyhow::bail!("--var {pair:?}: expected NAME=VALUE");
            };
            if name.is_empty() {
                anyhow::bail!("--var {pair:?}: the variable name is empty");
            }
            vars.insert(name.to_string(), value.to_string());
        }
        opts.substitute = Some(Substitution {
            vars,
            strict: args.strict_vars,
        });
    }
    Ok(opts)
}

/// The top of the Git working tree holding `dir` (the nearest ancestor with a
/// `.git` directory or file), else `dir` itself: an overlay may read its
/// bases anywhere in its repository, and nothing outside it.
fn default_root(dir: &std::path::Path) -> std::path::PathBuf {
    let Ok(real) = dir.canonicalize() else {
        return dir.to_path_buf();
    };
    real.ancestors()
        .find(|a| a.join(".git").exists())
        .map_or_else(|| dir.to_path_buf(), std::path::Path::to_path_buf)
}
