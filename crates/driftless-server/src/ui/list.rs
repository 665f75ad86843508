//! `/`: the App list, a page at a time, with the summary whose counts are
//! filters, the filter form, and sorting by name or by last change.
//!
//! Sorted by name it pages like the API (the store's order, a `continue` token);
//! sorted by last change it reads every selected App's status, orders them and
//! shows one page of them.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use driftless_api::list::{AppFilter, AppList, AppSummary};
use driftless_api::status::{AppStatus, HealthStatus, Named, SyncStatus};
use driftless_api::{SourceKind, Time};
use serde::Deserialize;

use super::html::{
    Esc, Nav, app_href, commit_link, health_badge, one_line, query, sync_badge, time,
};
use super::session::{Session, html_response, login_required, reader};
use super::sources::repository_url;
use super::{fragment_requested, internal_error};
use crate::apps::{AppsQuery, select};
use crate::state::ServerState;

/// Apps on one page of the UI's list.
pub(crate) const PAGE: usize = 50;
/// Deepest page reachable when sorted by last change.
const MAX_PAGE: usize = 10_000;

/// Query of the list page; empty values count as absent.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ListQuery {
    q: String,
    health: String,
    sync: String,
    label: String,
    /// `name` (default) or `changed`.
    sort: String,
    #[serde(rename = "continue")]
    continue_: String,
    /// Page number (from 0) when sorted by last change.
    page: String,
}

impl ListQuery {
    fn by_change(&self) -> bool {
        self.sort == "changed"
    }

    /// The parameters that select Apps, with `overrides` set (an empty value removes one).
    fn href(&self, overrides: &[(&str, &str)]) -> String {
        let mut pairs = vec![
            ("q", self.q.as_str()),
            ("health", self.health.as_str()),
            ("sync", self.sync.as_str()),
            ("label", self.label.as_str()),
            ("sort", if self.by_change() { "changed" } else { "" }),
        ];
        for (key, value) in overrides {
            match pairs.iter_mut().find(|(k, _)| k == key) {
                Some(pair) => pair.1 = value,
                None => pairs.push((key, value)),
            }
        }
        format!("/{}", query(&pairs))
    }
}

/// What one row shows beside the status: destination and commit subject.
pub(crate) struct Row {
    app: Named<AppStatus>,
    destination: String,
    subject: String,
    repo_url: Option<String>,
}

/// What the list page shows.
struct Listing {
    list: AppList,
    rows: Vec<Row>,
    overview: AppSummary,
    page: usize,
}

/// `GET /`.
pub(crate) async fn show(
    State(state): State<ServerState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let session = match reader(&state, &headers) {
        Ok(session) => session,
        Err(refusal) => return login_required(&refusal),
    };
    let q = match query {
        Ok(Query(q)) => q,
        Err(rejection) => {
            return render(
                &session,
                &ListQuery::default(),
                Err(rejection.body_text()),
                false,
            );
        }
    };
    let checked = AppsQuery {
        health: Some(q.health.clone()),
        sync: Some(q.sync.clone()),
        label: Some(q.label.clone()),
        q: Some(q.q.clone()),
        limit: Some(PAGE.to_string()),
        continue_: (!q.by_change()).then(|| q.continue_.clone()),
    }
    .check();
    let request = match checked {
        Ok(request) => request,
        Err(bad) => {
            return render(
                &session,
                &q,
                Err(bad.to_string()),
                fragment_requested(&headers),
            );
        }
    };
    let page = q.page.trim().parse::<usize>().unwrap_or(0).min(MAX_PAGE);
    // Read before the statuses, so a change made while rendering is announced.
    let since = super::events::latest(&state.store);
    let by_change = q.by_change();
    let work_state = state.clone();
    let work = move || -> Result<Listing, driftless_engine::store::StoreError> {
        let state = work_state;
        let list = if by_change {
            let mut all = select(&state, &request.filter, None, usize::MAX)?;
            all.items
                .sort_by_key(|app| std::cmp::Reverse(last_change(&app.status)));
            let start = page.saturating_mul(PAGE).min(all.items.len());
            let end = (start + PAGE).min(all.items.len());
            all.remaining = (all.items.len() - end) as u64;
            all.items = all.items.drain(start..end).collect();
            all.continue_ = None;
            all
        } else {
            select(
                &state,
                &request.filter,
                request.after.as_deref(),
                request.limit,
            )?
        };
        // The counts ignore the state filters, so each stays a way to switch to it.
        let broad = AppFilter {
            name: request.filter.name.clone(),
            labels: request.filter.labels.clone(),
            ..AppFilter::default()
        };
        let overview = select(&state, &broad, None, 0)?.summary;
        let rows = rows(&state, &list.items)?;
        Ok(Listing {
            list,
            rows,
            overview,
            page,
        })
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(listing)) => render(
            &session,
            &q,
            Ok((listing, since)),
            fragment_requested(&headers),
        ),
        Ok(Err(e)) => internal_error(&e),
        Err(e) => internal_error(&e),
    }
}

/// When an App last changed in a way users see: a sync, or a condition's transition.
pub(crate) fn last_change(status: &AppStatus) -> Option<Time> {
    status
        .conditions
        .iter()
        .map(|c| c.last_transition_time)
        .chain(status.last_sync_time)
        .max_by_key(|t| t.unix_ms())
}

/// Reads what the rows show beside the statuses.
fn rows(
    state: &ServerState,
    apps: &[Named<AppStatus>],
) -> Result<Vec<Row>, driftless_engine::store::StoreError> {
    let config = (state.config)();
    let sources = (state.sources)();
    let mut rows = Vec::with_capacity(apps.len());
    for app in apps {
        let declared = config.app(&app.name);
        let destination = declared.map_or_else(String::new, |a| a.spec.destination.describe());
        // Commit links and subjects come from a Git repository, which an artifact has not.
        let git = declared.filter(|a| a.spec.source_ref.kind == SourceKind::GitSource);
        let repo_url = git.and_then(|a| repository_url(&sources, &config, &a.spec.source_ref.name));
        let subject = match &app.status.last_applied {
            Some(applied) => {
                let history = state.store.history(&app.name, 5)?;
                let source = git.map(|a| a.spec.source_ref.name.as_str());
                subject_of(&applied.sha, &history, &sources, source)
            }
            None => String::new(),
        };
        rows.push(Row {
            app: app.clone(),
            destination,
            subject,
            repo_url,
        });
    }
    Ok(rows)
}

/// The subject of commit `sha`: from the App's history, or from its source when
/// that fetched it (an unchanged render of a new commit records no sync).
pub(crate) fn subject_of(
    sha: &str,
    history: &[driftless_api::history::SyncRecord],
    sources: &[Named<driftless_api::status::GitSourceStatus>],
    source: Option<&str>,
) -> String {
    history
        .iter()
        .find(|r| r.start.revision.sha == sha)
        .map(|r| r.start.subject.clone())
        .or_else(|| {
            sources
                .iter()
                .filter(|s| Some(s.name.as_str()) == source)
                .filter_map(|s| s.status.artifact.as_ref())
                .find(|a| a.revision.sha == sha)
                .map(|a| a.subject.clone())
        })
        .unwrap_or_default()
}

/// The page, or only its live region when the script asks for it.
fn render(
    session: &Session,
    q: &ListQuery,
    listing: Result<(Listing, u64), String>,
    fragment: bool,
) -> Response {
    let status = if listing.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let since = listing.as_ref().map_or(0, |(_, since)| *since);
    let live = match &listing {
        Ok((listing, _)) => live_region(q, listing),
        Err(message) => format!(
            r#"<p class="error" role="alert">The filter is not valid: {}</p>"#,
            Esc(message)
        ),
    };
    if fragment {
        return html_response(status, live);
    }
    let body = format!(
        "<h1>Apps</h1>\n{}\n<div id=\"live\">{live}</div>\n\
         <p class=\"live-note\" id=\"updated\" aria-live=\"polite\">Live: changes appear without reloading.</p>",
        filter_form(q)
    );
    html_response(
        status,
        session.page("Apps", Nav::Apps, &super::events::url("", since), &body),
    )
}

fn options<T: Copy>(all: &[T], word: fn(T) -> &'static str, chosen: &str) -> String {
    let mut out = String::from(r#"<option value="">Any</option>"#);
    for item in all {
        let w = word(*item);
        let selected = if w.eq_ignore_ascii_case(chosen) {
            " selected"
        } else {
            ""
        };
        out.push_str(&format!(r#"<option value="{w}"{selected}>{w}</option>"#));
    }
    out
}

fn filter_form(q: &ListQuery) -> String {
    let by_change = q.by_change();
    format!(
        r#"<form id="filters" class="filters" method="get" action="/" role="search" aria-label="Filter Apps">
<div><label for="q">Name contains</label><input id="q" name="q" type="search" value="{q}" autocomplete="off"></div>
<div><label for="health">Health</label><select id="health" name="health">{health}</select></div>
<div><label for="sync">Sync</label><select id="sync" name="sync">{sync}</select></div>
<div><label for="label">Labels</label><input id="label" name="label" value="{label}" placeholder="env=prod,team"></div>
<div><label for="sort">Sort by</label><select id="sort" name="sort"><option value="name"{by_name}>Name</option><option value="changed"{by_changed}>Last change</option></select></div>
<div><button type="submit">Apply</button> <a href="/">Clear</a></div>
</form>"#,
        q = Esc(&q.q),
        health = options(&HealthStatus::ALL, HealthStatus::as_str, &q.health),
        sync = options(&SyncStatus::ALL, SyncStatus::as_str, &q.sync),
        label = Esc(&q.label),
        by_name = if by_change { "" } else { " selected" },
        by_changed = if by_change { " selected" } else { "" },
    )
}

/// The summary, the table and the pager: what live updates replace.
fn live_region(q: &ListQuery, listing: &Listing) -> String {
    let o = &listing.overview;
    let chip = |key: &str, word: &str, count: u64| {
        let current = if (key == "health" && q.health.eq_ignore_ascii_case(word))
            || (key == "sync" && q.sync.eq_ignore_ascii_case(word))
        {
            r#" aria-current="true""#
        } else {
            ""
        };
        let href = if key == "health" {
            q.href(&[
                ("health", word),
                ("sync", ""),
                ("continue", ""),
                ("page", ""),
            ])
        } else {
            q.href(&[
                ("sync", word),
                ("health", ""),
                ("continue", ""),
                ("page", ""),
            ])
        };
        format!(
            r#"<li><a href="{}"{current}><strong>{count}</strong>{word}</a></li>"#,
            Esc(&href)
        )
    };
    let mut out = format!(
        r#"<ul class="summary" aria-label="Summary: select a count to filter by it"><li><span><strong>{}</strong>Apps</span></li>{}{}{}{}{}</ul>"#,
        o.total,
        chip("health", "Healthy", o.healthy(HealthStatus::Healthy)),
        chip(
            "health",
            "Progressing",
            o.healthy(HealthStatus::Progressing)
        ),
        chip("health", "Degraded", o.healthy(HealthStatus::Degraded)),
        chip("sync", "OutOfSync", o.synced(SyncStatus::OutOfSync)),
        chip("health", "Suspended", o.healthy(HealthStatus::Suspended)),
    );
    let list = &listing.list;
    out.push_str(&format!(
        r#"<p class="muted">{} of {} selected Apps on this page{}.</p>"#,
        list.items.len(),
        list.summary.total,
        if list.remaining > 0 {
            format!(", {} after it", list.remaining)
        } else {
            String::new()
        }
    ));
    out.push_str(
        r#"<div class="table-wrap"><table id="apps"><caption class="muted">Apps</caption><thead><tr>
<th scope="col">Name</th><th scope="col">Destination</th><th scope="col">Sync</th><th scope="col">Health</th>
<th scope="col">Revision</th><th scope="col" class="hide-narrow">Last sync</th><th scope="col">Last error</th></tr></thead><tbody>"#,
    );
    if listing.rows.is_empty() {
        out.push_str(r#"<tr><td colspan="7">No Apps match.</td></tr>"#);
    }
    for row in &listing.rows {
        out.push_str(&row_html(row));
    }
    out.push_str("</tbody></table></div>");
    out.push_str(&pager(q, listing));
    out
}

/// The App's last error or, when there is none, why its worst object is unhealthy.
fn problem(s: &AppStatus) -> Option<String> {
    if let Some(error) = &s.last_error {
        return Some(error.clone());
    }
    if !matches!(s.health, HealthStatus::Degraded | HealthStatus::Missing) {
        return None;
    }
    s.resources
        .iter()
        .filter(|r| r.health == s.health)
        .find_map(|r| {
            let message = r.message.as_deref()?;
            Some(format!("{}/{}: {message}", r.kind, r.name))
        })
}

fn row_html(row: &Row) -> String {
    let s = &row.app.status;
    let mut flags = String::new();
    if s.suspended {
        flags.push_str(r#" <span class="badge suspended">Suspended</span>"#);
    }
    if let Some(pinned) = &s.pinned {
        flags.push_str(&format!(
            r#" <span class="badge pinned">Pinned {}</span>"#,
            Esc(super::html::short_sha(&pinned.sha))
        ));
    }
    if let Some(held) = &s.held {
        flags.push_str(&format!(
            r#" <span class="badge held">Held by {}</span>"#,
            Esc(&held.window)
        ));
    }
    if s.pending.is_some() {
        flags.push_str(r#" <span class="badge pending">Manual sync pending</span>"#);
    }
    let revision = match &s.last_applied {
        Some(r) => format!(
            "{} {}",
            commit_link(r, row.repo_url.as_deref()),
            one_line(&row.subject)
        ),
        None => "&mdash;".to_owned(),
    };
    let error = problem(s).map_or_else(String::new, |e| {
        format!(r#"<span class="error">{}</span>"#, one_line(&e))
    });
    format!(
        r#"<tr data-app="{name}"><td class="name"><a href="{href}">{name}</a>{flags}</td><td>{dest}</td><td>{sync}</td><td>{health}</td><td>{revision}</td><td class="hide-narrow">{synced}</td><td>{error}</td></tr>"#,
        name = Esc(&row.app.name),
        href = Esc(&app_href(&row.app.name)),
        dest = Esc(&row.destination),
        sync = sync_badge(s.sync),
        health = health_badge(s.health),
        synced = time(s.last_sync_time),
    )
}

fn pager(q: &ListQuery, listing: &Listing) -> String {
    let mut links = Vec::new();
    if q.by_change() {
        if listing.page > 0 {
            let previous = (listing.page - 1).to_string();
            links.push(format!(
                r#"<a href="{}" rel="prev">Previous page</a>"#,
                Esc(&q.href(&[("page", &previous)]))
            ));
        }
        if listing.list.remaining > 0 {
            let next = (listing.page + 1).to_string();
            links.push(format!(
                r#"<a href="{}" rel="next">Next page</a>"#,
                Esc(&q.href(&[("page", &next)]))
            ));
        }
    } else {
        if !q.continue_.is_empty() {
            links.push(format!(r#"<a href="{}">First page</a>"#, Esc(&q.href(&[]))));
        }
        if let Some(token) = &listing.list.continue_ {
            links.push(format!(
                r#"<a href="{}" rel="next">Next page</a>"#,
                Esc(&q.href(&[("continue", token)]))
            ));
        }
    }
    if links.is_empty() {
        String::new()
    } else {
        format!(
            r#"<nav class="pager" aria-label="Pages">{}</nav>"#,
            links.join(" ")
        )
    }
}

#[cfg(test)]
mod tests {
    use driftless_api::status::{Condition, ConditionStatus};

    use super::*;

    #[test]
    fn links_keep_the_filters_and_replace_what_they_change() {
        let q = ListQuery {
            q: "web".into(),
            health: "Degraded".into(),
            sort: "changed".into(),
            ..ListQuery::default()
        };
        assert_eq!(q.href(&[]), "/?q=web&health=Degraded&sort=changed");
        assert_eq!(
            q.href(&[("health", ""), ("sync", "OutOfSync")]),
            "/?q=web&sync=OutOfSync&sort=changed"
        );
        assert_eq!(
            q.href(&[("page", "2")]),
            "/?q=web&health=Degraded&sort=changed&page=2"
        );
    }

    #[test]
    fn last_change_is_the_newest_sync_or_transition() {
        let mut status = AppStatus {
            last_sync_time: Some(Time::from_unix_ms(2_000)),
            ..AppStatus::default()
        };
        assert_eq!(last_change(&status), Some(Time::from_unix_ms(2_000)));
        let mut ready = Condition::new("Ready", ConditionStatus::False, "Failed", "x");
        ready.last_transition_time = Time::from_unix_ms(5_000);
        status.conditions.push(ready);
        assert_eq!(last_change(&status), Some(Time::from_unix_ms(5_000)));
        assert_eq!(last_change(&AppStatus::default()), None);
    }

    #[test]
    fn a_degraded_app_without_an_error_says_which_object_fails() {
        let mut status = AppStatus {
            health: HealthStatus::Degraded,
            resources: vec![
                driftless_api::status::ResourceStatus {
                    kind: "ConfigMap".into(),
                    name: "fine".into(),
                    health: HealthStatus::Healthy,
                    ..Default::default()
                },
                driftless_api::status::ResourceStatus {
                    kind: "Deployment".into(),
                    name: "web".into(),
                    health: HealthStatus::Degraded,
                    message: Some("timed out progressing".into()),
                    ..Default::default()
                },
            ],
            ..AppStatus::default()
        };
        assert_eq!(
            problem(&status).as_deref(),
            Some("Deployment/web: timed out progressing")
        );
        status.last_error = Some("render failed: a.yaml:3".into());
        assert_eq!(problem(&status).as_deref(), Some("render failed: a.yaml:3"));
        assert_eq!(problem(&AppStatus::default()), None);
    }

    #[test]
    fn a_commit_without_a_sync_takes_its_subject_from_the_source() {
        use driftless_api::history::Revision;
        use driftless_api::status::{Artifact, GitSourceStatus};
        let fetched = GitSourceStatus {
            artifact: Some(Artifact {
                revision: Revision {
                    ref_label: "main".into(),
                    sha: "abc".into(),
                    chart: None,
                },
                author: String::new(),
                subject: "Raise the limit".into(),
            }),
            ..GitSourceStatus::default()
        };
        let sources = [Named::new("platform", fetched)];
        assert_eq!(
            subject_of("abc", &[], &sources, Some("platform")),
            "Raise the limit"
        );
        assert_eq!(subject_of("abc", &[], &sources, Some("other")), "");
        assert_eq!(subject_of("def", &[], &sources, Some("platform")), "");
    }

    #[test]
    fn rows_escape_what_users_wrote() {
        let row = Row {
            app: Named::new(
                "<b>web</b>",
                AppStatus {
                    last_error: Some("bad <img src=x onerror=alert(1)>".into()),
                    suspended: true,
                    ..AppStatus::default()
                },
            ),
            destination: "default/<ns>".into(),
            subject: String::new(),
            repo_url: None,
        };
        let html = row_html(&row);
        assert!(!html.contains("<b>") && !html.contains("<img"), "{html}");
        assert!(html.contains("&lt;b&gt;web&lt;/b&gt;") && html.contains(">Suspended<"));
        assert!(html.contains("/apps/%3Cb%3Eweb%3C%2Fb%3E"), "{html}");
    }
}
