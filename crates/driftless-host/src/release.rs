//! A release: one commit's tree for one App, made concrete for each host by
//! `${VAR}` substitution, with the manifest and the upload stream that build
//! it on the host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use driftless_api::{HostDelivery, Substitutions};
use driftless_render::{ExpandError, Substitution};
use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::manifest::{Manifest, ManifestEntry};
use crate::tree::{EntryKind, Tree, TreeError, digest};

/// Why a release cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The tree is unreadable or holds something that cannot be deployed.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// An App name or commit that cannot name a directory.
    #[error("{what} {value:?} cannot name a release directory (letters, digits, '-', '_', '.')")]
    InvalidName {
        /// `app` or `revision`.
        what: &'static str,
        /// The value.
        value: String,
    },
    /// A substitute glob does not parse.
    #[error("substitute glob {pattern:?}: {message}")]
    Glob {
        /// The glob.
        pattern: String,
        /// The parser's message.
        message: String,
    },
    /// Substitution failed in one file for one host.
    #[error("host {host}: substituting {file}: {message}")]
    Substitute {
        /// Host name.
        host: String,
        /// File relative to the tree.
        file: String,
        /// What went wrong.
        message: String,
    },
    /// A file changed or vanished since the tree was read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// One commit's tree for one App, checked once for all its hosts.
#[derive(Debug, Clone)]
pub struct AppRelease {
    app: String,
    revision: String,
    tree: Tree,
    delivery: HostDelivery,
    vars: BTreeMap<String, String>,
    strict: bool,
    substitute: GlobSet,
}

impl AppRelease {
    /// Reads and checks `dir` (a rendered or checked-out tree) as the release of
    /// `revision` for App `app`: escaping symlinks, odd names and bad globs fail here.
    pub fn new(
        app: &str,
        revision: &str,
        dir: &Path,
        delivery: &HostDelivery,
        substitutions: Option<&Substitutions>,
    ) -> Result<Self, ReleaseError> {
        check_name("app", app)?;
        check_name("revision", revision)?;
        let mut globs = GlobSetBuilder::new();
        for pattern in &delivery.substitute {
            let glob = Glob::new(pattern).map_err(|e| ReleaseError::Glob {
                pattern: pattern.clone(),
                message: e.kind().to_string(),
            })?;
            globs.add(glob);
        }
        let substitute = globs.build().map_err(|e| ReleaseError::Glob {
            pattern: delivery.substitute.join(", "),
            message: e.to_string(),
        })?;
        Ok(Self {
            app: app.to_owned(),
            revision: revision.to_owned(),
            tree: Tree::read(dir)?,
            delivery: delivery.clone(),
            vars: substitutions.map(|s| s.vars.clone()).unwrap_or_default(),
            strict: substitutions.is_some_and(|s| s.strict),
            substitute,
        })
    }

    /// The App name.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// The commit.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// Hooks, health check, rollout and retention.
    pub fn delivery(&self) -> &HostDelivery {
        &self.delivery
    }

    /// The release as deployed to host `host` with its `vars`: substituted
    /// files and the manifest. Built-ins win over host vars, which win over
    /// the App's substitutions.
    pub fn for_host(
        &self,
        host: &str,
        host_vars: &BTreeMap<String, String>,
    ) -> Result<HostRelease<'_>, ReleaseError> {
        let mut vars = self.vars.clone();
        vars.extend(host_vars.clone());
        vars.insert("DRIFTLESS_APP".into(), self.app.clone());
        vars.insert("DRIFTLESS_HOST".into(), host.to_owned());
        vars.insert("DRIFTLESS_REVISION".into(), self.revision.clone());
        let substitution = Substitution {
            vars,
            strict: self.strict,
        };
        let mut entries = BTreeMap::new();
        let mut contents = BTreeMap::new();
        for entry in self.tree.entries() {
            let manifest_entry = match &entry.kind {
                EntryKind::Dir => ManifestEntry::Dir { mode: entry.mode },
                EntryKind::Symlink { target } => ManifestEntry::Symlink {
                    target: target.clone(),
                },
                EntryKind::File { .. } if self.substitute.is_match(&entry.path) => {
                    let text = self.substituted(host, &entry.path, &substitution)?;
                    let file = ManifestEntry::File {
                        mode: entry.mode,
                        digest: digest(text.as_bytes()),
                        size: text.len() as u64,
                    };
                    contents.insert(entry.path.clone(), text.into_bytes());
                    file
                }
                EntryKind::File { digest, size } => ManifestEntry::File {
                    mode: entry.mode,
                    digest: digest.clone(),
                    size: *size,
                },
            };
            entries.insert(entry.path.clone(), manifest_entry);
        }
        Ok(HostRelease {
            release: self,
            host: host.to_owned(),
            manifest: Manifest {
                revision: self.revision.clone(),
                entries,
            },
            contents,
        })
    }

    fn substituted(
        &self,
        host: &str,
        file: &str,
        substitution: &Substitution,
    ) -> Result<String, ReleaseError> {
        let failed = |message: String| ReleaseError::Substitute {
            host: host.to_owned(),
            file: file.to_owned(),
            message,
        };
        let path = self.tree.local_path(file);
        let bytes = std::fs::read(&path).map_err(|source| ReleaseError::Read { path, source })?;
        let text = String::from_utf8(bytes)
            .map_err(|_| failed("not UTF-8 text; remove it from spec.host.substitute".into()))?;
        substitution.expand(&text).map_err(|e| match e {
            ExpandError::Unset(name) => failed(format!("variable {name} is not set")),
            ExpandError::Unterminated(at) => failed(format!("unterminated reference at {at:?}")),
        })
    }
}

/// Release and commit names become directory names on the host.
fn check_name(what: &'static str, value: &str) -> Result<(), ReleaseError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && !value.starts_with('.')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ReleaseError::InvalidName {
            what,
            value: value.to_owned(),
        })
    }
}

/// A release made concrete for one host.
#[derive(Debug, Clone)]
pub struct HostRelease<'a> {
    release: &'a AppRelease,
    host: String,
    manifest: Manifest,
    contents: BTreeMap<String, Vec<u8>>,
}

impl HostRelease<'_> {
    /// The App-wide release.
    pub fn app_release(&self) -> &AppRelease {
        self.release
    }

    /// The host's name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// What the host should hold.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// A tar stream of `send` (under `tree/`), the manifest and the list of
    /// files to hard-link, as [`crate::remote::Layout::build_release`] reads it.
    pub(crate) fn upload_stream(
        &self,
        send: &[String],
        link: &[String],
    ) -> Result<Vec<u8>, ReleaseError> {
        let mut tar = Stream::new();
        tar.append(Entry::Dir(0o755), "tree")?;
        self.append_entries(&mut tar, "tree/", send)?;
        tar.append(Entry::Data(&self.manifest.to_json()), "manifest")?;
        let mut links = link.join("\n");
        if !links.is_empty() {
            links.push('\n');
        }
        tar.append(Entry::Data(links.as_bytes()), "links")?;
        tar.finish()
    }

    /// A tar stream of `paths` relative to the release directory, for a repair
    /// in place ([`crate::remote::Layout::repair`]).
    pub(crate) fn repair_stream(&self, paths: &[String]) -> Result<Vec<u8>, ReleaseError> {
        let mut tar = Stream::new();
        self.append_entries(&mut tar, "", paths)?;
        tar.finish()
    }

    fn append_entries(
        &self,
        tar: &mut Stream,
        prefix: &str,
        paths: &[String],
    ) -> Result<(), ReleaseError> {
        for path in paths {
            let name = format!("{prefix}{path}");
            match self.manifest.entries.get(path) {
                Some(ManifestEntry::Dir { mode }) => tar.append(Entry::Dir(*mode), &name)?,
                Some(ManifestEntry::Symlink { target }) => {
                    tar.append(Entry::Link(target), &name)?
                }
                Some(ManifestEntry::File { mode, .. }) => match self.contents.get(path) {
                    Some(content) => tar.append(Entry::File(*mode, content), &name)?,
                    None => {
                        let local = self.release.tree.local_path(path);
                        let content =
                            std::fs::read(&local).map_err(|source| ReleaseError::Read {
                                path: local,
                                source,
                            })?;
                        tar.append(Entry::File(*mode, &content), &name)?
                    }
                },
                None => {}
            }
        }
        Ok(())
    }
}

/// One entry to put in a [`Stream`].
enum Entry<'a> {
    Dir(u32),
    File(u32, &'a [u8]),
    Link(&'a str),
    /// Bookkeeping data of the upload (manifest, link list).
    Data(&'a [u8]),
}

/// A tar stream built in memory.
struct Stream {
    tar: tar::Builder<Vec<u8>>,
    mtime: u64,
}

impl Stream {
    fn new() -> Self {
        let mtime = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            tar: tar::Builder::new(Vec::new()),
            mtime,
        }
    }

    fn append(&mut self, entry: Entry<'_>, name: &str) -> Result<(), ReleaseError> {
        let (kind, mode, data): (_, _, &[u8]) = match entry {
            Entry::Dir(mode) => (tar::EntryType::Directory, mode, &[]),
            Entry::File(mode, data) => (tar::EntryType::Regular, mode, data),
            Entry::Data(data) => (tar::EntryType::Regular, 0o644, data),
            Entry::Link(_) => (tar::EntryType::Symlink, 0o777, &[]),
        };
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_mtime(self.mtime);
        let written = match entry {
            Entry::Link(target) => self.tar.append_link(&mut header, name, target),
            _ => self.tar.append_data(&mut header, name, data),
        };
        written.map_err(|source| ReleaseError::Read {
            path: PathBuf::from(name),
            source,
        })
    }

    fn finish(self) -> Result<Vec<u8>, ReleaseError> {
        self.tar.into_inner().map_err(|source| ReleaseError::Read {
            path: PathBuf::from("(upload stream)"),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("test step succeeds");
        std::fs::write(
            dir.path().join("app.conf"),
            "host=${DRIFTLESS_HOST} region=${region} app=${APP_VAR}\n",
        )
        .expect("test step succeeds");
        std::fs::write(dir.path().join("run.sh"), "echo ${DRIFTLESS_HOST}\n")
            .expect("test step succeeds");
        dir
    }

    fn delivery() -> HostDelivery {
        HostDelivery {
            substitute: vec!["*.conf".into()],
            ..HostDelivery::default()
        }
    }

    #[test]
    fn substitutes_only_matching_files_with_host_vars_over_app_vars() {
        let dir = tree();
        let subs = Substitutions {
            vars: [
                ("APP_VAR".to_owned(), "a".to_owned()),
                ("region".to_owned(), "app".to_owned()),
            ]
            .into(),
            ..Substitutions::default()
        };
        let release = AppRelease::new("web", "abc123", dir.path(), &delivery(), Some(&subs))
            .expect("test step succeeds");
        let vars = [("region".to_owned(), "eu-1".to_owned())].into();
        let host = release
            .for_host("web-1", &vars)
            .expect("test step succeeds");
        assert_eq!(
            String::from_utf8_lossy(&host.contents["app.conf"]),
            "host=web-1 region=eu-1 app=a\n"
        );
        assert!(!host.contents.contains_key("run.sh"));
        let other = release
            .for_host("web-2", &vars)
            .expect("test step succeeds");
        assert_ne!(
            host.manifest().entries["app.conf"],
            other.manifest().entries["app.conf"]
        );
        assert_eq!(
            host.manifest().entries["run.sh"],
            other.manifest().entries["run.sh"]
        );
    }

    #[test]
    fn strict_substitution_names_host_file_and_variable() {
        let dir = tree();
        let subs = Substitutions {
            strict: true,
            ..Substitutions::default()
        };
        let release = AppRelease::new("web", "abc", dir.path(), &delivery(), Some(&subs))
            .expect("test step succeeds");
        let err = release
            .for_host("web-1", &BTreeMap::new())
            .expect_err("this must be refused")
            .to_string();
        assert_eq!(
            err,
            "host web-1: substituting app.conf: variable region is not set"
        );
    }

    #[test]
    fn names_that_cannot_be_directories_are_refused() {
        let dir = tree();
        for (app, rev) in [
            ("web", "../x"),
            ("web", ".hidden"),
            ("a/b", "abc"),
            ("web", ""),
        ] {
            let err = AppRelease::new(app, rev, dir.path(), &delivery(), None)
                .expect_err("this must be refused");
            assert!(
                matches!(err, ReleaseError::InvalidName { .. }),
                "{app} {rev}"
            );
        }
    }

    #[test]
    fn the_stream_holds_sent_entries_manifest_and_links() {
        let dir = tree();
        let release = AppRelease::new("web", "abc", dir.path(), &delivery(), None)
            .expect("test step succeeds");
        let host = release
            .for_host("h", &BTreeMap::new())
            .expect("test step succeeds");
        let stream = host
            .upload_stream(&["app.conf".into()], &["run.sh".into()])
            .expect("test step succeeds");
        let mut archive = tar::Archive::new(stream.as_slice());
        let names: Vec<String> = archive
            .entries()
            .expect("test step succeeds")
            .map(|e| {
                e.expect("test step succeeds")
                    .path()
                    .expect("test step succeeds")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["tree", "tree/app.conf", "manifest", "links"]);
    }
}
