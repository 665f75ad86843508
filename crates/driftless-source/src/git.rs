//! Running the system `git` binary in an isolated, non-interactive environment.
//!
//! git fetches what gix does not (SSH, dumb HTTP, a configured proxy, any
//! transfer gix failed at), checks signatures, reads commit metadata and
//! moves the cache's refs. See `docs/sources.md`.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Failure to run `git` or a non-zero exit from it.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The `git` program could not be started at all.
    #[error("starting `git {args}`: {source} (is git installed and on PATH?)")]
    Spawn {
        /// The arguments that were passed.
        args: String,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// `git` ran and exited with a failure status.
    #[error("`git {args}` failed ({status}): {stderr}")]
    Failed {
        /// The arguments that were passed.
        args: String,
        /// Exit status as text.
        status: String,
        /// Trimmed standard error of git.
        stderr: String,
    },
    /// `git` did not finish in time and was killed (with the processes it started).
    #[error("`git {args}` did not finish within {}s and was stopped", .after.as_secs_f64())]
    TimedOut {
        /// The arguments that were passed.
        args: String,
        /// The time limit.
        after: Duration,
    },
    /// `git` printed something that is not UTF-8 where text was expected.
    #[error("`git {args}` printed non-UTF-8 output")]
    NotUtf8 {
        /// The arguments that were passed.
        args: String,
    },
}

impl GitError {
    /// Standard error of a failed git run, empty for other failures.
    pub fn stderr(&self) -> &str {
        match self {
            GitError::Failed { stderr, .. } => stderr,
            _ => "",
        }
    }
}

/// A `git` invocation builder with a hermetic environment.
///
/// User and system configuration are ignored, prompts are disabled and any
/// credential helper is switched off, so a fetch never hangs waiting for a
/// password and never picks up credentials the user did not give driftless.
/// Secrets travel via `GIT_CONFIG_*` environment variables, not argv, so they
/// do not show up in process listings.
#[derive(Debug, Clone)]
pub struct Git {
    dir: Option<PathBuf>,
    config: Vec<(String, String)>,
    env: Vec<(String, OsString)>,
    timeout: Option<Duration>,
}

impl Default for Git {
    fn default() -> Self {
        Self::new()
    }
}

impl Git {
    /// A git runner not bound to any repository.
    pub fn new() -> Self {
        Git {
            dir: None,
            config: vec![
                ("credential.helper".into(), String::new()),
                ("core.askPass".into(), String::new()),
                ("protocol.version".into(), "2".into()),
                ("advice.detachedHead".into(), "false".into()),
                ("gc.auto".into(), "0".into()),
                ("maintenance.auto".into(), "false".into()),
                // A stalled server must not hang a poll forever: abort HTTP
                // transfers slower than 1 KiB/s for a minute.
                ("http.lowSpeedLimit".into(), "1024".into()),
                ("http.lowSpeedTime".into(), "60".into()),
            ],
            env: Vec::new(),
            timeout: None,
        }
    }

    /// A git runner operating on the repository at `dir` (`git -C dir`).
    pub fn in_dir(dir: &Path) -> Self {
        let mut git = Self::new();
        git.dir = Some(dir.to_path_buf());
        git
    }

    /// Adds a configuration value, passed through the environment.
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.config.push((key.to_string(), value.to_string()));
        self
    }

    /// Adds an environment variable for the git process.
    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Self {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// Stops every run that takes longer than `limit`, together with the
    /// processes git started (remote helpers, ssh).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        if let Some(dir) = &self.dir {
            cmd.arg("-C").arg(dir);
        }
        cmd.args(args);
        cmd.env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .env_remove("GIT_SSH")
            .env_remove("GIT_SSH_COMMAND")
            .env_remove("GIT_ASKPASS")
            .env_remove("SSH_ASKPASS")
            // Certificate checks are never switched off from outside.
            .env_remove("GIT_SSL_NO_VERIFY")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_SSH_VARIANT", "ssh")
            .env("LC_ALL", "C");
        cmd.env("GIT_CONFIG_COUNT", self.config.len().to_string());
        for (i, (key, value)) in self.config.iter().enumerate() {
            cmd.env(format!("GIT_CONFIG_KEY_{i}"), key);
            cmd.env(format!("GIT_CONFIG_VALUE_{i}"), value);
        }
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        cmd
    }

    /// Starts `git upload-pack` (protocol v2) for the repository at `path`,
    /// talking over its standard input and output, in a process group of its
    /// own so that [`kill_group`] stops it with anything it started.
    pub(crate) fn spawn_upload_pack(&self, path: &str) -> std::io::Result<Child> {
        let mut cmd = self.command(&["upload-pack", "--", path]);
        cmd.env("GIT_PROTOCOL", "version=2")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0);
        cmd.spawn()
    }

    /// Runs git with `args` and returns its raw output on success.
    pub fn run_bytes(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>, GitError> {
        let joined = shown_args(args);
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        if self.timeout.is_some() {
            // Its own process group, so a timeout stops git's helpers too.
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().map_err(|source| GitError::Spawn {
            args: joined.clone(),
            source,
        })?;
        if let Some(limit) = self.timeout {
            return run_limited(child, joined, stdin, limit);
        }
        let output = std::thread::scope(|scope| {
            if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
                // Written from a second thread: git may fill its stdout pipe
                // before it has read all input (cat-file --batch does).
                // A write error means git exited early; its status tells why.
                scope.spawn(move || {
                    let _ = pipe.write_all(input);
                });
            }
            child.wait_with_output()
        })
        .map_err(|source| GitError::Spawn {
            args: joined.clone(),
            source,
        })?;
        check(joined, output)
    }

    /// Runs git with `args` and returns its standard output as text.
    pub fn run(&self, args: &[&str]) -> Result<String, GitError> {
        let out = self.run_bytes(args, None)?;
        String::from_utf8(out).map_err(|_| GitError::NotUtf8 {
            args: shown_args(args),
        })
    }

    /// Runs git and reports only whether it exited successfully.
    pub fn succeeds(&self, args: &[&str]) -> Result<bool, GitError> {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let status = cmd.status().map_err(|source| GitError::Spawn {
            args: shown_args(args),
            source,
        })?;
        Ok(status.success())
    }
}

/// Waits for `child` at most `limit`, reading its output on helper threads
/// that are left behind if it has to be killed.
fn run_limited(
    mut child: Child,
    args: String,
    stdin: Option<&[u8]>,
    limit: Duration,
) -> Result<Vec<u8>, GitError> {
    let deadline = Instant::now() + limit;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let (tx, rx) = mpsc::channel();
    let readers = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ];
    for (index, pipe) in readers.into_iter().enumerate() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut data = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut data);
            }
            let _ = tx.send((index, data));
        });
    }
    let mut outputs = [Vec::new(), Vec::new()];
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((index, data)) => outputs[index] = data,
            Err(_) => {
                stop_group(&mut child);
                return Err(GitError::TimedOut { args, after: limit });
            }
        }
    }
    let status = child.wait().map_err(|source| GitError::Spawn {
        args: args.clone(),
        source,
    })?;
    let [stdout, stderr] = outputs;
    check(
        args,
        Output {
            status,
            stdout,
            stderr,
        },
    )
}

/// The arguments as errors show them: passwords in URLs replaced by `***`.
fn shown_args(args: &[&str]) -> String {
    let shown: Vec<String> = args.iter().map(|a| crate::auth::redact_url(a)).collect();
    shown.join(" ")
}

/// Kills git and everything in its process group, then reaps git.
pub(crate) fn stop_group(child: &mut Child) {
    kill_group(child.id());
    let _ = child.kill();
    let _ = child.wait();
}

/// Kills every process in the process group `pid` leads (a system call, no
/// helper program, so it works where no `kill` binary is installed).
pub(crate) fn kill_group(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else {
        return;
    };
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

fn check(args: String, output: Output) -> Result<Vec<u8>, GitError> {
    if output.status.success() {
        return Ok(output.stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    Err(GitError::Failed {
        args,
        status: output.status.to_string(),
        stderr,
    })
}
