//! Window evaluation at fixed instants.

use super::*;
use crate::app::{AppSpec, SourceRef};
use crate::meta::Object;

fn window(name: &str, kind: WindowKind, schedule: &str, duration: &str, zone: &str) -> SyncWindow {
    Object::new(
        name,
        SyncWindowSpec {
            kind,
            schedule: schedule.to_owned(),
            duration: duration.parse().expect("duration"),
            time_zone: (!zone.is_empty()).then(|| zone.to_owned()),
            apps: vec!["web-*".to_owned()],
            selector: None,
            manual_sync: false,
        },
    )
}

fn app(name: &str) -> App {
    let spec: AppSpec = serde_json::from_value(serde_json::json!({
        "sourceRef": SourceRef { kind: Default::default(), name: "src".to_owned() },
    }))
    .expect("spec");
    Object::new(name, spec)
}

fn at(text: &str) -> Time {
    text.parse().expect("RFC 3339")
}

#[test]
fn a_deny_window_is_active_for_its_duration_in_its_time_zone() {
    // 22:00 in Berlin is 21:00 UTC in winter.
    let freeze = window(
        "freeze",
        WindowKind::Deny,
        "0 22 * * *",
        "1h",
        "Europe/Berlin",
    );
    let web = app("web-prod");
    let windows = [freeze];
    assert_eq!(
        hold(&windows, &web, at("2026-12-07T20:59:59Z"), false),
        None
    );
    let held = hold(&windows, &web, at("2026-12-07T21:00:00Z"), false).expect("held");
    assert_eq!(held.window, "freeze");
    assert_eq!(held.kind, WindowKind::Deny);
    assert_eq!(held.opens, Some(at("2026-12-07T22:00:00Z")));
    assert!(hold(&windows, &web, at("2026-12-07T21:59:59Z"), false).is_some());
    assert_eq!(
        hold(&windows, &web, at("2026-12-07T22:00:00Z"), false),
        None
    );
    // In summer Berlin is UTC+2.
    assert!(hold(&windows, &web, at("2026-07-01T20:30:00Z"), false).is_some());
    assert_eq!(
        hold(&windows, &web, at("2026-07-01T21:30:00Z"), false),
        None
    );
}

#[test]
fn windows_select_apps_by_glob_and_labels() {
    let mut freeze = window("freeze", WindowKind::Deny, "* * * * *", "1h", "");
    let noon = at("2026-12-07T12:00:00Z");
    assert!(hold([&freeze], &app("web-prod"), noon, false).is_some());
    assert_eq!(hold([&freeze], &app("api-prod"), noon, false), None);
    freeze.spec.apps.clear();
    freeze.spec.selector = Some(AppLabels {
        match_labels: [("tier".to_owned(), "db".to_owned())].into(),
    });
    let mut db = app("orders");
    db.metadata
        .labels
        .insert("tier".to_owned(), "db".to_owned());
    assert!(hold([&freeze], &db, noon, false).is_some());
    assert_eq!(hold([&freeze], &app("web-prod"), noon, false), None);
}

#[test]
fn outside_every_allow_window_an_app_waits_for_the_next_one() {
    // Weekdays 09:00-17:00 in New York.
    let office = window(
        "office",
        WindowKind::Allow,
        "0 9 * * 1-5",
        "8h",
        "America/New_York",
    );
    let web = app("web-prod");
    let windows = [office];
    // Monday 2026-12-07 15:00 New York (UTC-5).
    assert_eq!(
        hold(&windows, &web, at("2026-12-07T20:00:00Z"), false),
        None
    );
    let held = hold(&windows, &web, at("2026-12-07T23:00:00Z"), false).expect("after hours");
    assert_eq!(held.kind, WindowKind::Allow);
    assert_eq!(held.opens, Some(at("2026-12-08T14:00:00Z")));
    // Saturday night waits for Monday.
    let held = hold(&windows, &web, at("2026-12-12T23:00:00Z"), false).expect("weekend");
    assert_eq!(held.opens, Some(at("2026-12-14T14:00:00Z")));
    // An App no window selects syncs at any time.
    assert_eq!(
        hold(&windows, &app("api"), at("2026-12-12T23:00:00Z"), false),
        None
    );
}

#[test]
fn deny_wins_over_an_active_allow_and_the_opening_follows_both() {
    let allow = window("daytime", WindowKind::Allow, "0 8 * * *", "10h", "");
    let deny = window("lunch", WindowKind::Deny, "0 12 * * *", "1h", "");
    let web = app("web-prod");
    let windows = [allow, deny];
    let held = hold(&windows, &web, at("2026-12-07T12:30:00Z"), false).expect("lunch");
    assert_eq!(held.window, "lunch");
    assert_eq!(held.opens, Some(at("2026-12-07T13:00:00Z")));
    assert_eq!(
        hold(&windows, &web, at("2026-12-07T13:00:00Z"), false),
        None
    );
    // After the allow window closes, the next opening is tomorrow at 08:00.
    let held = hold(&windows, &web, at("2026-12-07T19:00:00Z"), false).expect("night");
    assert_eq!(held.window, "daytime");
    assert_eq!(held.opens, Some(at("2026-12-08T08:00:00Z")));
}

#[test]
fn a_deny_ending_outside_every_allow_window_opens_with_the_next_allow() {
    let allow = window("morning", WindowKind::Allow, "0 8 * * *", "2h", "");
    let deny = window("late", WindowKind::Deny, "30 9 * * *", "2h", "");
    let held = hold(
        [&allow, &deny],
        &app("web-a"),
        at("2026-12-07T09:45:00Z"),
        false,
    )
    .expect("denied");
    assert_eq!(held.window, "late");
    assert_eq!(held.opens, Some(at("2026-12-08T08:00:00Z")));
}

#[test]
fn manual_syncs_pass_only_where_the_holding_windows_allow_them() {
    let mut deny = window("freeze", WindowKind::Deny, "0 0 * * *", "24h", "");
    let noon = at("2026-12-07T12:00:00Z");
    let web = app("web-prod");
    assert!(hold([&deny], &web, noon, true).is_some());
    deny.spec.manual_sync = true;
    assert_eq!(hold([&deny], &web, noon, true), None);
    assert!(
        hold([&deny], &web, noon, false).is_some(),
        "still no automatic sync"
    );
    // Another active deny window without manualSync still holds manual syncs.
    let other = window("audit", WindowKind::Deny, "0 11 * * *", "2h", "");
    assert!(hold([&deny, &other], &web, noon, true).is_some());
    let mut allow = window("night", WindowKind::Allow, "0 1 * * *", "1h", "");
    assert!(hold([&allow], &web, noon, true).is_some());
    allow.spec.manual_sync = true;
    assert_eq!(hold([&allow], &web, noon, true), None);
}

#[test]
fn daylight_saving_changes_move_windows_with_the_wall_clock() {
    // Europe/Berlin springs forward on 2026-03-29 at 02:00 to 03:00.
    let nightly = window(
        "nightly",
        WindowKind::Deny,
        "30 2 * * *",
        "1h",
        "Europe/Berlin",
    );
    let web = app("web-prod");
    // 02:30 does not exist that day: the window does not start.
    assert_eq!(
        hold([&nightly], &web, at("2026-03-29T01:00:00Z"), false),
        None
    );
    // The day before, 02:30 CET is 01:30 UTC; the day after, 02:30 CEST is 00:30 UTC.
    assert!(hold([&nightly], &web, at("2026-03-28T01:45:00Z"), false).is_some());
    assert!(hold([&nightly], &web, at("2026-03-30T00:45:00Z"), false).is_some());
    let held = hold([&nightly], &web, at("2026-03-30T00:45:00Z"), false).expect("held");
    assert_eq!(held.opens, Some(at("2026-03-30T01:30:00Z")));
    // Falling back on 2026-10-25, 02:30 happens twice: the window starts at each.
    let held = hold([&nightly], &web, at("2026-10-25T01:45:00Z"), false).expect("second 02:30");
    assert_eq!(held.opens, Some(at("2026-10-25T02:30:00Z")));
    // An allow window after the gap opens at the first 02:30 that exists.
    let allow = window(
        "nightly",
        WindowKind::Allow,
        "30 2 * * *",
        "1h",
        "Europe/Berlin",
    );
    let held = hold([&allow], &web, at("2026-03-28T12:00:00Z"), false).expect("closed");
    assert_eq!(held.opens, Some(at("2026-03-30T00:30:00Z")));
}

#[test]
fn the_next_change_is_the_nearest_start_or_end() {
    let lunch = window("lunch", WindowKind::Deny, "0 12 * * *", "1h", "");
    let web = app("web-prod");
    let next = |t| next_change([&lunch], &web, at(t));
    assert_eq!(
        next("2026-12-07T11:00:00Z"),
        Some(at("2026-12-07T12:00:00Z"))
    );
    assert_eq!(
        next("2026-12-07T12:10:00Z"),
        Some(at("2026-12-07T13:00:00Z"))
    );
    assert_eq!(
        next("2026-12-07T13:00:00Z"),
        Some(at("2026-12-08T12:00:00Z"))
    );
    assert_eq!(
        next_change([&lunch], &app("api"), at("2026-12-07T11:00:00Z")),
        None
    );
}

#[test]
fn bad_windows_are_field_problems() {
    let mut w = window("bad", WindowKind::Deny, "61 * * * *", "1h", "Mars/Olympus");
    w.spec.apps.clear();
    let mut problems = Vec::new();
    w.spec.validate(&mut problems);
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["spec.schedule", "spec.timeZone", "spec.apps"]);
    assert!(
        problems[0].message.contains("minute: \"61\""),
        "{}",
        problems[0].message
    );
    assert!(problems[1].message.contains("Mars/Olympus"));
}

#[test]
fn globs() {
    assert!(glob("web-*", "web-prod"));
    assert!(glob("web-?", "web-1"));
    assert!(!glob("web-?", "web-10"));
    assert!(!glob("web-*", "api"));
    assert!(glob("*", "anything"));
}
