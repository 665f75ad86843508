//! `driftless status|history|sync|suspend|resume|rollback` and `diff --server`: client
//! commands of a running `driftless serve`, over its REST API.

mod apps;
mod client;
mod view;

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use driftless_api::Time;
use driftless_api::history::{SyncRecord, SyncResult, SyncTrigger};
use driftless_api::list::{AppFilter, ListParamError, parse_health, parse_sync};
use driftless_api::status::{AppStatus, Named};

use crate::args::{
    AppArgs, HistoryArgs, ListArgs, RollbackArgs, ServerArgs, StatusArgs, SummaryOutput, SyncArgs,
    TargetArgs,
};
use crate::exit::{Failure, Outcome};
use client::{Action, Client, RemoteError};

/// How often `sync --wait` asks for news.
const POLL: Duration = Duration::from_millis(250);
/// History entries `sync --wait` reads per poll: enough to find its sync among others.
const POLL_HISTORY: u32 = 20;

/// `driftless status [APP]`: a summary and the table of the selected Apps, or one
/// App in detail.
pub fn status(args: &StatusArgs) -> Outcome {
    let client = connect(&args.server)?;
    let output = args.server.output;
    let Some(app) = &args.app else {
        let filter = app_filter(args)?;
        let limit = args.limit.map(|n| n as usize);
        let pages = apps::Pages::new(&client, &filter, limit);
        let mut out = std::io::stdout().lock();
        match output {
            SummaryOutput::Json => run(apps::print_json(pages, &mut out))?,
            SummaryOutput::Text => {
                run(apps::print_table(pages, Time::now().unix_ms(), &mut out))?;
                // Clusters and Notifiers go with the overview; a selection is about Apps.
                if filter.is_empty() {
                    let clusters = run(client.clusters()).map(|c| view::cluster_table(&c));
                    let notifiers = run(client.notifiers()).map(|n| view::notifier_table(&n));
                    for (what, table) in [("clusters", clusters), ("notifiers", notifiers)] {
                        let text = match table {
                            Ok(table) if table.is_empty() => String::new(),
                            Ok(table) => format!("\n{table}"),
                            Err(e) => format!("\n{what}: {}\n", e.error),
                        };
                        out.write_all(text.as_bytes())
                            .map_err(Failure::operational)?;
                    }
                }
            }
        }
        return Ok(0);
    };
    let status = run(client.app(app))?;
    show(output, &status, |s| {
        view::app_detail(s, Time::now().unix_ms())
    })?;
    Ok(0)
}

/// The selection the flags of `status` ask for, checked before anything is sent.
fn app_filter(args: &StatusArgs) -> Result<AppFilter, Failure> {
    fn bad(flag: &'static str) -> impl FnOnce(ListParamError) -> Failure {
        move |e| Failure::input(anyhow::anyhow!("--{flag}: {e}"))
    }
    let mut filter = AppFilter::default();
    if !args.health.is_empty() {
        filter.health = parse_health(&args.health.join(",")).map_err(bad("health"))?;
    }
    if !args.sync.is_empty() {
        filter.sync = parse_sync(&args.sync.join(",")).map_err(bad("sync"))?;
    }
    filter.labels = args.label.join(",").parse().map_err(bad("label"))?;
    filter.name = args.query.as_deref().unwrap_or_default().trim().to_owned();
    Ok(filter)
}

/// `driftless history APP`: one line per sync, newest first; with `--operations`,
/// one line per operation asked through the API.
pub fn history(args: &HistoryArgs) -> Outcome {
    let list_args = &args.list;
    let client = connect(&list_args.server)?;
    if args.operations {
        let operations = run(client.operations(&list_args.app, list_args.limit))?;
        let none = format!("no operations asked of app {} yet", list_args.app);
        return list(list_args, &operations, &none, view::operation_lines);
    }
    let records = run(client.history(&list_args.app, list_args.limit))?;
    let none = format!("app {} has no syncs yet", list_args.app);
    list(list_args, &records, &none, view::history_lines)
}

/// `driftless drift APP`: one line per drift event, newest first.
pub fn drift(args: &ListArgs) -> Outcome {
    let client = connect(&args.server)?;
    let events = run(client.drift(&args.app, args.limit))?;
    let none = format!("no drift seen on app {}", args.app);
    list(args, &events, &none, view::drift_lines)
}

/// Prints entries of an App's past as JSON, as `lines`, or `none` when there are none.
fn list<T: serde::Serialize>(
    args: &ListArgs,
    entries: &[T],
    none: &str,
    lines: fn(&[T]) -> String,
) -> Outcome {
    show(args.server.output, &entries, |entries| {
        if entries.is_empty() {
            format!("{none}\n")
        } else {
            lines(entries)
        }
    })?;
    Ok(0)
}

/// `driftless diff --app APP --server URL`: what a sync of the server's App would
/// change, as `diff DIR` prints it (exit 0: none, 1: changes, 2: error).
pub fn diff(server: &str, token: Option<&str>, target: &TargetArgs) -> Outcome {
    let client = Client::new(server, token).map_err(Failure::input)?;
    let diff = run(client.diff(&target.app)).map_err(|f| Failure::input(f.error))?;
    show(target.output, &diff, view::app_diff)?;
    Ok(u8::from(!diff.objects.is_empty()))
}

/// The query of a sync: `overrideWindow=true` when asked.
fn sync_query(args: &SyncArgs) -> &'static [(&'static str, &'static str)] {
    if args.override_window {
        &[("overrideWindow", "true")]
    } else {
        &[]
    }
}

/// `driftless sync APP [--wait] [--override-window]`: exit 1 when the awaited sync
/// does not succeed.
pub fn sync(args: &SyncArgs) -> Outcome {
    let client = connect(&args.server)?;
    let output = args.server.output;
    if !args.wait {
        let status = run(client.act(&args.app, Action::Sync, sync_query(args)))?;
        return show(output, &status, |s| {
            let mut text = format!("sync of app {} queued\n", s.name);
            if let (Some(held), false) = (&s.status.held, args.override_window) {
                let _ = writeln!(text, "note: app {} is {held}", s.name);
            }
            text
        })
        .map(|()| 0);
    }
    let timeout: driftless_api::Duration = args
        .timeout
        .parse()
        .map_err(|e| Failure::input(anyhow::anyhow!("--timeout: {e}")))?;
    let record = run(async {
        tokio::time::timeout(timeout.get(), sync_and_wait(&client, args))
            .await
            .unwrap_or_else(|_| {
                Err(RemoteError::TimedOut {
                    app: args.app.clone(),
                    timeout: args.timeout.clone(),
                })
            })
    })?;
    show(output, &record, view::sync_result)?;
    Ok(u8::from(record.result != SyncResult::Succeeded))
}

/// `driftless suspend APP`.
pub fn suspend(args: &AppArgs) -> Outcome {
    act(&args.server, &args.app, Action::Suspend, None, |s| {
        format!(
            "app {} suspended: no syncs and no self-heal until `driftless resume {}`\n",
            s.name, s.name
        )
    })
}

/// `driftless resume APP`.
pub fn resume(args: &AppArgs) -> Outcome {
    act(&args.server, &args.app, Action::Resume, None, |s| {
        format!("app {} resumed: following Git again, sync queued\n", s.name)
    })
}

/// `driftless rollback APP [--to REVISION]`: says loudly that the App is now pinned.
pub fn rollback(args: &RollbackArgs) -> Outcome {
    let to = args.to.as_deref();
    act(&args.server, &args.app, Action::Rollback, to, |s| {
        let mut text = format!(
            "app {} rolled back to {}, sync queued\n",
            s.name,
            view::revision(s.status.pinned.as_ref())
        );
        for warning in view::warnings(s) {
            text.push_str(&warning);
            text.push('\n');
        }
        text
    })
}

/// Runs one `POST` and prints the App's status as `text` says, or as JSON.
fn act(
    server: &ServerArgs,
    app: &str,
    action: Action,
    to: Option<&str>,
    text: impl FnOnce(&Named<AppStatus>) -> String,
) -> Outcome {
    let client = connect(server)?;
    let query: Vec<(&str, &str)> = to.map(|to| ("to", to)).into_iter().collect();
    let status = run(async {
        client.act(app, action, &query).await.map_err(|e| match e {
            RemoteError::Server { status, .. }
                if action == Action::Rollback && status == reqwest::StatusCode::CONFLICT =>
            {
                RemoteError::NoRollbackTarget {
                    app: app.to_owned(),
                    target: to.map(str::to_owned),
                }
            }
            other => other,
        })
    })?;
    show(server.output, &status, text)?;
    Ok(0)
}

/// Queues a sync and waits for the manual sync recorded after it to end.
async fn sync_and_wait(client: &Client, args: &SyncArgs) -> Result<SyncRecord, RemoteError> {
    let app = args.app.as_str();
    let before = client.history(app, 1).await?.first().map_or(0, |r| r.id);
    let status = client.act(app, Action::Sync, sync_query(args)).await?;
    progress(&format!(
        "sync of app {app} queued (sync {:?}, health {:?}); waiting",
        status.status.sync, status.status.health
    ));
    let mut seen = (status.status.sync, status.status.health);
    let mut announced = None;
    loop {
        tokio::time::sleep(POLL).await;
        let status = client.app(app).await?.status;
        if (status.sync, status.health) != seen {
            seen = (status.sync, status.health);
            progress(&format!(
                "app {app}: sync {:?}, health {:?}",
                seen.0, seen.1
            ));
        }
        let records = client.history(app, POLL_HISTORY).await?;
        // The oldest manual sync after the request is the one it caused.
        let Some(ours) = records
            .into_iter()
            .filter(|r| r.id > before && r.start.trigger == SyncTrigger::Manual)
            .min_by_key(|r| r.id)
        else {
            continue;
        };
        if ours.result != SyncResult::Running {
            return Ok(ours);
        }
        if announced != Some(ours.id) {
            announced = Some(ours.id);
            progress(&format!(
                "app {app}: syncing {} ({})",
                view::revision(Some(&ours.start.revision)),
                ours.start.subject
            ));
        }
    }
}

/// A progress line on stderr, so that stdout stays the result.
fn progress(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn connect(server: &ServerArgs) -> Result<Client, Failure> {
    Client::new(&server.server, server.token.as_deref()).map_err(Failure::input)
}

/// Runs one request future on a current-thread runtime; every remote error exits 1.
fn run<T, E: Into<anyhow::Error>>(
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Failure::operational)?;
    runtime.block_on(future).map_err(Failure::operational)
}

/// Prints `value` as JSON, or the text view of it.
fn show<T: serde::Serialize>(
    output: SummaryOutput,
    value: &T,
    text: impl FnOnce(&T) -> String,
) -> Result<(), Failure> {
    let rendered = match output {
        SummaryOutput::Json => {
            let mut json = serde_json::to_string_pretty(value).map_err(Failure::operational)?;
            json.push('\n');
            json
        }
        SummaryOutput::Text => text(value),
    };
    std::io::stdout()
        .lock()
        .write_all(rendered.as_bytes())
        .map_err(Failure::operational)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_server_is_the_default_listen_address() {
        assert_eq!(
            crate::args::DEFAULT_SERVER,
            format!("http://{}", driftless_api::DEFAULT_LISTEN)
        );
    }
}
