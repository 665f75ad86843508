//! What a sync did, as its history entry and the App's status tell it: the
//! objects written before an apply stopped, a prune the engine withheld,
//! and an App path that a commit does not have.

use std::path::Path;
use std::sync::Mutex;

use driftless_kube::{Action, ApplyEvent};

use crate::store::ObjectCounts;

/// Condition reason of an App whose render was empty while prune is on:
/// the objects of earlier syncs stay, so the cluster does not match Git.
pub(crate) const PRUNE_WITHHELD: &str = "PruneWithheld";

/// Counts of the objects an apply wrote, kept from its progress events so
/// that a failed or interrupted sync records what it changed before it
/// stopped.
#[derive(Default)]
pub(crate) struct Tally(Mutex<ObjectCounts>);

impl Tally {
    /// Counts one progress event.
    pub(crate) fn note(&self, event: &ApplyEvent) {
        let mut counts = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            ApplyEvent::Applied { action, .. } => match action {
                Action::Created => counts.created += 1,
                Action::Updated | Action::Recreated => counts.updated += 1,
                Action::Unchanged => counts.unchanged += 1,
            },
            ApplyEvent::Deleted { .. } => counts.deleted += 1,
            ApplyEvent::Waiting { .. } | ApplyEvent::Health { .. } | ApplyEvent::Adopted { .. } => {
            }
        }
    }

    /// The counts so far.
    pub(crate) fn counts(&self) -> ObjectCounts {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The Ready message of an App whose empty render pruned nothing: `kept`
/// objects of earlier syncs are still live.
pub(crate) fn prune_withheld_message(path: &str, sha: &str, kept: usize) -> String {
    let short = &sha[..sha.len().min(12)];
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
) -> Result<(), String> {
    let relative = path.trim_start_matches('/');
    if relative.is_empty() {
        return Ok(());
    }
    let short = &sha[..sha.len().min(12)];
    // A symlink is left to the renderer, which decides where it may lead.
    match std::fs::symlink_metadata(root.join(relative)) {
        Ok(meta) if meta.is_dir() || meta.file_type().is_symlink() => Ok(()),
        Ok(_) => Err(format!(
            "path {path:?} is a file, not a directory, at commit {short} of GitSource {source}"
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "path {path:?} does not exist at commit {short} of GitSource {source} \
             (removed or renamed in Git?)"
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Err(format!(
            "path {path:?} does not exist at commit {short} of GitSource {source}: \
             a part of it is a file"
        )),
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
        assert_eq!(
            err,
            "path \"apps/web\" does not exist at commit 0123456789ab of GitSource repo \
             (removed or renamed in Git?)"
        );
        let err = check_app_path(root.path(), "apps/notes", sha, "repo").expect_err("a file");
        assert!(err.contains("is a file"), "{err}");
        let err =
            check_app_path(root.path(), "apps/notes/x", sha, "repo").expect_err("under a file");
        assert!(
            err.contains("does not exist at commit 0123456789ab"),
            "{err}"
        );
    }
}
