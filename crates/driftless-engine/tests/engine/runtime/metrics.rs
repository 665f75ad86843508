//! `/metrics` after real syncs, read back with a Prometheus text-format parser.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use driftless_testenv::shared;
use prometheus_parse::{Sample, Scrape, Value};

use super::support::{Repo, app, applied, config, config_map, start, wait_status};

const WAIT: Duration = Duration::from_secs(60);

/// Parses the engine's exposition text as a scraper would.
pub(super) fn scrape(text: &str) -> Vec<Sample> {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    Scrape::parse(lines).expect("valid exposition text").samples
}

/// The value of the one sample of `metric` whose labels include `labels`.
pub(super) fn value(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert_eq!(found.len(), 1, "{metric} {labels:?}: {found:?}");
    match found[0].value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        ref other => panic!("{metric} {labels:?} is not a single value: {other:?}"),
    }
}

fn has_app(samples: &[Sample], app: &str) -> bool {
    samples.iter().any(|s| s.labels.get("app") == Some(app))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_series_follow_syncs_and_vanish_with_the_app() {
    let ns = shared()
        .namespace("engine-metrics")
        .await
        .expect("namespace");
    let (kept, gone) = (
        format!("metrics-kept-{}", std::process::id()),
        format!("metrics-gone-{}", std::process::id()),
    );
    let repo = Repo::new();
    repo.write("kept/a.yaml", &config_map("kept-a", "1"));
    repo.write("gone/b.yaml", &config_map("gone-b", "1"));
    let sha = repo.commit("two apps");
    let dir = tempfile::tempdir().expect("temp dir");
    let both = format!(
        "{}{}",
        app(&kept, "kept", &ns, ""),
        app(&gone, "gone", &ns, "")
    );
    let path = config(dir.path(), &repo, &both);
    let running = start(&path, &dir.path().join("data"));
    wait_status(&running, &kept, WAIT, "applied", applied(&sha)).await;
    wait_status(&running, &gone, WAIT, "applied", applied(&sha)).await;

    let samples = scrape(&running.engine.metrics().render());
    for name in [&kept, &gone] {
        let app = ("app", name.as_str());
        let cond = |status| {
            value(
                &samples,
                "driftless_app_condition",
                &[app, ("type", "Ready"), ("status", status)],
            )
        };
        assert_eq!(
            (cond("True"), cond("False"), cond("Unknown")),
            (1.0, 0.0, 0.0)
        );
        let sync = |status| value(&samples, "driftless_app_sync", &[app, ("status", status)]);
        assert_eq!((sync("Synced"), sync("OutOfSync")), (1.0, 0.0));
        let health = |status| value(&samples, "driftless_app_health", &[app, ("status", status)]);
        assert_eq!((health("Healthy"), health("Degraded")), (1.0, 0.0));
        let reconciles = value(
            &samples,
            "driftless_app_reconcile_duration_seconds_count",
            &[app],
        );
        assert!(reconciles >= 1.0, "{name}: {reconciles} reconciles");
        let applied_at = value(
            &samples,
            "driftless_app_last_applied_timestamp_seconds",
            &[app],
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs_f64();
        assert!(
            (0.0..120.0).contains(&(now - applied_at)),
            "{name} applied at {applied_at}, now {now}"
        );
    }
    let source = [("source", "repo")];
    let fetches = value(
        &samples,
        "driftless_source_fetch_duration_seconds_count",
        &source,
    );
    assert!(fetches >= 1.0, "{fetches} fetches");
    assert_eq!(
        value(&samples, "driftless_source_fetch_failures_total", &source),
        0.0
    );
    for s in &samples {
        assert!(
            s.labels.get("revision").is_none() && s.labels.get("sha").is_none(),
            "no revision labels: {s:?}"
        );
    }

    // Without `gone` in the config its series go; `kept`'s stay.
    let only_kept = app(&kept, "kept", &ns, "");
    config(dir.path(), &repo, &only_kept);
    let config = driftless_api::load_config(&path).expect("valid config");
    running.engine.apply_config(config);
    let deadline = std::time::Instant::now() + WAIT;
    let samples = loop {
        let samples = scrape(&running.engine.metrics().render());
        if !has_app(&samples, &gone) || std::time::Instant::now() > deadline {
            break samples;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!has_app(&samples, &gone), "{gone} still has series");
    let ready = [
        ("app", kept.as_str()),
        ("type", "Ready"),
        ("status", "True"),
    ];
    assert_eq!(value(&samples, "driftless_app_condition", &ready), 1.0);
    running.engine.shutdown().await;
}
