//! `SyncWindow`: when the Apps it selects may sync, as Argo CD's sync
//! windows. A window is active from each time its cron `schedule` fires (in
//! its `timeZone`) for `duration`. An active deny window, or being outside
//! every allow window that selects the App, holds automatic syncs and
//! self-heal; a user's sync goes through only where the windows holding it
//! allow manual syncs. Deny wins over allow.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::cron::Schedule;
use crate::duration::Duration;
use crate::meta::{AGE_COLUMN, Kind, Object, PrinterColumn, READY_COLUMN};
use crate::status::Condition;
use crate::time::Time;
use crate::validate::FieldProblem;

/// A `SyncWindow` object.
pub type SyncWindow = Object<SyncWindowSpec>;

/// How far ahead the next opening is searched: a window that never opens
/// within it leaves the App held with no known opening.
const LOOKAHEAD_DAYS: i64 = 400;
/// How many window changes the search for an opening follows.
const OPENING_STEPS: usize = 32;

/// When and to which Apps a window applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncWindowSpec {
    /// `allow`: the selected Apps sync only while one of their allow windows
    /// is active; `deny`: they do not sync while it is.
    pub kind: WindowKind,
    /// Cron schedule (5 fields, or `@daily` and the like) of the window's starts.
    pub schedule: String,
    /// How long the window stays active after each start.
    pub duration: Duration,
    /// IANA time zone the schedule is read in; UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Apps by name; `*` and `?` are wildcards.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<String>,
    /// Apps carrying all of these labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<AppLabels>,
    /// Whether users may sync the selected Apps while the window holds them.
    #[serde(default)]
    pub manual_sync: bool,
}

/// Apps selected by their labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppLabels {
    /// Labels an App must all carry.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

/// Observed state of a SyncWindow custom resource: Ready once accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncWindowStatus {
    /// Ready: accepted, or why not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Whether a window lets syncs run or stops them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WindowKind {
    /// Syncs run only while the window is active.
    Allow,
    /// Syncs do not run while the window is active.
    Deny,
}

impl fmt::Display for WindowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        })
    }
}

/// Why an App may not sync now: the window that holds it and when it may
/// sync again. Shown in the App's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WindowHold {
    /// Name of the window holding the App.
    pub window: String,
    /// Its kind: an active deny window, or an allow window that is closed.
    pub kind: WindowKind,
    /// When the windows next let the App sync; absent when none opens
    /// within a year.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opens: Option<Time>,
}

impl fmt::Display for WindowHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            WindowKind::Deny => write!(f, "held by deny window {}", self.window)?,
            WindowKind::Allow => write!(f, "outside allow window {}", self.window)?,
        }
        match &self.opens {
            Some(t) => write!(f, "; opens at {t}"),
            None => f.write_str("; it does not open within a year"),
        }
    }
}

impl Kind for SyncWindowSpec {
    const KIND: &'static str = "SyncWindow";
    const PLURAL: &'static str = "syncwindows";
    const SHORT_NAMES: &'static [&'static str] = &["dsw"];
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        PrinterColumn {
            name: "Kind",
            type_: "string",
            json_path: ".spec.kind",
        },
        PrinterColumn {
            name: "Schedule",
            type_: "string",
            json_path: ".spec.schedule",
        },
        PrinterColumn {
            name: "Duration",
            type_: "string",
            json_path: ".spec.duration",
        },
        READY_COLUMN,
        AGE_COLUMN,
    ];
    type Status = SyncWindowStatus;

    fn validate(&self, problems: &mut Vec<FieldProblem>) {
        if let Err(e) = self.schedule.parse::<Schedule>() {
            problems.push(FieldProblem::new("spec.schedule", e.to_string()));
        }
        if let Some(zone) = &self.time_zone
            && TimeZone::get(zone).is_err()
        {
            problems.push(FieldProblem::new(
                "spec.timeZone",
                format!("unknown time zone {zone:?} (expected an IANA name such as Europe/Berlin)"),
            ));
        }
        if self.duration.get().is_zero() {
            problems.push(FieldProblem::new(
                "spec.duration",
                "must be greater than zero",
            ));
        }
        let no_labels = self
            .selector
            .as_ref()
            .is_none_or(|s| s.match_labels.is_empty());
        if self.apps.is_empty() && no_labels {
            problems.push(FieldProblem::new(
                "spec.apps",
                "name at least one App (wildcards allowed) or set spec.selector.matchLabels",
            ));
        }
    }
}

/// Whether `window` applies to `app`: by name, or by labels among the Apps
/// of its own namespace (custom resources; config files have none).
pub fn selects(window: &SyncWindow, app: &App) -> bool {
    let spec = &window.spec;
    let by_name = spec.apps.iter().any(|p| glob(p, app.name()));
    let by_labels = spec.selector.as_ref().is_some_and(|s| {
        !s.match_labels.is_empty()
            && window.metadata.namespace == app.metadata.namespace
            && s.match_labels
                .iter()
                .all(|(k, v)| app.metadata.labels.get(k) == Some(v))
    });
    by_name || by_labels
}

impl SyncWindowSpec {
    /// The schedule and zone; `None` for a window validation refused.
    fn clock(&self) -> Option<(Schedule, TimeZone)> {
        let schedule = self.schedule.parse().ok()?;
        let zone = match &self.time_zone {
            Some(name) => TimeZone::get(name).ok()?,
            None => TimeZone::UTC,
        };
        Some((schedule, zone))
    }

    fn duration_secs(&self) -> i64 {
        i64::try_from(self.duration.get().as_secs()).unwrap_or(i64::MAX)
    }

    /// When the window's activity covering `at` ends; `None` when it is
    /// not active at `at`.
    pub fn active_until(&self, at: Timestamp) -> Option<Timestamp> {
        let (schedule, zone) = self.clock()?;
        let now = at.as_second();
        let earliest = now.saturating_sub(self.duration_secs());
        // The newest start covering `at` decides when the window closes.
        let mut start = now.div_euclid(60) * 60;
        while start > earliest {
            let t = Timestamp::from_second(start).ok()?;
            if schedule.fires_at(t.to_zoned(zone.clone()).datetime()) {
                return Timestamp::from_second(start.saturating_add(self.duration_secs())).ok();
            }
            start -= 60;
        }
        None
    }

    /// The window's first start after `at`, within [`LOOKAHEAD_DAYS`].
    pub fn next_start(&self, at: Timestamp) -> Option<Timestamp> {
        let (schedule, zone) = self.clock()?;
        let end = at.as_second().saturating_add(LOOKAHEAD_DAYS * 86_400);
        let mut second = at.as_second().div_euclid(60) * 60 + 60;
        while second < end {
            let zoned = Timestamp::from_second(second).ok()?.to_zoned(zone.clone());
            let civil = zoned.datetime();
            if !schedule.fires_on(civil) {
                // Skip the rest of the day at once.
                let next = zoned.tomorrow().ok()?.start_of_day().ok()?;
                second = next.timestamp().as_second().max(second + 60);
            } else if !schedule.fires_in_hour(civil) {
                second += 3600 - i64::from(civil.minute()) * 60;
            } else if schedule.fires_at(civil) {
                return Some(zoned.timestamp());
            } else {
                second += 60;
            }
        }
        None
    }
}

/// Whether the windows hold `app` at `at`: for a user's sync when `manual`,
/// else for automatic syncs and self-heal. `None` lets it sync.
pub fn hold<'a>(
    windows: impl IntoIterator<Item = &'a SyncWindow>,
    app: &App,
    at: Time,
    manual: bool,
) -> Option<WindowHold> {
    let mine: Vec<&SyncWindow> = windows.into_iter().filter(|w| selects(w, app)).collect();
    let at = timestamp(at);
    let (window, _) = blocker(&mine, at, manual)?;
    Some(WindowHold {
        window: window.name().to_owned(),
        kind: window.spec.kind,
        opens: opening(&mine, at, manual).map(|t| Time::from_unix_ms(ms(t))),
    })
}

/// When the next window selecting `app` opens or closes after `at`: the
/// time to look at the App's windows again.
pub fn next_change<'a>(
    windows: impl IntoIterator<Item = &'a SyncWindow>,
    app: &App,
    at: Time,
) -> Option<Time> {
    let at = timestamp(at);
    windows
        .into_iter()
        .filter(|w| selects(w, app))
        .filter_map(|w| w.spec.active_until(at).or_else(|| w.spec.next_start(at)))
        .min()
        .map(|t| Time::from_unix_ms(ms(t)))
}

/// The window holding an App at `at` and the time to look again, or `None`
/// when nothing holds it.
fn blocker<'a>(
    mine: &[&'a SyncWindow],
    at: Timestamp,
    manual: bool,
) -> Option<(&'a SyncWindow, Option<Timestamp>)> {
    let denying: Vec<(&SyncWindow, Timestamp)> = mine
        .iter()
        .filter(|w| w.spec.kind == WindowKind::Deny)
        .filter_map(|w| Some((*w, w.spec.active_until(at)?)))
        .collect();
    if !denying.is_empty() {
        if manual && denying.iter().all(|(w, _)| w.spec.manual_sync) {
            return None;
        }
        let end = denying.iter().map(|(_, end)| *end).max();
        return Some((denying[0].0, end));
    }
    let allows: Vec<&SyncWindow> = mine
        .iter()
        .copied()
        .filter(|w| w.spec.kind == WindowKind::Allow)
        .collect();
    if allows.is_empty() || allows.iter().any(|w| w.spec.active_until(at).is_some()) {
        return None;
    }
    if manual && allows.iter().any(|w| w.spec.manual_sync) {
        return None;
    }
    let starts = allows
        .iter()
        .filter_map(|w| Some((*w, w.spec.next_start(at)?)));
    match starts.min_by_key(|(_, start)| *start) {
        Some((window, start)) => Some((window, Some(start))),
        None => Some((allows[0], None)),
    }
}

/// When the windows next let the App sync: following each hold to its end
/// until nothing holds it.
fn opening(mine: &[&SyncWindow], at: Timestamp, manual: bool) -> Option<Timestamp> {
    let mut t = at;
    for _ in 0..OPENING_STEPS {
        match blocker(mine, t, manual) {
            None => return Some(t),
            Some((_, next)) => t = next?,
        }
    }
    None
}

fn timestamp(t: Time) -> Timestamp {
    let ms = i64::try_from(t.unix_ms()).unwrap_or(i64::MAX);
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::MAX)
}

fn ms(t: Timestamp) -> u64 {
    u64::try_from(t.as_millisecond()).unwrap_or(0)
}

/// Whether `pattern` (`*` any run of characters, `?` any one) covers all of `text`.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
