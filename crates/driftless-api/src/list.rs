//! The App list of the REST API (`GET /api/v1/apps`): which Apps a request
//! selects (health, sync, labels, part of the name), one page of them, and
//! counts over every App selected.
//!
//! Paging follows Kubernetes list semantics: Apps are ordered by name, a page
//! holds at most `limit` of them, and its `continue` token makes the next page
//! start after the last name it returned, so paging neither repeats nor skips
//! an App that exists throughout, while Apps come and go.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::status::{AppStatus, HealthStatus, Named, SyncStatus};
use crate::validate::did_you_mean;

/// Apps in a page when the request names no limit.
pub const DEFAULT_APP_PAGE: usize = 500;
/// Most Apps one page may hold.
pub const MAX_APP_PAGE: usize = 1000;

/// Marks the format of a continue token, so a later one can be told apart.
const TOKEN_PREFIX: &str = "after:";
/// Longest label name (the part after an optional `prefix/`) and label value.
const MAX_LABEL_PART: usize = 63;
/// Longest label key prefix, a DNS subdomain.
const MAX_LABEL_PREFIX: usize = 253;

/// One page of the App list, as `GET /api/v1/apps` answers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppList {
    /// The selected Apps of this page, ordered by name.
    pub items: Vec<Named<AppStatus>>,
    /// Pass as `continue` for the next page; absent on the last page.
    #[serde(rename = "continue", default, skip_serializing_if = "Option::is_none")]
    pub continue_: Option<String>,
    /// Selected Apps after this page.
    pub remaining: u64,
    /// Counts over every selected App, not only those of this page.
    pub summary: AppSummary,
}

/// How many Apps a list selects, per sync status and per health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AppSummary {
    /// Selected Apps.
    pub total: u64,
    /// Selected Apps per sync status (`Synced`, `OutOfSync`, `Unknown`), zeros included.
    pub sync: BTreeMap<String, u64>,
    /// Selected Apps per health (`Healthy`, `Progressing`, ...), zeros included.
    pub health: BTreeMap<String, u64>,
}

impl Default for AppSummary {
    fn default() -> Self {
        Self {
            total: 0,
            sync: zeros(SyncStatus::ALL.iter().map(|s| s.as_str())),
            health: zeros(HealthStatus::ALL.iter().map(|h| h.as_str())),
        }
    }
}

/// Each of `words` counted zero times.
fn zeros<'a>(words: impl Iterator<Item = &'a str>) -> BTreeMap<String, u64> {
    words.map(|w| (w.to_owned(), 0)).collect()
}

impl AppSummary {
    /// Counts one more App.
    pub fn add(&mut self, sync: SyncStatus, health: HealthStatus) {
        self.total += 1;
        *self.sync.entry(sync.as_str().to_owned()).or_default() += 1;
        *self.health.entry(health.as_str().to_owned()).or_default() += 1;
    }

    /// Selected Apps whose sync status is `sync`.
    pub fn synced(&self, sync: SyncStatus) -> u64 {
        self.sync.get(sync.as_str()).copied().unwrap_or_default()
    }

    /// Selected Apps whose health is `health`.
    pub fn healthy(&self, health: HealthStatus) -> u64 {
        self.health
            .get(health.as_str())
            .copied()
            .unwrap_or_default()
    }
}

/// Why a list parameter is refused; the caller names the parameter or flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListParamError {
    /// A health or sync status that does not exist.
    #[error("unknown {what} {word:?}{hint} (expected {expected})")]
    UnknownState {
        /// `health` or `sync status`.
        what: &'static str,
        /// The word given.
        word: String,
        /// A "did you mean" suggestion, or nothing.
        hint: String,
        /// The words accepted, comma-separated.
        expected: String,
    },
    /// A list with nothing between two commas.
    #[error("empty entry in {list:?}")]
    EmptyEntry {
        /// The list given.
        list: String,
    },
    /// A label selector requirement that does not parse.
    #[error("{requirement:?}: {problem}")]
    Selector {
        /// The requirement at fault.
        requirement: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A page size out of range.
    #[error("{value:?} is not a whole number from 1 to {max}")]
    Limit {
        /// The value given.
        value: String,
        /// The largest page.
        max: usize,
    },
    /// A continue token this server did not issue.
    #[error("not a continue token of this server (pass the previous page's `continue` unchanged)")]
    Continue,
}

/// A status a list selects by.
trait State: Copy + 'static {
    /// What the word names, in messages.
    const WHAT: &'static str;
    /// Every value.
    const EVERY: &'static [Self];
    /// The word the API uses.
    fn word(self) -> &'static str;
}

impl State for HealthStatus {
    const WHAT: &'static str = "health";
    const EVERY: &'static [Self] = &HealthStatus::ALL;
    fn word(self) -> &'static str {
        self.as_str()
    }
}

impl State for SyncStatus {
    const WHAT: &'static str = "sync status";
    const EVERY: &'static [Self] = &SyncStatus::ALL;
    fn word(self) -> &'static str {
        self.as_str()
    }
}

/// Comma-separated health states, as the API spells them (case does not matter).
pub fn parse_health(list: &str) -> Result<Vec<HealthStatus>, ListParamError> {
    parse_states(list)
}

/// Comma-separated sync statuses, as the API spells them (case does not matter).
pub fn parse_sync(list: &str) -> Result<Vec<SyncStatus>, ListParamError> {
    parse_states(list)
}

fn parse_states<S: State>(list: &str) -> Result<Vec<S>, ListParamError> {
    let mut out = Vec::new();
    for word in list.split(',').map(str::trim) {
        if word.is_empty() {
            return Err(ListParamError::EmptyEntry {
                list: list.to_owned(),
            });
        }
        let words = S::EVERY.iter().map(|s| s.word());
        match S::EVERY
            .iter()
            .find(|s| s.word().eq_ignore_ascii_case(word))
        {
            Some(state) => out.push(*state),
            None => {
                return Err(ListParamError::UnknownState {
                    what: S::WHAT,
                    word: word.to_owned(),
                    hint: did_you_mean(word, words.clone()),
                    expected: words.collect::<Vec<_>>().join(", "),
                });
            }
        }
    }
    Ok(out)
}

/// A page size: a whole number from 1 to [`MAX_APP_PAGE`].
pub fn parse_limit(text: &str) -> Result<usize, ListParamError> {
    text.trim()
        .parse()
        .ok()
        .filter(|n| (1..=MAX_APP_PAGE).contains(n))
        .ok_or_else(|| ListParamError::Limit {
            value: text.to_owned(),
            max: MAX_APP_PAGE,
        })
}

/// The continue token of a page whose last App is `name`.
pub fn continue_after(name: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TOKEN_PREFIX}{name}"))
}

/// The App name a continue token says the next page starts after.
pub fn continue_from(token: &str) -> Result<String, ListParamError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| ListParamError::Continue)?;
    let text = String::from_utf8(bytes).map_err(|_| ListParamError::Continue)?;
    match text.strip_prefix(TOKEN_PREFIX) {
        Some(name) if !name.is_empty() => Ok(name.to_owned()),
        _ => Err(ListParamError::Continue),
    }
}

/// One requirement of a [`LabelSelector`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    /// `key=value` (also `key==value`).
    Equals(String, String),
    /// `key!=value`: also holds when the label is absent.
    NotEquals(String, String),
    /// `key`: the label is set, to anything.
    Exists(String),
    /// `!key`: the label is not set.
    Absent(String),
}

/// A Kubernetes equality-based label selector: requirements `k=v` (or `k==v`),
/// `k!=v`, `k` and `!k`, comma-separated; every one must hold. The empty selector
/// selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Whether the selector has no requirement (it selects everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `labels` meet every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::Absent(k) => !labels.contains_key(k),
        })
    }
}

impl FromStr for LabelSelector {
    type Err = ListParamError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let requirements = text
            .split(',')
            .map(|term| {
                requirement(term.trim()).map_err(|problem| ListParamError::Selector {
                    requirement: term.trim().to_owned(),
                    problem,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { requirements })
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match r {
                Requirement::Equals(k, v) => write!(f, "{k}={v}")?,
                Requirement::NotEquals(k, v) => write!(f, "{k}!={v}")?,
                Requirement::Exists(k) => write!(f, "{k}")?,
                Requirement::Absent(k) => write!(f, "!{k}")?,
            }
        }
        Ok(())
    }
}

fn requirement(term: &str) -> Result<Requirement, String> {
    if term.is_empty() {
        return Err("empty requirement (nothing between two commas)".to_owned());
    }
    if term.contains(['(', ')']) || term.contains(" in ") || term.contains(" notin ") {
        return Err(
            "set-based requirements (in, notin) are not supported; use k=v, k!=v, k or !k"
                .to_owned(),
        );
    }
    let pair = |key: &str, value: &str| -> Result<(String, String), String> {
        let (key, value) = (key.trim(), value.trim());
        label_key(key)?;
        label_value(value)?;
        Ok((key.to_owned(), value.to_owned()))
    };
    if let Some(key) = term.strip_prefix('!') {
        let key = key.trim();
        label_key(key)?;
        return Ok(Requirement::Absent(key.to_owned()));
    }
    if let Some((key, value)) = term.split_once("!=") {
        let (k, v) = pair(key, value)?;
        return Ok(Requirement::NotEquals(k, v));
    }
    if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
        let (k, v) = pair(key, value)?;
        return Ok(Requirement::Equals(k, v));
    }
    label_key(term)?;
    Ok(Requirement::Exists(term.to_owned()))
}

/// Checks a label key: an optional DNS-subdomain prefix and `/`, then a name.
fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let subdomain = !prefix.is_empty()
            && prefix.len() <= MAX_LABEL_PREFIX
            && prefix.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            });
        if !subdomain {
            return Err(format!(
                "label key prefix {prefix:?} is not a DNS subdomain (lower-case letters, digits, '-' and '.')"
            ));
        }
    }
    if name.is_empty() {
        return Err("a label key is empty".to_owned());
    }
    if !label_part(name) {
        return Err(format!(
            "label key {key:?} is not valid (at most {MAX_LABEL_PART} letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

/// Checks a label value: empty, or as the name part of a key.
fn label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || label_part(value) {
        Ok(())
    } else {
        Err(format!(
            "label value {value:?} is not valid (at most {MAX_LABEL_PART} letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit)"
        ))
    }
}

fn label_part(text: &str) -> bool {
    let alnum = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    let bytes = text.as_bytes();
    bytes.len() <= MAX_LABEL_PART
        && alnum(bytes.first())
        && alnum(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Which Apps a list selects; the default selects every App.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppFilter {
    /// Any of these health states; empty: any health.
    pub health: Vec<HealthStatus>,
    /// Any of these sync statuses; empty: any.
    pub sync: Vec<SyncStatus>,
    /// Requirements on the App's `metadata.labels`.
    pub labels: LabelSelector,
    /// Text the App's name contains, ignoring ASCII case; empty: any name.
    pub name: String,
}

impl AppFilter {
    /// Whether the filter selects every App.
    pub fn is_empty(&self) -> bool {
        self.health.is_empty()
            && self.sync.is_empty()
            && self.labels.is_empty()
            && self.name.is_empty()
    }

    /// Whether the App `name` with `labels`, `sync` and `health` is selected.
    pub fn matches(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        sync: SyncStatus,
        health: HealthStatus,
    ) -> bool {
        (self.sync.is_empty() || self.sync.contains(&sync))
            && (self.health.is_empty() || self.health.contains(&health))
            && contains_ignoring_case(name, &self.name)
            && self.labels.matches(labels)
    }

    /// The query parameters that ask `GET /api/v1/apps` for this filter.
    pub fn query_pairs(&self) -> Vec<(&'static str, String)> {
        let words = |words: Vec<&str>| words.join(",");
        let mut pairs = Vec::new();
        if !self.health.is_empty() {
            pairs.push((
                "health",
                words(self.health.iter().map(|h| h.as_str()).collect()),
            ));
        }
        if !self.sync.is_empty() {
            pairs.push((
                "sync",
                words(self.sync.iter().map(|s| s.as_str()).collect()),
            ));
        }
        if !self.labels.is_empty() {
            pairs.push(("label", self.labels.to_string()));
        }
        if !self.name.is_empty() {
            pairs.push(("q", self.name.clone()));
        }
        pairs
    }
}

/// Whether `text` contains `part`, ignoring ASCII case (App names are ASCII).
fn contains_ignoring_case(text: &str, part: &str) -> bool {
    part.is_empty()
        || text
            .as_bytes()
            .windows(part.len())
            .any(|w| w.eq_ignore_ascii_case(part.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn selects(selector: &str, pairs: &[(&str, &str)]) -> bool {
        let selector: LabelSelector = selector.parse().expect("selector parses");
        selector.matches(&labels(pairs))
    }

    #[test]
    fn selectors_test_equality_inequality_and_existence() {
        let prod = [("env", "prod"), ("team", "web")];
        assert!(selects("env=prod", &prod));
        assert!(selects("env==prod,team=web", &prod));
        assert!(!selects("env=prod,team=db", &prod));
        assert!(selects("env!=staging", &prod));
        assert!(!selects("env!=prod", &prod));
        // `!=` also holds where the label is absent, as in Kubernetes.
        assert!(selects("tier!=db", &prod));
        assert!(selects("team", &prod));
        assert!(!selects("tier", &prod));
        assert!(selects("!tier", &prod));
        assert!(!selects("!env", &prod));
        assert!(selects(" env = prod , team ", &prod));
        assert!(selects("", &[]));
        assert!(selects(
            "example.com/owner=ops",
            &[("example.com/owner", "ops")]
        ));
        assert!(selects("env=", &[("env", "")]));
    }

    #[test]
    fn selectors_print_in_canonical_form() {
        let selector: LabelSelector = " env == prod ,tier!=db, team,!old".parse().expect("parses");
        assert_eq!(selector.to_string(), "env=prod,tier!=db,team,!old");
        assert_eq!(selector.to_string().parse::<LabelSelector>(), Ok(selector));
    }

    #[test]
    fn malformed_selectors_name_the_requirement() {
        for (selector, requirement, problem) in [
            ("env=prod,,team", "", "empty requirement"),
            ("=prod", "=prod", "a label key is empty"),
            (
                "env=prod=x",
                "env=prod=x",
                "label value \"prod=x\" is not valid",
            ),
            ("env in (a,b)", "env in (a", "set-based requirements"),
            ("-env=a", "-env=a", "label key \"-env\" is not valid"),
            (
                "Example.com/x=a",
                "Example.com/x=a",
                "is not a DNS subdomain",
            ),
            ("env=with space", "env=with space", "label value"),
        ] {
            match selector.parse::<LabelSelector>() {
                Err(ListParamError::Selector {
                    requirement: r,
                    problem: p,
                }) => {
                    assert_eq!(r, requirement, "{selector}");
                    assert!(p.contains(problem), "{selector}: {p}");
                }
                other => panic!("{selector}: {other:?}"),
            }
        }
        let long = format!("env={}", "a".repeat(64));
        assert!(long.parse::<LabelSelector>().is_err());
    }

    #[test]
    fn states_parse_ignoring_case_and_suggest_the_word_meant() {
        assert_eq!(
            parse_health("Degraded, missing"),
            Ok(vec![HealthStatus::Degraded, HealthStatus::Missing])
        );
        assert_eq!(parse_sync("OutOfSync"), Ok(vec![SyncStatus::OutOfSync]));
        let err = parse_health("Degradd").expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "unknown health \"Degradd\" (did you mean \"Degraded\"?) (expected Healthy, \
             Progressing, Degraded, Missing, Suspended, Unknown)"
        );
        assert!(matches!(
            parse_sync("Synced,,OutOfSync"),
            Err(ListParamError::EmptyEntry { .. })
        ));
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(parse_limit("1"), Ok(1));
        assert_eq!(parse_limit("1000"), Ok(MAX_APP_PAGE));
        for bad in ["0", "1001", "-1", "ten", ""] {
            assert!(parse_limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn continue_tokens_round_trip_and_refuse_anything_else() {
        for name in ["web", "team-a.web", "z"] {
            assert_eq!(continue_from(&continue_after(name)).as_deref(), Ok(name));
        }
        let (plain, empty) = (URL_SAFE_NO_PAD.encode("web"), continue_after(""));
        for bad in ["web", "!!!", plain.as_str(), empty.as_str()] {
            assert_eq!(continue_from(bad), Err(ListParamError::Continue), "{bad}");
        }
    }

    #[test]
    fn filters_combine_every_criterion() {
        let filter = AppFilter {
            health: vec![HealthStatus::Degraded, HealthStatus::Missing],
            sync: vec![SyncStatus::OutOfSync],
            labels: "env=prod".parse().expect("selector"),
            name: "WEB".to_owned(),
        };
        let prod = labels(&[("env", "prod")]);
        let (out, degraded) = (SyncStatus::OutOfSync, HealthStatus::Degraded);
        assert!(filter.matches("team-a.web-1", &prod, out, degraded));
        assert!(!filter.matches("team-a.api", &prod, out, degraded));
        assert!(!filter.matches("web", &labels(&[]), out, degraded));
        assert!(!filter.matches("web", &prod, SyncStatus::Synced, degraded));
        assert!(!filter.matches("web", &prod, out, HealthStatus::Healthy));
        assert!(AppFilter::default().matches("any", &labels(&[]), out, degraded));
        assert_eq!(
            filter.query_pairs(),
            [
                ("health", "Degraded,Missing".to_owned()),
                ("sync", "OutOfSync".to_owned()),
                ("label", "env=prod".to_owned()),
                ("q", "WEB".to_owned()),
            ]
        );
        assert!(AppFilter::default().query_pairs().is_empty());
    }

    #[test]
    fn summaries_count_every_status_zeros_included() {
        let mut summary = AppSummary::default();
        summary.add(SyncStatus::Synced, HealthStatus::Healthy);
        summary.add(SyncStatus::OutOfSync, HealthStatus::Healthy);
        assert_eq!(summary.total, 2);
        assert_eq!(summary.synced(SyncStatus::Synced), 1);
        assert_eq!(summary.healthy(HealthStatus::Healthy), 2);
        assert_eq!(summary.healthy(HealthStatus::Degraded), 0);
        assert_eq!(summary.sync.len(), SyncStatus::ALL.len());
        assert_eq!(summary.health.len(), HealthStatus::ALL.len());
    }
}
