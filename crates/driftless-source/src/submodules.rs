//! Submodules in snapshots: each gitlink of the exported tree is fetched at the
//! commit the superproject records, from the URL its `.gitmodules` gives (at
//! that same commit), and its tree is exported in place, recursively.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::git::Git;
use crate::objects::{Objects, ReadError};
use crate::snapshot::{Entry, SnapshotError, entries_from};

/// Nesting deeper than this is refused (a submodule cycle would never end).
pub const MAX_DEPTH: usize = 8;

/// Fetches `commit` from `url` into the cache and returns the repository
/// holding it, or a message saying why it could not.
pub type FetchSubmodule<'a> = dyn Fn(&str, &str) -> Result<PathBuf, String> + 'a;

/// How a snapshot gets the content of submodules.
pub struct Submodules<'a> {
    /// URL of the superproject, against which relative submodule URLs resolve.
    pub url: &'a str,
    /// Fetches one submodule commit.
    pub fetch: &'a FetchSubmodule<'a>,
}

/// A submodule entry (mode 160000) of a tree listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Gitlink {
    /// Path relative to the listed tree.
    pub path: String,
    /// Commit the superproject records.
    pub commit: String,
}

/// The repository a set of gitlinks was listed from.
pub(crate) struct Parent<'a> {
    /// Index of its runner in the list of repositories.
    pub source: usize,
    /// Its URL.
    pub url: &'a str,
    /// The commit whose `.gitmodules` applies.
    pub commit: &'a str,
    /// Prefix turning a listed path into a path of that commit's tree
    /// (the exported sub-path of the top level).
    pub tree_prefix: &'a str,
    /// Prefix turning a listed path into a path of the snapshot.
    pub place_prefix: &'a str,
}

/// Adds the files of every submodule among `gitlinks` (and of theirs) to
/// `entries`, pushing one git runner per submodule onto `repos`.
pub(crate) fn expand(
    top: &str,
    repos: &mut Vec<Objects<'_>>,
    entries: &mut Vec<Entry>,
    parent: &Parent<'_>,
    gitlinks: Vec<Gitlink>,
    submodules: &Submodules<'_>,
    depth: usize,
) -> Result<(), SnapshotError> {
    if gitlinks.is_empty() {
        return Ok(());
    }
    let refuse = |path: &str, reason: String| SnapshotError::Submodule {
        commit: top.to_string(),
        path: path.to_string(),
        reason,
    };
    let urls = gitmodules(repos[parent.source].git(), parent.commit)
        .map_err(|reason| refuse(parent.place_prefix, reason))?;
    for link in gitlinks {
        let place = join(parent.place_prefix, &link.path);
        if depth >= MAX_DEPTH {
            return Err(refuse(&place, format!("nested more than {MAX_DEPTH} deep")));
        }
        let in_tree = join(parent.tree_prefix, &link.path);
        let raw = urls
            .get(&in_tree)
            .ok_or_else(|| refuse(&place, format!("no URL for `{in_tree}` in .gitmodules")))?;
        let url = resolve_url(parent.url, raw);
        if is_local(&url) && !is_local(parent.url) {
            return Err(refuse(
                &place,
                format!("local URL `{url}` refused for a submodule of a remote repository"),
            ));
        }
        let repo = (submodules.fetch)(&url, &link.commit).map_err(|e| refuse(&place, e))?;
        let objects = repos[0].open_other(&repo);
        let tree = format!("{}^{{tree}}", link.commit);
        let listing = objects.list(&tree).map_err(|e| match e {
            ReadError::Git(e) => refuse(&place, e.to_string()),
            ReadError::Stream => refuse(&place, "unexpected tree listing".to_string()),
        })?;
        let (mut found, nested) = entries_from(&link.commit, listing)?;
        let source = repos.len();
        repos.push(objects);
        for entry in &mut found {
            entry.path = format!("{place}/{}", entry.path);
            entry.source = source;
        }
        entries.extend(found);
        let inner = Parent {
            source,
            url: &url,
            commit: &link.commit,
            tree_prefix: "",
            place_prefix: &place,
        };
        expand(top, repos, entries, &inner, nested, submodules, depth + 1)?;
    }
    Ok(())
}

fn join(prefix: &str, path: &str) -> String {
    if prefix.is_empty() {
        path.to_string()
    } else {
        format!("{prefix}/{path}")
    }
}

/// Submodule path -> URL, from `.gitmodules` at `commit`.
fn gitmodules(git: &Git, commit: &str) -> Result<HashMap<String, String>, String> {
    let blob = format!("{commit}:.gitmodules");
    let listing = git
        .run(&["config", "--blob", &blob, "--null", "--list"])
        .map_err(|e| format!("reading .gitmodules: {e}"))?;
    // Records are `key\nvalue\0`; keys are `submodule.<name>.<field>`.
    let mut paths = HashMap::new();
    let mut urls = HashMap::new();
    for record in listing.split('\0') {
        let Some((key, value)) = record.split_once('\n') else {
            continue;
        };
        let Some(rest) = key.strip_prefix("submodule.") else {
            continue;
        };
        if let Some(name) = rest.strip_suffix(".path") {
            paths.insert(name.to_string(), value.trim_end_matches('/').to_string());
        } else if let Some(name) = rest.strip_suffix(".url") {
            urls.insert(name.to_string(), value.to_string());
        }
    }
    Ok(paths
        .into_iter()
        .filter_map(|(name, path)| Some((path, urls.remove(&name)?)))
        .collect())
}

/// Resolves a `.gitmodules` URL: `./x` and `../x` are relative to the
/// superproject's URL (each `../` drops one path component), as git does.
pub(crate) fn resolve_url(parent: &str, url: &str) -> String {
    if !url.starts_with("./") && !url.starts_with("../") {
        return url.to_string();
    }
    let mut base = parent.trim_end_matches('/').to_string();
    let mut rest = url;
    loop {
        if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("../") {
            rest = r;
            // Never cut into `scheme://host`.
            let floor = base.find("://").map_or(0, |i| i + 3);
            match base[floor..].rfind(['/', ':']) {
                Some(i) => base.truncate(floor + i),
                None => base.truncate(floor),
            }
        } else {
            break;
        }
    }
    format!("{base}/{rest}")
}

/// Local paths and `file://` URLs read from the machine driftless runs on.
fn is_local(url: &str) -> bool {
    url.starts_with("file://") || url.starts_with('/') || url.starts_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_urls_resolve_against_the_superproject() {
        let parent = "https://git.example.com/org/app.git";
        assert_eq!(
            resolve_url(parent, "../lib.git"),
            "https://git.example.com/org/lib.git"
        );
        assert_eq!(
            resolve_url(parent, "../../other/lib.git"),
            "https://git.example.com/other/lib.git"
        );
        assert_eq!(
            resolve_url(parent, "./sub"),
            "https://git.example.com/org/app.git/sub"
        );
        assert_eq!(
            resolve_url("/srv/git/app.git", "../lib.git"),
            "/srv/git/lib.git"
        );
        assert_eq!(
            resolve_url(parent, "ssh://git@host/lib.git"),
            "ssh://git@host/lib.git"
        );
    }

    #[test]
    fn local_urls_are_recognised() {
        assert!(is_local("/etc/secret.git"));
        assert!(is_local("file:///srv/r.git"));
        assert!(!is_local("https://h/r.git"));
        assert!(!is_local("git@h:r.git"));
    }
}
