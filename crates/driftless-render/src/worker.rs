//! The render worker: Jsonnet is evaluated in a child process that limits its
//! own memory and CPU time before evaluating, and that the parent kills at
//! the deadline. An in-process evaluation cannot be bounded (one string
//! concatenation can ask for gigabytes at once, and a thread cannot be
//! stopped), and a dead worker frees all it allocated.
//!
//! Jsonnet is the one Turing-complete language evaluated here. Plain
//! manifests and kustomize only read files, so the byte cap bounds them.
//! helm (Go templates can allocate without bound too) is started through
//! the worker, below, so that its memory is limited as well.
//!
//! The protocol: the parent writes one JSON request on the worker's stdin;
//! the worker prints one line with the JSON array of the paths its imports
//! looked at (`null` when one cannot be told), then the evaluated JSON, and
//! exits 0; or it prints the Jsonnet error and exits with [`EVAL_FAILED`].
//! Any other end is a crash.
//!
//! A request with `jq` makes the worker answer jq path expressions on
//! documents instead (see `jq_worker`): it prints the answers as JSON.
//!
//! A request with `exec` instead makes the worker limit its memory and then
//! become that program (helm), which keeps the limit: a program of its own
//! is bounded without code that runs between `fork` and `exec`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use serde_json::{Value, json};

use crate::child::{self, Finished};
use crate::limits::{LimitError, RenderLimits};
use crate::options::JsonnetOptions;

/// Exit code of a worker whose evaluation failed with a Jsonnet error.
pub(crate) const EVAL_FAILED: u8 = 3;

/// Native stack of the evaluator thread, counted in the worker's memory.
pub(crate) const EVAL_STACK_BYTES: usize = 256 * 1024 * 1024;

/// How to start a render worker: a program and the arguments that make it
/// call [`run_worker`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderWorker {
    /// The program.
    pub program: PathBuf,
    /// Arguments before anything else, e.g. a hidden subcommand.
    pub args: Vec<OsString>,
}

impl RenderWorker {
    /// This executable started with `args`, for a binary that calls
    /// [`run_worker`] when it sees them.
    pub fn current_exe(args: &[&str]) -> std::io::Result<RenderWorker> {
        Ok(RenderWorker {
            program: std::env::current_exe()?,
            args: args.iter().map(OsString::from).collect(),
        })
    }
}

/// One Jsonnet evaluation, with paths already resolved and checked.
#[derive(Debug)]
pub(crate) struct JsonnetJob {
    /// Canonical repository root.
    pub root: PathBuf,
    /// The main file.
    pub main: PathBuf,
    /// Canonical library search paths.
    pub lib_paths: Vec<PathBuf>,
    /// Variables and arguments.
    pub opts: JsonnetOptions,
}

/// The result of an evaluation and the paths its imports looked at.
#[derive(Debug)]
pub(crate) struct Evaluated {
    /// The result as JSON text.
    pub json: String,
    /// Every path an import (or the main file) was looked for at; `None`
    /// when a worker could not tell them.
    pub probed: Option<Vec<PathBuf>>,
}

/// Evaluates `job` in a worker process within `limits`; `shown` names the
/// main file and `dir` the rendered directory in messages.
pub(crate) fn evaluate(
    worker: &RenderWorker,
    job: &JsonnetJob,
    limits: &RenderLimits,
    shown: &str,
    dir: &str,
) -> Result<Evaluated, WorkerFailure> {
    let what = format!("jsonnet evaluation of {shown}");
    let request = encode(job, limits).map_err(WorkerFailure::Failed)?;
    let mut cmd = Command::new(&worker.program);
    cmd.args(&worker.args);
    let end = child::run(
        &mut cmd,
        request.into_bytes(),
        limits.timeout,
        limits.max_input_bytes,
    )
    .map_err(|e| {
        WorkerFailure::Failed(format!(
            "starting the render worker {}: {e}",
            worker.program.display()
        ))
    })?;
    let (status, stdout, stderr) = match end {
        Finished::TimedOut => {
            return Err(WorkerFailure::Limit(LimitError::Time {
                what,
                limit: limits.timeout,
            }));
        }
        Finished::OutputTooLarge { read } => {
            return Err(WorkerFailure::Limit(LimitError::Input {
                what: dir.to_string(),
                at: format!("the result of {shown}"),
                total: read,
                limit: limits.max_input_bytes,
            }));
        }
        Finished::Exited {
            status,
            stdout,
            stderr,
        } => (status, stdout, stderr),
    };
    if status.success() {
        return decode_result(stdout);
    }
    if status.code() == Some(i32::from(EVAL_FAILED)) {
        return Err(WorkerFailure::Eval(
            String::from_utf8_lossy(&stdout).into_owned(),
        ));
    }
    Err(crash(status, &stderr, what, limits))
}

/// Splits a worker's output into the paths its imports looked at and the result.
fn decode_result(mut stdout: Vec<u8>) -> Result<Evaluated, WorkerFailure> {
    let malformed = || WorkerFailure::Failed("the render worker printed no list of reads".into());
    let end = stdout
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(malformed)?;
    let line: Vec<u8> = stdout.drain(..=end).collect();
    let probed = match serde_json::from_slice::<Value>(&line).map_err(|_| malformed())? {
        Value::Array(items) => Some(
            items
                .iter()
                .map(|p| p.as_str().map(PathBuf::from))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(malformed)?,
        ),
        Value::Null => None,
        _ => return Err(malformed()),
    };
    let json = String::from_utf8(stdout)
        .map_err(|_| WorkerFailure::Failed("the render worker printed invalid UTF-8".into()))?;
    Ok(Evaluated { json, probed })
}

/// The first line a worker prints: the paths its imports looked at, or
/// `null` when one of them is not UTF-8 text.
#[cfg(feature = "jsonnet")]
fn encode_reads(probed: Option<&[PathBuf]>) -> String {
    let texts = probed.and_then(|paths| {
        paths
            .iter()
            .map(|p| p.to_str().map(Value::from))
            .collect::<Option<Vec<_>>>()
    });
    match texts {
        Some(texts) => Value::Array(texts).to_string(),
        None => "null".to_owned(),
    }
}

/// Why a worker run failed.
#[derive(Debug)]
pub(crate) enum WorkerFailure {
    /// The Jsonnet program failed; jrsonnet's message.
    Eval(String),
    /// A bound was crossed.
    Limit(LimitError),
    /// The worker could not run or crashed.
    Failed(String),
}

/// Names a worker that died: out of memory, out of CPU time, or a crash.
fn crash(
    status: std::process::ExitStatus,
    stderr: &str,
    what: String,
    limits: &RenderLimits,
) -> WorkerFailure {
    use std::os::unix::process::ExitStatusExt as _;
    if out_of_memory(stderr) {
        return WorkerFailure::Limit(LimitError::Memory {
            what,
            limit: limits.max_memory,
        });
    }
    if status.signal() == Some(rustix::process::Signal::XCPU.as_raw()) {
        return WorkerFailure::Limit(LimitError::Time {
            what,
            limit: limits.timeout,
        });
    }
    WorkerFailure::Failed(format!("the render worker failed ({status}): {stderr}"))
}

/// Whether a worker's stderr says it died of its memory limit: Rust reports
/// a refused allocation before aborting, and the evaluator thread cannot
/// start when its stack does not fit.
pub(crate) fn out_of_memory(stderr: &str) -> bool {
    stderr.contains("memory allocation of")
        || stderr.contains("failed to spawn thread")
        || stderr.contains("Cannot allocate memory")
}

fn path_text(path: &Path) -> Result<&str, String> {
    path.to_str()
        .ok_or_else(|| format!("{}: path is not UTF-8", path.display()))
}

fn encode(job: &JsonnetJob, limits: &RenderLimits) -> Result<String, String> {
    let lib_paths = job
        .lib_paths
        .iter()
        .map(|p| path_text(p))
        .collect::<Result<Vec<_>, _>>()?;
    let o = &job.opts;
    Ok(json!({
        "root": path_text(&job.root)?,
        "main": path_text(&job.main)?,
        "libPaths": lib_paths,
        "extVars": o.ext_vars,
        "extCode": o.ext_code,
        "tlaVars": o.tla_vars,
        "tlaCode": o.tla_code,
        "maxMemory": limits.max_memory,
        "cpuSeconds": limits.timeout.as_secs().saturating_add(1),
    })
    .to_string())
}

/// A decoded request: what to do, and the worker's own limits.
struct Request {
    work: Work,
    /// Bytes of data segment (heap and anonymous mappings) allowed.
    max_data: u64,
    cpu_seconds: u64,
}

/// What a worker does once limited.
enum Work {
    /// Evaluate Jsonnet.
    Jsonnet(JsonnetJob),
    /// Become this program with these arguments.
    Exec(PathBuf, Vec<String>),
    /// Answer jq path expressions on documents.
    Jq(Vec<String>, Vec<Value>),
}

/// The request that makes a worker run `program` with `args` in a data
/// segment of `max_memory` bytes.
pub(crate) fn encode_exec(program: &str, args: &[String], max_memory: u64) -> String {
    json!({
        "exec": {"program": program, "args": args},
        "maxMemory": max_memory,
    })
    .to_string()
}

fn decode(text: &str) -> Result<Request, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("bad request: {e}"))?;
    if let Some(exec) = v.get("exec") {
        let program = exec["program"]
            .as_str()
            .ok_or("bad request: exec.program is missing")?;
        let args = exec["args"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        return Ok(Request {
            work: Work::Exec(PathBuf::from(program), args),
            max_data: v["maxMemory"].as_u64().unwrap_or(0),
            cpu_seconds: 0,
        });
    }
    if let Some(jq) = v.get("jq") {
        let expressions = jq["expressions"]
            .as_array()
            .ok_or("bad request: jq.expressions is missing")?
            .iter()
            .map(|e| e.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or("bad request: jq.expressions holds a non-string")?;
        let documents = jq["documents"]
            .as_array()
            .ok_or("bad request: jq.documents is missing")?
            .clone();
        let max_data = match v["maxMemory"].as_u64().unwrap_or(0) {
            0 => 0,
            heap => heap.saturating_add(crate::jq_worker::JQ_STACK_BYTES as u64),
        };
        return Ok(Request {
            work: Work::Jq(expressions, documents),
            max_data,
            cpu_seconds: v["cpuSeconds"].as_u64().unwrap_or(0),
        });
    }
    let text_of = |key: &str| {
        v[key]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("bad request: {key} is missing"))
    };
    let map_of = |key: &str| -> BTreeMap<String, String> {
        v[key]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let lib_paths = v["libPaths"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default();
    let opts = JsonnetOptions {
        main: None,
        lib_paths: Vec::new(),
        ext_vars: map_of("extVars"),
        ext_code: map_of("extCode"),
        tla_vars: map_of("tlaVars"),
        tla_code: map_of("tlaCode"),
    };
    // The evaluator's native stack counts in the data segment too.
    let max_data = match v["maxMemory"].as_u64().unwrap_or(0) {
        0 => 0,
        heap => heap.saturating_add(EVAL_STACK_BYTES as u64),
    };
    Ok(Request {
        work: Work::Jsonnet(JsonnetJob {
            root: text_of("root")?.into(),
            main: text_of("main")?.into(),
            lib_paths,
            opts,
        }),
        max_data,
        cpu_seconds: v["cpuSeconds"].as_u64().unwrap_or(0),
    })
}

/// Limits this process before it evaluates anything: data segment and CPU
/// seconds, soft and hard alike so the program cannot raise them; it also
/// dies with its parent. All of it carries over an `exec`.
fn limit_self(max_data: u64, cpu_seconds: u64) -> Result<(), String> {
    use rustix::process::{Resource, Rlimit, setrlimit};
    let set = |resource, value: u64| {
        setrlimit(
            resource,
            Rlimit {
                current: Some(value),
                maximum: Some(value),
            },
        )
        .map_err(|e| format!("setting {resource:?} limit: {e}"))
    };
    if max_data > 0 {
        set(Resource::Data, max_data)?;
    }
    if cpu_seconds > 0 {
        set(Resource::Cpu, cpu_seconds)?;
    }
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| format!("setting the parent death signal: {e}"))
}

/// Entry point of a worker process: reads one request on stdin, limits
/// itself, evaluates and prints the result (see the module docs).
pub fn run_worker() -> ExitCode {
    let mut text = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut text) {
        eprintln!("render worker: reading the request: {e}");
        return ExitCode::FAILURE;
    }
    let request = match decode(&text).and_then(|r| {
        limit_self(r.max_data, r.cpu_seconds)?;
        Ok(r)
    }) {
        Ok(request) => request,
        Err(e) => {
            eprintln!("render worker: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match request.work {
        Work::Jsonnet(job) => evaluate_job(job),
        Work::Jq(expressions, documents) => crate::jq_worker::answer(expressions, documents),
        Work::Exec(program, args) => {
            use std::os::unix::process::CommandExt as _;
            // Returns only when the program could not be started.
            let e = Command::new(&program).args(&args).exec();
            eprintln!("render worker: running {}: {e}", program.display());
            return ExitCode::FAILURE;
        }
    };
    let (code, out) = match result {
        Ok(out) => (ExitCode::SUCCESS, out),
        Err(message) => (ExitCode::from(EVAL_FAILED), message),
    };
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    code
}

/// What the worker prints for `job`: the reads line, then the result.
#[cfg(feature = "jsonnet")]
fn evaluate_job(job: JsonnetJob) -> Result<String, String> {
    let evaluated = crate::jsonnet::evaluate_here(job)?;
    let reads = encode_reads(evaluated.probed.as_deref());
    Ok(format!("{reads}\n{}", evaluated.json))
}

#[cfg(not(feature = "jsonnet"))]
fn evaluate_job(_job: JsonnetJob) -> Result<String, String> {
    Err("Jsonnet support is not compiled in (cargo feature `jsonnet`)".into())
}
