//! Targets, a quick delivery policy and sample events; the receiving end is
//! the test environment's recording server.

use std::time::Duration;

use driftless_api::{EventKind, NotifierSpec, Time};
use driftless_notify::{Commit, Dispatcher, Drift, Event, RetryPolicy, Target};
pub use driftless_testenv::recorder::Recorder;

/// How long a test waits for a request.
pub const WAIT: Duration = Duration::from_secs(10);

/// A policy fast enough for tests: 3 tries 50 ms apart.
pub fn quick() -> RetryPolicy {
    RetryPolicy {
        tries: 3,
        first_wait: Duration::from_millis(50),
        timeout: Duration::from_secs(5),
        min_gap: Duration::from_millis(1),
        queue: 100,
        resend: Duration::from_secs(60),
    }
}

/// A target from a spec written as JSON, with `secret`.
pub fn target(name: &str, spec: serde_json::Value, secret: Option<&str>) -> Target {
    let spec: NotifierSpec = serde_json::from_value(spec).expect("a spec");
    Target::new(name.to_owned(), spec, secret.map(str::to_owned)).expect("a target")
}

/// A dispatcher with one target.
pub fn dispatcher(target: Target) -> Dispatcher {
    let d = Dispatcher::new(quick());
    d.configure(vec![Ok(target)]);
    d
}

pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// A failed sync of `web-prod` at [`SHA`].
pub fn failed_sync() -> Event {
    Event {
        kind: EventKind::SyncFailed,
        app: "web-prod".into(),
        source: None,
        apps: Vec::new(),
        cluster: "default".into(),
        namespace: Some("web".into()),
        revision: Some(Commit {
            sha: SHA.into(),
            subject: "Raise replicas to 3".into(),
            author: "Ada Lovelace <ada@example.com>".into(),
        }),
        message: "apply failed at revision 0123456789ab".into(),
        error: Some("Deployment/web/web: spec.replicas: Invalid value: -1".into()),
        drift: None,
        url: Some("https://driftless.example.com/apps/web-prod".into()),
        time: Time::from_unix_ms(1_780_000_000_000),
    }
}

/// A reverted hand edit of `web-prod`.
pub fn reverted_drift() -> Event {
    Event {
        kind: EventKind::DriftReverted,
        error: None,
        message: "a change made in the cluster was reverted to Git's state".into(),
        drift: Some(Drift {
            object: "apps/v1/Deployment/web/web".into(),
            fields: vec!["spec.replicas".into()],
            manager: Some("kubectl-edit".into()),
        }),
        ..failed_sync()
    }
}
