//! What a sync did, as its history entry and the App's status tell it: the
//! entry itself, the objects written before an apply stopped, a prune the
//! engine withheld, and an App path that a commit does not have.

use std::path::Path;
use std::sync::Mutex;

use driftless_api::history::{ChartRevision, HookRun};
use driftless_kube::{Action, ApplyEvent, ApplyReport};
use driftless_source::Revision;

use super::Inner;
use crate::store::{ObjectCounts, SyncOutcome, SyncResult, SyncStart, SyncTrigger};

/// A sync's history entry: begun when the sync starts, or, for a re-apply
/// of the live revision, only when it ends with something to tell.
pub(crate) struct Entry {
    /// The entry's id once begun.
    pub(crate) id: Option<u64>,
    /// What the entry starts with: revision, commit and trigger.
    pub(crate) start: SyncStart,
}

impl Entry {
    /// An entry not begun yet for a sync of `revision`.
    pub(crate) fn new(revision: &Revision, trigger: SyncTrigger) -> Self {
        let start = SyncStart {
            revision: crate::store::Revision {
                ref_label: revision.reference.clone(),
                sha: revision.sha.clone(),
                chart: None,
            },
            author: author_of(revision),
            subject: revision.subject.clone(),
            trigger,
            remotes: Vec::new(),
        };
        Self { id: None, start }
    }

    /// The entry of a sync that renders `chart` from a repository.
    pub(crate) fn with_chart(mut self, chart: Option<&ChartRevision>) -> Self {
        self.start.revision.chart = chart.cloned();
        self
    }
}

/// `Name <email>` of the commit's author; empty for an artifact, which has none.
pub(crate) fn author_of(revision: &Revision) -> String {
    let who = &revision.author;
    if who.name.is_empty() && who.email.is_empty() {
        return String::new();
    }
    format!("{} <{}>", who.name, who.email)
}

impl Inner {
    /// Ends the sync of `entry`; without an id (a resync of the live
    /// revision) records it only if it changed objects, took one over or did
    /// not succeed. Returns whether the sync is in the history.
    pub(crate) fn close(&self, app: &str, entry: &Entry, outcome: SyncOutcome) -> bool {
        let counts = outcome.counts;
        let changed =
            counts.created + counts.updated + counts.deleted > 0 || !outcome.adopted.is_empty();
        let result = outcome.result;
        let id = match entry.id {
            Some(id) => id,
            None if changed || result != SyncResult::Succeeded => {
                match self.store.begin_sync(app, entry.start.clone()) {
                    Ok(record) => record.id,
                    Err(e) => {
                        tracing::error!(app = %app, "recording a sync: {e}");
                        return false;
                    }
                }
            }
            None => return false,
        };
        self.finish(app, id, outcome);
        true
    }

    /// A history entry for a sync that failed before anything was applied.
    pub(crate) fn record_failure(&self, name: &str, start: &SyncStart, message: &str) {
        match self.store.begin_sync(name, start.clone()) {
            Ok(record) => self.finish(
                name,
                record.id,
                SyncOutcome {
                    result: SyncResult::Failed,
                    counts: ObjectCounts::default(),
                    error: Some(message.to_owned()),
                    adopted: Vec::new(),
                    hosts: Vec::new(),
                    hooks: Vec::new(),
                },
            ),
            Err(e) => tracing::error!(app = %name, "recording a failed sync: {e}"),
        }
    }

    fn finish(&self, app: &str, id: u64, outcome: SyncOutcome) {
        self.metrics.count_sync(outcome.result);
        if let Err(e) = self.store.finish_sync(app, id, outcome) {
            tracing::error!(app = %app, "recording sync {id}: {e}");
        }
    }
}

/// The counts of an apply's report.
pub(crate) fn counts(report: &ApplyReport) -> ObjectCounts {
    let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    ObjectCounts {
        created: n(report.created.len()),
        updated: n(report.updated.len()),
        deleted: n(report.deleted.len()),
        unchanged: n(report.unchanged.len()),
    }
}

/// Why an App's `path` is not a directory of the commit.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PathError {
    /// The path names a file.
    #[error("path {path:?} is a file, not a directory, at commit {} of GitSource {source_name}", short(.sha))]
    File {
        /// The App's path.
        path: String,
        /// The commit.
        sha: String,
        /// The GitSource.
        source_name: String,
    },
    /// Nothing is at the path.
    #[error("path {path:?} does not exist at commit {} of GitSource {source_name} (removed or renamed in Git?)", short(.sha))]
    Missing {
        /// The App's path.
        path: String,
        /// The commit.
        sha: String,
        /// The GitSource.
        source_name: String,
    },
    /// A directory on the way is a file.
    #[error("path {path:?} does not exist at commit {} of GitSource {source_name}: a part of it is a file", short(.sha))]
    UnderFile {
        /// The App's path.
        path: String,
        /// The commit.
        sha: String,
        /// The GitSource.
        source_name: String,
    },
}

/// The first 12 characters of a commit id (or of an artifact digest's hex).
pub(crate) fn short(sha: &str) -> &str {
    driftless_api::history::short_id(sha, 12)
}

/// Counts of the objects an apply wrote and the hooks it ran, kept from its
/// progress events so that a failed or interrupted sync records what it
/// changed before it stopped.
#[derive(Default)]
pub(crate) struct Tally(Mutex<(ObjectCounts, Vec<HookRun>)>);

impl Tally {
    /// Counts one progress event.
    pub(crate) fn note(&self, event: &ApplyEvent) {
        let mut tally = self.lock();
        let (counts, hooks) = &mut *tally;
        match event {
            ApplyEvent::Applied { action, .. } => match action {
                Action::Created => counts.created += 1,
                Action::Updated | Action::Recreated => counts.updated += 1,
                Action::Unchanged => counts.unchanged += 1,
            },
            ApplyEvent::Deleted { .. } => counts.deleted += 1,
            // A hook's end replaces its start.
            ApplyEvent::Hook(run) => {
                hooks.retain(|h| !(h.object == run.object && h.phase == run.phase));
                hooks.push(run.clone());
            }
            ApplyEvent::Waiting { .. } | ApplyEvent::Health { .. } | ApplyEvent::Adopted { .. } => {
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (ObjectCounts, Vec<HookRun>)> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The counts so far.
    pub(crate) fn counts(&self) -> ObjectCounts {
        self.lock().0
    }

    /// The hooks run so far, each as it last stood.
    pub(crate) fn hooks(&self) -> Vec<HookRun> {
        self.lock().1.clone()
    }
}

/// The Ready message of an App whose empty render pruned nothing: `kept`
/// objects of earlier syncs are still live.
pub(crate) fn prune_withheld_message(path: &str, sha: &str, kept: usize) -> String {
    let short = short(sha);
    format!(
        "path {path:?} renders no objects at commit {short}; prune was withheld, so the \
         {kept} objects of earlier syncs stay live (set spec.allowEmptyPrune to delete them)"
    )
}

/// An error when the App's `path` is not a directory of the commit's tree
/// exported at `root`: a path removed or renamed in Git would otherwise
/// show as an internal cache path that is "not a directory".
pub(crate) fn check_app_path(
    root: &Path,
    path: &str,
    sha: &str,
    source: &str,
) -> Result<(), PathError> {
    let relative = path.trim_start_matches('/');
    if relative.is_empty() {
        return Ok(());
    }
    let (path, sha, source_name) = (path.to_owned(), sha.to_owned(), source.to_owned());
    // A symlink is left to the renderer, which decides where it may lead.
    match std::fs::symlink_metadata(root.join(relative)) {
        Ok(meta) if meta.is_dir() || meta.file_type().is_symlink() => Ok(()),
        Ok(_) => Err(PathError::File {
            path,
            sha,
            source_name,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(PathError::Missing {
            path,
            sha,
            source_name,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Err(PathError::UnderFile {
            path,
            sha,
            source_name,
        }),
        // Any other failure is the renderer's to report.
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftless_kube::ObjectRef;

    #[test]
    fn tally_counts_writes_and_deletions() {
        let object = ObjectRef::from_object(&serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}
        }))
        .expect("valid object");
        let tally = Tally::default();
        for action in [Action::Created, Action::Recreated, Action::Unchanged] {
            tally.note(&ApplyEvent::Applied {
                object: object.clone(),
                action,
            });
        }
        tally.note(&ApplyEvent::Deleted { object });
        let counts = tally.counts();
        assert_eq!(
            (
                counts.created,
                counts.updated,
                counts.unchanged,
                counts.deleted
            ),
            (1, 1, 1, 1)
        );
    }

    #[test]
    fn missing_and_file_paths_name_the_commit() {
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(root.path().join("apps")).expect("mkdir");
        std::fs::write(root.path().join("apps/notes"), "x").expect("write");
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert!(check_app_path(root.path(), "apps", sha, "repo").is_ok());
        assert!(check_app_path(root.path(), "/", sha, "repo").is_ok());
        let err = check_app_path(root.path(), "apps/web", sha, "repo").expect_err("missing");
        assert!(matches!(err, PathError::Missing { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "path \"apps/web\" does not exist at commit 0123456789ab of GitSource repo \
             (removed or renamed in Git?)"
        );
        let err = check_app_path(root.path(), "apps/notes", sha, "repo").expect_err("a file");
        assert!(matches!(err, PathError::File { .. }), "{err:?}");
        assert!(err.to_string().contains("is a file"), "{err}");
        let err =
            check_app_path(root.path(), "apps/notes/x", sha, "repo").expect_err("under a file");
        assert!(matches!(err, PathError::UnderFile { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("does not exist at commit 0123456789ab"),
            "{err}"
        );
    }
}
