//! Version ranges as Helm and Flux write them (`>=1.14.0 <1.15.0`, `~1.2`,
//! `^2`, `1.x`, `1.2 - 1.4`, alternatives joined by `||`), matched against
//! tags and chart versions read as semantic versions.

use std::fmt;

use semver::{Version, VersionReq};

/// A parsed range: any one of its alternatives must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRange {
    text: String,
    alternatives: Vec<VersionReq>,
}

impl VersionRange {
    /// Parses `text`; the error says which part is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let alternatives = text
            .split("||")
            .map(alternative)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(VersionRange {
            text: text.trim().to_owned(),
            alternatives,
        })
    }

    /// Whether `version` is in the range.
    pub fn matches(&self, version: &Version) -> bool {
        self.alternatives.iter().any(|req| req.matches(version))
    }

    /// The candidate with the highest version in the range; candidates that
    /// are not versions are skipped.
    pub fn highest<'a>(&self, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
        candidates
            .into_iter()
            .filter_map(|c| parse_version(c).map(|v| (v, c)))
            .filter(|(v, _)| self.matches(v))
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, c)| c)
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A tag or chart version as a semantic version: a leading `v` allowed,
/// missing minor or patch numbers read as zero.
pub fn parse_version(text: &str) -> Option<Version> {
    let text = text.strip_prefix('v').unwrap_or(text);
    if let Ok(v) = Version::parse(text) {
        return Some(v);
    }
    let (core, rest) = match text.find(['-', '+']) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let parts = core.split('.').count();
    let padded = match parts {
        1 => format!("{core}.0.0{rest}"),
        2 => format!("{core}.0{rest}"),
        _ => return None,
    };
    Version::parse(&padded).ok()
}

/// One `||` alternative: comparators separated by spaces or commas, all
/// of which must hold.
fn alternative(text: &str) -> Result<VersionReq, String> {
    let tokens = join_operators(text.split([' ', ',']).filter(|t| !t.is_empty()));
    if tokens.is_empty() {
        return Err(format!("{text:?}: an empty version range"));
    }
    let mut comparators = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens.get(i + 1).map(String::as_str) == Some("-") {
            let upper = tokens
                .get(i + 2)
                .ok_or_else(|| format!("{text:?}: a hyphen range needs an upper bound"))?;
            comparators.push(format!(">={}", tokens[i]));
            comparators.push(format!("<={upper}"));
            i += 3;
            continue;
        }
        comparators.push(comparator(&tokens[i]).map_err(|e| format!("{text:?}: {e}"))?);
        i += 1;
    }
    VersionReq::parse(&comparators.join(", ")).map_err(|e| format!("{text:?}: {e}"))
}

/// Tokens with a lone operator (`>= 1.2`) joined to the version after it.
fn join_operators<'a>(tokens: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut pending = String::new();
    for token in tokens {
        if token.chars().all(|c| "<>=~^!".contains(c)) && token != "-" {
            pending.push_str(token);
            continue;
        }
        out.push(format!("{pending}{token}"));
        pending.clear();
    }
    if !pending.is_empty() {
        out.push(pending);
    }
    out
}

/// One comparator in the syntax of the `semver` crate: a bare version is
/// exact (as in Helm), `v` prefixes dropped, `!=` refused.
fn comparator(token: &str) -> Result<String, String> {
    if token.starts_with("!=") {
        return Err(format!("{token:?}: '!=' is not supported"));
    }
    let op_len = token
        .find(|c: char| !"<>=~^".contains(c))
        .unwrap_or(token.len());
    let (op, version) = token.split_at(op_len);
    let version = version.strip_prefix('v').unwrap_or(version);
    if version.is_empty() {
        return Err(format!("{token:?}: an operator without a version"));
    }
    let wildcard = version == "*" || version.split('.').any(|p| matches!(p, "x" | "X" | "*"));
    let op = if op.is_empty() && !wildcard { "=" } else { op };
    Ok(format!("{op}{version}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(range: &str, tags: &[&'static str]) -> Option<&'static str> {
        VersionRange::parse(range)
            .unwrap()
            .highest(tags.iter().copied())
    }

    #[test]
    fn the_highest_match_of_each_syntax_wins() {
        let tags = [
            "v1.13.9",
            "1.14.0",
            "1.14.5",
            "v1.15.0",
            "2.0.0-rc.1",
            "latest",
            "2.1",
        ];
        assert_eq!(pick(">=1.14.0 <1.15.0", &tags), Some("1.14.5"));
        assert_eq!(pick(">= 1.14.0, < 1.15.0", &tags), Some("1.14.5"));
        assert_eq!(pick("~1.14", &tags), Some("1.14.5"));
        assert_eq!(pick("^1", &tags), Some("v1.15.0"));
        assert_eq!(pick("1.x", &tags), Some("v1.15.0"));
        assert_eq!(pick("*", &tags), Some("2.1"));
        assert_eq!(pick("1.14.0", &tags), Some("1.14.0"));
        assert_eq!(pick("1.0 - 1.14", &tags), Some("1.14.5"));
        assert_eq!(pick("1.0 - 1.13", &tags), Some("v1.13.9"));
        assert_eq!(pick("<1.14.0 || >=2.0.0", &tags), Some("2.1"));
        assert_eq!(pick(">=3", &tags), None);
    }

    #[test]
    fn bad_ranges_say_why() {
        assert!(VersionRange::parse("").unwrap_err().contains("empty"));
        assert!(
            VersionRange::parse("!=1.0.0")
                .unwrap_err()
                .contains("not supported")
        );
        assert!(
            VersionRange::parse(">=")
                .unwrap_err()
                .contains("without a version")
        );
        assert!(VersionRange::parse("banana").is_err());
    }
}
