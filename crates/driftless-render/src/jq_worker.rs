//! jq path expressions evaluated in a worker process: an App's expression
//! is a program (it can recurse without end or build gigabytes), so a
//! process that runs many teams' Apps evaluates them where the memory, the
//! CPU time and the wall time are bounded and a crash takes nothing else
//! down. One worker run answers every expression that applies to an object,
//! on its Git and live sides at once.

use std::process::Command;
use std::time::Duration;

use driftless_api::jq::{JqAnswers, JqRunner};
use serde_json::{Value, json};

use crate::child::{self, Finished};
use crate::worker::{EVAL_FAILED, RenderWorker};

/// Heap a jq evaluation may use.
pub const JQ_MAX_MEMORY: u64 = 256 * 1024 * 1024;
/// Wall-clock time of one evaluation (all expressions on one object).
pub const JQ_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes of answers a worker may print.
const JQ_MAX_OUTPUT: u64 = 16 * 1024 * 1024;
/// Native stack of the evaluating thread, counted in the worker's memory:
/// a recursion too deep for it ends the worker, not the engine.
pub(crate) const JQ_STACK_BYTES: usize = 64 * 1024 * 1024;

/// Evaluates jq path expressions in a render worker within bounds.
#[derive(Clone, Debug)]
pub struct JqWorker {
    worker: RenderWorker,
    max_memory: u64,
    timeout: Duration,
}

impl JqWorker {
    /// Runs evaluations through `worker` with the default bounds.
    pub fn new(worker: RenderWorker) -> JqWorker {
        JqWorker {
            worker,
            max_memory: JQ_MAX_MEMORY,
            timeout: JQ_TIMEOUT,
        }
    }

    /// Other bounds: heap bytes and wall-clock time.
    pub fn with_bounds(mut self, max_memory: u64, timeout: Duration) -> JqWorker {
        self.max_memory = max_memory;
        self.timeout = timeout;
        self
    }
}

impl JqRunner for JqWorker {
    fn run(&self, expressions: &[&str], documents: &[&Value]) -> Result<JqAnswers, String> {
        let request = json!({
            "jq": {"expressions": expressions, "documents": documents},
            "maxMemory": self.max_memory,
            "cpuSeconds": self.timeout.as_secs().saturating_add(1),
        })
        .to_string();
        let mut cmd = Command::new(&self.worker.program);
        // Nothing of the engine's environment (tokens, credentials) reaches
        // an expression, not even through jq's `env`.
        cmd.args(&self.worker.args).env_clear();
        let end = child::run(&mut cmd, request.into_bytes(), self.timeout, JQ_MAX_OUTPUT).map_err(
            |e| {
                format!(
                    "starting the render worker {}: {e}",
                    self.worker.program.display()
                )
            },
        )?;
        let past_time = || format!("evaluating them ran past {:?}", self.timeout);
        let (status, stdout, stderr) = match end {
            Finished::TimedOut => return Err(past_time()),
            Finished::OutputTooLarge { read } => {
                return Err(format!(
                    "they yielded more than {JQ_MAX_OUTPUT} bytes of paths ({read} read)"
                ));
            }
            Finished::Exited {
                status,
                stdout,
                stderr,
            } => (status, stdout, stderr),
        };
        if status.success() {
            return serde_json::from_slice(&stdout)
                .map_err(|e| format!("the render worker printed malformed answers: {e}"));
        }
        if status.code() == Some(i32::from(EVAL_FAILED)) {
            return Err(String::from_utf8_lossy(&stdout).into_owned());
        }
        use std::os::unix::process::ExitStatusExt as _;
        if stderr.contains("has overflowed its stack") {
            return Err("they recursed deeper than the evaluation's stack".into());
        }
        if crate::worker::out_of_memory(&stderr) {
            return Err(format!(
                "they needed more than {} MiB of memory",
                self.max_memory / (1024 * 1024)
            ));
        }
        if status.signal() == Some(rustix::process::Signal::XCPU.as_raw()) {
            return Err(past_time());
        }
        Err(format!("the render worker failed ({status}): {stderr}"))
    }
}

/// What a worker prints for a jq request: the answers as JSON, or why the
/// expressions could not be compiled.
pub(crate) fn answer(expressions: Vec<String>, documents: Vec<Value>) -> Result<String, String> {
    let evaluate = move || {
        let expressions: Vec<&str> = expressions.iter().map(String::as_str).collect();
        let documents: Vec<&Value> = documents.iter().collect();
        driftless_api::jq::evaluate_here(&expressions, &documents)
            .and_then(|answers| serde_json::to_string(&answers).map_err(|e| e.to_string()))
    };
    std::thread::Builder::new()
        .name("jq".into())
        .stack_size(JQ_STACK_BYTES)
        .spawn(evaluate)
        .map_err(|e| format!("failed to spawn thread: {e}"))?
        .join()
        .map_err(|_| "the jq evaluation panicked".to_owned())?
}
