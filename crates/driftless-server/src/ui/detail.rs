//! `/apps/{name}`: one App's conditions, objects, errors, sync history, drift
//! log and operations, with the actions the signed-in token's role allows.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use driftless_api::history::{AuditEvent, Operation, OperationKind, SyncRecord, SyncResult};
use driftless_api::inspect::{OwnedObject, OwnedTree};
use driftless_api::status::{AppStatus, SyncStatus};
use serde::Deserialize;

use super::html::{
    Esc, Nav, app_href, badge, commit_link, health_badge, short_sha, sync_badge, time,
};
use super::session::{Session, html_response, login_required, reader};
use super::sources::repository_url;
use super::{fragment_requested, internal_error};
use crate::api::role;
use crate::state::ServerState;

/// Sync history entries shown.
const HISTORY: usize = 50;
/// Drift log entries and operations shown.
const LOG: usize = 50;
/// How long the page waits for the cluster to list the owned objects.
const TREE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Query of the App page: which action just ran.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DetailQuery {
    done: String,
}

/// Everything the page shows about one App.
struct Detail {
    name: String,
    /// Subject of the live commit.
    subject: String,
    status: AppStatus,
    history: Vec<SyncRecord>,
    drift: Vec<AuditEvent>,
    operations: Vec<Operation>,
    source: String,
    path: String,
    destination: String,
    /// Deployed to hosts: there is no cluster to compare with.
    for_hosts: bool,
    repo_url: Option<String>,
}

/// `GET /apps/{name}`.
pub(crate) async fn show(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Response {
    let session = match reader(&state, &headers) {
        Ok(session) => session,
        Err(refusal) => return login_required(&refusal),
    };
    // Read before the status, so a change made while rendering is announced.
    let since = super::events::latest(&state.store);
    let work_state = state.clone();
    let owned = owned_objects(&state, &name);
    let work_name = name.clone();
    let work = move || read(&work_state, work_name);
    let (detail, owned) = tokio::join!(tokio::task::spawn_blocking(work), owned);
    let detail = match detail {
        Ok(Ok(Ok(detail))) => detail,
        Ok(Ok(Err(name))) => return not_found(&session, &name),
        Ok(Err(e)) => return internal_error(&e),
        Err(e) => return internal_error(&e),
    };
    let live = live_region(&session, &detail, &owned);
    if fragment_requested(&headers) {
        return html_response(StatusCode::OK, live);
    }
    let done = match q.done.as_str() {
        "sync" => "Sync requested: it runs in the background and shows up below.",
        "suspend" => "Suspended: the App is not reconciled until resumed.",
        "resume" => "Resumed: the App follows its source again.",
        "rollback" => "Rollback requested: the App is pinned to the chosen revision.",
        _ => "",
    };
    let notice = if done.is_empty() {
        String::new()
    } else {
        format!(r#"<p class="notice" role="status">{done}</p>"#)
    };
    let body = format!(
        r#"<p><a href="/">&larr; All Apps</a></p>
<h1>App <span class="name">{name}</span></h1>
{notice}
<div id="live">{live}</div>
<p class="live-note" id="updated" aria-live="polite">Live: changes appear without reloading.</p>"#,
        name = Esc(&detail.name),
    );
    let events = super::events::url(&detail.name, since);
    html_response(
        StatusCode::OK,
        session.page(&detail.name, Nav::Apps, &events, &body),
    )
}

fn not_found(session: &Session, name: &str) -> Response {
    let body = format!(
        r#"<h1>No such App</h1><p class="error" role="alert">There is no App called <strong>{}</strong>.</p><p><a href="/">All Apps</a></p>"#,
        Esc(name)
    );
    html_response(
        StatusCode::NOT_FOUND,
        session.page("No such App", Nav::Apps, "", &body),
    )
}

/// The objects the cluster created for the App's objects, or why they are
/// not shown; a slow cluster does not hold the page longer than [`TREE_WAIT`].
async fn owned_objects(state: &ServerState, name: &str) -> Result<OwnedTree, String> {
    match tokio::time::timeout(TREE_WAIT, state.inspector.owned_objects(name)).await {
        Ok(Ok(tree)) => Ok(tree),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "the cluster did not answer within {} s",
            TREE_WAIT.as_secs()
        )),
    }
}

/// Reads the App from the store and the config; `Ok(Err(name))` when there is no such App.
fn read(
    state: &ServerState,
    name: String,
) -> Result<Result<Detail, String>, driftless_engine::store::StoreError> {
    let Some(status) = state.store.app(&name)? else {
        return Ok(Err(name));
    };
    let history = state.store.history(&name, HISTORY)?;
    let drift = state.store.audit(Some(&name), LOG)?;
    let operations = state.store.operations(&name, LOG)?;
    let config = (state.config)();
    let declared = config.app(&name);
    // Commit links and subjects come from a Git repository, which an artifact has not.
    let git = declared.filter(|a| a.spec.source_ref.kind == driftless_api::SourceKind::GitSource);
    let source = git.map_or_else(String::new, |a| a.spec.source_ref.name.clone());
    let sources = (state.sources)();
    let repo_url = repository_url(&sources, &config, &source);
    let (path, destination) = declared.map_or_else(Default::default, |a| {
        (a.spec.path.clone(), a.spec.destination.describe())
    });
    let for_hosts = declared.is_some_and(|a| a.spec.destination.hosts.is_some());
    let subject = status.last_applied.as_ref().map_or_else(String::new, |r| {
        super::list::subject_of(&r.sha, &history, &sources, Some(&source))
    });
    Ok(Ok(Detail {
        subject,
        name,
        status,
        history,
        drift,
        operations,
        source,
        path,
        destination,
        for_hosts,
        repo_url,
    }))
}

/// The parts of the page that live updates replace.
fn live_region(session: &Session, d: &Detail, owned: &Result<OwnedTree, String>) -> String {
    let mut out = String::new();
    out.push_str(&facts(d));
    out.push_str(&actions(session, d));
    if let Some(error) = &d.status.last_error {
        out.push_str(&format!(
            r#"<h2 id="errors">Source and render errors</h2><pre class="error" role="alert">{}</pre>"#,
            Esc(error)
        ));
    }
    out.push_str(&conditions(&d.status));
    out.push_str(&objects(&d.name, &d.status, owned, !d.for_hosts));
    out.push_str(&history(session, d));
    out.push_str(&drift(&d.drift));
    out.push_str(&operations(&d.operations));
    out
}

fn facts(d: &Detail) -> String {
    let s = &d.status;
    let mut states = format!("{} {}", sync_badge(s.sync), health_badge(s.health));
    if s.suspended {
        states.push_str(&badge("suspended", "Suspended"));
    }
    if let Some(pinned) = &s.pinned {
        states.push_str(&badge(
            "pinned",
            &format!("Pinned to {}", short_sha(&pinned.sha)),
        ));
    }
    if let Some(held) = &s.held {
        // The window's name and when it opens, in the badge's words.
        states.push_str(&badge("held", &format!("Held: {held}")));
    }
    if let Some(pending) = &s.pending {
        states.push_str(&badge("pending", &format!("Manual sync: {pending}")));
    }
    let applied = s.last_applied.as_ref().map_or_else(
        || "&mdash;".to_owned(),
        |r| {
            // A chart from a HelmRepository is part of the revision.
            let chart = r.chart.as_ref().map_or_else(String::new, |c| {
                format!(
                    " &middot; chart <code>{}@{}</code> from {}",
                    Esc(&c.name),
                    Esc(&c.version),
                    Esc(&c.repository)
                )
            });
            format!(
                "{} {}{chart}",
                commit_link(r, d.repo_url.as_deref()),
                Esc(&d.subject)
            )
        },
    );
    format!(
        r#"<dl class="facts" id="facts"><dt>Status</dt><dd>{states}</dd>
<dt>Revision</dt><dd>{applied}</dd>
<dt>Source</dt><dd>{source} <code>{path}</code></dd>
<dt>Destination</dt><dd>{dest}</dd>
<dt>Last sync</dt><dd>{synced}</dd></dl>"#,
        source = Esc(&d.source),
        path = Esc(if d.path.is_empty() { "/" } else { &d.path }),
        dest = Esc(&d.destination),
        synced = time(s.last_sync_time),
    )
}

/// A form posting `action` for the App, with the session's form token.
fn action_form(
    d: &Detail,
    csrf: &str,
    action: OperationKind,
    to: Option<&str>,
    label: &str,
) -> String {
    let to_field = to.map_or_else(String::new, |sha| {
        format!(r#"<input type="hidden" name="to" value="{}">"#, Esc(sha))
    });
    let class = if matches!(action, OperationKind::Suspend | OperationKind::Rollback) {
        " class=\"danger\""
    } else {
        ""
    };
    format!(
        r#"<form method="post" action="{href}/{action}"><input type="hidden" name="csrf" value="{csrf}">{to_field}<button type="submit"{class}>{label}</button></form>"#,
        href = Esc(&app_href(&d.name)),
        action = action.as_str(),
        csrf = Esc(csrf),
        label = Esc(label),
    )
}

fn actions(session: &Session, d: &Detail) -> String {
    let Some(csrf) = session.csrf.as_deref() else {
        return r#"<p class="notice" id="readonly">Read-only: sign in with an API token to sync, suspend, resume or roll back this App.</p>"#.to_owned();
    };
    let mut buttons = Vec::new();
    if !d.status.suspended && session.may(role(OperationKind::Sync)) {
        buttons.push(action_form(d, csrf, OperationKind::Sync, None, "Sync now"));
    }
    if d.status.suspended || d.status.pinned.is_some() {
        if session.may(role(OperationKind::Resume)) {
            buttons.push(action_form(d, csrf, OperationKind::Resume, None, "Resume"));
        }
    } else if session.may(role(OperationKind::Suspend)) {
        buttons.push(action_form(
            d,
            csrf,
            OperationKind::Suspend,
            None,
            "Suspend",
        ));
    }
    if buttons.is_empty() {
        return r#"<p class="notice">Your token's role allows no action on this App.</p>"#
            .to_owned();
    }
    format!(
        r#"<div class="actions" role="group" aria-label="Actions">{}</div>"#,
        buttons.join("")
    )
}

fn conditions(s: &AppStatus) -> String {
    let rows = s.conditions.iter().map(|c| {
        vec![
            Esc(&c.type_).to_string(),
            Esc(c.status.as_str()).to_string(),
            Esc(&c.reason).to_string(),
            Esc(&c.message).to_string(),
            time(Some(c.last_transition_time)),
        ]
    });
    let columns = ["Type", "Status", "Reason", "Message", "Since"];
    table(
        "Conditions",
        "conditions",
        &columns,
        "None reported yet.",
        rows,
    )
}

/// The objects table; `diff` adds the link to the comparison with the
/// cluster (an App for hosts has none).
fn objects(app: &str, s: &AppStatus, owned: &Result<OwnedTree, String>, diff: bool) -> String {
    let diff_href = format!("{}/diff", app_href(app));
    let empty = OwnedTree::default();
    let tree = owned.as_ref().unwrap_or(&empty);
    let mut rows = Vec::new();
    for r in &s.resources {
        let sync = if r.sync == SyncStatus::OutOfSync {
            format!(
                r#"{} <a href="{}#{}">diff</a>"#,
                sync_badge(r.sync),
                Esc(&diff_href),
                object_anchor(&r.kind, &r.namespace, &r.name)
            )
        } else {
            sync_badge(r.sync)
        };
        rows.push(vec![
            Esc(&r.kind).to_string(),
            Esc(&r.namespace).to_string(),
            Esc(&r.name).to_string(),
            sync,
            health_badge(r.health),
            Esc(r.message.as_deref().unwrap_or_default()).to_string(),
        ]);
        let owner = format!("{}/{}", r.kind, r.name);
        rows.extend(owned_beneath(tree, &r.namespace, &owner).map(|o| {
            vec![
                format!(
                    r#"<span class="owned d{}"><span aria-hidden="true">&#x2514; </span>{}<span class="visually-hidden"> owned by {}</span></span>"#,
                    o.depth,
                    Esc(&o.kind),
                    Esc(&o.owner)
                ),
                Esc(&o.namespace).to_string(),
                Esc(&o.name).to_string(),
                r#"<span class="muted">owned</span>"#.to_owned(),
                health_badge(o.health),
                Esc(&o.message).to_string(),
            ]
        }));
    }
    let columns = ["Kind", "Namespace", "Name", "Sync", "Health", "Message"];
    let mut out = table(
        "Objects",
        "objects",
        &columns,
        "No objects recorded yet.",
        rows.into_iter(),
    );
    let note = match owned {
        Err(why) => format!(
            "Objects the cluster created for these are not shown: {}.",
            Esc(why)
        ),
        Ok(tree) if tree.truncated => format!(
            "Only the first {} objects the cluster created for these are shown.",
            tree.objects.len()
        ),
        Ok(_) => String::new(),
    };
    if !note.is_empty() {
        out.push_str(&format!(r#"<p class="muted" id="owned-note">{note}</p>"#));
    }
    if diff {
        out.push_str(&format!(
            r#"<p><a href="{}" id="diff-link">Compare Git with the cluster</a>: what a sync would change, Secret values masked.</p>"#,
            Esc(&diff_href)
        ));
    }
    out
}

/// The owned objects under the App object `owner` (`Kind/name`) in
/// `namespace`: its children and, right after each, their own descendants.
fn owned_beneath<'a>(
    tree: &'a OwnedTree,
    namespace: &'a str,
    owner: &'a str,
) -> impl Iterator<Item = &'a OwnedObject> {
    let mut inside = false;
    tree.objects.iter().filter(move |o| {
        if o.depth == 1 {
            inside = o.owner == owner && o.namespace == namespace;
        }
        inside
    })
}

/// The id of an object's section on the diff page.
pub(crate) fn object_anchor(kind: &str, namespace: &str, name: &str) -> String {
    let raw = format!("obj-{kind}-{namespace}-{name}").to_ascii_lowercase();
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A section: heading `title`, then table `id` with `columns` and a row of
/// ready-made cells per item of `rows`, or `empty` across it when there is none.
fn table(
    title: &str,
    id: &str,
    columns: &[&str],
    empty: &str,
    rows: impl Iterator<Item = Vec<String>>,
) -> String {
    let mut out =
        format!(r#"<h2>{title}</h2><div class="table-wrap"><table id="{id}"><thead><tr>"#);
    for column in columns {
        out.push_str(&format!(r#"<th scope="col">{column}</th>"#));
    }
    out.push_str("</tr></thead><tbody>");
    let mut any = false;
    for row in rows {
        any = true;
        out.push_str("<tr>");
        for cell in row {
            out.push_str(&format!("<td>{cell}</td>"));
        }
        out.push_str("</tr>");
    }
    if !any {
        out.push_str(&format!(
            r#"<tr><td colspan="{}">{empty}</td></tr>"#,
            columns.len()
        ));
    }
    out.push_str("</tbody></table></div>");
    out
}

fn result_badge(result: SyncResult) -> String {
    let word = match result {
        SyncResult::Running => "Running",
        SyncResult::Succeeded => "Succeeded",
        SyncResult::Failed => "Failed",
        SyncResult::Interrupted => "Interrupted",
    };
    badge(&format!("r-{word}"), word)
}

fn duration(record: &SyncRecord) -> String {
    match record.finish_time {
        Some(end) => {
            let ms = end.unix_ms().saturating_sub(record.start_time.unix_ms());
            format!("{}.{:01} s", ms / 1000, (ms % 1000) / 100)
        }
        None => "&mdash;".to_owned(),
    }
}

fn history(session: &Session, d: &Detail) -> String {
    let rollback = session
        .csrf
        .as_deref()
        .filter(|_| session.may(role(OperationKind::Rollback)));
    let live = d.status.last_applied.as_ref().map(|r| r.sha.as_str());
    let mut out = String::from(
        r#"<h2>History</h2><div class="table-wrap"><table id="history"><thead><tr><th scope="col">Started</th><th scope="col">Commit</th><th scope="col">Author</th><th scope="col">Subject</th><th scope="col">Trigger</th><th scope="col">Result</th><th scope="col">Duration</th><th scope="col">Changes</th>"#,
    );
    if rollback.is_some() {
        out.push_str(r#"<th scope="col">Roll back</th>"#);
    }
    out.push_str("</tr></thead><tbody>");
    if d.history.is_empty() {
        out.push_str(r#"<tr><td colspan="9">No syncs yet.</td></tr>"#);
    }
    for h in &d.history {
        let c = h.counts;
        let changes = format!(
            "{} created, {} updated, {} deleted, {} unchanged",
            c.created, c.updated, c.deleted, c.unchanged
        );
        let error = h.error.as_deref().map_or_else(String::new, |e| {
            format!(r#"<div class="error">{}</div>"#, Esc(e))
        });
        let trigger = serde_json::to_value(h.start.trigger)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{error}</td><td>{}</td><td>{}</td>",
            time(Some(h.start_time)),
            commit_link(&h.start.revision, d.repo_url.as_deref()),
            Esc(&h.start.author),
            Esc(&h.start.subject),
            Esc(&trigger),
            result_badge(h.result),
            duration(h),
            changes,
        ));
        if let Some(csrf) = rollback {
            let cell = if h.result == SyncResult::Succeeded
                && live != Some(h.start.revision.sha.as_str())
            {
                action_form(
                    d,
                    csrf,
                    OperationKind::Rollback,
                    Some(&h.start.revision.sha),
                    &format!("Roll back to {}", short_sha(&h.start.revision.sha)),
                )
            } else {
                String::new()
            };
            out.push_str(&format!("<td>{cell}</td>"));
        }
        out.push_str("</tr>");
        if !h.hosts.is_empty() {
            let span = if rollback.is_some() { 9 } else { 8 };
            out.push_str(&format!(
                r#"<tr class="host-rows"><td colspan="{span}">{}</td></tr>"#,
                host_rollouts(h)
            ));
        }
    }
    out.push_str("</tbody></table></div>");
    out
}

/// Each host's part of one rollout of an App for hosts.
fn host_rollouts(record: &SyncRecord) -> String {
    let mut out = format!(
        r#"<table class="hosts"><caption>Hosts of {}</caption><thead><tr><th scope="col">Host</th><th scope="col">Result</th><th scope="col">Health</th><th scope="col">Previous</th><th scope="col">Files sent</th><th scope="col">Time</th><th scope="col">Message</th></tr></thead><tbody>"#,
        Esc(short_sha(&record.start.revision.sha))
    );
    for h in &record.hosts {
        let rolled_back = if h.rolled_back { " (rolled back)" } else { "" };
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}{rolled_back}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            Esc(&h.host),
            Esc(h.result.as_str()),
            Esc(&h.health.to_string()),
            Esc(h.previous.as_deref().map_or("-", short_sha)),
            h.files_sent,
            Esc(&h.total.to_string()),
            Esc(h.message.as_deref().unwrap_or("")),
        ));
    }
    out.push_str("</tbody></table>");
    out
}

fn drift(events: &[AuditEvent]) -> String {
    let rows = events.iter().map(|e| {
        let action = serde_json::to_value(e.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        vec![
            time(Some(e.time)),
            Esc(&e.object).to_string(),
            Esc(&e.fields.join(", ")).to_string(),
            Esc(e.manager.as_deref().unwrap_or("unknown")).to_string(),
            Esc(&action).to_string(),
        ]
    });
    let columns = ["Time", "Object", "Fields", "Field manager", "Action"];
    table("Drift log", "drift", &columns, "No drift seen.", rows)
}

fn operations(ops: &[Operation]) -> String {
    let rows = ops.iter().map(|o| {
        vec![
            time(Some(o.time)),
            Esc(o.operation.as_str()).to_string(),
            Esc(&o.by).to_string(),
            Esc(o.target.as_deref().unwrap_or_default()).to_string(),
            Esc(o.error.as_deref().unwrap_or("done")).to_string(),
        ]
    });
    let columns = ["Time", "Operation", "By", "Target", "Outcome"];
    table(
        "Operations",
        "operations",
        &columns,
        "No operations asked.",
        rows,
    )
}

#[cfg(test)]
mod tests {
    use driftless_api::history::{ObjectCounts, Revision, SyncStart, SyncTrigger};
    use driftless_api::status::{HealthStatus, ResourceStatus, SyncStatus};

    use driftless_api::Role;

    use super::*;
    use crate::auth::Caller;

    fn detail() -> Detail {
        let revision = |sha: &str| Revision {
            ref_label: "main".into(),
            sha: sha.into(),
            chart: None,
        };
        let record = |id, sha: &str, result| SyncRecord {
            id,
            app: "web".into(),
            start: SyncStart {
                revision: revision(sha),
                author: "Ada <ada@example.com>".into(),
                subject: "<i>scale</i>".into(),
                trigger: SyncTrigger::Webhook,
                remotes: Vec::new(),
            },
            start_time: driftless_api::Time::from_unix_ms(1_000),
            finish_time: Some(driftless_api::Time::from_unix_ms(3_500)),
            result,
            counts: ObjectCounts {
                created: 1,
                ..ObjectCounts::default()
            },
            error: None,
            adopted: Vec::new(),
            hosts: Vec::new(),
            hooks: Vec::new(),
        };
        Detail {
            name: "web".into(),
            subject: "<i>scale</i>".into(),
            status: AppStatus {
                last_applied: Some(revision("bbbb2222")),
                health: HealthStatus::Degraded,
                resources: vec![ResourceStatus {
                    api_version: "apps/v1".into(),
                    kind: "Deployment".into(),
                    namespace: "web".into(),
                    name: "web".into(),
                    sync: SyncStatus::Synced,
                    health: HealthStatus::Degraded,
                    message: Some("0/2 replicas <ready>".into()),
                }],
                ..AppStatus::default()
            },
            history: vec![
                record(2, "bbbb2222", SyncResult::Succeeded),
                record(1, "aaaa1111", SyncResult::Succeeded),
            ],
            drift: Vec::new(),
            operations: Vec::new(),
            source: "platform".into(),
            path: "apps/web".into(),
            destination: "default/web".into(),
            for_hosts: false,
            repo_url: Some("https://github.com/acme/platform.git".into()),
        }
    }

    fn session(role: Option<Role>) -> Session {
        match role {
            Some(role) => Session {
                caller: Caller::Token {
                    name: "ci".into(),
                    role,
                },
                csrf: Some("form-token".into()),
            },
            None => Session {
                caller: Caller::Anonymous,
                csrf: None,
            },
        }
    }

    #[test]
    fn the_revision_names_a_chart_from_a_repository() {
        let mut d = detail();
        if let Some(r) = d.status.last_applied.as_mut() {
            r.chart = Some(driftless_api::history::ChartRevision {
                repository: "charts".into(),
                name: "web".into(),
                version: "1.2.0".into(),
                digest: "sha256:00".into(),
            });
        }
        let html = facts(&d);
        assert!(
            html.contains("chart <code>web@1.2.0</code> from charts"),
            "{html}"
        );
        assert!(!facts(&detail()).contains("chart <code>"));
    }

    #[test]
    fn anonymous_viewers_get_no_forms() {
        let html = live_region(&session(None), &detail(), &Ok(OwnedTree::default()));
        assert!(
            !html.contains("<form") && html.contains("Read-only"),
            "{html}"
        );
    }

    #[test]
    fn each_role_is_offered_what_it_may_do() {
        let operate = live_region(
            &session(Some(Role::Operate)),
            &detail(),
            &Ok(OwnedTree::default()),
        );
        assert!(operate.contains("/apps/web/sync") && !operate.contains("/apps/web/suspend"));
        assert!(!operate.contains("/apps/web/rollback"));
        let admin = live_region(
            &session(Some(Role::Admin)),
            &detail(),
            &Ok(OwnedTree::default()),
        );
        assert!(admin.contains("/apps/web/suspend"));
        // Only the earlier revision is a rollback target, not the live one.
        assert!(admin.contains(r#"name="to" value="aaaa1111""#), "{admin}");
        assert!(!admin.contains(r#"name="to" value="bbbb2222""#));
        assert!(admin.contains(r#"name="csrf" value="form-token""#));
    }

    #[test]
    fn history_links_commits_and_escapes_subjects() {
        let html = live_region(&session(None), &detail(), &Ok(OwnedTree::default()));
        assert!(html.contains("https://github.com/acme/platform/commit/bbbb2222"));
        assert!(html.contains("&lt;i&gt;scale&lt;/i&gt;") && !html.contains("<i>"));
        assert!(html.contains("2.5 s") && html.contains("1 created"));
        assert!(html.contains("0/2 replicas &lt;ready&gt;") && html.contains(">Degraded<"));
    }

    #[test]
    fn a_rollout_to_hosts_lists_each_host_under_its_history_entry() {
        let mut d = detail();
        let host = |name: &str, result, message: Option<&str>| driftless_api::HostRollout {
            host: name.into(),
            revision: "bbbb2222".into(),
            result,
            health: if result == driftless_api::HostResult::Succeeded {
                HealthStatus::Healthy
            } else {
                HealthStatus::Degraded
            },
            rolled_back: result == driftless_api::HostResult::RolledBack,
            previous: Some("aaaa1111".into()),
            files_sent: 3,
            upload: "120ms".parse().expect("a duration"),
            total: "1s250ms".parse().expect("a duration"),
            message: message.map(str::to_owned),
        };
        d.history[0].hosts = vec![
            host("web-1", driftless_api::HostResult::Succeeded, None),
            host(
                "web-2",
                driftless_api::HostResult::RolledBack,
                Some("health check: <503>"),
            ),
        ];
        let html = live_region(&session(None), &d, &Ok(OwnedTree::default()));
        let hosts = html
            .split("<caption>Hosts of bbbb2222</caption>")
            .nth(1)
            .expect("the hosts of the newest rollout");
        assert!(hosts.contains("<td>web-1</td><td>Succeeded</td><td>Healthy</td>"));
        assert!(hosts.contains("<td>web-2</td><td>RolledBack (rolled back)</td><td>Degraded</td>"));
        assert!(hosts.contains("health check: &lt;503&gt;") && hosts.contains("1s250ms"));
        assert_eq!(html.matches("<caption>Hosts of").count(), 1, "{html}");
    }

    fn owned(kind: &str, name: &str, owner: &str, depth: usize) -> OwnedObject {
        OwnedObject {
            kind: kind.into(),
            namespace: "web".into(),
            name: name.into(),
            owner: owner.into(),
            depth,
            health: HealthStatus::Progressing,
            message: "waiting for <image>".into(),
        }
    }

    #[test]
    fn owned_objects_sit_beneath_their_owner_and_drifted_objects_link_their_diff() {
        let mut d = detail();
        d.status.resources[0].sync = SyncStatus::OutOfSync;
        d.status.resources.push(ResourceStatus {
            api_version: "v1".into(),
            kind: "Service".into(),
            namespace: "web".into(),
            name: "web".into(),
            ..ResourceStatus::default()
        });
        let tree = OwnedTree {
            objects: vec![
                owned("ReplicaSet", "web-7c", "Deployment/web", 1),
                owned("Pod", "web-7c-a", "ReplicaSet/web-7c", 2),
            ],
            truncated: false,
        };
        let html = objects(&d.name, &d.status, &Ok(tree), true);
        let (deployment, pod, service) = (
            html.find(">Deployment<").expect("deployment row"),
            html.find(">web-7c-a<").expect("pod row"),
            html.find(">Service<").expect("service row"),
        );
        assert!(deployment < pod && pod < service, "{html}");
        assert!(
            html.contains("owned by ReplicaSet/web-7c") && html.contains(r#"class="owned d2""#)
        );
        assert!(html.contains("waiting for &lt;image&gt;"));
        assert!(
            html.contains(r#"href="/apps/web/diff#obj-deployment-web-web""#),
            "{html}"
        );
        let failed = objects(&d.name, &d.status, &Err("forbidden <pods>".into()), true);
        assert!(
            failed.contains("are not shown: forbidden &lt;pods&gt;"),
            "{failed}"
        );
    }
}
