//! `.driftlessignore` files (gitignore syntax) at any depth of a snapshot, plus
//! patterns from the source spec.

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::objects::Objects;
use crate::snapshot::{IGNORE_FILE, SnapshotError};

/// Ignore rules of one snapshot, deepest directory first.
pub(crate) struct IgnoreRules {
    levels: Vec<(String, Gitignore)>,
}

impl IgnoreRules {
    /// Reads every `.driftlessignore` among `files` (path, blob id, the
    /// repository holding the blob); `extra` patterns act as if appended to
    /// the root file.
    pub(crate) fn load<'a>(
        commit: &str,
        files: impl Iterator<Item = (&'a str, &'a str, &'a Objects<'a>)>,
        extra: &[String],
    ) -> Result<IgnoreRules, SnapshotError> {
        let mut levels: Vec<(String, Vec<String>)> = Vec::new();
        for (path, blob, objects) in files {
            let dir = match path.strip_suffix(IGNORE_FILE) {
                Some("") => "",
                Some(d) if d.ends_with('/') => d.trim_end_matches('/'),
                _ => continue,
            };
            let content = objects.blob(blob).map_err(|source| SnapshotError::Git {
                commit: commit.to_string(),
                source,
            })?;
            let lines = String::from_utf8_lossy(&content)
                .lines()
                .map(str::to_string)
                .collect();
            levels.push((dir.to_string(), lines));
        }
        if !extra.is_empty() {
            match levels.iter_mut().find(|(d, _)| d.is_empty()) {
                Some((_, lines)) => lines.extend(extra.iter().cloned()),
                None => levels.push((String::new(), extra.to_vec())),
            }
        }
        // Deeper files take precedence over shallower ones, as in git.
        levels.sort_by_key(|(dir, _)| {
            std::cmp::Reverse(dir.matches('/').count() + usize::from(!dir.is_empty()))
        });
        let mut built = Vec::with_capacity(levels.len());
        for (dir, lines) in levels {
            let mut builder = GitignoreBuilder::new("");
            for line in lines {
                if let Err(e) = builder.add_line(None, &line) {
                    return Err(SnapshotError::Ignore {
                        pattern: line,
                        reason: format!("{}/{IGNORE_FILE}: {e}", dir),
                    });
                }
            }
            let matcher = builder.build().map_err(|e| SnapshotError::Ignore {
                pattern: String::new(),
                reason: e.to_string(),
            })?;
            built.push((dir, matcher));
        }
        Ok(IgnoreRules { levels: built })
    }

    /// Whether the file at `path` (relative to the snapshot root) is excluded.
    pub(crate) fn is_ignored(&self, path: &str) -> bool {
        for (dir, matcher) in &self.levels {
            let relative = if dir.is_empty() {
                path
            } else {
                match path
                    .strip_prefix(dir.as_str())
                    .and_then(|p| p.strip_prefix('/'))
                {
                    Some(rest) => rest,
                    None => continue,
                }
            };
            match matcher.matched_path_or_any_parents(relative, false) {
                Match::Ignore(_) => return true,
                Match::Whitelist(_) => return false,
                Match::None => {}
            }
        }
        false
    }
}
