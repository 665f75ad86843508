//! Accumulating a kustomization tree into resources, then running the
//! generators and transformers each level declares.

use std::path::{Path, PathBuf};

use crate::config::TransformerConfig;
use crate::kustomization::Kustomization;
use crate::loader::{Loader, parse_resources};
use crate::resource::{Resource, ResourceList, append_unique};
use crate::{
    Error, Options, Reorder, generator, nameref, order, patch, replacements, transform, vars,
};

/// State shared across one build.
pub(crate) struct Ctx<'o> {
    pub opts: &'o Options,
    /// Kustomization directories being built, to detect cycles.
    stack: Vec<PathBuf>,
    /// The schema the top kustomization's `openapi:` fixes for every level.
    schema: Option<crate::config::Schema>,
    /// The top kustomization has `buildMetadata`: kustomize then tracks
    /// origins, rewriting every object's annotations after each transformer.
    tracks_origins: bool,
}

/// The result of building one directory.
pub(crate) struct Level {
    pub resources: Vec<Resource>,
    pub vars: Vec<vars::Var>,
    pub config: TransformerConfig,
}

/// Builds `dir` and applies the steps kustomize runs once at the top.
pub(crate) fn run(dir: &Path, opts: &Options) -> Result<ResourceList, Error> {
    let _scopes = crate::scope::BuildScopes::start();
    let mut ctx = Ctx {
        opts,
        stack: Vec::new(),
        schema: None,
        tracks_origins: false,
    };
    let mut root = Loader::new(
        dir,
        opts.load_restrictor,
        opts.repository_root.as_deref(),
        std::sync::Arc::new(crate::loader::ReadBudget::new(opts.max_input_bytes)),
        opts.read_observer.clone(),
    )?;
    root.remote = opts.remote.clone();
    root.decryptor = opts.generator_decryptor.clone();
    let k = root.kustomization()?;
    check_openapi(&root, &k)?;
    ctx.schema = crate::config::Schema::top(&root, &k)?;
    ctx.tracks_origins = !k.strings("buildMetadata")?.is_empty();
    // A Component built directly behaves like a Kustomization over no resources.
    let base = (k.kind() == "Component").then(Vec::new);
    let level = accumulate(&root, &k, &mut ctx, base)?;
    let mut resources = level.resources;
    generator::add_hashes(&mut resources)?;
    nameref::fix_references(&mut resources, &level.config)
        .map_err(|m| Error::invalid(&k.path, m))?;
    vars::resolve(&mut resources, &level.vars, &level.config)
        .map_err(|m| Error::invalid(&k.path, m))?;
    resources.retain(|r| !is_local_config(r));
    let sort = order::SortSpec::from_kustomization(&k)?;
    match sort {
        Some(spec) => order::apply(&mut resources, &spec),
        None if opts.reorder == Reorder::Legacy => {
            order::apply(&mut resources, &order::SortSpec::legacy())
        }
        None => {}
    }
    let meta = k.strings("buildMetadata")?;
    if meta.iter().any(|m| m == "managedByLabel") {
        add_managed_by(&mut resources);
    }
    let origins = meta.iter().any(|m| m == "originAnnotations");
    let transformations = meta.iter().any(|m| m == "transformerAnnotations");
    if origins || transformations {
        crate::origin::annotate(&mut resources, &root.root, origins, transformations);
    }
    for r in &mut resources {
        transform::strip_internal(r);
    }
    Ok(ResourceList { items: resources })
}

/// The value kustomize v5.5.0 gives the label: its version as released
/// builds of kustomize and kubectl report it.
const MANAGED_BY: &str = "kustomize-(devel)";

/// `buildMetadata: [managedByLabel]`: labels every resource of the top-level
/// build (not of bases) with what built it, after sorting, as kustomize does.
fn add_managed_by(resources: &mut [crate::resource::Resource]) {
    let pairs = [(
        "app.kubernetes.io/managed-by".to_string(),
        MANAGED_BY.to_string(),
    )];
    let specs = [crate::fieldspec::FieldSpec::new(
        "",
        "",
        "",
        "metadata/labels",
        true,
    )];
    transform::apply_map(resources, &pairs, &[&specs]);
}

/// Applies each of `k`'s components, in order, to what `level` holds so far.
fn add_components(
    loader: &Loader,
    k: &Kustomization,
    ctx: &mut Ctx<'_>,
    level: &mut Level,
) -> Result<(), Error> {
    for entry in k.strings("components")? {
        let (sub, ck) = match crate::remote::target(loader, &entry) {
            crate::remote::Target::Local => open_component(loader, k, &entry)?,
            remote => match crate::remote::fetch(loader, k, &entry, remote)? {
                crate::remote::Fetched::Dir(opened) => *opened,
                crate::remote::Fetched::File(..) => {
                    return Err(Error::invalid(
                        &k.path,
                        format!("component '{entry}' must be a directory, not a file"),
                    ));
                }
            },
        };
        check_component(k, &entry, &sub, &ck)?;
        let resources = std::mem::take(&mut level.resources);
        let sub_level = accumulate(&sub, &ck, ctx, Some(resources))?;
        level.resources = sub_level.resources;
        level.vars.extend(sub_level.vars);
        level.config.merge(&sub_level.config);
    }
    Ok(())
}

fn is_local_config(r: &Resource) -> bool {
    r.annotations()
        .iter()
        .any(|(k, v)| k == "config.kubernetes.io/local-config" && v == "true")
}

/// Builds a kustomization (or, with `base`, a component applied to `base`).
pub(crate) fn accumulate(
    loader: &Loader,
    k: &Kustomization,
    ctx: &mut Ctx<'_>,
    base: Option<Vec<Resource>>,
) -> Result<Level, Error> {
    if ctx.stack.contains(&loader.root) {
        return Err(Error::Cycle(loader.root.clone()));
    }
    ctx.stack.push(loader.root.clone());
    let result = accumulate_inner(loader, k, ctx, base);
    ctx.stack.pop();
    result
}

fn accumulate_inner(
    loader: &Loader,
    k: &Kustomization,
    ctx: &mut Ctx<'_>,
    base: Option<Vec<Resource>>,
) -> Result<Level, Error> {
    check_openapi(loader, k)?;
    let mut level = Level {
        resources: base.unwrap_or_default(),
        vars: Vec::new(),
        config: TransformerConfig::default(),
    };
    for entry in k.strings("resources")? {
        add_resource_entry(loader, k, ctx, &entry, &mut level)?;
    }
    for entry in k.strings("crds")? {
        // CRD files only feed name-reference configuration; the objects are not emitted.
        loader.read("crds", &entry)?;
    }
    for r in crate::helm::inflate(loader, k, ctx.opts)? {
        append_unique(&mut level.resources, r, &k.path)?;
    }
    let generators = load_configs(loader, k, ctx, "generators")?;
    generator::run(loader, k, &generators, &mut level.resources)?;
    // As in kustomize since v5.1, components see this level's generated
    // objects (and may merge into them), not the other way round.
    add_components(loader, k, ctx, &mut level)?;
    // This level's own settings win over what its bases chose.
    let own = TransformerConfig::load(loader, k)?;
    if !matches!(own.schema, crate::config::Schema::Inherited) {
        level.config.schema = own.schema.clone();
    }
    level.config.merge(&own);
    if let Some(fixed) = &ctx.schema {
        level.config.schema = fixed.clone();
    }
    level.config.check_conflicts(&k.path)?;
    run_transformers(loader, k, ctx, &level.config, &mut level.resources)?;
    let declared = vars::read(k, &level.resources)?;
    level.vars.extend(declared);
    Ok(level)
}

/// Opens the local component directory `entry` of `k`.
fn open_component(
    loader: &Loader,
    k: &Kustomization,
    entry: &str,
) -> Result<(Loader, Kustomization), Error> {
    let path = loader.resolve(entry).map_err(|e| match e {
        refused @ Error::OutsideRepository { .. } => refused,
        other => Error::invalid(&k.path, other.to_string()),
    })?;
    if !path.is_dir() {
        return Err(Error::invalid(
            &k.path,
            // kustomize's words, then which entry it was.
            format!(
                "'{}' must be a directory to be a root (component '{entry}')",
                path.display()
            ),
        ));
    }
    loader.open(&path)
}

/// Refuses a component directory whose kustomization is not a Component.
fn check_component(
    k: &Kustomization,
    entry: &str,
    sub: &Loader,
    ck: &Kustomization,
) -> Result<(), Error> {
    if ck.kind() != "Component" {
        // kustomize's words, naming the kustomization that lists the entry.
        return Err(Error::invalid(
            &k.path,
            format!(
                "accumulating components: accumulateDirectory: \"expected kind 'Component' \
                 for path '{}' but got '{}'\" ('{entry}' must be a Component)",
                sub.root.display(),
                ck.kind()
            ),
        ));
    }
    Ok(())
}

fn add_resource_entry(
    loader: &Loader,
    k: &Kustomization,
    ctx: &mut Ctx<'_>,
    entry: &str,
    level: &mut Level,
) -> Result<(), Error> {
    match crate::remote::target(loader, entry) {
        crate::remote::Target::Local => {}
        remote => {
            let new = match crate::remote::fetch(loader, k, entry, remote)? {
                crate::remote::Fetched::File(file, text) => {
                    file_resources(&text, &file, crate::origin::Origin::File(file.clone()))?
                }
                crate::remote::Fetched::Dir(opened) => {
                    let (sub, sk) = *opened;
                    base_resources(k, entry, ctx, &sub, &sk, level)?
                }
            };
            for r in new {
                append_unique(&mut level.resources, r, &k.path)?;
            }
            return Ok(());
        }
    }
    let missing = || {
        Error::invalid(
            &k.path,
            format!(
                "accumulating resources: '{}' does not exist",
                loader.root.join(entry).display()
            ),
        )
    };
    let real = match loader.resolve(entry) {
        Ok(real) if real.exists() => real,
        Ok(_) => return Err(missing()),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(missing());
        }
        Err(e) => return Err(e),
    };
    let new: Vec<Resource> = if real.is_dir() {
        if ctx.stack.contains(&real) {
            return Err(Error::Cycle(real));
        }
        let (sub, sk) = loader.open(&real).map_err(|e| match e {
            Error::Kustomization(e) => Error::invalid(
                &k.path,
                format!("accumulating resources from '{entry}': {e}"),
            ),
            other => other,
        })?;
        base_resources(k, entry, ctx, &sub, &sk, level)?
    } else {
        let (file, text) = loader.read("resources", entry)?;
        file_resources(&text, &file, loader.origin(&file))?
    };
    for r in new {
        append_unique(&mut level.resources, r, &k.path)?;
    }
    Ok(())
}

/// The resources of a base directory `entry` of `k` (already opened), its
/// vars and configuration merged into `level`.
fn base_resources(
    k: &Kustomization,
    entry: &str,
    ctx: &mut Ctx<'_>,
    sub: &Loader,
    sk: &Kustomization,
    level: &mut Level,
) -> Result<Vec<Resource>, Error> {
    if sk.kind() == "Component" {
        return Err(Error::invalid(
            &k.path,
            format!(
                "accumulating resources from '{entry}': expected kind != 'Component' \
                 for path '{}' (list a Component under components)",
                sub.root.display()
            ),
        ));
    }
    let sub_level = accumulate(sub, sk, ctx, None)?;
    level.vars.extend(sub_level.vars);
    level.config.merge(&sub_level.config);
    Ok(sub_level.resources)
}

/// The resources of the file `file` holding `text`, which come from `origin`.
fn file_resources(
    text: &str,
    file: &Path,
    origin: crate::origin::Origin,
) -> Result<Vec<Resource>, Error> {
    let mut parsed = parse_resources(text, file)?;
    for r in &mut parsed {
        r.origin = Some(origin.clone());
    }
    Ok(parsed)
}

fn run_transformers(
    loader: &Loader,
    k: &Kustomization,
    ctx: &mut Ctx<'_>,
    cfg: &TransformerConfig,
    res: &mut Vec<Resource>,
) -> Result<(), Error> {
    // Each built-in transformer a field configures is recorded on every
    // resource for `buildMetadata: [transformerAnnotations]`, in kustomize's
    // order and numbers (one per patch, image, replica, labels entry, ...).
    let tracks_origins = ctx.tracks_origins;
    let record = |res: &mut Vec<Resource>, kind: &str, count: usize| {
        crate::origin::record_builtin(res, &k.path, kind, count);
        if tracks_origins && count > 0 {
            forget_shared_annotations(res);
        }
    };
    let smp_entries = k.strings("patchesStrategicMerge")?.len();
    patch::apply_strategic_merge_field(loader, k, &cfg.schema, res)?;
    record(
        res,
        "PatchStrategicMergeTransformer",
        usize::from(smp_entries > 0),
    );
    patch::apply_patches_field(loader, k, &cfg.schema, res)?;
    record(res, "PatchTransformer", k.list("patches")?.len());
    transform::namespace(k, cfg, res)?;
    let namespaced = k.str("namespace").is_some_and(|ns| !ns.is_empty());
    record(res, "NamespaceTransformer", usize::from(namespaced));
    transform::prefix_suffix(k, cfg, res)?;
    transform::labels(k, cfg, res)?;
    let label_entries = k.list("labels")?.len();
    let labelled = label_entries > 0 || !k.string_map("commonLabels")?.is_empty();
    record(
        res,
        "LabelTransformer",
        if labelled { label_entries + 1 } else { 0 },
    );
    transform::annotations(k, cfg, res)?;
    let annotated = !k.string_map("commonAnnotations")?.is_empty();
    record(res, "AnnotationsTransformer", usize::from(annotated));
    patch::apply_json6902_field(loader, k, &cfg.schema, res)?;
    record(
        res,
        "PatchJson6902Transformer",
        k.list("patchesJson6902")?.len(),
    );
    transform::replicas(k, cfg, res)?;
    record(res, "ReplicaCountTransformer", k.list("replicas")?.len());
    transform::images(k, cfg, res)?;
    record(res, "ImageTagTransformer", k.list("images")?.len());
    replacements::apply_field(loader, k, res)?;
    let replaced = !k.list("replacements")?.is_empty();
    record(res, "ReplacementTransformer", usize::from(replaced));
    for (config, from) in load_configs(loader, k, ctx, "transformers")? {
        patch::run_builtin_transformer(loader, k, cfg, &config, res)?;
        crate::origin::record(res, crate::origin::Configured::from_config(&from, &config));
        if tracks_origins {
            forget_shared_annotations(res);
        }
    }
    Ok(())
}

/// kustomize records a transformer's run in each object's annotations by
/// writing the whole map anew: its values no longer share nodes.
fn forget_shared_annotations(res: &mut [Resource]) {
    for r in res {
        crate::shared::forget_under(&mut r.shared, "/metadata/annotations/");
    }
}

/// The kubernetes API schema versions kustomize embeds.
const BUILTIN_OPENAPI_VERSIONS: &[&str] = &["v1.21.2"];

/// Validates `openapi:` (one of a built-in version or a schema file that
/// exists) and takes the scopes the first schema of the build gives kinds.
fn check_openapi(loader: &Loader, k: &Kustomization) -> Result<(), Error> {
    let Some(openapi) = k.fields.get("openapi") else {
        return Ok(());
    };
    let version = openapi.get("version").and_then(serde_json::Value::as_str);
    let path = openapi.get("path").and_then(serde_json::Value::as_str);
    if version.is_some() && path.is_some() {
        return Err(Error::invalid(
            &k.path,
            "builtin version and custom schema provided, cannot use both",
        ));
    }
    if let Some(v) = version {
        if !BUILTIN_OPENAPI_VERSIONS.contains(&v) {
            return Err(Error::invalid(
                &k.path,
                format!("the specified OpenAPI version is not built in: '{v}'"),
            ));
        }
        crate::scope::set_builtin();
    }
    if let Some(p) = path {
        let file = loader.root.join(p);
        if !crate::remote::is_http_url(p) && !file.exists() {
            // kustomize's words for a schema file that is not there.
            return Err(Error::invalid(
                &k.path,
                format!("'{}' doesn't exist", file.display()),
            ));
        }
        let (file, text) = loader.read("openapi", p)?;
        // As kustomize, the first schema set in a build gives kinds their
        // scope from here on.
        let docs = crate::yaml::parse_documents(&text, &file.display().to_string())?;
        if let Some(doc) = docs.first() {
            crate::scope::set_from_schema(doc);
        }
    }
    Ok(())
}

/// Reads plugin configurations named by `generators:`/`transformers:`:
/// inline YAML, a file, or a kustomization directory whose output they are.
fn load_configs(
    loader: &Loader,
    k: &Kustomization,
    ctx: &mut Ctx<'_>,
    field: &str,
) -> Result<Vec<(serde_json::Value, PathBuf)>, Error> {
    let mut out = Vec::new();
    for entry in k.strings(field)? {
        if entry.contains('\n') {
            let docs = crate::yaml::parse_documents(&entry, &k.path.display().to_string())?;
            out.extend(docs.into_iter().map(|d| (d, k.path.clone())));
            continue;
        }
        // URLs name files; kustomize reads no directory over HTTP.
        let dir = match crate::remote::is_http_url(&entry) {
            true => None,
            false => Some(loader.resolve(&entry)?).filter(|p| p.is_dir()),
        };
        if let Some(path) = dir {
            let (sub, sk) = loader.open(&path)?;
            let level = accumulate(&sub, &sk, ctx, None)?;
            out.extend(level.resources.into_iter().map(|r| {
                let from = match &r.origin {
                    Some(crate::origin::Origin::File(p)) => p.clone(),
                    _ => sk.path.clone(),
                };
                (r.to_json(), from)
            }));
        } else {
            let (file, text) = loader.read(field, &entry)?;
            let docs = crate::yaml::parse_documents(&text, &file.display().to_string())?;
            out.extend(docs.into_iter().map(|d| (d, file.clone())));
        }
    }
    Ok(out)
}
