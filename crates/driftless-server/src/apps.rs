//! `GET /api/v1/apps`: the App list, a page at a time, selected by health, sync
//! status, labels and name, with counts over every App selected.
//!
//! Sync status and health come from the store's index; labels from the config in
//! force (the store does not hold them), so a selector sees an App's labels as
//! declared now. Only the statuses on the page are read whole.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use driftless_api::list::{
    AppFilter, AppList, DEFAULT_APP_PAGE, ListParamError, MAX_APP_PAGE, continue_from,
    parse_health, parse_limit, parse_sync,
};
use driftless_engine::store::StoreError;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::api::blocking;
use crate::state::{ServerState, error};

/// The labels of an App the config does not declare (any more).
static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// Query of the App list; an empty parameter counts as absent.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppsQuery {
    /// Only Apps of these health states, comma-separated: Healthy, Progressing,
    /// Degraded, Suspended, Missing, Unknown (case does not matter).
    pub(crate) health: Option<String>,
    /// Only Apps of these sync statuses, comma-separated: Synced, OutOfSync, Unknown.
    pub(crate) sync: Option<String>,
    /// Only Apps whose `metadata.labels` match this selector: requirements `k=v`,
    /// `k!=v`, `k` (set) or `!k` (not set), comma-separated; all must hold.
    pub(crate) label: Option<String>,
    /// Only Apps whose name contains this text, ignoring case.
    pub(crate) q: Option<String>,
    /// Most Apps in the page (default 500).
    #[schemars(with = "Option<u32>", range(min = 1, max = MAX_APP_PAGE))]
    pub(crate) limit: Option<String>,
    /// The `continue` of the previous page: this page starts after the last App it listed.
    #[serde(rename = "continue")]
    pub(crate) continue_: Option<String>,
}

/// A list request with its parameters checked.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AppsRequest {
    pub(crate) filter: AppFilter,
    pub(crate) limit: usize,
    pub(crate) after: Option<String>,
}

/// A query parameter the list refuses, named.
#[derive(Debug, thiserror::Error)]
#[error("query parameter {parameter}: {source}")]
pub(crate) struct BadParameter {
    parameter: &'static str,
    source: ListParamError,
}

impl AppsQuery {
    /// Checks every parameter; the first that is not valid is named.
    pub(crate) fn check(self) -> Result<AppsRequest, BadParameter> {
        fn given(value: Option<String>) -> Option<String> {
            value.filter(|v| !v.trim().is_empty())
        }
        fn bad(parameter: &'static str) -> impl FnOnce(ListParamError) -> BadParameter {
            move |source| BadParameter { parameter, source }
        }
        let mut filter = AppFilter::default();
        if let Some(health) = given(self.health) {
            filter.health = parse_health(&health).map_err(bad("health"))?;
        }
        if let Some(sync) = given(self.sync) {
            filter.sync = parse_sync(&sync).map_err(bad("sync"))?;
        }
        if let Some(label) = given(self.label) {
            filter.labels = label.parse().map_err(bad("label"))?;
        }
        filter.name = given(self.q).unwrap_or_default().trim().to_owned();
        let limit = match given(self.limit) {
            Some(limit) => parse_limit(&limit).map_err(bad("limit"))?,
            None => DEFAULT_APP_PAGE,
        };
        let after = given(self.continue_)
            .map(|token| continue_from(&token))
            .transpose()
            .map_err(bad("continue"))?;
        Ok(AppsRequest {
            filter,
            limit,
            after,
        })
    }
}

/// Answers one page of the Apps the query selects, or 400 naming the parameter at fault.
pub(crate) async fn list(
    State(state): State<ServerState>,
    query: Result<Query<AppsQuery>, QueryRejection>,
) -> Response {
    let checked = match query {
        Ok(Query(query)) => query.check(),
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let AppsRequest {
        filter,
        limit,
        after,
    } = match checked {
        Ok(request) => request,
        Err(bad) => return error(StatusCode::BAD_REQUEST, bad),
    };
    let work = move || select(&state, &filter, after.as_deref(), limit);
    blocking(work, |_| StatusCode::INTERNAL_SERVER_ERROR).await
}

/// One page of the Apps `filter` selects, labels read from the config in force
/// (blocking: run it off the async threads).
pub(crate) fn select(
    state: &ServerState,
    filter: &AppFilter,
    after: Option<&str>,
    limit: usize,
) -> Result<AppList, StoreError> {
    let config = (state.config)();
    let selects = |name: &str, sync, health| {
        let labels = config
            .app(name)
            .map_or(&NO_LABELS, |app| &app.metadata.labels);
        filter.matches(name, labels, sync, health)
    };
    state.store.app_list(selects, after, limit)
}

#[cfg(test)]
mod tests {
    use driftless_api::list::continue_after;
    use driftless_api::status::{HealthStatus, SyncStatus};

    use super::*;

    fn query(pairs: &[(&str, &str)]) -> AppsQuery {
        let mut q = AppsQuery::default();
        for (key, value) in pairs {
            let value = Some((*value).to_owned());
            match *key {
                "health" => q.health = value,
                "sync" => q.sync = value,
                "label" => q.label = value,
                "q" => q.q = value,
                "limit" => q.limit = value,
                "continue" => q.continue_ = value,
                other => panic!("no parameter {other}"),
            }
        }
        q
    }

    #[test]
    fn parameters_become_a_filter_a_limit_and_a_start() {
        let token = continue_after("team.web");
        let checked = query(&[
            ("health", "degraded,Missing"),
            ("sync", "OutOfSync"),
            ("label", "env=prod"),
            ("q", " Web "),
            ("limit", "20"),
            ("continue", token.as_str()),
        ])
        .check()
        .expect("valid");
        assert_eq!(
            checked.filter.health,
            [HealthStatus::Degraded, HealthStatus::Missing]
        );
        assert_eq!(checked.filter.sync, [SyncStatus::OutOfSync]);
        assert_eq!(checked.filter.labels.to_string(), "env=prod");
        assert_eq!(checked.filter.name, "Web");
        assert_eq!(
            (checked.limit, checked.after.as_deref()),
            (20, Some("team.web"))
        );
        let defaults = query(&[("health", ""), ("limit", " ")])
            .check()
            .expect("empty is absent");
        assert_eq!(
            defaults,
            AppsRequest {
                filter: AppFilter::default(),
                limit: DEFAULT_APP_PAGE,
                after: None
            }
        );
    }

    #[test]
    fn a_bad_parameter_is_named() {
        for (parameter, value) in [
            ("health", "Fine"),
            ("sync", "Synced,,OutOfSync"),
            ("label", "env=a=b"),
            ("limit", "0"),
            ("limit", "1001"),
            ("continue", "web"),
        ] {
            let err = query(&[(parameter, value)]).check().expect_err(value);
            assert!(
                err.to_string()
                    .starts_with(&format!("query parameter {parameter}: ")),
                "{parameter}={value}: {err}"
            );
        }
    }
}
