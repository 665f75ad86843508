//! Field-level checks shared by the kinds, and "did you mean" suggestions.

use std::fmt;

/// A problem with one field of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// Dotted path such as `spec.ref` or `spec.render.helm.valuesFiles[0]`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl FieldProblem {
    /// A problem at `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Longest DNS-1123 label.
const DNS_LABEL_MAX: usize = 63;

/// Why `name` is not a DNS-1123 label, if it is not.
pub fn dns_label_error(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".to_owned());
    }
    if name.len() > DNS_LABEL_MAX {
        return Some(format!(
            "{name:?} is longer than {DNS_LABEL_MAX} characters"
        ));
    }
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let alnum_ends = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid_chars || !alnum_ends {
        return Some(format!(
            "{name:?} is not a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit)"
        ));
    }
    None
}

/// Records a problem when `value` is not a DNS-1123 label.
pub fn check_dns_label(field: &str, value: &str, problems: &mut Vec<FieldProblem>) {
    if let Some(message) = dns_label_error(value) {
        problems.push(FieldProblem::new(field, message));
    }
}

/// Records a problem when `value` is not a path inside the source: absolute
/// paths and `..` that climbs out would read files the App does not own.
pub fn check_relative_path(field: &str, value: &str, problems: &mut Vec<FieldProblem>) {
    if value.starts_with('/') || value.starts_with('\\') {
        problems.push(FieldProblem::new(
            field,
            format!("{value:?} must be relative to the source root"),
        ));
        return;
    }
    let mut depth: i64 = 0;
    for part in value.split('/') {
        match part {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            problems.push(FieldProblem::new(
                field,
                format!("{value:?} leaves the source root"),
            ));
            return;
        }
    }
}

/// URL schemes a GitSource can fetch.
const URL_SCHEMES: [&str; 5] = ["https://", "http://", "ssh://", "git://", "file://"];

/// Records a problem when `value` is not a Git URL driftless can fetch.
pub fn check_url(field: &str, value: &str, problems: &mut Vec<FieldProblem>) {
    if value.trim().is_empty() {
        problems.push(FieldProblem::new(field, "must not be empty"));
        return;
    }
    if let Some(scheme) = URL_SCHEMES.iter().find(|s| value.starts_with(**s)) {
        if value.len() == scheme.len() {
            problems.push(FieldProblem::new(
                field,
                format!("{value:?} names no host or path"),
            ));
        }
        return;
    }
    // scp-like syntax: user@host:path, with no scheme.
    let scp_like = value
        .split_once(':')
        .is_some_and(|(host, path)| !host.is_empty() && !host.contains('/') && !path.is_empty());
    if !scp_like {
        problems.push(FieldProblem::new(
            field,
            format!("{value:?} is not a Git URL (expected https://, ssh://, git://, file:// or user@host:path)"),
        ));
    }
}

/// The candidate closest to `word` when it is close enough to be a typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `" (did you mean \"x\"?)"` or nothing.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    suggest(word, candidates)
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default()
}

/// Levenshtein distance, counting a swap of neighbours as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        prev2 = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        assert_eq!(dns_label_error("web-prod"), None);
        assert_eq!(dns_label_error("a1"), None);
        for bad in ["Web", "-a", "a-", "a_b", "a.b", ""] {
            assert!(dns_label_error(bad).is_some(), "{bad}");
        }
        assert!(dns_label_error(&"a".repeat(64)).is_some());
        assert_eq!(dns_label_error(&"a".repeat(63)), None);
    }

    #[test]
    fn relative_paths() {
        let mut p = Vec::new();
        for ok in ["", ".", "./apps/web", "apps/../base", "a/b/"] {
            check_relative_path("spec.path", ok, &mut p);
        }
        assert_eq!(p, vec![]);
        check_relative_path("spec.path", "/etc", &mut p);
        check_relative_path("spec.path", "apps/../../x", &mut p);
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[1].to_string(),
            "spec.path: \"apps/../../x\" leaves the source root"
        );
    }

    #[test]
    fn urls() {
        let mut p = Vec::new();
        for ok in [
            "https://h/r.git",
            "ssh://git@h/r",
            "git@github.com:org/r.git",
            "file:///srv/r",
        ] {
            check_url("spec.url", ok, &mut p);
        }
        assert_eq!(p, vec![]);
        for bad in ["github.com/org/repo", "https://", "", "/srv/repo"] {
            check_url("spec.url", bad, &mut p);
        }
        assert_eq!(p.len(), 4, "{p:?}");
    }

    #[test]
    fn suggestions() {
        let fields = ["interval", "url", "ref", "secretRef", "timeout"];
        assert_eq!(suggest("intervl", fields), Some("interval"));
        assert_eq!(suggest("secretref", fields), Some("secretRef"));
        assert_eq!(suggest("refs", fields), Some("ref"));
        assert_eq!(suggest("branch", fields), None);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(
            did_you_mean("Ap", ["App", "Cluster"]),
            " (did you mean \"App\"?)"
        );
    }
}
