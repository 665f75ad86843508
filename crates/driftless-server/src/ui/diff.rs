//! `/apps/{name}/diff`: the App's objects in Git against the cluster, each
//! object's unified diff with Secret values masked, computed when asked.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use driftless_api::inspect::{AppDiff, Change, ObjectChange};

use super::detail::object_anchor;
use super::html::{Esc, Nav, app_href, short_sha};
use super::session::{html_response, login_required, reader};
use crate::api::inspect_status;
use crate::state::ServerState;

/// `GET /apps/{name}/diff`.
pub(crate) async fn show(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let session = match reader(&state, &headers) {
        Ok(session) => session,
        Err(refusal) => return login_required(&refusal),
    };
    let back = format!(
        r#"<p><a href="{}">&larr; App {}</a></p>"#,
        Esc(&app_href(&name)),
        Esc(&name)
    );
    let (status, body) = match state.inspector.diff(&name).await {
        Ok(diff) => (StatusCode::OK, report(&name, &diff)),
        Err(e) => (
            inspect_status(&e),
            format!(
                r#"<h1>Diff of App <span class="name">{}</span></h1><p class="error" role="alert" id="diff-error">Git could not be compared with the cluster: {}</p>"#,
                Esc(&name),
                Esc(&e.to_string())
            ),
        ),
    };
    let title = format!("Diff of {name}");
    html_response(
        status,
        session.page(&title, Nav::Apps, "", &format!("{back}{body}")),
    )
}

fn report(name: &str, d: &AppDiff) -> String {
    let mut out = format!(
        r#"<h1>Diff of App <span class="name">{}</span></h1>
<p id="diff-summary">Git at <code class="sha" title="{sha}">{short}</code> against the cluster, now: {} to create, {} to change, {} to prune, {} unchanged.</p>"#,
        Esc(name),
        d.create,
        d.update,
        d.delete,
        d.unchanged,
        sha = Esc(&d.revision),
        short = Esc(short_sha(&d.revision)),
    );
    if d.objects.is_empty() {
        out.push_str(r#"<p class="notice" id="in-sync">The cluster matches Git.</p>"#);
    }
    for o in &d.objects {
        out.push_str(&object(o));
    }
    out
}

fn object(o: &ObjectChange) -> String {
    let change = match o.change {
        Change::Create => "to create",
        Change::Update => "to change",
        Change::Delete => "to prune",
    };
    let place = if o.namespace.is_empty() {
        String::new()
    } else {
        format!("{}/", o.namespace)
    };
    format!(
        r#"<section class="object-diff" id="{id}"><h2>{kind} {place}{name} <span class="muted">({change})</span></h2><pre class="diff">{lines}</pre></section>"#,
        id = object_anchor(&o.kind, &o.namespace, &o.name),
        kind = Esc(&o.kind),
        place = Esc(&place),
        name = Esc(&o.name),
        lines = lines(&o.diff),
    )
}

/// The diff's lines, additions and removals marked up as such; the `+` and
/// `-` stay in the text, so nothing is carried by colour alone.
fn lines(diff: &str) -> String {
    let mut out = String::new();
    for line in diff.lines() {
        let escaped = Esc(line);
        let marked = if line.starts_with("+++") || line.starts_with("---") {
            format!(r#"<span class="file">{escaped}</span>"#)
        } else if line.starts_with('+') {
            format!("<ins>{escaped}</ins>")
        } else if line.starts_with('-') {
            format!("<del>{escaped}</del>")
        } else if line.starts_with("@@") {
            format!(r#"<span class="hunk">{escaped}</span>"#)
        } else {
            escaped.to_string()
        };
        out.push_str(&marked);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_and_removed_lines_keep_their_sign_and_are_escaped() {
        let html = lines("--- a (live)\n+++ a (desired)\n@@ -1 +1 @@\n-x: <1>\n+x: 2\n y\n");
        assert_eq!(
            html,
            "<span class=\"file\">--- a (live)</span>\n<span class=\"file\">+++ a (desired)</span>\n\
             <span class=\"hunk\">@@ -1 +1 @@</span>\n<del>-x: &lt;1&gt;</del>\n<ins>+x: 2</ins>\n y\n"
        );
    }
}
