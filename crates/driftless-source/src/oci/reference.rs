//! `oci://` references: a registry, a repository in it, and a tag or a digest.

use std::fmt;

use super::OciError;

/// A parsed `oci://host[:port]/repository[:tag][@sha256:...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host` or `host:port`.
    pub registry: String,
    /// The repository path inside the registry (`team/app`).
    pub repository: String,
    /// The tag, when one was given.
    pub tag: Option<String>,
    /// The manifest digest (`sha256:<64 hex>`), when one was given.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses `url`; the error names it and says what is wrong.
    pub fn parse(url: &str) -> Result<Self, OciError> {
        let bad = |detail: &str| OciError::Reference {
            url: url.to_owned(),
            detail: detail.to_owned(),
        };
        let rest = url
            .strip_prefix("oci://")
            .ok_or_else(|| bad("it does not start with oci://"))?;
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("it names no repository after the registry"))?;
        if registry.is_empty() || !registry.chars().all(registry_char) {
            return Err(bad("the registry is not a host name with an optional port"));
        }
        let (path, digest) = match path.split_once('@') {
            Some((path, digest)) => (path, Some(digest)),
            None => (path, None),
        };
        if let Some(digest) = digest {
            check_digest(digest).map_err(|detail| bad(&detail))?;
        }
        let last = path.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match path[last..].find(':') {
            Some(i) => (&path[..last + i], Some(&path[last + i + 1..])),
            None => (path, None),
        };
        if !repository.split('/').all(valid_component) {
            return Err(bad(
                "the repository must be lowercase path components of letters and digits \
                 joined by '.', '_', '__' or '-'",
            ));
        }
        if tag.is_some_and(|tag| !valid_tag(tag)) {
            return Err(bad(
                "the tag must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'",
            ));
        }
        Ok(Reference {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        })
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Self {
        Reference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        }
    }

    /// The repository alone, `oci://registry/repository`.
    pub fn repository_url(&self) -> String {
        format!("oci://{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repository_url())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn registry_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')
}

/// A repository path component as the distribution spec defines it.
fn valid_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(&bytes[0]) || !alnum(&bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(&bytes[i]) {
            i += 1;
            continue;
        }
        // A separator: '.', '_', '__' or a run of '-', between alphanumerics.
        let sep_start = i;
        while i < bytes.len() && !alnum(&bytes[i]) {
            i += 1;
        }
        let sep = &part[sep_start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-')) {
            return false;
        }
    }
    true
}

fn valid_tag(tag: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    !tag.is_empty() && tag.len() <= 128 && !tag.starts_with(['.', '-']) && tag.chars().all(ok)
}

/// Checks a `sha256:<64 lowercase hex>` digest, the only algorithm accepted.
pub(crate) fn check_digest(digest: &str) -> Result<(), String> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("digest {digest:?} is not a sha256 digest"))?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "digest {digest:?} is not sha256: and 64 lowercase hex digits"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_splits_into_registry_repository_tag_and_digest() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("oci://127.0.0.1:5000/team/app:v1.2.0@{d}"))
            .expect("test step");
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("v1.2.0"));
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(
            r.to_string(),
            format!("oci://127.0.0.1:5000/team/app:v1.2.0@{d}")
        );
        let plain = Reference::parse("oci://ghcr.io/org/manifests").expect("test step");
        assert_eq!((plain.tag, plain.digest), (None, None));
        assert_eq!(plain.repository, "org/manifests");
    }

    #[test]
    fn bad_references_are_refused_with_the_reason() {
        for (url, why) in [
            ("https://ghcr.io/a/b", "oci://"),
            ("oci://ghcr.io", "no repository"),
            ("oci://ghcr.io/Team/app", "lowercase"),
            ("oci://ghcr.io/a//b", "lowercase"),
            ("oci://ghcr.io/a/b:-x", "tag"),
            ("oci://ghcr.io/a/b@sha256:abc", "64 lowercase hex"),
            ("oci://ghcr.io/a/b@md5:abc", "not a sha256"),
        ] {
            let e = Reference::parse(url).expect_err("must fail").to_string();
            assert!(e.contains(url) && e.contains(why), "{url}: {e}");
        }
    }
}
