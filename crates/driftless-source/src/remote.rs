//! Listing a remote's refs (one ref advertisement) and resolving a [`RefSpec`].

use std::time::Duration;

use crate::auth::Tls;
use crate::git::{Git, GitError};
use crate::refspec::{self, RefSpec};

/// Failure to list refs or to find the requested one.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The server rejected the credentials.
    #[error("{url}: authentication failed: {detail}")]
    Authentication {
        /// The remote URL.
        url: String,
        /// What git reported.
        detail: String,
    },
    /// The SSH host key is unknown or does not match known_hosts.
    #[error("{url}: host key verification failed (check known_hosts): {detail}")]
    HostKey {
        /// The remote URL.
        url: String,
        /// What git reported.
        detail: String,
    },
    /// The server's TLS certificate is not trusted.
    #[error("{url}: TLS certificate not trusted (check the CA bundle): {detail}")]
    Tls {
        /// The remote URL.
        url: String,
        /// What git reported.
        detail: String,
    },
    /// The repository does not exist or the server cannot be reached.
    #[error("{url}: repository not reachable: {detail}")]
    Unreachable {
        /// The remote URL.
        url: String,
        /// What git reported.
        detail: String,
    },
    /// The ref does not exist on the remote.
    #[error("{url}: ref {spec} not found")]
    RefNotFound {
        /// The remote URL.
        url: String,
        /// The requested ref.
        spec: String,
    },
    /// An abbreviated commit id that names no single advertised tip.
    #[error(
        "{url}: abbreviated commit {sha} is not a branch or tag tip (or is ambiguous); \
         give the full 40-digit id"
    )]
    ShortCommit {
        /// The remote URL.
        url: String,
        /// The abbreviated id.
        sha: String,
    },
    /// No tag matches the semver range.
    #[error("{url}: no tag matches semver range `{range}` ({tags} version tags seen)")]
    NoSemverMatch {
        /// The remote URL.
        url: String,
        /// The requested range.
        range: String,
        /// How many tags parsed as versions.
        tags: usize,
    },
    /// The semver range is invalid.
    #[error("{url}: {source}")]
    Range {
        /// The remote URL.
        url: String,
        /// Why the range is invalid.
        source: refspec::RefSpecError,
    },
}

impl RemoteError {
    /// The same error naming `url` (used to show a redacted URL).
    pub fn with_url(self, shown: &str) -> RemoteError {
        let url = shown.to_string();
        match self {
            RemoteError::Authentication { detail, .. } => {
                RemoteError::Authentication { url, detail }
            }
            RemoteError::HostKey { detail, .. } => RemoteError::HostKey { url, detail },
            RemoteError::Tls { detail, .. } => RemoteError::Tls { url, detail },
            RemoteError::Unreachable { detail, .. } => RemoteError::Unreachable { url, detail },
            RemoteError::RefNotFound { spec, .. } => RemoteError::RefNotFound { url, spec },
            RemoteError::ShortCommit { sha, .. } => RemoteError::ShortCommit { url, sha },
            RemoteError::NoSemverMatch { range, tags, .. } => {
                RemoteError::NoSemverMatch { url, range, tags }
            }
            RemoteError::Range { source, .. } => RemoteError::Range { url, source },
        }
    }
}

/// One advertised ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRef {
    /// Full ref name, e.g. `refs/heads/main`.
    pub name: String,
    /// Object the ref points to (a tag object for annotated tags).
    pub target: String,
    /// Commit an annotated tag peels to.
    pub peeled: Option<String>,
}

impl RemoteRef {
    /// The commit this ref ultimately names.
    pub fn commit(&self) -> &str {
        self.peeled.as_deref().unwrap_or(&self.target)
    }
}

/// A ref spec resolved against a remote's advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Label shown in the revision (`main`, `v1.2.0`, `refs/pull/7/head`, empty for commits).
    pub label: String,
    /// What to ask the server for: a full ref name or a commit id.
    pub want: String,
    /// The commit, when the advertisement told us (always, except commit specs).
    pub commit: Option<String>,
    /// Annotated tag object id, if any.
    pub tag_object: Option<String>,
}

/// Turns git's stderr for a failed remote operation into a typed error.
pub fn classify(url: &str, err: &GitError) -> RemoteError {
    let detail = match err {
        GitError::Failed { stderr, .. } => condense(stderr),
        other => other.to_string(),
    };
    let lower = detail.to_ascii_lowercase();
    let url = url.to_string();
    if lower.contains("host key verification failed")
        || lower.contains("remote host identification has changed")
        || lower.contains("no ed25519 host key is known")
    {
        RemoteError::HostKey { url, detail }
    } else if lower.contains("ssl certificate problem")
        || lower.contains("certificate verification failed")
        || lower.contains("unable to get local issuer")
    {
        RemoteError::Tls { url, detail }
    } else if lower.contains("authentication failed")
        || lower.contains("permission denied")
        || lower.contains("returned error: 401")
        || lower.contains("returned error: 403")
        || lower.contains("could not read username")
        || lower.contains("incorrect passphrase")
    {
        RemoteError::Authentication { url, detail }
    } else {
        RemoteError::Unreachable { url, detail }
    }
}

/// git's stderr on one line, without its generic advice.
pub fn condense(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("Please make sure you have the correct access")
                && *l != "and the repository exists."
                && *l != "fatal: Could not read from remote repository."
        })
        .map(|l| l.strip_prefix("fatal: ").unwrap_or(l))
        .collect();
    lines.join("; ")
}

/// Lists the remote's refs needed to resolve `spec`.
///
/// `--heads`/`--tags` make git send a ref prefix to protocol-v2 servers, so a
/// branch poll transfers the branch list rather than every ref.
///
/// `http(s)://` and `git://` remotes are first asked in-process (see
/// [`crate::advertise`]), within `timeout`.
pub fn list(
    git: &Git,
    url: &str,
    spec: &RefSpec,
    authorization: Option<&str>,
    tls: &Tls,
    timeout: Duration,
) -> Result<Vec<RemoteRef>, RemoteError> {
    if let Some(refs) = crate::advertise::list(url, spec, authorization, tls, timeout)? {
        return Ok(refs);
    }
    // Patterns match ref names exactly; the `^{}` form brings the peeled
    // commit of an annotated tag along.
    let (pattern, peeled);
    let mut args = vec!["ls-remote"];
    match spec {
        RefSpec::Branch(b) => {
            pattern = format!("refs/heads/{b}");
            args.extend(["--heads", "--", url, &pattern]);
        }
        RefSpec::Tag(t) => {
            pattern = format!("refs/tags/{t}");
            peeled = format!("{pattern}^{{}}");
            args.extend(["--tags", "--", url, &pattern, &peeled]);
        }
        RefSpec::Semver(_) => args.extend(["--tags", "--", url]),
        RefSpec::Name(n) => {
            peeled = format!("{n}^{{}}");
            args.extend(["--", url, n.as_str(), &peeled]);
        }
        RefSpec::Commit(_) => args.extend(["--", url]),
    }
    let out = git.run(&args).map_err(|e| classify(url, &e))?;
    Ok(parse_ls_remote(&out))
}

/// Parses `git ls-remote` output, folding `^{}` peeled lines into their tag.
pub fn parse_ls_remote(out: &str) -> Vec<RemoteRef> {
    let mut refs: Vec<RemoteRef> = Vec::new();
    for line in out.lines() {
        let Some((sha, name)) = line.split_once('\t') else {
            continue;
        };
        if let Some(base) = name.strip_suffix("^{}") {
            if let Some(r) = refs.iter_mut().find(|r| r.name == base) {
                r.peeled = Some(sha.to_string());
            }
            continue;
        }
        refs.push(RemoteRef {
            name: name.to_string(),
            target: sha.to_string(),
            peeled: None,
        });
    }
    refs
}

/// Resolves `spec` against the advertised `refs`.
pub fn resolve(url: &str, spec: &RefSpec, refs: &[RemoteRef]) -> Result<Resolved, RemoteError> {
    let exact = |name: &str| refs.iter().find(|r| r.name == name);
    let not_found = || RemoteError::RefNotFound {
        url: url.to_string(),
        spec: spec.to_string(),
    };
    let from_ref = |label: &str, r: &RemoteRef| Resolved {
        label: label.to_string(),
        want: r.name.clone(),
        commit: Some(r.commit().to_string()),
        tag_object: r.peeled.as_ref().map(|_| r.target.clone()),
    };
    match spec {
        RefSpec::Branch(b) => exact(&format!("refs/heads/{b}"))
            .map(|r| from_ref(b, r))
            .ok_or_else(not_found),
        RefSpec::Tag(t) => exact(&format!("refs/tags/{t}"))
            .map(|r| from_ref(t, r))
            .ok_or_else(not_found),
        RefSpec::Name(n) => exact(n).map(|r| from_ref(n, r)).ok_or_else(not_found),
        RefSpec::Semver(range) => {
            let req = refspec::parse_range(range).map_err(|source| RemoteError::Range {
                url: url.to_string(),
                source,
            })?;
            let tags: Vec<&str> = refs
                .iter()
                .filter_map(|r| r.name.strip_prefix("refs/tags/"))
                .collect();
            let versions = tags
                .iter()
                .filter(|t| refspec::tag_version(t).is_some())
                .count();
            let (tag, _) =
                refspec::highest_matching(&req, tags.iter().copied()).ok_or_else(|| {
                    RemoteError::NoSemverMatch {
                        url: url.to_string(),
                        range: range.clone(),
                        tags: versions,
                    }
                })?;
            let r = exact(&format!("refs/tags/{tag}")).ok_or_else(not_found)?;
            Ok(from_ref(tag, r))
        }
        RefSpec::Commit(sha) => {
            // A full id is fetched directly; an abbreviated one must name an advertised tip.
            let full = if sha.len() == 40 {
                sha.clone()
            } else {
                let mut tips: Vec<&str> = refs
                    .iter()
                    .map(RemoteRef::commit)
                    .filter(|c| c.starts_with(sha.as_str()))
                    .collect();
                tips.sort_unstable();
                tips.dedup();
                match tips[..] {
                    [one] => one.to_string(),
                    _ => {
                        return Err(RemoteError::ShortCommit {
                            url: url.to_string(),
                            sha: sha.clone(),
                        });
                    }
                }
            };
            Ok(Resolved {
                label: String::new(),
                want: full.clone(),
                commit: Some(full),
                tag_object: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LS: &str = "1111111111111111111111111111111111111111\trefs/heads/main\n\
        2222222222222222222222222222222222222222\trefs/tags/v1.0.0\n\
        3333333333333333333333333333333333333333\trefs/tags/v1.0.0^{}\n\
        4444444444444444444444444444444444444444\trefs/tags/v1.1.0\n";

    #[test]
    fn peeled_tags_fold_into_their_ref() {
        let refs = parse_ls_remote(LS);
        assert_eq!(refs.len(), 3);
        assert_eq!(refs[1].commit(), "3333333333333333333333333333333333333333");
        let r = resolve("u", &RefSpec::Tag("v1.0.0".into()), &refs).expect("tag exists");
        assert_eq!(
            r.tag_object.as_deref(),
            Some("2222222222222222222222222222222222222222")
        );
    }

    #[test]
    fn classifies_git_errors() {
        let failed = |stderr: &str| GitError::Failed {
            args: "ls-remote".into(),
            status: "exit status: 128".into(),
            stderr: stderr.into(),
        };
        let auth = classify(
            "u",
            &failed("fatal: unable to access 'u': The requested URL returned error: 403"),
        );
        assert!(matches!(auth, RemoteError::Authentication { .. }), "{auth}");
        let other = classify(
            "u",
            &failed("fatal: remote error: upload-pack: not our ref 4013c0ffee"),
        );
        assert!(matches!(other, RemoteError::Unreachable { .. }), "{other}");
        let tls = classify(
            "u",
            &failed(
                "fatal: unable to access 'u': SSL certificate problem: unable to get local issuer certificate",
            ),
        );
        assert!(matches!(tls, RemoteError::Tls { .. }), "{tls}");
    }

    #[test]
    fn resolves_semver_and_abbreviated_commit() {
        let refs = parse_ls_remote(LS);
        let r = resolve("u", &RefSpec::Semver("^1".into()), &refs).expect("a match");
        assert_eq!(r.label, "v1.1.0");
        let r = resolve("u", &RefSpec::Commit("1111".into()), &refs).expect("tip");
        assert_eq!(r.want, "1111111111111111111111111111111111111111");
        let err = resolve("u", &RefSpec::Commit("2222".into()), &refs).expect_err("not a tip");
        assert!(
            err.to_string().contains("give the full 40-digit id"),
            "{err}"
        );
        let err = resolve("u", &RefSpec::Branch("dev".into()), &refs).expect_err("missing");
        assert_eq!(err.to_string(), "u: ref branch:dev not found");
    }
}
