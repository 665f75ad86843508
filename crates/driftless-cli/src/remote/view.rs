//! Text views of App statuses and sync records: tables, detail, history lines.

use std::fmt::Write as _;

use driftless_api::UnixMillis;
use driftless_api::history::{AuditEvent, Operation, Revision, SyncRecord};
use driftless_api::inspect::{AppDiff, Change};
use driftless_api::list::AppSummary;
use driftless_api::status::{
    AppStatus, ClusterStatus, HealthStatus, Named, NotifierStatus, READY, SyncStatus,
    find_condition,
};

/// Length of a short commit SHA, as `git log --oneline` prints it.
const SHORT_SHA: usize = 7;
/// Longest error text in the status table; the detail view shows all of it.
const TABLE_ERROR: usize = 60;

/// Columns padded to their widest cell, separated by two spaces.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first row is `header` (none for a list of fields).
    pub fn new(header: &[&str]) -> Self {
        Self {
            rows: vec![header.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    /// Appends a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table with `indent` before every line; the last column is not padded.
    pub fn render(&self, indent: &str) -> String {
        self.render_within(indent, &mut Vec::new())
    }

    /// As [`Table::render`], each column at least as wide as `widths` says, which
    /// grows to this table's widest cells: a table printed in parts stays aligned
    /// unless a later part holds a wider cell.
    pub fn render_within(&self, indent: &str, widths: &mut Vec<usize>) -> String {
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                let width = cell.chars().count();
                match widths.get_mut(i) {
                    Some(w) => *w = (*w).max(width),
                    None => widths.push(width),
                }
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            let mut line = indent.to_owned();
            for (cell, width) in row.iter().zip(widths.iter()) {
                let _ = write!(line, "{cell:<width$}  ");
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// The first seven characters of a SHA (or of an artifact digest's hex).
pub fn short_sha(sha: &str) -> &str {
    driftless_api::history::short_id(sha, SHORT_SHA)
}

/// `ref@short-sha`, or `-` when there is none.
pub fn revision(rev: Option<&Revision>) -> String {
    rev.map_or_else(
        || "-".to_owned(),
        |r| format!("{}@{}", r.ref_label, short_sha(&r.sha)),
    )
}

/// UTC time in RFC 3339 to the second, e.g. `2024-05-01T12:00:00Z`.
pub fn utc(ms: UnixMillis) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(
            || format!("{ms}ms"),
            |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
}

/// How long ago `then` was, in the largest whole unit: `42s`, `5m`, `3h`, `2d`.
pub fn age(then: UnixMillis, now: UnixMillis) -> String {
    let secs = now.saturating_sub(then) / 1000;
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

/// The first line of `text`, cut to `max` characters with an ellipsis.
pub fn shorten(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() <= max && !text.contains('\n') {
        return line.to_owned();
    }
    let cut: String = line.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// What holds the App away from Git, loudly: `SUSPENDED`, `PINNED`, the sync
/// window holding it, `MANUAL` with a sync waiting for a user, or empty.
fn hold(app: &AppStatus) -> String {
    let mut marks = Vec::new();
    if app.suspended {
        marks.push("SUSPENDED".to_owned());
    }
    if let Some(pin) = &app.pinned {
        marks.push(format!("PINNED@{}", short_sha(&pin.sha)));
    }
    if let Some(held) = &app.held {
        marks.push(format!("WINDOW:{}", held.window));
    }
    if app.pending.is_some() {
        marks.push("MANUAL".to_owned());
    }
    marks.join(",")
}

/// The line above the App table: how many Apps the list selects, then how many
/// per sync status and per health (those with none left out).
pub fn app_summary(summary: &AppSummary, filtered: bool) -> String {
    let n = summary.total;
    if n == 0 {
        return if filtered {
            "no apps match\n"
        } else {
            "no apps\n"
        }
        .to_owned();
    }
    let counts = |counts: Vec<(u64, &str)>| {
        let shown: Vec<String> = counts
            .into_iter()
            .filter(|(count, _)| *count > 0)
            .map(|(count, word)| format!("{count} {word}"))
            .collect();
        shown.join(", ")
    };
    let sync = counts(
        SyncStatus::ALL
            .iter()
            .map(|s| (summary.synced(*s), s.as_str()))
            .collect(),
    );
    let health = counts(
        HealthStatus::ALL
            .iter()
            .map(|h| (summary.healthy(*h), h.as_str()))
            .collect(),
    );
    let apps = match (n, filtered) {
        (1, false) => "App",
        (1, true) => "App matches",
        (_, false) => "Apps",
        (_, true) => "Apps match",
    };
    format!("{n} {apps}: {sync}; {health}\n")
}

/// The status table of the App list, a page at a time: the header with the first
/// page, columns aligned across pages, and a warning per held App after the last.
#[derive(Debug)]
pub struct AppTable {
    now: UnixMillis,
    widths: Vec<usize>,
    headed: bool,
    warnings: Vec<String>,
}

impl AppTable {
    /// A table whose ages count to `now`.
    pub fn new(now: UnixMillis) -> Self {
        Self {
            now,
            widths: Vec::new(),
            headed: false,
            warnings: Vec::new(),
        }
    }

    /// The rows of `apps`, after the header when they are the first.
    pub fn page(&mut self, apps: &[Named<AppStatus>]) -> String {
        let mut table = if self.headed {
            Table::default()
        } else {
            self.headed = true;
            Table::new(&[
                "NAME",
                "SYNC",
                "HEALTH",
                "REVISION",
                "HOLD",
                "LAST SYNC",
                "ERROR",
            ])
        };
        for named in apps {
            let Named { name, status: app } = named;
            table.row(vec![
                name.clone(),
                app.sync.to_string(),
                app.health.to_string(),
                revision(app.last_applied.as_ref()),
                hold(app),
                app.last_sync_time
                    .map_or_else(|| "never".to_owned(), |t| age(t.unix_ms(), self.now)),
                app.last_error
                    .as_deref()
                    .map_or_else(String::new, |e| shorten(e, TABLE_ERROR)),
            ]);
            self.warnings.extend(warnings(named));
        }
        table.render_within("", &mut self.widths)
    }

    /// The warnings of every held App listed, one per line.
    pub fn warnings(self) -> String {
        self.warnings.iter().map(|w| format!("{w}\n")).collect()
    }
}

/// The table of declared Clusters: whether each answered and its version;
/// empty when there are none.
pub fn cluster_table(clusters: &[Named<ClusterStatus>]) -> String {
    if clusters.is_empty() {
        return String::new();
    }
    let mut table = Table::new(&["CLUSTER", "READY", "VERSION", "MESSAGE"]);
    for Named { name, status } in clusters {
        let ready = find_condition(&status.conditions, READY);
        table.row(vec![
            name.clone(),
            ready.map_or_else(|| "Unknown".to_owned(), |c| c.status.to_string()),
            status.server_version.clone().unwrap_or_default(),
            ready.map_or_else(String::new, |c| shorten(&c.message, TABLE_ERROR)),
        ]);
    }
    table.render("")
}

/// The table of Notifiers: deliveries and the last error; empty when there
/// are none.
pub fn notifier_table(notifiers: &[Named<NotifierStatus>]) -> String {
    if notifiers.is_empty() {
        return String::new();
    }
    let mut table = Table::new(&[
        "NOTIFIER",
        "READY",
        "DELIVERED",
        "FAILED",
        "DROPPED",
        "LAST ERROR",
    ]);
    for Named { name, status } in notifiers {
        let ready = find_condition(&status.conditions, READY);
        table.row(vec![
            name.clone(),
            ready.map_or_else(|| "Unknown".to_owned(), |c| c.status.to_string()),
            status.delivered.to_string(),
            status.failed.to_string(),
            status.dropped.to_string(),
            shorten(
                status.last_error.as_deref().unwrap_or_default(),
                TABLE_ERROR,
            ),
        ]);
    }
    table.render("")
}

/// Loud lines for an App that does not follow Git.
pub fn warnings(named: &Named<AppStatus>) -> Vec<String> {
    let Named { name, status: app } = named;
    let mut lines = Vec::new();
    if let Some(pin) = &app.pinned {
        lines.push(format!(
            "!! app {} is PINNED at {}@{} by a rollback: it is out of sync with Git until `driftless resume {}`",
            name, pin.ref_label, pin.sha, name
        ));
    }
    if app.suspended {
        lines.push(format!(
            "!! app {name} is SUSPENDED: no syncs and no self-heal until `driftless resume {name}`"
        ));
    }
    if let Some(held) = &app.held {
        lines.push(format!(
            "!! app {name} is {held}: automatic syncs and self-heal wait \
             (`driftless sync {name} --override-window` goes through)"
        ));
    }
    if let Some(pending) = &app.pending {
        lines.push(format!(
            "!! app {name} syncs manually; `driftless sync {name}` would apply {}: {pending}",
            short_sha(&pending.revision)
        ));
    }
    lines
}

/// Everything about one App: fields, conditions, resources.
pub fn app_detail(named: &Named<AppStatus>, now: UnixMillis) -> String {
    let app = &named.status;
    let full = |r: Option<&Revision>| {
        r.map_or_else(|| "-".to_owned(), |r| format!("{}@{}", r.ref_label, r.sha))
    };
    let mut fields = Table::default();
    fields.row(vec!["Name:".into(), named.name.clone()]);
    fields.row(vec!["Sync:".into(), app.sync.to_string()]);
    fields.row(vec!["Health:".into(), app.health.to_string()]);
    fields.row(vec!["Applied:".into(), full(app.last_applied.as_ref())]);
    fields.row(vec!["Attempted:".into(), full(app.last_attempted.as_ref())]);
    fields.row(vec!["Pinned:".into(), full(app.pinned.as_ref())]);
    fields.row(vec!["Suspended:".into(), yes_no(app.suspended).into()]);
    let last_sync = app.last_sync_time.map_or_else(
        || "never".to_owned(),
        |t| format!("{} ({} ago)", utc(t.unix_ms()), age(t.unix_ms(), now)),
    );
    fields.row(vec!["Last sync:".into(), last_sync]);
    let error = app.last_error.clone().unwrap_or_else(|| "-".to_owned());
    fields.row(vec!["Last error:".into(), error]);
    let mut out = fields.render("");
    out.push_str(&conditions(app));
    out.push_str(&resources(app));
    for warning in warnings(named) {
        let _ = writeln!(out, "{warning}");
    }
    out
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn conditions(app: &AppStatus) -> String {
    if app.conditions.is_empty() {
        return "Conditions: none\n".to_owned();
    }
    let mut table = Table::new(&["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"]);
    for c in &app.conditions {
        table.row(vec![
            c.type_.clone(),
            c.status.to_string(),
            c.reason.clone(),
            utc(c.last_transition_time.unix_ms()),
            c.message.clone(),
        ]);
    }
    format!("Conditions:\n{}", table.render("  "))
}

fn resources(app: &AppStatus) -> String {
    if app.resources.is_empty() {
        return "Resources: none\n".to_owned();
    }
    let mut table = Table::new(&["KIND", "NAMESPACE", "NAME", "HEALTH"]);
    for r in &app.resources {
        let namespace = if r.namespace.is_empty() {
            "-"
        } else {
            &r.namespace
        };
        table.row(vec![
            r.kind.clone(),
            namespace.to_owned(),
            r.name.clone(),
            r.health.to_string(),
        ]);
    }
    format!("Resources:\n{}", table.render("  "))
}

/// One line per sync, newest first, columns aligned; a CHART column
/// (`name@version`) when a sync rendered a chart from a HelmRepository.
pub fn history_lines(records: &[SyncRecord]) -> String {
    let charts = records.iter().any(|r| r.start.revision.chart.is_some());
    let mut headers = vec![
        "TIME", "SHA", "AUTHOR", "SUBJECT", "TRIGGER", "RESULT", "CHANGES", "ERROR",
    ];
    if charts {
        headers.insert(2, "CHART");
    }
    let mut table = Table::new(&headers);
    for r in records {
        let mut cells = history_cells(r);
        if charts {
            let chart = r.start.revision.chart.as_ref();
            cells.insert(
                2,
                chart.map_or_else(|| "-".to_owned(), |c| format!("{}@{}", c.name, c.version)),
            );
        }
        table.row(cells);
    }
    let mut text = table.render("");
    for r in records.iter().filter(|r| !r.hosts.is_empty()) {
        text.push_str(&host_lines(r));
    }
    for r in records.iter().filter(|r| !r.start.remotes.is_empty()) {
        let _ = write!(
            text,
            "\nRemote resources of {} ({}):\n",
            short_sha(&r.start.revision.sha),
            utc(r.start_time.unix_ms())
        );
        for remote in &r.start.remotes {
            let _ = writeln!(text, "  {} at {}", remote.url, remote.revision);
        }
    }
    text
}

/// The hosts of one rollout of an App for hosts, under its history.
fn host_lines(r: &SyncRecord) -> String {
    let mut table = Table::new(&[
        "HOST", "RESULT", "HEALTH", "PREVIOUS", "SENT", "TIME", "MESSAGE",
    ]);
    for h in &r.hosts {
        table.row(vec![
            h.host.clone(),
            h.result.as_str().to_owned(),
            h.health.to_string(),
            h.previous.as_deref().map_or("-", short_sha).to_owned(),
            h.files_sent.to_string(),
            h.total.to_string(),
            h.message
                .as_deref()
                .map_or_else(String::new, |m| shorten(m, 120)),
        ]);
    }
    format!(
        "\nHosts of {} ({}):\n{}",
        short_sha(&r.start.revision.sha),
        utc(r.start_time.unix_ms()),
        table.render("  ")
    )
}

/// What a sync of an App would change: each object's diff, then the counts.
pub fn app_diff(diff: &AppDiff) -> String {
    let mut out = String::new();
    for o in &diff.objects {
        let change = match o.change {
            Change::Create => "create",
            Change::Update => "update",
            Change::Delete => "prune",
        };
        let at = if o.namespace.is_empty() {
            o.name.clone()
        } else {
            format!("{}/{}", o.namespace, o.name)
        };
        let _ = writeln!(out, "=== {change} {} {at}", o.kind);
        out.push_str(&o.diff);
        if !o.diff.is_empty() && !o.diff.ends_with('\n') {
            out.push('\n');
        }
    }
    let _ = writeln!(
        out,
        "{}: {} to create, {} to update, {} to prune, {} unchanged",
        short_sha(&diff.revision),
        diff.create,
        diff.update,
        diff.delete,
        diff.unchanged
    );
    out
}

/// One line per drift event, newest first, columns aligned.
pub fn drift_lines(events: &[AuditEvent]) -> String {
    let mut table = Table::new(&["TIME", "OBJECT", "FIELDS", "CHANGED BY", "ACTION"]);
    for e in events {
        table.row(vec![
            utc(e.time.unix_ms()),
            e.object.clone(),
            shorten(&e.fields.join(", "), 120),
            e.manager.clone().unwrap_or_else(|| "-".to_owned()),
            format!("{:?}", e.action).to_lowercase(),
        ]);
    }
    table.render("")
}

/// The audit log of operations as a table, newest first.
pub fn operation_lines(operations: &[Operation]) -> String {
    let mut table = Table::new(&["TIME", "OPERATION", "BY", "RESULT"]);
    for o in operations {
        let what = match (&o.revision, &o.target) {
            (Some(rev), _) => format!("{} to {}", o.operation.as_str(), short_sha(&rev.sha)),
            (None, Some(target)) => format!("{} to {target}", o.operation.as_str()),
            (None, None) => o.operation.as_str().to_owned(),
        };
        let what = if o.override_window {
            format!("{what} (overriding sync windows)")
        } else {
            what
        };
        let result = o.error.as_deref().map_or_else(
            || "done".to_owned(),
            |e| format!("refused: {}", shorten(e, 120)),
        );
        table.row(vec![utc(o.time.unix_ms()), what, o.by.clone(), result]);
    }
    table.render("")
}

/// The history line of one finished sync, without a header.
pub fn sync_result(record: &SyncRecord) -> String {
    let mut table = Table::default();
    table.row(history_cells(record));
    table.render("")
}

fn history_cells(r: &SyncRecord) -> Vec<String> {
    let c = r.counts;
    vec![
        utc(r.start_time.unix_ms()),
        short_sha(&r.start.revision.sha).to_owned(),
        r.start.author.clone(),
        r.start.subject.clone(),
        format!("{:?}", r.start.trigger).to_lowercase(),
        format!("{:?}", r.result),
        format!("+{} ~{} -{}", c.created, c.updated, c.deleted),
        r.error
            .as_deref()
            .map_or_else(String::new, |e| shorten(e, 200)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_shows_the_chart_version_a_sync_rendered() {
        let record = |sha: &str, chart: serde_json::Value| -> SyncRecord {
            serde_json::from_value(serde_json::json!({
                "id": 1, "app": "web",
                "revision": {"refLabel": "main", "sha": sha, "chart": chart},
                "author": "Ada <ada@example.com>", "subject": "values",
                "trigger": "interval", "startTime": "2026-12-01T10:00:00Z",
                "result": "Succeeded",
                "counts": {"created": 0, "updated": 1, "deleted": 0, "unchanged": 0}
            }))
            .expect("record")
        };
        let chart = serde_json::json!({"repository": "charts", "name": "web",
            "version": "1.2.0", "digest": "sha256:00"});
        let text = history_lines(&[
            record("4f2a9c1e0000000000000000000000000000abcd", chart),
            record(
                "4f2a9c1e0000000000000000000000000000abcd",
                serde_json::Value::Null,
            ),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("CHART"), "{text}");
        assert!(lines[1].contains("web@1.2.0"), "{text}");
        assert!(lines[2].contains(" - "), "{text}");
    }

    #[test]
    fn history_lists_the_remote_resources_a_sync_read() {
        let record: SyncRecord = serde_json::from_value(serde_json::json!({
            "id": 7, "app": "web",
            "revision": {"refLabel": "main", "sha": "4f2a9c1e0000000000000000000000000000abcd"},
            "author": "Ada <ada@example.com>", "subject": "use the shared base",
            "trigger": "webhook", "startTime": "2026-12-06T10:00:00Z",
            "result": "Succeeded",
            "counts": {"created": 1, "updated": 0, "deleted": 0, "unchanged": 0},
            "remotes": [{"url": "https://git.example.com/platform//base?ref=v1",
                         "revision": "0123456789abcdef0123456789abcdef01234567"}]
        }))
        .expect("a sync record");
        let text = history_lines(&[record]);
        assert!(
            text.contains(
                "Remote resources of 4f2a9c1 (2026-12-06T10:00:00Z):\n  https://git.example.com/platform//base?ref=v1 at 0123456789abcdef0123456789abcdef01234567\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn times_are_rfc3339_utc_seconds() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_714_564_800_999), "2024-05-01T12:00:00Z");
    }

    #[test]
    fn ages_use_the_largest_whole_unit() {
        let now = 10_000_000_000;
        assert_eq!(age(now - 42_000, now), "42s");
        assert_eq!(age(now - 300_000, now), "5m");
        assert_eq!(age(now - 3 * 3_600_000, now), "3h");
        assert_eq!(age(now - 2 * 86_400_000, now), "2d");
        // A clock skewed into the future is not a negative age.
        assert_eq!(age(now + 5_000, now), "0s");
    }

    #[test]
    fn errors_are_cut_to_their_first_line() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("abcdefghijkl", 6), "abcde…");
        assert_eq!(shorten("line one\nline two", 60), "line one…");
    }

    #[test]
    fn notifiers_show_their_deliveries_and_last_error() {
        use driftless_api::status::{Condition, ConditionStatus};
        assert_eq!(notifier_table(&[]), "");
        let status = NotifierStatus {
            conditions: vec![Condition::new(
                READY,
                ConditionStatus::False,
                "DeliveryFailed",
                "",
            )],
            delivered: 7,
            failed: 1,
            last_error: Some("POST to https://hooks.example.com: HTTP 500".into()),
            ..NotifierStatus::default()
        };
        let table = notifier_table(&[Named::new("team-chat", status)]);
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("NOTIFIER   READY  DELIVERED  FAILED  DROPPED  LAST ERROR"),
            "{table}"
        );
        assert!(lines[1].starts_with("team-chat  False  7          1       0        POST to https://hooks.example.com: HTTP 500"), "{table}");
    }

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&["A", "LONG"]);
        t.row(vec!["wide cell".into(), "x".into()]);
        assert_eq!(t.render(""), "A          LONG\nwide cell  x\n");
    }

    #[test]
    fn tables_printed_in_parts_keep_their_widths() {
        let mut widths = Vec::new();
        let mut first = Table::new(&["NAME", "SYNC"]);
        first.row(vec!["a-long-name".into(), "Synced".into()]);
        first.render_within("", &mut widths);
        let mut second = Table::default();
        second.row(vec!["b".into(), "OutOfSync".into()]);
        assert_eq!(
            second.render_within("", &mut widths),
            "b            OutOfSync\n"
        );
    }

    #[test]
    fn summaries_leave_out_empty_counts() {
        let mut summary = AppSummary::default();
        assert_eq!(app_summary(&summary, false), "no apps\n");
        assert_eq!(app_summary(&summary, true), "no apps match\n");
        summary.add(SyncStatus::Synced, HealthStatus::Healthy);
        assert_eq!(app_summary(&summary, false), "1 App: 1 Synced; 1 Healthy\n");
        assert_eq!(
            app_summary(&summary, true),
            "1 App matches: 1 Synced; 1 Healthy\n"
        );
        for _ in 0..9 {
            summary.add(SyncStatus::OutOfSync, HealthStatus::Degraded);
        }
        assert_eq!(
            app_summary(&summary, false),
            "10 Apps: 1 Synced, 9 OutOfSync; 1 Healthy, 9 Degraded\n"
        );
    }
}
