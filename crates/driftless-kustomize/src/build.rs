//! Accumulating a kustomization tree into resources, then running the
//! generators and transformers each level declares.

use std::path::{Path, PathBuf};

use crate::kustomization::Kustomization;
use crate::loader::{Loader, parse_resources};
use crate::resource::{Resource, ResourceList};
use crate::{
    Error, Options, Reorder, generator, nameref, order, patch, replacements, transform, vars,
};

/// State shared across one build.
pub(crate) struct Ctx<'o> {
    pub opts: &'o Options,
    /// Kustomization directories being built, to detect cycles.
    stack: Vec<PathBuf>,
}

/// The result of building one directory.
pub(crate) struct Level {
    pub resources: Vec<Resource>,
    pub vars: Vec<vars::Var>,
}

/// Builds `dir` and applies the steps kustomize runs once at the top.
pub(crate) fn run(dir: &Path, opts: &Options) -> Result<ResourceList, Error> {
    let mut ctx = Ctx {
        opts,
        stack: Vec::new(),
    };
    let root = Loader::new(dir, opts.load_restrictor)?;
    let k = Kustomization::load(&root.root)?;
    if k.kind() == "Component" {
        return Err(Error::invalid(
            &k.path,
            "a Component cannot be built on its own; reference it from a Kustomization's components",
        ));
    }
    let level = accumulate(&root, &k, &mut ctx, None)?;
    let mut resources = level.resources;
    generator::add_hashes(&mut resources)?;
    nameref::fix_references(&mut resources).map_err(|m| Error::invalid(&k.path, m))?;
    vars::resolve(&mut resources, &level.vars).map_err(|m| Error::invalid(&k.path, m))?;
    resources.retain(|r| !is_local_config(r));
    let sort = order::SortSpec::from_kustomization(&k)?;
    match sort {
        Some(spec) => order::apply(&mut resources, &spec),
        None if opts.reorder == Reorder::Legacy => {
            order::apply(&mut resources, &order::SortSpec::legacy())
        }
        None => {}
    }
    for r in &mut resources {
        transform::strip_internal(r);
    }
    Ok(ResourceList { items: resources })
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
    let is_component = base.is_some();
    let mut level = Level {
        resources: base.unwrap_or_default(),
        vars: Vec::new(),
    };
    for entry in k.strings("resources")? {
        add_resource_entry(loader, k, ctx, &entry, &mut level)?;
    }
    for entry in k.strings("crds")? {
        // CRD files only feed name-reference configuration; the objects are not emitted.
        loader.read(&entry)?;
    }
    for entry in k.strings("components")? {
        let path = loader
            .resolve(&entry)
            .map_err(|e| Error::invalid(&k.path, e.to_string()))?;
        if !path.is_dir() {
            return Err(Error::invalid(
                &k.path,
                format!("component '{entry}' must be a directory"),
            ));
        }
        let sub = Loader::new(&path, loader.restrictor)?;
        let ck = Kustomization::load(&sub.root)?;
        if ck.kind() != "Component" {
            return Err(Error::invalid(
                &ck.path,
                format!(
                    "'{entry}' is a {} and cannot be used in components",
                    ck.kind()
                ),
            ));
        }
        let resources = std::mem::take(&mut level.resources);
        let sub_level = accumulate(&sub, &ck, ctx, Some(resources))?;
        level.resources = sub_level.resources;
        level.vars.extend(sub_level.vars);
    }
    let _ = is_component;
    generator::run(loader, k, &mut level.resources)?;
    run_transformers(loader, k, ctx, &mut level.resources)?;
    level.vars.extend(vars::read(k)?);
    Ok(level)
}

fn add_resource_entry(
    loader: &Loader,
    k: &Kustomization,
    ctx: &mut Ctx<'_>,
    entry: &str,
    level: &mut Level,
) -> Result<(), Error> {
    if entry.contains("://") || entry.starts_with("git@") || entry.starts_with("github.com/") {
        return Err(Error::invalid(
            &k.path,
            format!("remote resource '{entry}' is not supported; vendor it into the repository"),
        ));
    }
    let path = loader.root.join(entry);
    if !path.exists() {
        return Err(Error::invalid(
            &k.path,
            format!(
                "accumulating resources: '{}' does not exist",
                path.display()
            ),
        ));
    }
    let real = path.canonicalize().map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    let new: Vec<Resource> = if real.is_dir() {
        let sub = Loader::new(&real, loader.restrictor)?;
        if ctx.stack.contains(&sub.root) {
            return Err(Error::Cycle(sub.root));
        }
        let sk = Kustomization::load(&sub.root).map_err(|e| {
            Error::invalid(
                &k.path,
                format!("accumulating resources from '{entry}': {e}"),
            )
        })?;
        if sk.kind() == "Component" {
            return Err(Error::invalid(
                &sk.path,
                format!(
                    "'{entry}' is a Component and cannot be added to resources; use components"
                ),
            ));
        }
        let sub_level = accumulate(&sub, &sk, ctx, None)?;
        level.vars.extend(sub_level.vars);
        sub_level.resources
    } else {
        let (file, text) = loader.read(entry)?;
        parse_resources(&text, &file)?
    };
    for r in new {
        append_unique(&mut level.resources, r, &k.path)?;
    }
    Ok(())
}

/// Adds a resource, refusing a second resource with the same identity.
pub(crate) fn append_unique(
    list: &mut Vec<Resource>,
    r: Resource,
    origin: &Path,
) -> Result<(), Error> {
    let id = r.cur_id();
    if list.iter().any(|x| x.cur_id().same_as(&id)) {
        return Err(Error::invalid(
            origin,
            format!("may not add resource with an already registered id: {id}"),
        ));
    }
    list.push(r);
    Ok(())
}

fn run_transformers(
    loader: &Loader,
    k: &Kustomization,
    ctx: &mut Ctx<'_>,
    res: &mut Vec<Resource>,
) -> Result<(), Error> {
    patch::apply_strategic_merge_field(loader, k, res)?;
    patch::apply_patches_field(loader, k, res)?;
    transform::namespace(k, res)?;
    transform::prefix_suffix(k, res)?;
    transform::labels(k, res)?;
    transform::annotations(k, res)?;
    patch::apply_json6902_field(loader, k, res)?;
    transform::replicas(k, res)?;
    transform::images(k, res)?;
    replacements::apply_field(loader, k, res)?;
    transform::configured(loader, k, ctx.opts, res)?;
    Ok(())
}
