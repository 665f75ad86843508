//! What driftless remembers of the past: the sync history of each App, the
//! audit log of drift and adoptions, and the operations people asked for. The engine's store keeps these records,
//! the REST API sends them and the command-line client reads them.
//!
//! Stores written before these types lived here kept times as integer
//! milliseconds under names ending in `Ms`; those records still decode.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::time::Time;

/// A Git revision as driftless records it: the ref it came from and the commit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    /// Human-readable ref, e.g. `main` or `v1.2.0`.
    pub ref_label: String,
    /// Full commit SHA.
    pub sha: String,
    /// The chart version rendered, for an App whose chart comes from a
    /// HelmRepository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<ChartRevision>,
}

impl Revision {
    /// A revision of Git only.
    pub fn git(ref_label: impl Into<String>, sha: impl Into<String>) -> Self {
        Self {
            ref_label: ref_label.into(),
            sha: sha.into(),
            chart: None,
        }
    }

    /// Whether `other` is the same commit and chart version (the ref a
    /// revision was reached by does not matter).
    pub fn same_as(&self, other: &Revision) -> bool {
        self.sha == other.sha
            && self.chart.as_ref().map(|c| (&c.version, &c.digest))
                == other.chart.as_ref().map(|c| (&c.version, &c.digest))
    }
}

/// The first `len` characters of a commit id, or of an artifact digest's
/// hex digits after its `sha256:`, which stays in front.
pub fn short_id(sha: &str, len: usize) -> &str {
    let skip = if sha.starts_with("sha256:") { 7 } else { 0 };
    let end = (skip + len).min(sha.len());
    sha.get(..end).unwrap_or(sha)
}

impl std::fmt::Display for Revision {
    /// `<ref>@sha1:<commit>`, as `driftless source fetch` prints a revision,
    /// then ` chart <name>@<version>` when a chart from a repository was rendered.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@sha1:{}", self.ref_label, self.sha)?;
        if let Some(chart) = &self.chart {
            write!(f, " chart {}@{}", chart.name, chart.version)?;
        }
        Ok(())
    }
}

/// A chart version taken from a HelmRepository, as a sync recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct ChartRevision {
    /// The HelmRepository.
    pub repository: String,
    /// The chart.
    pub name: String,
    /// The version chosen.
    pub version: String,
    /// `sha256:<hex>` of the chart archive.
    pub digest: String,
}

/// Why a sync ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncTrigger {
    /// The interval timer fired.
    Interval,
    /// A webhook reported a push.
    Webhook,
    /// A watch saw live objects drift.
    Drift,
    /// A user asked for it (`driftless sync`).
    Manual,
    /// The configuration changed.
    Config,
    /// A user rolled back to an earlier revision.
    Rollback,
    /// A dependency became ready.
    Dependency,
}

/// How a sync ended; `Running` until it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum SyncResult {
    /// Still in progress (or the process died during it and the store has not
    /// been opened since).
    Running,
    /// Applied and healthy.
    Succeeded,
    /// Fetch, render, apply or health wait failed.
    Failed,
    /// Stopped before finishing: crash, shutdown or a newer revision.
    Interrupted,
}

/// What is known when a sync starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncStart {
    /// Revision being synced.
    pub revision: Revision,
    /// Commit author, `Name <email>`.
    pub author: String,
    /// First line of the commit message.
    pub subject: String,
    /// Why the sync runs.
    pub trigger: SyncTrigger,
    /// Remote resources the render used (Kustomize remote bases and files),
    /// each with the commit or content digest it was read at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remotes: Vec<RemoteRevision>,
}

/// A remote resource a render used and the revision it was read at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RemoteRevision {
    /// The entry as the kustomization writes it.
    pub url: String,
    /// The commit of a Git base, or `sha256:<hex>` of a file's content.
    pub revision: String,
}

/// Object counts of a finished sync: for a failed or interrupted one, what it
/// wrote before it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ObjectCounts {
    /// Objects created.
    pub created: u32,
    /// Objects changed.
    pub updated: u32,
    /// Objects pruned.
    pub deleted: u32,
    /// Objects already as Git says.
    pub unchanged: u32,
}

/// An existing object a sync took over: no App owned it before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdoptedObject {
    /// Object identity, `apiVersion/kind/namespace/name`.
    pub object: String,
    /// Field managers other than driftless that held its fields before.
    pub previous_managers: Vec<String>,
}

/// One entry of an App's sync history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncRecord {
    /// Identifier, increasing across all Apps.
    pub id: u64,
    /// App name.
    pub app: String,
    /// Revision, author, subject and trigger.
    #[serde(flatten)]
    pub start: SyncStart,
    /// When the sync started.
    #[serde(alias = "startedMs")]
    pub start_time: Time,
    /// When it finished; absent while running.
    #[serde(default, alias = "finishedMs", skip_serializing_if = "Option::is_none")]
    pub finish_time: Option<Time>,
    /// Result.
    pub result: SyncResult,
    /// Object counts.
    pub counts: ObjectCounts,
    /// Why a sync failed or was interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Objects the sync took over.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adopted: Vec<AdoptedObject>,
    /// For an App deploying to hosts: each host's part of the rollout
    /// (absent in records of Kubernetes Apps and of older stores).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<crate::HostRollout>,
    /// The hooks the sync ran, each as it ended (absent when it ran none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookRun>,
}

/// When in a sync a hook runs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum HookPhase {
    /// Before any object of the set is written.
    PreSync,
    /// While the set's waves are applied.
    Sync,
    /// Once every object is written and Healthy.
    PostSync,
    /// When the sync failed.
    SyncFail,
}

impl std::fmt::Display for HookPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::PreSync => "PreSync",
            Self::Sync => "Sync",
            Self::PostSync => "PostSync",
            Self::SyncFail => "SyncFail",
        })
    }
}

/// Where a hook run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HookResult {
    /// Created and not completed yet.
    Running,
    /// Completed.
    Succeeded,
    /// Failed (or did not complete in time).
    Failed,
}

/// One run of a hook object in a phase of a sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookRun {
    /// The phase it ran in.
    pub phase: HookPhase,
    /// The object as created (`batch/v1/Job/ns/migrate-x7k2q`).
    pub object: String,
    /// How it went.
    pub result: HookResult,
    /// Why, as its status (and a failed pod's state and log) tells it.
    pub message: String,
}

/// One sync in brief: what a custom resource's status lists of its last syncs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncSummary {
    /// Revision, author, subject and trigger.
    #[serde(flatten)]
    pub start: SyncStart,
    /// When the sync started.
    pub start_time: Time,
    /// When it finished; absent while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_time: Option<Time>,
    /// Result.
    pub result: SyncResult,
}

impl From<&SyncRecord> for SyncSummary {
    fn from(record: &SyncRecord) -> Self {
        Self {
            start: record.start.clone(),
            start_time: record.start_time,
            finish_time: record.finish_time,
            result: record.result,
        }
    }
}

/// What driftless did about a drift it saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DriftAction {
    /// Self-heal re-applied the Git state.
    Reverted,
    /// Self-heal is off: the App was marked OutOfSync only.
    Reported,
    /// The change is in an ignored field.
    Ignored,
    /// A sync took over an existing object no App owned.
    Adopted,
}

/// One audit log entry: a drift seen on a live object and the response to
/// it, or the adoption of an existing object by a sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// Identifier, assigned by the store.
    pub id: u64,
    /// When the drift was seen.
    #[serde(alias = "timeMs")]
    pub time: Time,
    /// App owning the object.
    pub app: String,
    /// Object identity, `apiVersion/kind/namespace/name` (no namespace for a
    /// cluster-scoped object).
    pub object: String,
    /// Changed field paths.
    pub fields: Vec<String>,
    /// Field managers that made the change, when the API server says; for
    /// an adoption, those that held the object before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
    /// What driftless did.
    pub action: DriftAction,
}

/// A user action on an App.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OperationKind {
    /// Reconcile now.
    Sync,
    /// Stop reconciling.
    Suspend,
    /// Reconcile again, following the source.
    Resume,
    /// Pin an earlier successful revision.
    Rollback,
}

impl OperationKind {
    /// The lower-case name used in the API's paths and the CLI's commands.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Suspend => "suspend",
            Self::Resume => "resume",
            Self::Rollback => "rollback",
        }
    }
}

/// One operation someone asked of an App through the API, with who asked
/// and what came of it: the audit log of mutations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Identifier, assigned by the store, increasing across all Apps.
    pub id: u64,
    /// When the request was handled.
    pub time: Time,
    /// App name.
    pub app: String,
    /// What was asked.
    pub operation: OperationKind,
    /// Who asked: the name of the API token sent (`apiToken` for the
    /// server's single `apiToken`).
    pub by: String,
    /// Rollback target as given (a SHA prefix); absent for `previous`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Revision a rollback pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<Revision>,
    /// A sync asked to go through the sync windows holding the App.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub override_window: bool,
    /// Why the engine did not do it (suspended, no rollback target, ...);
    /// absent when it was done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_keep_the_digest_algorithm_in_front() {
        let commit = "9b8a7c6d5e4f30211234";
        assert_eq!(short_id(commit, 7), "9b8a7c6");
        assert_eq!(short_id("abc", 7), "abc");
        let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
        assert_eq!(short_id(&digest, 12), "sha256:0123456789ab");
    }

    #[test]
    fn sync_records_of_older_stores_decode() {
        let old = serde_json::json!({
            "id": 1, "app": "web",
            "revision": {"refLabel": "main", "sha": "9b8a7c6"},
            "author": "Ada <ada@example.com>", "subject": "Scale web", "trigger": "webhook",
            "startedMs": 1_714_564_800_000_u64, "finishedMs": 1_714_564_801_500_u64,
            "result": "Failed", "counts": {"created": 1, "updated": 2, "deleted": 3, "unchanged": 4},
            "error": "boom"
        });
        let record: SyncRecord = serde_json::from_value(old).expect("old record decodes");
        assert_eq!(record.start.trigger, SyncTrigger::Webhook);
        assert_eq!(record.start_time.to_string(), "2024-05-01T12:00:00Z");
        assert_eq!(
            record.finish_time.map(|t| t.to_string()).as_deref(),
            Some("2024-05-01T12:00:01.5Z")
        );
        let json = serde_json::to_value(&record).expect("serialisable");
        assert_eq!(json["startTime"], "2024-05-01T12:00:00Z");
        assert_eq!(json["revision"]["refLabel"], "main");
        assert!(json.get("startedMs").is_none() && json.get("adopted").is_none());
        assert!(record.hosts.is_empty() && json.get("hosts").is_none());
    }

    #[test]
    fn audit_events_of_older_stores_decode() {
        let old = r#"{"id":1,"timeMs":1714564795000,"app":"web","object":"Deployment/web/web",
            "fields":["spec.replicas"],"manager":"kubectl-edit","action":"reverted"}"#;
        let event: AuditEvent = serde_json::from_str(old).expect("old event decodes");
        assert_eq!(event.time.to_string(), "2024-05-01T11:59:55Z");
        assert_eq!(event.action, DriftAction::Reverted);
        let json = serde_json::to_value(&event).expect("serialisable");
        assert_eq!(json["time"], "2024-05-01T11:59:55Z");
    }
}
