//! A resolved revision: which commit a ref pointed to, and who made it.

use std::fmt;
use std::path::Path;

use crate::git::{Git, GitError};

/// Failure to read commit metadata from the cache repository.
#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    /// git could not show the commit.
    #[error("reading commit {sha}: {source}")]
    Show {
        /// The commit id.
        sha: String,
        /// What git said.
        source: GitError,
    },
    /// git printed fewer fields than requested.
    #[error("reading commit {sha}: unexpected `git show` output")]
    Malformed {
        /// The commit id.
        sha: String,
    },
}

/// A person and time from a commit header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Name as recorded in the commit.
    pub name: String,
    /// E-mail address as recorded in the commit.
    pub email: String,
    /// Time in strict ISO 8601 form, e.g. `2024-05-01T12:00:00+02:00`.
    pub time: String,
}

/// A commit that a [`crate::RefSpec`] resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// Label of the ref: branch or tag name, full ref name, or empty for a commit.
    pub reference: String,
    /// Full commit id (40 hex digits).
    pub sha: String,
    /// Id of the annotated tag object when the ref is an annotated tag.
    pub tag_object: Option<String>,
    /// Commit author.
    pub author: Signature,
    /// Commit committer.
    pub committer: Signature,
    /// First line of the commit message.
    pub subject: String,
    /// Rest of the commit message after the blank line, possibly empty.
    pub body: String,
}

impl Revision {
    /// Commit date (the committer time), ISO 8601.
    pub fn date(&self) -> &str {
        &self.committer.time
    }

    /// Full commit message: subject, blank line, body.
    pub fn message(&self) -> String {
        if self.body.is_empty() {
            self.subject.clone()
        } else {
            format!("{}\n\n{}", self.subject, self.body)
        }
    }

    /// Reads the metadata of `sha` from the repository at `repo`.
    pub fn read(repo: &Path, reference: &str, sha: &str) -> Result<Revision, RevisionError> {
        let format = "--format=%H%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%s%x00%b";
        let out = Git::in_dir(repo)
            .run(&[
                "show",
                "-s",
                "--no-show-signature",
                format,
                &format!("{sha}^{{commit}}"),
                "--",
            ])
            .map_err(|source| RevisionError::Show {
                sha: sha.to_string(),
                source,
            })?;
        let fields: Vec<&str> = out.splitn(9, '\0').collect();
        let [full, an, ae, at, cn, ce, ct, subject, body] = fields[..] else {
            return Err(RevisionError::Malformed {
                sha: sha.to_string(),
            });
        };
        let person = |name: &str, email: &str, time: &str| Signature {
            name: name.to_string(),
            email: email.to_string(),
            time: time.to_string(),
        };
        Ok(Revision {
            reference: reference.to_string(),
            sha: full.trim().to_string(),
            tag_object: None,
            author: person(an, ae, at),
            committer: person(cn, ce, ct),
            subject: subject.to_string(),
            body: body.trim_end().to_string(),
        })
    }
}

/// `<ref>@sha1:<sha>`, or `sha1:<sha>` for a bare commit, as Flux prints it.
impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reference.is_empty() {
            write!(f, "sha1:{}", self.sha)
        } else {
            write!(f, "{}@sha1:{}", self.reference, self.sha)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(reference: &str) -> Revision {
        let who = Signature {
            name: "A".into(),
            email: "a@example.com".into(),
            time: "2024-01-01T00:00:00+00:00".into(),
        };
        Revision {
            reference: reference.into(),
            sha: "0123456789abcdef0123456789abcdef01234567".into(),
            tag_object: None,
            author: who.clone(),
            committer: who,
            subject: "Add web".into(),
            body: "Details.".into(),
        }
    }

    #[test]
    fn display_matches_flux_form() {
        assert_eq!(
            sample("main").to_string(),
            "main@sha1:0123456789abcdef0123456789abcdef01234567"
        );
        assert_eq!(
            sample("").to_string(),
            "sha1:0123456789abcdef0123456789abcdef01234567"
        );
        assert_eq!(sample("v1").message(), "Add web\n\nDetails.");
    }
}
