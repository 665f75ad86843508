//! Runs a program a render needs (the Jsonnet worker, helm) with a wall-clock
//! deadline and a cap on what it prints, so neither a slow nor a chatty
//! program can hold a render or the engine's memory.

use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};

/// How much of a program's stderr is kept for messages: its start (where
/// Go and Rust name a fatal error before a long trace) and its end.
const STDERR_HEAD_BYTES: usize = 4 * 1024;
const STDERR_TAIL_BYTES: usize = 16 * 1024;

/// How a bounded run ended.
#[derive(Debug)]
pub(crate) enum Finished {
    /// The program exited (or died of a signal) on its own.
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// All it printed on stdout.
        stdout: Vec<u8>,
        /// What it printed on stderr: all of it, or its start and its end.
        stderr: String,
    },
    /// The deadline passed; the program was killed.
    TimedOut,
    /// It printed more than allowed on stdout; it was killed.
    OutputTooLarge {
        /// Bytes read when it was stopped.
        read: u64,
    },
}

/// Runs `cmd` with `input` on its stdin, killing it after `timeout` or once
/// it prints more than `max_output` bytes on stdout.
pub(crate) fn run(
    cmd: &mut Command,
    input: Vec<u8>,
    timeout: Duration,
    max_output: u64,
) -> std::io::Result<Finished> {
    cmd.stdin(if input.is_empty() {
        Stdio::null()
    } else {
        Stdio::piped()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let pid = Pid::from_child(&child);
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (events, ended) = mpsc::channel();
    // A program that ignores its input must not block the run: write from a thread.
    if let Some(mut stdin) = stdin {
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let out_reader = std::thread::spawn(move || read_capped(stdout, max_output, pid));
    let err_reader = std::thread::spawn(move || read_ends(stderr));
    std::thread::spawn(move || {
        let _ = events.send(child.wait());
    });
    let status = match ended.recv_timeout(timeout) {
        Ok(status) => Some(status?),
        Err(_) => {
            // The child is not reaped before the waiter returns, so `pid`
            // still names it here.
            let _ = kill_process(pid, Signal::KILL);
            let _ = ended.recv();
            None
        }
    };
    let (stdout, over) = out_reader
        .join()
        .map_err(|_| std::io::Error::other("stdout reader panicked"))?;
    let stderr = err_reader.join().unwrap_or_default();
    Ok(match status {
        None => Finished::TimedOut,
        Some(_) if over => Finished::OutputTooLarge {
            read: stdout.len() as u64,
        },
        Some(status) => Finished::Exited {
            status,
            stdout,
            stderr,
        },
    })
}

/// Reads stdout up to `max` bytes; one byte more kills the program.
fn read_capped(stdout: Option<impl Read>, max: u64, pid: Pid) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    let Some(stdout) = stdout else {
        return (buf, false);
    };
    let mut capped = stdout.take(max.saturating_add(1));
    let _ = capped.read_to_end(&mut buf);
    if buf.len() as u64 > max {
        let _ = kill_process(pid, Signal::KILL);
        return (buf, true);
    }
    (buf, false)
}

/// Drains stderr, keeping its first [`STDERR_HEAD_BYTES`] and its last
/// [`STDERR_TAIL_BYTES`].
fn read_ends(stderr: Option<impl Read>) -> String {
    let Some(mut stderr) = stderr else {
        return String::new();
    };
    let mut head = Vec::new();
    let mut tail = Vec::new();
    let mut dropped = false;
    let mut chunk = [0u8; 8192];
    while let Ok(n) = stderr.read(&mut chunk) {
        if n == 0 {
            break;
        }
        let mut bytes = &chunk[..n];
        if head.len() < STDERR_HEAD_BYTES {
            let take = bytes.len().min(STDERR_HEAD_BYTES - head.len());
            head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        tail.extend_from_slice(bytes);
        if tail.len() > 2 * STDERR_TAIL_BYTES {
            tail.drain(..tail.len() - STDERR_TAIL_BYTES);
            dropped = true;
        }
    }
    dropped |= tail.len() > STDERR_TAIL_BYTES;
    let tail = &tail[tail.len().saturating_sub(STDERR_TAIL_BYTES)..];
    let mut text = String::from_utf8_lossy(&head).into_owned();
    if dropped {
        text.push_str("\n[...]\n");
    }
    text.push_str(&String::from_utf8_lossy(tail));
    text.trim().to_string()
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::{Duration, Instant};

    use super::{Finished, run};

    #[test]
    fn a_program_past_its_deadline_is_killed() {
        let start = Instant::now();
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let end = run(&mut cmd, Vec::new(), Duration::from_millis(300), 1024).expect("runs");
        assert!(matches!(end, Finished::TimedOut), "{end:?}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn output_past_the_cap_stops_the_program() {
        let mut cmd = Command::new("yes");
        let end = run(&mut cmd, Vec::new(), Duration::from_secs(30), 1 << 20).expect("runs");
        assert!(
            matches!(end, Finished::OutputTooLarge { read } if read == (1 << 20) + 1),
            "{end:?}"
        );
    }

    #[test]
    fn a_long_stderr_keeps_its_start_and_its_end() {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "echo 'fatal error: first line' >&2; yes filler | head -c 100000 >&2; echo last >&2",
        ]);
        let end = run(&mut cmd, Vec::new(), Duration::from_secs(30), 1024).expect("runs");
        let Finished::Exited { stderr, .. } = end else {
            panic!("expected an exit, got {end:?}");
        };
        assert!(
            stderr.starts_with("fatal error: first line"),
            "{}",
            &stderr[..40]
        );
        assert!(stderr.contains("\n[...]\n"));
        assert!(stderr.ends_with("last"));
        assert!(stderr.len() < 21 * 1024, "{} bytes kept", stderr.len());
    }

    #[test]
    fn input_output_and_status_pass_through() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "cat; echo oops >&2; exit 3"]);
        let end = run(&mut cmd, b"hello".to_vec(), Duration::from_secs(30), 1024).expect("runs");
        let Finished::Exited {
            status,
            stdout,
            stderr,
        } = end
        else {
            panic!("expected an exit, got {end:?}");
        };
        assert_eq!(status.code(), Some(3));
        assert_eq!(stdout, b"hello");
        assert_eq!(stderr, "oops");
    }
}
