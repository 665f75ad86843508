//! Which revision of a repository to follow, and how to pick it from a ref list.

use std::fmt;

/// An invalid reference specification.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RefSpecError {
    /// The text has no `kind:` prefix or an unknown kind.
    #[error("ref `{0}`: expected branch:NAME, tag:NAME, semver:RANGE, commit:SHA or name:REF")]
    Syntax(String),
    /// The value after the prefix is empty.
    #[error("ref `{0}`: value after the colon is empty")]
    Empty(String),
    /// A commit id that is not 4 to 40 hex digits.
    #[error("ref `commit:{0}`: a commit must be 4 to 40 hexadecimal digits")]
    BadCommit(String),
    /// A `name:` ref that does not start with `refs/`.
    #[error("ref `name:{0}`: a full ref name must start with refs/")]
    BadName(String),
    /// A semver range that does not parse.
    #[error("ref `semver:{range}`: invalid range: {reason}")]
    BadRange {
        /// The range as given.
        range: String,
        /// What the parser objected to.
        reason: String,
    },
}

/// The revision a source follows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RefSpec {
    /// Tip of a branch (`refs/heads/NAME`).
    Branch(String),
    /// A tag (`refs/tags/NAME`); moving the tag moves the source.
    Tag(String),
    /// Highest tag whose version matches the range, e.g. `>=1.2.0 <2`.
    Semver(String),
    /// An exact commit id (full or abbreviated hex).
    Commit(String),
    /// Any full ref name, e.g. `refs/pull/7/head`.
    Name(String),
}

impl Default for RefSpec {
    fn default() -> Self {
        RefSpec::Branch("main".into())
    }
}

impl RefSpec {
    /// Parses `branch:main`, `tag:v1`, `semver:>=1.0`, `commit:SHA` or `name:refs/...`.
    pub fn parse(s: &str) -> Result<Self, RefSpecError> {
        let (kind, value) = s
            .split_once(':')
            .ok_or_else(|| RefSpecError::Syntax(s.to_string()))?;
        let value = value.trim();
        if value.is_empty() {
            return Err(RefSpecError::Empty(s.to_string()));
        }
        let spec = match kind {
            "branch" => RefSpec::Branch(value.into()),
            "tag" => RefSpec::Tag(value.into()),
            "semver" => {
                parse_range(value)?;
                RefSpec::Semver(value.into())
            }
            "commit" => {
                let ok =
                    (4..=40).contains(&value.len()) && value.chars().all(|c| c.is_ascii_hexdigit());
                if !ok {
                    return Err(RefSpecError::BadCommit(value.into()));
                }
                RefSpec::Commit(value.to_ascii_lowercase())
            }
            "name" => {
                if !value.starts_with("refs/") {
                    return Err(RefSpecError::BadName(value.into()));
                }
                RefSpec::Name(value.into())
            }
            _ => return Err(RefSpecError::Syntax(s.to_string())),
        };
        Ok(spec)
    }
}

impl fmt::Display for RefSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefSpec::Branch(v) => write!(f, "branch:{v}"),
            RefSpec::Tag(v) => write!(f, "tag:{v}"),
            RefSpec::Semver(v) => write!(f, "semver:{v}"),
            RefSpec::Commit(v) => write!(f, "commit:{v}"),
            RefSpec::Name(v) => write!(f, "name:{v}"),
        }
    }
}

/// Parses a range such as `>=1.2.0 <2` or `^1.2, <1.5`.
///
/// Comparators may be separated by spaces (as in npm/Flux) or commas (Cargo).
pub fn parse_range(range: &str) -> Result<semver::VersionReq, RefSpecError> {
    let joined = comparators(range).join(", ");
    semver::VersionReq::parse(&joined).map_err(|e| RefSpecError::BadRange {
        range: range.to_string(),
        reason: e.to_string(),
    })
}

/// The comparators of a range whose comparators are separated by spaces or
/// commas, an operator split from its version (`>= 1.2`) joined back to it.
pub(crate) fn comparators(range: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    let is_operator = |t: &str| t.chars().all(|c| "<>=~^".contains(c));
    for token in range.split([',', ' ']).filter(|t| !t.is_empty()) {
        match parts.last_mut() {
            Some(last) if is_operator(last) => last.push_str(token),
            _ => parts.push(token.to_string()),
        }
    }
    parts
}

/// Parses a tag name as a version, accepting an optional leading `v` and
/// missing minor or patch numbers (`v1.2` is 1.2.0), as Flux does.
pub fn tag_version(tag: &str) -> Option<semver::Version> {
    let bare = tag.strip_prefix('v').unwrap_or(tag);
    if let Ok(v) = semver::Version::parse(bare) {
        return Some(v);
    }
    let core_end = bare.find(['-', '+']).unwrap_or(bare.len());
    let (core, suffix) = bare.split_at(core_end);
    let dots = core.matches('.').count();
    if dots >= 2 || core.is_empty() || !core.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let padded = format!("{core}{}{suffix}", ".0".repeat(2 - dots));
    semver::Version::parse(&padded).ok()
}

/// Picks the tag with the highest version matching `req` among `tags`.
///
/// Pre-releases match only when a comparator of the range names a pre-release
/// of the same major.minor.patch (`>=2.0.0-rc.1`), as Cargo ranges do.
pub fn highest_matching<'a>(
    req: &semver::VersionReq,
    tags: impl IntoIterator<Item = &'a str>,
) -> Option<(&'a str, semver::Version)> {
    tags.into_iter()
        .filter_map(|t| tag_version(t).map(|v| (t, v)))
        .filter(|(_, v)| req.matches(v))
        // On equal versions (v1.0.0 and 1.0.0) prefer the lexically larger name
        // so the choice is stable.
        .max_by(|(ta, a), (tb, b)| a.cmp(b).then_with(|| ta.cmp(tb)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        assert_eq!(
            RefSpec::parse("branch:main"),
            Ok(RefSpec::Branch("main".into()))
        );
        assert_eq!(
            RefSpec::parse("tag:v1.0.0"),
            Ok(RefSpec::Tag("v1.0.0".into()))
        );
        assert_eq!(
            RefSpec::parse("semver:>=1.0"),
            Ok(RefSpec::Semver(">=1.0".into()))
        );
        assert_eq!(
            RefSpec::parse("commit:ABCDEF12"),
            Ok(RefSpec::Commit("abcdef12".into()))
        );
        assert_eq!(
            RefSpec::parse("name:refs/pull/7/head"),
            Ok(RefSpec::Name("refs/pull/7/head".into()))
        );
    }

    #[test]
    fn rejects_bad_specs_with_reason() {
        assert!(matches!(
            RefSpec::parse("main"),
            Err(RefSpecError::Syntax(_))
        ));
        assert!(matches!(
            RefSpec::parse("branch:"),
            Err(RefSpecError::Empty(_))
        ));
        assert!(matches!(
            RefSpec::parse("commit:xyz"),
            Err(RefSpecError::BadCommit(_))
        ));
        assert!(matches!(
            RefSpec::parse("name:pull/7"),
            Err(RefSpecError::BadName(_))
        ));
        let err = RefSpec::parse("semver:>=banana").expect_err("bad range");
        assert!(err.to_string().contains("semver:>=banana"), "{err}");
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "branch:main",
            "tag:v1",
            "semver:>=1.0 <2",
            "commit:abcd",
            "name:refs/x",
        ] {
            let spec = RefSpec::parse(s).expect("valid spec");
            assert_eq!(spec.to_string(), s);
        }
    }

    #[test]
    fn space_separated_ranges() {
        let req = parse_range(">=1.2.0 <2").expect("valid range");
        assert!(req.matches(&semver::Version::new(1, 9, 0)));
        assert!(!req.matches(&semver::Version::new(2, 0, 0)));
        let req = parse_range(">= 1.2.0, < 2").expect("valid range");
        assert!(req.matches(&semver::Version::new(1, 2, 0)));
    }

    #[test]
    fn short_versions_are_padded() {
        assert_eq!(tag_version("v1.2"), Some(semver::Version::new(1, 2, 0)));
        assert_eq!(tag_version("3"), Some(semver::Version::new(3, 0, 0)));
        let rc = tag_version("v2.1-rc.1").expect("pre-release");
        assert_eq!(rc.to_string(), "2.1.0-rc.1");
        assert_eq!(tag_version("release-1"), None);
        assert_eq!(tag_version("1..2"), None);
    }

    #[test]
    fn semver_selection_skips_prereleases_unless_asked() {
        let tags = [
            "v1.0.0",
            "v1.2.0",
            "v1.3.0-rc.1",
            "v2.0.0",
            "not-a-version",
            "1.2.5",
        ];
        let req = parse_range(">=1.0.0 <2").expect("valid range");
        let (tag, _) = highest_matching(&req, tags).expect("a match");
        assert_eq!(tag, "1.2.5");
        let req = parse_range(">=1.3.0-rc.0 <2").expect("valid range");
        let (tag, _) = highest_matching(&req, tags).expect("a match");
        assert_eq!(tag, "v1.3.0-rc.1");
        let req = parse_range(">=3").expect("valid range");
        assert!(highest_matching(&req, tags).is_none());
    }
}
