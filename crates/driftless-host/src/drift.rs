//! Drift of files: what a host's release holds against its manifest, and the
//! repair that puts the release back.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::deploy::{HostError, check, step};
use crate::manifest::{Manifest, ManifestEntry};
use crate::release::{AppRelease, HostRelease};
use crate::remote::Layout;
use crate::ssh::{Connection, Endpoint};

/// One difference between a host and its release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum FileDrift {
    /// Content (or link target, or kind) differs.
    Modified {
        /// Path relative to the release.
        path: String,
    },
    /// Permission bits differ.
    ModeChanged {
        /// Path relative to the release.
        path: String,
        /// Mode in the manifest.
        expected: u32,
        /// Mode on the host.
        found: u32,
    },
    /// On the host but not in the release.
    Added {
        /// Path relative to the release.
        path: String,
    },
    /// In the release but gone from the host.
    Removed {
        /// Path relative to the release.
        path: String,
    },
    /// `current` points elsewhere (or nowhere).
    CurrentMoved {
        /// Commit `current` should point at.
        expected: String,
        /// What it points at, if anything.
        found: Option<String>,
    },
    /// The release directory or its manifest is gone.
    ReleaseMissing {
        /// The commit.
        revision: String,
    },
}

impl FileDrift {
    /// The file the drift is about, when it is about one.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::Modified { path }
            | Self::ModeChanged { path, .. }
            | Self::Added { path }
            | Self::Removed { path } => Some(path),
            Self::CurrentMoved { .. } | Self::ReleaseMissing { .. } => None,
        }
    }
}

/// The drift of one App's release on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftReport {
    /// Host name.
    pub host: String,
    /// Commit that should be current.
    pub revision: String,
    /// Differences, files in path order; empty when the host matches.
    pub events: Vec<FileDrift>,
    /// Files sent by a repair (zero for a check).
    pub files_sent: u64,
}

impl DriftReport {
    /// Whether the host matches its release.
    pub fn is_clean(&self) -> bool {
        self.events.is_empty()
    }
}

/// What the host holds, as [`Layout::observe`] prints it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Commit `current` points at.
    pub current: Option<String>,
    /// The manifest stored beside the release.
    pub manifest: Option<Manifest>,
    /// Whether the release directory exists.
    pub release_found: bool,
    /// Entries: path to (type letter, mode, digest or link target).
    pub entries: BTreeMap<String, (char, u32, String)>,
}

impl Observed {
    /// Reads the answer of [`Layout::observe`].
    pub fn parse(stdout: &[u8]) -> Self {
        let text = String::from_utf8_lossy(stdout);
        let mut lines = text.lines();
        let mut observed = Self {
            current: lines
                .next()
                .and_then(|l| l.strip_prefix("current releases/"))
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
            manifest: lines
                .next()
                .and_then(|json| Manifest::from_json(json.as_bytes()).ok()),
            ..Self::default()
        };
        for line in lines.by_ref() {
            if line == "--" {
                observed.release_found = true;
                break;
            }
            let mut parts = line.splitn(3, ' ');
            let (Some(kind), Some(mode), Some(rest)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (path, target) = rest.split_once('\t').unwrap_or((rest, ""));
            let kind = kind.chars().next().unwrap_or('o');
            let mode = u32::from_str_radix(mode, 8).unwrap_or(0);
            observed
                .entries
                .insert(path.to_owned(), (kind, mode, target.to_owned()));
        }
        for line in lines {
            if let Some((digest, path)) = line.split_once("  ./")
                && let Some(entry) = observed.entries.get_mut(path)
            {
                entry.2 = digest.to_owned();
            }
        }
        observed
    }
}

/// The drift of `observed` against `manifest` (the release of `revision`).
pub fn compare(revision: &str, manifest: &Manifest, observed: &Observed) -> Vec<FileDrift> {
    let mut events = Vec::new();
    if observed.current.as_deref() != Some(revision) {
        events.push(FileDrift::CurrentMoved {
            expected: revision.to_owned(),
            found: observed.current.clone(),
        });
    }
    if !observed.release_found {
        events.push(FileDrift::ReleaseMissing {
            revision: revision.to_owned(),
        });
        return events;
    }
    let mut paths: Vec<&String> = manifest
        .entries
        .keys()
        .chain(observed.entries.keys())
        .collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        let event = match (manifest.entries.get(path), observed.entries.get(path)) {
            (Some(_), None) => Some(FileDrift::Removed { path: path.clone() }),
            (None, Some(_)) => Some(FileDrift::Added { path: path.clone() }),
            (Some(want), Some(have)) => entry_drift(path, want, have),
            (None, None) => None,
        };
        events.extend(event);
    }
    events
}

fn entry_drift(path: &str, want: &ManifestEntry, have: &(char, u32, String)) -> Option<FileDrift> {
    let modified = || {
        Some(FileDrift::Modified {
            path: path.to_owned(),
        })
    };
    match (want, have.0) {
        (ManifestEntry::Dir { .. }, 'd') => None,
        (ManifestEntry::Symlink { target }, 'l') if *target == have.2 => None,
        (ManifestEntry::File { digest, .. }, 'f') if *digest != have.2 => modified(),
        (ManifestEntry::File { mode, .. }, 'f') if *mode != have.1 => {
            Some(FileDrift::ModeChanged {
                path: path.to_owned(),
                expected: *mode,
                found: have.1,
            })
        }
        (ManifestEntry::File { .. }, 'f') => None,
        _ => modified(),
    }
}

/// Checks App `app`'s release of `revision` on a host against the manifest
/// kept beside it.
pub async fn check_drift(
    conn: &Connection,
    endpoint: &Endpoint,
    app: &str,
    revision: &str,
) -> Result<DriftReport, HostError> {
    let layout = Layout::new(&endpoint.apps_root, app);
    let out = step(conn, "reading the release", &layout.observe(revision)).await?;
    let observed = Observed::parse(&out.stdout);
    let events = match &observed.manifest {
        Some(manifest) => compare(revision, manifest, &observed),
        None => vec![FileDrift::ReleaseMissing {
            revision: revision.to_owned(),
        }],
    };
    Ok(DriftReport {
        host: endpoint.name.clone(),
        revision: revision.to_owned(),
        events,
        files_sent: 0,
    })
}

/// Puts `release` back on a host: changed, missing and re-moded files are
/// sent again, added ones removed, and `current` pointed back at it. No hook
/// runs. Returns what was repaired.
pub async fn restore(
    conn: &Connection,
    endpoint: &Endpoint,
    release: &AppRelease,
) -> Result<DriftReport, HostError> {
    let host_release = release.for_host(&endpoint.name, &endpoint.vars)?;
    let layout = Layout::new(&endpoint.apps_root, release.app());
    repair(conn, &layout, &host_release).await
}

/// Observes the release, repairs every difference from `release`'s manifest
/// and rewrites the manifest on the host.
pub(crate) async fn repair(
    conn: &Connection,
    layout: &Layout,
    release: &HostRelease<'_>,
) -> Result<DriftReport, HostError> {
    let manifest = release.manifest();
    let revision = manifest.revision.as_str();
    let out = step(conn, "reading the release", &layout.observe(revision)).await?;
    let events = compare(revision, manifest, &Observed::parse(&out.stdout));
    let mut report = DriftReport {
        host: release.host().to_owned(),
        revision: revision.to_owned(),
        events,
        files_sent: 0,
    };
    if report
        .events
        .iter()
        .any(|e| matches!(e, FileDrift::ReleaseMissing { .. }))
    {
        let plan = manifest.upload_plan(None);
        let stream = release.upload_stream(&plan.send, &[])?;
        let out = conn
            .run_script(
                &layout.build_release(revision, None),
                Some(&stream),
                conn.timeouts().upload,
            )
            .await?;
        check(conn, "uploading the release", out)?;
        step(conn, "activating the release", &layout.activate(revision)).await?;
        report.files_sent = manifest.file_count() as u64;
    } else {
        let (send, extra) = repair_lists(&report.events, manifest);
        if !send.is_empty() || !extra.is_empty() {
            let stream = release.repair_stream(&send)?;
            let out = conn
                .run_script(
                    &layout.repair(revision, &extra),
                    Some(&stream),
                    conn.timeouts().upload,
                )
                .await?;
            check(conn, "repairing files", out)?;
        }
        let json = manifest.to_json();
        let out = conn
            .run_script(
                &layout.write_manifest(revision),
                Some(&json),
                conn.timeouts().command,
            )
            .await?;
        check(conn, "writing the manifest", out)?;
        report.files_sent = send
            .iter()
            .filter(|p| matches!(manifest.entries.get(*p), Some(ManifestEntry::File { .. })))
            .count() as u64;
    }
    if report
        .events
        .iter()
        .any(|e| matches!(e, FileDrift::CurrentMoved { .. }))
    {
        step(
            conn,
            "switching current back",
            &layout.point_current(revision),
        )
        .await?;
    }
    Ok(report)
}

/// Entries to send again and paths to remove for a set of drift events.
pub fn repair_lists(events: &[FileDrift], manifest: &Manifest) -> (Vec<String>, Vec<String>) {
    let mut send = Vec::new();
    let mut extra = Vec::new();
    for event in events {
        match event {
            FileDrift::Added { path } => extra.push(path.clone()),
            FileDrift::Modified { path }
            | FileDrift::ModeChanged { path, .. }
            | FileDrift::Removed { path } => {
                if !matches!(manifest.entries.get(path), Some(ManifestEntry::Dir { .. }))
                    || matches!(event, FileDrift::Removed { .. })
                {
                    send.push(path.clone());
                }
                if matches!(event, FileDrift::Modified { .. }) {
                    // A directory where a file belongs (or the reverse) must go first.
                    extra.push(path.clone());
                }
            }
            FileDrift::CurrentMoved { .. } | FileDrift::ReleaseMissing { .. } => {}
        }
    }
    (send, extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        let file = |mode, digest: &str| ManifestEntry::File {
            mode,
            digest: digest.into(),
            size: 1,
        };
        Manifest {
            revision: "r1".into(),
            entries: [
                ("etc".to_owned(), ManifestEntry::Dir { mode: 0o755 }),
                ("etc/app.conf".to_owned(), file(0o644, "aa")),
                ("run".to_owned(), file(0o755, "bb")),
                ("gone".to_owned(), file(0o644, "cc")),
                (
                    "link".to_owned(),
                    ManifestEntry::Symlink {
                        target: "run".into(),
                    },
                ),
            ]
            .into(),
        }
    }

    fn observed_text(current: &str) -> String {
        format!(
            "current {current}\n{}\nd 755 etc\nf 644 etc/app.conf\nf 644 run\nl 777 link\trun\nf 600 extra\n--\nzz  ./etc/app.conf\nbb  ./run\nee  ./extra\n",
            String::from_utf8(manifest().to_json()).expect("test step succeeds")
        )
    }

    #[test]
    fn every_kind_of_drift_is_named() {
        let observed = Observed::parse(observed_text("releases/r0").as_bytes());
        assert_eq!(observed.manifest, Some(manifest()));
        let events = compare("r1", &manifest(), &observed);
        assert_eq!(
            events,
            [
                FileDrift::CurrentMoved {
                    expected: "r1".into(),
                    found: Some("r0".into())
                },
                FileDrift::Modified {
                    path: "etc/app.conf".into()
                },
                FileDrift::Added {
                    path: "extra".into()
                },
                FileDrift::Removed {
                    path: "gone".into()
                },
                FileDrift::ModeChanged {
                    path: "run".into(),
                    expected: 0o755,
                    found: 0o644
                },
            ]
        );
        let (send, extra) = repair_lists(&events, &manifest());
        assert_eq!(send, ["etc/app.conf", "gone", "run"]);
        assert_eq!(extra, ["etc/app.conf", "extra"]);
    }

    #[test]
    fn a_matching_release_has_no_drift_and_a_missing_one_says_so() {
        let clean = observed_text("releases/r1")
            .replace("zz  ./etc", "aa  ./etc")
            .replace("f 644 run", "f 755 run")
            .replace("f 600 extra\n", "")
            .replace("d 755 etc\n", "d 755 etc\nf 644 gone\n")
            .replace("ee  ./extra", "cc  ./gone");
        let events = compare("r1", &manifest(), &Observed::parse(clean.as_bytes()));
        assert_eq!(events, []);
        let missing = Observed::parse(b"current releases/r1\n\n");
        assert_eq!(
            compare("r1", &manifest(), &missing),
            [FileDrift::ReleaseMissing {
                revision: "r1".into()
            }]
        );
    }
}
