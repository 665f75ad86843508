//! The manifest of a release: every entry with its mode and digest, kept on
//! the host beside the release. It decides what an upload sends and is what
//! drift is measured against.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One entry of a release as deployed (after substitution).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ManifestEntry {
    /// A directory and its permission bits.
    Dir {
        /// Permission bits.
        mode: u32,
    },
    /// A regular file.
    File {
        /// Permission bits.
        mode: u32,
        /// Hex SHA-256 of the content.
        digest: String,
        /// Size in bytes.
        size: u64,
    },
    /// A symlink.
    Symlink {
        /// Target as written.
        target: String,
    },
}

/// Every entry of one release on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Commit the release was made from.
    pub revision: String,
    /// Entries by path relative to the release directory.
    pub entries: BTreeMap<String, ManifestEntry>,
}

/// What an upload does with each entry of a new release.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadPlan {
    /// Entries sent in the stream (directories, links, new or changed files).
    pub send: Vec<String>,
    /// Files hard-linked from the base release on the host.
    pub link: Vec<String>,
}

impl Manifest {
    /// How to build this release on a host whose current release is `base`:
    /// files with the same digest and mode are linked, everything else sent.
    pub fn upload_plan(&self, base: Option<&Manifest>) -> UploadPlan {
        let mut plan = UploadPlan::default();
        for (path, entry) in &self.entries {
            let same_file = matches!(entry, ManifestEntry::File { .. })
                && base.and_then(|b| b.entries.get(path)) == Some(entry);
            if same_file {
                plan.link.push(path.clone());
            } else {
                plan.send.push(path.clone());
            }
        }
        plan
    }

    /// The manifest as stored on the host.
    pub fn to_json(&self) -> Vec<u8> {
        // A map of plain strings and numbers always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a manifest stored on the host.
    pub fn from_json(text: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(text)
    }

    /// Number of regular files.
    pub fn file_count(&self) -> usize {
        self.entries
            .values()
            .filter(|e| matches!(e, ManifestEntry::File { .. }))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(mode: u32, digest: &str) -> ManifestEntry {
        ManifestEntry::File {
            mode,
            digest: digest.into(),
            size: 1,
        }
    }

    fn manifest(entries: &[(&str, ManifestEntry)]) -> Manifest {
        Manifest {
            revision: "abc".into(),
            entries: entries
                .iter()
                .map(|(p, e)| ((*p).to_owned(), e.clone()))
                .collect(),
        }
    }

    #[test]
    fn unchanged_files_are_linked_and_the_rest_sent() {
        let base = manifest(&[
            ("etc", ManifestEntry::Dir { mode: 0o755 }),
            ("etc/a", file(0o644, "1")),
            ("etc/b", file(0o644, "2")),
            ("run", file(0o644, "3")),
        ]);
        let next = manifest(&[
            ("etc", ManifestEntry::Dir { mode: 0o755 }),
            ("etc/a", file(0o644, "1")),
            ("etc/b", file(0o644, "changed")),
            ("run", file(0o755, "3")),
            ("new", file(0o644, "4")),
            (
                "link",
                ManifestEntry::Symlink {
                    target: "etc/a".into(),
                },
            ),
        ]);
        let plan = next.upload_plan(Some(&base));
        assert_eq!(plan.link, ["etc/a"]);
        assert_eq!(plan.send, ["etc", "etc/b", "link", "new", "run"]);
        assert_eq!(next.upload_plan(None).link, Vec::<String>::new());
    }

    #[test]
    fn round_trips_through_json() {
        let m = manifest(&[("a", file(0o600, "ff"))]);
        assert_eq!(
            Manifest::from_json(&m.to_json()).expect("test step succeeds"),
            m
        );
        assert_eq!(m.file_count(), 1);
    }
}
