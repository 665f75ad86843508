//! Hooks and health checks, run on the host in a release directory.

use std::time::Duration;

use driftless_api::{HealthCheck, HttpCheck};

use crate::remote::{HookEnv, Layout};
use crate::ssh::{Connection, SshError};

/// Exit statuses of `timeout`: the command ran out of time (124) or had to be
/// killed after ignoring the first signal (137).
const TIMED_OUT: [u32; 2] = [124, 137];
/// Slack given to the SSH round trip beyond a hook's own limit.
const ROUND_TRIP: Duration = Duration::from_secs(10);

/// Why a hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The hook exited non-zero.
    #[error("host {host}: {hook} hook exited with status {status}: {output}")]
    Failed {
        /// Host name.
        host: String,
        /// `beforeSwitch` or `afterSwitch`.
        hook: &'static str,
        /// Exit status (or 255 when killed by a signal).
        status: u32,
        /// The end of its output.
        output: String,
    },
    /// The hook ran past its time limit and was killed.
    #[error("host {host}: {hook} hook killed after its timeout of {after:?}")]
    Timeout {
        /// Host name.
        host: String,
        /// `beforeSwitch` or `afterSwitch`.
        hook: &'static str,
        /// The limit.
        after: Duration,
    },
    /// The connection failed while the hook ran.
    #[error(transparent)]
    Ssh(#[from] SshError),
}

/// Runs hook `name` (`command`) in the release of `revision`.
pub async fn run_hook(
    conn: &Connection,
    layout: &Layout,
    revision: &str,
    hook: &'static str,
    command: &str,
    env: &HookEnv,
    limit: Duration,
) -> Result<(), HookError> {
    let script = layout.hook(revision, command, env, limit);
    let output = match conn.run(&script, None, limit + ROUND_TRIP).await {
        Err(SshError::Timeout { .. }) => None,
        other => Some(other?),
    };
    let host = conn.host().to_owned();
    match output {
        Some(out) if out.success() => Ok(()),
        Some(out) if !out.status.is_some_and(|s| TIMED_OUT.contains(&s)) => {
            Err(HookError::Failed {
                host,
                hook,
                status: out.status.unwrap_or(255),
                output: out.text(),
            })
        }
        _ => Err(HookError::Timeout {
            host,
            hook,
            after: limit,
        }),
    }
}

/// Runs the health check until it passes or its retries are spent; the
/// error is the last attempt's output.
pub async fn check_health(
    conn: &Connection,
    layout: &Layout,
    revision: &str,
    check: &HealthCheck,
    env: &HookEnv,
) -> Result<(), String> {
    let limit = check.timeout.get();
    let mut last = String::new();
    for attempt in 0..=check.retries {
        if attempt > 0 {
            tokio::time::sleep(check.interval.get()).await;
        }
        let verdict = match (&check.command, &check.http) {
            (Some(command), _) => command_check(conn, layout, revision, command, env, limit).await,
            (None, Some(http)) => http_check(conn, http, limit).await,
            (None, None) => return Ok(()),
        };
        match verdict {
            Ok(()) => return Ok(()),
            Err(output) => {
                last = format!("attempt {} of {}: {output}", attempt + 1, check.retries + 1)
            }
        }
    }
    Err(last)
}

async fn command_check(
    conn: &Connection,
    layout: &Layout,
    revision: &str,
    command: &str,
    env: &HookEnv,
    limit: Duration,
) -> Result<(), String> {
    match run_hook(conn, layout, revision, "healthCheck", command, env, limit).await {
        Ok(()) => Ok(()),
        Err(HookError::Failed { status, output, .. }) => Err(format!(
            "health check exited with status {status}: {output}"
        )),
        Err(HookError::Timeout { after, .. }) => {
            Err(format!("health check timed out after {after:?}"))
        }
        Err(HookError::Ssh(e)) => Err(e.to_string()),
    }
}

async fn http_check(conn: &Connection, http: &HttpCheck, limit: Duration) -> Result<(), String> {
    let (address, port, path) =
        split_url(&http.url).ok_or_else(|| format!("cannot parse URL {:?}", http.url))?;
    let (status, body) = conn
        .http_get(address, port, path, limit)
        .await
        .map_err(|e| e.to_string())?;
    if status == http.expect_status {
        Ok(())
    } else {
        Err(format!(
            "GET {} answered {status}, expected {}: {body}",
            http.url, http.expect_status
        ))
    }
}

/// `http://host[:port][/path]` into its parts.
fn split_url(url: &str) -> Option<(&str, u16, &str)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest
        .find('/')
        .map_or((rest, "/"), |at| (&rest[..at], &rest[at..]));
    let (address, port) = match authority.rsplit_once(':') {
        Some((address, port)) => (address, port.parse().ok()?),
        None => (authority, 80),
    };
    (!address.is_empty()).then_some((address, port, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_address_port_and_path() {
        assert_eq!(
            split_url("http://127.0.0.1:8080/healthz"),
            Some(("127.0.0.1", 8080, "/healthz"))
        );
        assert_eq!(split_url("http://web"), Some(("web", 80, "/")));
        assert_eq!(split_url("https://web/"), None);
        assert_eq!(split_url("http://:80/"), None);
    }
}
