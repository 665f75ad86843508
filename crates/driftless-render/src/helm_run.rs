//! helm within the render's bounds, for Helm-chart Apps and for kustomize's
//! `helmCharts:` alike: killed at the deadline or once it prints more than
//! the byte limit and, when a render worker is configured, started through
//! the worker so that its memory is limited (see [`crate::worker`]).

use std::ffi::OsStr;
use std::process::{Command, ExitStatus, Output};

use crate::child::{self, Finished};
use crate::limits::{LimitError, RenderLimits};
use crate::worker::{self, RenderWorker};

/// How a helm run that stayed within its bounds ended.
#[derive(Debug)]
pub(crate) struct HelmExit {
    /// Its exit status.
    pub status: ExitStatus,
    /// All it printed on stdout.
    pub stdout: Vec<u8>,
    /// What it printed on stderr (its start and end).
    pub stderr: String,
}

/// Why a helm run gave no exit of its own.
#[derive(Debug)]
pub(crate) enum HelmRunError {
    /// helm (or the worker that starts it) could not be started.
    Spawn(std::io::Error),
    /// helm crossed a bound and was stopped.
    Limit(LimitError),
}

/// Runs `cmd` (a helm command) within `limits`; `what` names it in limit
/// errors and `dir` the rendered directory.
pub(crate) fn run(
    cmd: &mut Command,
    worker: Option<&RenderWorker>,
    limits: &RenderLimits,
    what: &str,
    dir: &str,
) -> Result<HelmExit, HelmRunError> {
    let limited = worker.filter(|_| limits.max_memory > 0);
    let end = match limited {
        Some(worker) => {
            let (mut wrapped, request) =
                through_worker(cmd, worker, limits.max_memory).map_err(HelmRunError::Spawn)?;
            child::run(
                &mut wrapped,
                request,
                limits.timeout,
                limits.max_input_bytes,
            )
        }
        None => child::run(cmd, Vec::new(), limits.timeout, limits.max_input_bytes),
    }
    .map_err(HelmRunError::Spawn)?;
    match end {
        Finished::TimedOut => Err(HelmRunError::Limit(LimitError::Time {
            what: what.to_string(),
            limit: limits.timeout,
        })),
        Finished::OutputTooLarge { read } => Err(HelmRunError::Limit(LimitError::Input {
            what: dir.to_string(),
            at: format!("the output of {what}"),
            total: read,
            limit: limits.max_input_bytes,
        })),
        Finished::Exited { status, stderr, .. }
            if limited.is_some() && !status.success() && out_of_memory(&stderr) =>
        {
            Err(HelmRunError::Limit(LimitError::Memory {
                what: what.to_string(),
                limit: limits.max_memory,
            }))
        }
        Finished::Exited {
            status,
            stdout,
            stderr,
        } => Ok(HelmExit {
            status,
            stdout,
            stderr,
        }),
    }
}

/// Whether helm died for want of memory: the Go runtime says so first on
/// stderr, whether the heap, its own bookkeeping or a new thread's stack
/// could not grow (under the data-segment limit a thread stack that does not
/// fit makes `pthread_create` fail with EAGAIN).
fn out_of_memory(stderr: &str) -> bool {
    stderr.contains("fatal error: runtime: out of memory")
        || stderr.contains("fatal error: out of memory")
        || stderr.contains("runtime: cannot allocate memory")
        || stderr.contains("pthread_create failed: Resource temporarily unavailable")
        || stderr.contains("runtime: failed to create new OS thread")
}

/// `cmd` started through `worker`, which limits its data segment to
/// `max_memory` and then becomes `cmd`'s program: the command to spawn and
/// the request to write on its stdin. Environment and working directory
/// carry over; helm's garbage collector is told the limit, so that it
/// collects harder before the limit rather than dying at it.
fn through_worker(
    cmd: &Command,
    worker: &RenderWorker,
    max_memory: u64,
) -> std::io::Result<(Command, Vec<u8>)> {
    let text = |s: &OsStr| {
        s.to_str()
            .map(str::to_owned)
            .ok_or_else(|| std::io::Error::other(format!("{}: not UTF-8", s.to_string_lossy())))
    };
    let program = text(cmd.get_program())?;
    let args = cmd.get_args().map(text).collect::<Result<Vec<_>, _>>()?;
    let mut wrapped = Command::new(&worker.program);
    wrapped.args(&worker.args);
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    // A soft limit below the hard one: Go's own bookkeeping needs room too.
    wrapped.env("GOMEMLIMIT", format!("{}", max_memory / 4 * 3));
    let request = worker::encode_exec(&program, &args, max_memory);
    Ok((wrapped, request.into_bytes()))
}

/// Runs the helm commands of kustomize's `helmCharts:` within the render's
/// bounds.
#[derive(Debug)]
pub(crate) struct BoundedHelm {
    /// The worker that limits helm's memory, if any.
    pub worker: Option<RenderWorker>,
    /// The bounds.
    pub limits: RenderLimits,
    /// The kustomization directory, as messages name it.
    pub dir: String,
}

impl driftless_kustomize::HelmRunner for BoundedHelm {
    fn output(&self, mut cmd: Command) -> std::io::Result<Output> {
        let verb = cmd
            .get_args()
            .next()
            .map_or_else(String::new, |a| a.to_string_lossy().into_owned());
        let what = format!("helm {verb} for the helmCharts of {}", self.dir);
        match run(
            &mut cmd,
            self.worker.as_ref(),
            &self.limits,
            &what,
            &self.dir,
        ) {
            Ok(exit) => Ok(Output {
                status: exit.status,
                stdout: exit.stdout,
                stderr: exit.stderr.into_bytes(),
            }),
            Err(HelmRunError::Spawn(e)) => Err(e),
            Err(HelmRunError::Limit(e)) => Err(std::io::Error::other(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::out_of_memory;

    #[test]
    fn every_way_the_go_runtime_reports_a_memory_limit_is_recognised() {
        for stderr in [
            "fatal error: runtime: out of memory\n\ngoroutine 1 [running]:",
            "runtime: cannot allocate memory\nfatal error: out of memory",
            "runtime/cgo: pthread_create failed: Resource temporarily unavailable\nSIGABRT: abort",
            "runtime: failed to create new OS thread (have 7 already; errno=11)",
        ] {
            assert!(out_of_memory(stderr), "{stderr}");
        }
        assert!(!out_of_memory(
            "Error: template: grow/templates/cm.yaml:3: bad"
        ));
    }
}
