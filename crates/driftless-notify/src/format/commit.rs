//! Commit statuses: GitHub, GitLab and Gitea, with the context
//! `driftless/<app>`.

use driftless_api::NotifierType;
use serde_json::json;

use super::{FormatError, Request};
use crate::event::{CommitState, CommitUpdate, excerpt};
use crate::target::Target;

/// Longest description the hosts keep.
const DESCRIPTION: usize = 140;

pub(super) fn request(target: &Target, update: &CommitUpdate) -> Result<Request, FormatError> {
    let repository = match &target.spec.repository {
        Some(r) => r.clone(),
        None => repository_of(&update.source_url).ok_or_else(|| FormatError::NoRepository {
            url: update.source_url.clone(),
        })?,
    };
    let base = target.url.expose();
    let token = target.token.as_ref().map_or("", |t| t.expose());
    let context = format!("driftless/{}", update.app);
    let description = excerpt(&update.description, DESCRIPTION);
    let sha = &update.sha;
    let (url, headers, mut body) = match target.type_() {
        NotifierType::Gitlab => {
            let state = match update.state {
                CommitState::Pending => "pending",
                CommitState::Success => "success",
                CommitState::Failure => "failed",
            };
            let project = percent_path(&repository);
            (
                format!("{base}/api/v4/projects/{project}/statuses/{sha}"),
                vec![("PRIVATE-TOKEN", token.to_owned())],
                json!({"state": state, "name": context, "description": description}),
            )
        }
        type_ => {
            let state = match update.state {
                CommitState::Pending => "pending",
                CommitState::Success => "success",
                CommitState::Failure => "failure",
            };
            let (url, headers) = if type_ == NotifierType::Gitea {
                (
                    format!("{base}/api/v1/repos/{repository}/statuses/{sha}"),
                    vec![("Authorization", format!("token {token}"))],
                )
            } else {
                (
                    format!("{base}/repos/{repository}/statuses/{sha}"),
                    vec![
                        ("Authorization", format!("Bearer {token}")),
                        ("Accept", "application/vnd.github+json".to_owned()),
                        ("X-GitHub-Api-Version", "2022-11-28".to_owned()),
                    ],
                )
            };
            (
                url,
                headers,
                json!({"state": state, "context": context, "description": description}),
            )
        }
    };
    if let Some(link) = &update.url {
        body["target_url"] = json!(link);
    }
    Ok(Request {
        url,
        headers,
        body: serde_json::to_vec(&body).expect("a JSON value always serialises"),
    })
}

/// `owner/name` (GitLab: `group/sub/project`) of a Git URL: `https://host/o/r.git`,
/// `ssh://git@host:22/o/r`, `git@host:o/r.git`. `None` when it names no path.
pub fn repository_of(url: &str) -> Option<String> {
    let rest = if let Some((_, rest)) = url.split_once("://") {
        rest.split_once('/')?.1
    } else {
        // scp-like: user@host:path
        url.split_once(':')?.1
    };
    let path = rest
        .trim_matches('/')
        .trim_end_matches(".git")
        .trim_end_matches('/');
    (path.contains('/') && !path.is_empty()).then(|| path.to_owned())
}

/// GitLab's project id form: the path with `/` encoded.
fn percent_path(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_come_from_every_url_form() {
        for (url, want) in [
            (
                "https://github.com/acme/platform.git",
                Some("acme/platform"),
            ),
            (
                "https://gitlab.example/group/sub/app",
                Some("group/sub/app"),
            ),
            (
                "ssh://git@github.com:22/acme/platform.git",
                Some("acme/platform"),
            ),
            ("git@github.com:acme/platform.git", Some("acme/platform")),
            ("https://example.com/repo.git", None),
            ("/srv/git/repo", None),
        ] {
            assert_eq!(repository_of(url).as_deref(), want, "{url}");
        }
        assert_eq!(percent_path("group/sub app"), "group%2Fsub%20app");
    }
}
