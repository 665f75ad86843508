//! Jsonnet programs, evaluated by jrsonnet (in a bounded worker process when
//! one is configured) with imports confined to the repository root and the
//! configured library paths.

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jrsonnet_evaluator::error::ErrorKind;
use jrsonnet_evaluator::function::TlaArg;
use jrsonnet_evaluator::gc::GcHashMap;
use jrsonnet_evaluator::manifest::JsonFormat;
use jrsonnet_evaluator::parser::{ParserSettings, Source, SourceFile, SourcePath};
use jrsonnet_evaluator::trace::{CompactFormat, PathResolver, TraceFormat};
use jrsonnet_evaluator::{IStr, ImportResolver, State, apply_tla};
use jrsonnet_gcmodule::Trace;
use serde_json::Value;

use crate::limits::{InputBudget, LimitError, RenderLimits, shown_dir};
use crate::objects::{Rendered, expand_lists};
use crate::options::JsonnetOptions;
use crate::paths::{self, PathError};
use crate::reads::ReadLog;
use crate::worker::{self, EVAL_STACK_BYTES, Evaluated, JsonnetJob, RenderWorker, WorkerFailure};

/// Errors from evaluating Jsonnet.
#[derive(Debug, thiserror::Error)]
pub enum JsonnetError {
    /// A path is refused or unreadable.
    #[error(transparent)]
    Path(#[from] PathError),
    /// No main file could be chosen.
    #[error("{dir}: {message}")]
    Main {
        /// The directory.
        dir: PathBuf,
        /// Why no main file was found.
        message: String,
    },
    /// Evaluation failed (syntax, runtime error, refused import ...).
    #[error("{file}: {message}")]
    Eval {
        /// The main file.
        file: String,
        /// jrsonnet's message with its stack trace.
        message: String,
    },
    /// A bound of the render was crossed.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// The result is not a tree of Kubernetes objects.
    #[error("{file}: {message}")]
    Output {
        /// The main file.
        file: String,
        /// What is wrong.
        message: String,
    },
}

/// Objects nested deeper than this in the output are refused.
const MAX_OUTPUT_DEPTH: usize = 100;

/// Import resolution restricted to the repository root, remembering every
/// path it looks at: an import is found by probing candidates in order, so
/// a file appearing at an earlier candidate changes the result.
#[derive(Trace)]
struct RootedImports {
    root: PathBuf,
    lib_paths: Vec<PathBuf>,
    probed: RefCell<Vec<PathBuf>>,
}

impl RootedImports {
    fn new(root: PathBuf, lib_paths: Vec<PathBuf>) -> RootedImports {
        RootedImports {
            root,
            lib_paths,
            probed: RefCell::new(Vec::new()),
        }
    }

    fn check(
        &self,
        candidate: &Path,
        shown: &str,
    ) -> jrsonnet_evaluator::Result<Option<SourcePath>> {
        use driftless_kustomize::confine::{ConfineError, confine};
        self.probed.borrow_mut().push(candidate.to_path_buf());
        // Confined before anything is probed, and a link leading out is named.
        let real = match confine(&self.root, Path::new(""), candidate) {
            Ok(real) => real,
            Err(ConfineError::Io { .. }) => return Ok(None),
            Err(refused) => {
                return Err(
                    ErrorKind::RuntimeError(format!("import {shown:?}: {refused}").into()).into(),
                );
            }
        };
        if !real.is_file() {
            return Ok(None);
        }
        Ok(Some(SourcePath::new(SourceFile::new(real))))
    }
}

impl ImportResolver for RootedImports {
    fn resolve_from(
        &self,
        from: &SourcePath,
        path: &str,
    ) -> jrsonnet_evaluator::Result<SourcePath> {
        if Path::new(path).is_absolute() {
            return Err(ErrorKind::RuntimeError(
                format!("import {path:?}: absolute imports are refused").into(),
            )
            .into());
        }
        let here = from
            .downcast_ref::<SourceFile>()
            .and_then(|f| f.path().parent().map(Path::to_path_buf));
        for dir in here.iter().chain(self.lib_paths.iter()) {
            if let Some(found) = self.check(&dir.join(path), path)? {
                return Ok(found);
            }
        }
        Err(ErrorKind::ImportFileNotFound(from.clone(), path.to_owned()).into())
    }

    fn resolve(&self, path: &Path) -> jrsonnet_evaluator::Result<SourcePath> {
        let shown = path.display().to_string();
        match self.check(path, &shown)? {
            Some(found) => Ok(found),
            None => Err(ErrorKind::AbsoluteImportFileNotFound(path.to_owned()).into()),
        }
    }

    fn load_file_contents(&self, resolved: &SourcePath) -> jrsonnet_evaluator::Result<Vec<u8>> {
        let Some(file) = resolved.downcast_ref::<SourceFile>() else {
            return Err(ErrorKind::ResolvedFileNotFound(resolved.clone()).into());
        };
        let limit = driftless_kustomize::yaml::MAX_INPUT_BYTES as u64;
        let io = |e: std::io::Error| ErrorKind::ImportIo(format!("{}: {e}", file.path().display()));
        let size = std::fs::metadata(file.path()).map_err(io)?.len();
        if size > limit {
            return Err(ErrorKind::ImportIo(format!(
                "{}: file of {size} bytes is larger than the limit of {limit} bytes",
                file.path().display()
            ))
            .into());
        }
        Ok(std::fs::read(file.path()).map_err(io)?)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Picks the file to evaluate in `dir`, recording in `log` what it looks at.
fn main_file(
    root: &Path,
    dir: &Path,
    opts: &JsonnetOptions,
    log: &ReadLog,
) -> Result<PathBuf, JsonnetError> {
    if let Some(main) = &opts.main {
        log.entry(&dir.join(main));
        return Ok(paths::resolve_inside(root, dir, Path::new(main))?);
    }
    // The names in the directory decide which file is the main one.
    log.entry(dir);
    if dir.join("main.jsonnet").is_file() {
        return Ok(paths::resolve_inside(root, dir, Path::new("main.jsonnet"))?);
    }
    let io = |source| PathError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let name = entry
            .map_err(io)?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".jsonnet") {
            found.push(name);
        }
    }
    found.sort();
    match found.as_slice() {
        [only] => Ok(paths::resolve_inside(root, dir, Path::new(only))?),
        [] => Err(JsonnetError::Main {
            dir: dir.to_path_buf(),
            message: "no *.jsonnet file".into(),
        }),
        many => Err(JsonnetError::Main {
            dir: dir.to_path_buf(),
            message: format!(
                "several *.jsonnet files ({}) and no main.jsonnet; set the main file",
                many.join(", ")
            ),
        }),
    }
}

/// Evaluates the directory's main file into objects: in a worker process
/// within `limits` when one is configured, else in this process, where only
/// the size of the result is bounded. Every file the evaluation imported or
/// looked for is recorded in `log`.
pub fn render(
    root: &Path,
    dir: &Path,
    opts: &JsonnetOptions,
    limits: &RenderLimits,
    worker: Option<&RenderWorker>,
    log: &ReadLog,
) -> Result<Vec<Rendered>, JsonnetError> {
    let main = main_file(root, dir, opts, log)?;
    let shown = paths::display_relative(root, &main);
    let lib_paths = opts
        .lib_paths
        .iter()
        .map(|p| {
            // Imports found in it are recorded where they were looked for.
            log.kind(&root.join(p));
            paths::resolve_inside(root, root, p)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let job = JsonnetJob {
        root: root.to_path_buf(),
        main,
        lib_paths,
        opts: opts.clone(),
    };
    let dir_shown = shown_dir(root, dir);
    let eval_error = |message| JsonnetError::Eval {
        file: shown.clone(),
        message,
    };
    let evaluated = match worker {
        Some(worker) => {
            worker::evaluate(worker, &job, limits, &shown, &dir_shown).map_err(|e| match e {
                WorkerFailure::Limit(limit) => JsonnetError::Limit(limit),
                WorkerFailure::Eval(message) | WorkerFailure::Failed(message) => {
                    eval_error(message)
                }
            })?
        }
        None => {
            let evaluated = evaluate_here(job).map_err(eval_error)?;
            InputBudget::new(dir_shown, limits.max_input_bytes).take(
                &format!("the result of {shown}"),
                evaluated.json.len() as u64,
            )?;
            evaluated
        }
    };
    match &evaluated.probed {
        Some(probed) => probed.iter().for_each(|p| log.entry(p)),
        // Reads that could not be told: everything the evaluation could reach.
        None => log.tree(root),
    }
    let json = evaluated.json;
    let value: Value = serde_json::from_str(&json).map_err(|e| JsonnetError::Output {
        file: shown.clone(),
        message: format!("result is not JSON: {e}"),
    })?;
    drop(json);
    let mut out = Vec::new();
    collect_objects(value, &shown, "", 0, &mut out)?;
    Ok(out)
}

/// Evaluates `job` in this process, on a thread of its own: jrsonnet keeps
/// thread-local, non-Send state, and a large stack lets deep but legal
/// recursion hit jrsonnet's own depth limit (a clean error) first.
pub(crate) fn evaluate_here(job: JsonnetJob) -> Result<Evaluated, String> {
    std::thread::Builder::new()
        .name("jsonnet".into())
        .stack_size(EVAL_STACK_BYTES)
        .spawn(move || {
            let imports = RootedImports::new(job.root.clone(), job.lib_paths);
            evaluate(imports, &job.main, &job.root, &job.opts)
        })
        .map_err(|e| format!("starting the evaluator thread: {e}"))?
        .join()
        .map_err(|_| "the evaluator panicked".to_string())?
}

/// Runs jrsonnet; errors come back as formatted text with the Jsonnet stack trace.
fn evaluate(
    imports: RootedImports,
    main: &Path,
    root: &Path,
    opts: &JsonnetOptions,
) -> Result<Evaluated, String> {
    let resolver = PathResolver::Relative(root.to_path_buf());
    let context = jrsonnet_stdlib::ContextInitializer::new(resolver.clone());
    let trace = CompactFormat {
        resolver,
        max_trace: 20,
        padding: 4,
    };
    let fail = |e: jrsonnet_evaluator::Error| trace.format(&e).unwrap_or_else(|_| e.to_string());
    for (name, value) in &opts.ext_vars {
        context.add_ext_str(name.as_str().into(), value.as_str().into());
    }
    for (name, code) in &opts.ext_code {
        context.add_ext_code(name, code.as_str()).map_err(fail)?;
    }
    let mut builder = State::builder();
    builder
        .import_resolver(imports)
        .context_initializer(context);
    let state = builder.build();
    let tla = tla_args(&opts.tla_vars, &opts.tla_code).map_err(fail)?;
    let val = state.import(main).map_err(fail)?;
    let val = apply_tla(state.clone(), &tla, val).map_err(fail)?;
    let json = val.manifest(JsonFormat::cli(0)).map_err(fail)?;
    let probed = state
        .import_resolver()
        .as_any()
        .downcast_ref::<RootedImports>()
        .map(|imports| imports.probed.take());
    Ok(Evaluated { json, probed })
}

fn tla_args(
    strings: &BTreeMap<String, String>,
    code: &BTreeMap<String, String>,
) -> jrsonnet_evaluator::Result<GcHashMap<IStr, TlaArg>> {
    let mut args = GcHashMap::new();
    for (name, value) in strings {
        args.insert(name.as_str().into(), TlaArg::String(value.as_str().into()));
    }
    for (name, text) in code {
        let source = Source::new_virtual(
            format!("<top-level-arg:{name}>").into(),
            text.as_str().into(),
        );
        let expr = jrsonnet_evaluator::parser::parse(
            text,
            &ParserSettings {
                source: source.clone(),
            },
        )
        .map_err(|error| ErrorKind::ImportSyntaxError {
            path: source,
            error: Box::new(error),
        })?;
        args.insert(name.as_str().into(), TlaArg::Code(expr));
    }
    Ok(args)
}

/// Walks the result: an object with `apiVersion` and `kind` is a Kubernetes
/// object; other objects and arrays hold objects (as Tanka and Argo CD read them).
fn collect_objects(
    value: Value,
    file: &str,
    at: &str,
    depth: usize,
    out: &mut Vec<Rendered>,
) -> Result<(), JsonnetError> {
    if depth > MAX_OUTPUT_DEPTH {
        return Err(JsonnetError::Output {
            file: file.to_string(),
            message: format!("objects nested deeper than {MAX_OUTPUT_DEPTH} levels at {at:?}"),
        });
    }
    match value {
        Value::Object(map) if map.contains_key("apiVersion") && map.contains_key("kind") => {
            expand_lists(Value::Object(map), &format!("{file}{}", location(at)), out);
        }
        Value::Object(map) => {
            for (key, item) in map {
                collect_objects(item, file, &format!("{at}.{key}"), depth + 1, out)?;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                collect_objects(item, file, &format!("{at}[{i}]"), depth + 1, out)?;
            }
        }
        Value::Null => {}
        other => {
            return Err(JsonnetError::Output {
                file: file.to_string(),
                message: format!(
                    "expected objects at {:?}, found {}",
                    if at.is_empty() { "(top)" } else { at },
                    crate::objects::type_name(&other)
                ),
            });
        }
    }
    Ok(())
}

fn location(at: &str) -> String {
    if at.is_empty() {
        String::new()
    } else {
        format!(" at {at}")
    }
}
