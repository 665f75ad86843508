//! One host's part of a rollout: upload what changed, run the hooks, switch
//! `current`, check health, switch back on failure, prune old releases.

use std::time::{Duration, Instant};

use driftless_api::status::HealthStatus;
use driftless_api::{HostResult, HostRollout};

use crate::hooks::{HookError, check_health, run_hook};
use crate::manifest::Manifest;
use crate::pool::ConnectionPool;
use crate::release::{AppRelease, HostRelease, ReleaseError};
use crate::remote::{HookEnv, HostState, Layout, parse_releases, releases_to_remove};
use crate::ssh::{Connection, Endpoint, Output, SshError, Timeouts};

/// Why an operation on a host (deploy, drift check, restore) stopped. The
/// current release is left as it was.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// Connecting, the host key, login or a lost connection.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// The release could not be made for this host.
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// A hook failed or timed out.
    #[error(transparent)]
    Hook(#[from] HookError),
    /// A step on the host (upload, activate, switch, prune) failed.
    #[error("host {host}: {step} failed: {output}")]
    Step {
        /// Host name.
        host: String,
        /// The step.
        step: &'static str,
        /// What the host said.
        output: String,
    },
}

/// What to do on a host, decided from its state alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The release is current and its manifest matches: nothing to do.
    Unchanged,
    /// The release is current but differs (new host vars): repair in place.
    Repair,
    /// Build a new release, linking unchanged files from `base`.
    NewRelease {
        /// The current release, when its manifest is known.
        base: Option<String>,
    },
}

/// Decides what a deployment of `manifest` does on a host in `state`.
pub fn plan(state: &HostState, manifest: &Manifest) -> Plan {
    if state.current.as_deref() == Some(manifest.revision.as_str()) {
        return if state.manifest.as_ref() == Some(manifest) {
            Plan::Unchanged
        } else {
            Plan::Repair
        };
    }
    Plan::NewRelease {
        base: state.manifest.as_ref().and(state.current.clone()),
    }
}

/// Deploys `release` to `endpoint` over the pool's connection to it; never
/// fails: the record says what happened.
pub async fn deploy_host(
    pool: &ConnectionPool,
    endpoint: &Endpoint,
    release: &AppRelease,
    timeouts: Timeouts,
) -> HostRollout {
    let started = Instant::now();
    let mut record = record(&endpoint.name, release.revision());
    let mut retried = false;
    let outcome = loop {
        let lease = match pool.lease(endpoint, timeouts).await {
            Ok(lease) => lease,
            Err(e) => break Err(e.into()),
        };
        let outcome = deploy(&lease.connection, endpoint, release, &mut record).await;
        if outcome.is_err() && pool.failed(endpoint, &lease).await && !retried {
            retried = true;
            continue;
        }
        break outcome;
    };
    if let Err(e) = outcome {
        record.result = HostResult::Failed;
        record.health = HealthStatus::Degraded;
        record.message = Some(e.to_string());
    }
    record.total = millis(started.elapsed());
    record
}

/// A record of a host not yet deployed.
pub fn record(host: &str, revision: &str) -> HostRollout {
    HostRollout {
        host: host.to_owned(),
        revision: revision.to_owned(),
        result: HostResult::Skipped,
        health: HealthStatus::Unknown,
        rolled_back: false,
        previous: None,
        files_sent: 0,
        upload: millis(Duration::ZERO),
        total: millis(Duration::ZERO),
        message: None,
    }
}

fn millis(d: Duration) -> driftless_api::Duration {
    // Whole milliseconds parse back exactly, as history stores them.
    format!("{}ms", d.as_millis())
        .parse()
        .unwrap_or(driftless_api::Duration::from_secs(0))
}

/// Deploys over an open connection, filling `record`. An error leaves the
/// release that was current before in place (or switched back to).
pub async fn deploy(
    conn: &Connection,
    endpoint: &Endpoint,
    release: &AppRelease,
    record: &mut HostRollout,
) -> Result<(), HostError> {
    let host_release = release.for_host(&endpoint.name, &endpoint.vars)?;
    let layout = Layout::new(&endpoint.apps_root, release.app());
    let state = read_state(conn, &layout).await?;
    record.previous = state.current.clone();
    let revision = release.revision();
    let env = HookEnv {
        app: release.app().to_owned(),
        host: endpoint.name.clone(),
        previous_release: state.current.as_deref().map(|c| layout.release(c)),
    };
    // What `current` and `previous` are once the release is in place.
    let mut pruned = (state.current.clone(), state.previous.clone());
    match plan(&state, host_release.manifest()) {
        Plan::Unchanged => {
            record.result = HostResult::Unchanged;
            record.health = HealthStatus::Healthy;
            return Ok(());
        }
        Plan::Repair => {
            let repaired = crate::drift::repair(conn, &layout, &host_release).await?;
            record.files_sent = repaired.files_sent;
        }
        Plan::NewRelease { base } => {
            let started = Instant::now();
            let previous = state.current.as_deref().or(state.previous.as_deref());
            let before_switch = release.delivery().hooks.before_switch.as_ref();
            // Without a hook in between, the upload, the activation and the
            // switch are one remote command: each step runs only if the one
            // before it succeeded, so a failure still leaves `current` alone.
            let switch = before_switch
                .is_none()
                .then(|| layout.switch(revision, previous));
            record.files_sent = upload(
                conn,
                &layout,
                &host_release,
                (&state, base.as_deref()),
                switch.as_deref(),
            )
            .await?;
            record.upload = millis(started.elapsed());
            if let Some(hook) = before_switch {
                let limit = release.delivery().hooks.timeout.get();
                run_hook(conn, &layout, revision, "beforeSwitch", hook, &env, limit).await?;
                step(
                    conn,
                    "switching current",
                    &layout.switch(revision, previous),
                )
                .await?;
            }
            pruned = (Some(revision.to_owned()), previous.map(str::to_owned));
        }
    }
    if let Err(output) = after_switch(conn, &layout, release, revision, &env).await {
        return fall_back(conn, &layout, release, &state, record, output).await;
    }
    record.result = HostResult::Succeeded;
    record.health = HealthStatus::Healthy;
    let keep = release.delivery().keep_releases as usize;
    prune(
        conn,
        &layout,
        keep,
        pruned.0.as_deref(),
        pruned.1.as_deref(),
    )
    .await
}

/// The afterSwitch hook then the health check; the failure's output.
async fn after_switch(
    conn: &Connection,
    layout: &Layout,
    release: &AppRelease,
    revision: &str,
    env: &HookEnv,
) -> Result<(), String> {
    let delivery = release.delivery();
    if let Some(hook) = &delivery.hooks.after_switch {
        let limit = delivery.hooks.timeout.get();
        run_hook(conn, layout, revision, "afterSwitch", hook, env, limit)
            .await
            .map_err(|e| e.to_string())?;
    }
    match &delivery.health_check {
        Some(check) => check_health(conn, layout, revision, check, env).await,
        None => Ok(()),
    }
}

/// Switches back to the release that was current, runs afterSwitch there,
/// and records the host Degraded with the failure's output.
async fn fall_back(
    conn: &Connection,
    layout: &Layout,
    release: &AppRelease,
    state: &HostState,
    record: &mut HostRollout,
    output: String,
) -> Result<(), HostError> {
    record.health = HealthStatus::Degraded;
    record.result = HostResult::Failed;
    let Some(old) = state
        .current
        .as_deref()
        .filter(|old| *old != release.revision())
    else {
        record.message = Some(format!("{output}; no earlier release to switch back to"));
        return Ok(());
    };
    step(
        conn,
        "switching back",
        &layout.switch(old, state.previous.as_deref()),
    )
    .await?;
    record.rolled_back = true;
    record.result = HostResult::RolledBack;
    let env = HookEnv {
        app: release.app().to_owned(),
        host: conn.host().to_owned(),
        previous_release: Some(layout.release(release.revision())),
    };
    let mut message = output;
    if let Some(hook) = &release.delivery().hooks.after_switch {
        let limit = release.delivery().hooks.timeout.get();
        if let Err(e) = run_hook(conn, layout, old, "afterSwitch", hook, &env, limit).await {
            message.push_str(&format!("; after switching back: {e}"));
        }
    }
    record.message = Some(message);
    Ok(())
}

/// Sends the changed files into a staging directory and activates it as the
/// release, then runs `then` (the switch) in the same remote command; returns
/// how many files were sent.
async fn upload(
    conn: &Connection,
    layout: &Layout,
    release: &HostRelease<'_>,
    (state, base): (&HostState, Option<&str>),
    then: Option<&str>,
) -> Result<u64, HostError> {
    let manifest = release.manifest();
    let plan = manifest.upload_plan(base.and(state.manifest.as_ref()));
    let stream = release.upload_stream(&plan.send, &plan.link)?;
    let revision = manifest.revision.as_str();
    let mut script = format!(
        "{} && {}",
        layout.build_release(revision, base),
        layout.activate(revision)
    );
    let name = match then {
        Some(then) => {
            script.push_str(" && ");
            script.push_str(then);
            "uploading, activating and switching to the release"
        }
        None => "uploading and activating the release",
    };
    let out = conn
        .run_script(&script, Some(&stream), conn.timeouts().upload)
        .await?;
    check(conn, name, out)?;
    let sent = plan
        .send
        .iter()
        .filter(|p| {
            matches!(
                manifest.entries.get(*p),
                Some(crate::manifest::ManifestEntry::File { .. })
            )
        })
        .count();
    Ok(sent as u64)
}

/// Reads `current`, `previous` and the current manifest.
pub(crate) async fn read_state(conn: &Connection, layout: &Layout) -> Result<HostState, HostError> {
    let out = step(conn, "reading the release state", &layout.read_state()).await?;
    Ok(HostState::parse(&out.stdout))
}

/// Removes releases beyond `keep` (never `current` or `previous`, which the
/// deployment that just ended knows).
async fn prune(
    conn: &Connection,
    layout: &Layout,
    keep: usize,
    current: Option<&str>,
    previous: Option<&str>,
) -> Result<(), HostError> {
    let listed = step(conn, "listing releases", &layout.list_releases()).await?;
    let remove = releases_to_remove(&parse_releases(&listed.stdout), current, previous, keep);
    if !remove.is_empty() {
        step(conn, "removing old releases", &layout.remove(&remove)).await?;
    }
    Ok(())
}

/// Runs one bookkeeping script with the ordinary command limit.
pub(crate) async fn step(
    conn: &Connection,
    name: &'static str,
    script: &str,
) -> Result<Output, HostError> {
    let out = conn
        .run_script(script, None, conn.timeouts().command)
        .await?;
    check(conn, name, out)
}

pub(crate) fn check(
    conn: &Connection,
    name: &'static str,
    out: Output,
) -> Result<Output, HostError> {
    if out.success() {
        Ok(out)
    } else {
        Err(HostError::Step {
            host: conn.host().to_owned(),
            step: name,
            output: out.text(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(revision: &str) -> Manifest {
        Manifest {
            revision: revision.into(),
            entries: Default::default(),
        }
    }

    #[test]
    fn plans_follow_the_host_state() {
        let fresh = HostState::default();
        assert_eq!(
            plan(&fresh, &manifest("b")),
            Plan::NewRelease { base: None }
        );
        let running_a = HostState {
            current: Some("a".into()),
            previous: None,
            manifest: Some(manifest("a")),
        };
        assert_eq!(
            plan(&running_a, &manifest("b")),
            Plan::NewRelease {
                base: Some("a".into())
            }
        );
        assert_eq!(plan(&running_a, &manifest("a")), Plan::Unchanged);
        let mut changed = manifest("a");
        changed.entries.insert(
            "x".into(),
            crate::manifest::ManifestEntry::Dir { mode: 0o755 },
        );
        assert_eq!(plan(&running_a, &changed), Plan::Repair);
        let unreadable = HostState {
            manifest: None,
            ..running_a
        };
        assert_eq!(
            plan(&unreadable, &manifest("b")),
            Plan::NewRelease { base: None }
        );
    }

    #[test]
    fn durations_are_recorded_in_milliseconds() {
        assert_eq!(millis(Duration::from_millis(1250)).to_string(), "1s250ms");
    }
}
