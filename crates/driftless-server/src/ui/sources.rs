//! `/sources`: every GitSource with its revision, last fetch, next poll and error.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use driftless_api::status::{ConditionStatus, GitSourceStatus, Named, READY, find_condition};
use driftless_api::{Config, Time};

use super::html::{Esc, Nav, commit_link, time};
use super::session::{html_response, login_required, reader};
use crate::state::ServerState;

/// `GET /sources`.
pub(crate) async fn show(State(state): State<ServerState>, headers: HeaderMap) -> Response {
    let session = match reader(&state, &headers) {
        Ok(session) => session,
        Err(refusal) => return login_required(&refusal),
    };
    let config = (state.config)();
    let mut rows = String::new();
    let sources = (state.sources)();
    for source in &sources {
        let s = &source.status;
        let declared = config.git_sources().find(|g| g.name() == source.name);
        let next_poll = match (declared, s.last_fetch_time) {
            (Some(g), _) if g.spec.suspend || s.suspended => "suspended".to_owned(),
            (Some(g), Some(at)) => {
                let interval = u64::try_from(g.spec.interval.get().as_millis()).unwrap_or(u64::MAX);
                time(Some(Time::from_unix_ms(
                    at.unix_ms().saturating_add(interval),
                )))
            }
            _ => "&mdash;".to_owned(),
        };
        let ready = match find_condition(&s.conditions, READY).map(|c| c.status) {
            Some(ConditionStatus::True) => r#"<span class="badge h-healthy">Ready</span>"#,
            Some(ConditionStatus::False) => r#"<span class="badge h-degraded">Not ready</span>"#,
            _ if s.last_error.is_some() => r#"<span class="badge h-degraded">Failing</span>"#,
            _ if s.artifact.is_some() => r#"<span class="badge h-healthy">Fetched</span>"#,
            _ => r#"<span class="badge h-unknown">Unknown</span>"#,
        };
        let revision = s.artifact.as_ref().map_or_else(
            || "&mdash;".to_owned(),
            |a| {
                format!(
                    "{} <code>{}</code> {} <span class=\"muted\">{}</span>",
                    commit_link(&a.revision, Some(&s.url)),
                    Esc(&a.revision.ref_label),
                    Esc(&a.subject),
                    Esc(&a.author)
                )
            },
        );
        let error = s.last_error.as_deref().map_or_else(String::new, |e| {
            format!(r#"<span class="error">{}</span>"#, Esc(e))
        });
        rows.push_str(&format!(
            r#"<tr><td class="name">{}</td><td><code>{}</code></td><td>{ready}</td><td>{revision}</td><td>{}</td><td>{next_poll}</td><td>{error}</td></tr>"#,
            Esc(&source.name),
            Esc(&s.url),
            time(s.last_fetch_time),
        ));
    }
    if sources.is_empty() {
        rows.push_str(r#"<tr><td colspan="7">No sources declared.</td></tr>"#);
    }
    let body = format!(
        r#"<h1>Sources</h1>
<div class="table-wrap"><table id="sources"><thead><tr><th scope="col">Name</th><th scope="col">URL</th><th scope="col">State</th><th scope="col">Revision</th><th scope="col">Last fetch</th><th scope="col">Next poll</th><th scope="col">Error</th></tr></thead>
<tbody>{rows}</tbody></table></div>"#
    );
    html_response(
        StatusCode::OK,
        session.page("Sources", Nav::Sources, "", &body),
    )
}

/// The repository URL of GitSource `name`: as its last fetch saw it, else as
/// the config declares it.
pub(crate) fn repository_url(
    sources: &[Named<GitSourceStatus>],
    config: &Config,
    name: &str,
) -> Option<String> {
    sources
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.status.url.clone())
        .filter(|u| !u.is_empty())
        .or_else(|| {
            config
                .git_sources()
                .find(|s| s.name() == name)
                .map(|s| s.spec.url.clone())
        })
}
