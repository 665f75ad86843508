//! Resolving symlinks inside a snapshot tree without touching the filesystem.

use std::collections::{HashMap, VecDeque};

/// Follows `target` from the directory of `link`, expanding symlinks met on
/// the way, and reports whether it ever steps above the snapshot root.
/// Absolute targets and link loops count as escaping.
pub(crate) fn resolves_outside(link: &str, target: &str, links: &HashMap<&str, String>) -> bool {
    const MAX_HOPS: usize = 40;
    if target.starts_with('/') {
        return true;
    }
    // `owned` is the resolved location so far, starting at the link's directory.
    let mut owned: Vec<String> = link.split('/').map(str::to_string).collect();
    owned.pop();
    let mut pending: VecDeque<String> = target.split('/').map(str::to_string).collect();
    let mut hops = 0;
    while let Some(component) = pending.pop_front() {
        match component.as_str() {
            "" | "." => {}
            ".." => {
                if owned.pop().is_none() {
                    return true;
                }
            }
            name => {
                owned.push(name.to_string());
                if let Some(next) = links.get(owned.join("/").as_str()) {
                    hops += 1;
                    if hops > MAX_HOPS || next.starts_with('/') {
                        return true;
                    }
                    owned.pop();
                    for part in next.split('/').rev() {
                        pending.push_front(part.to_string());
                    }
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(pairs: &[(&'static str, &str)]) -> HashMap<&'static str, String> {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    }

    #[test]
    fn symlink_resolution_stays_inside() {
        let none = links(&[]);
        assert!(!resolves_outside("a/link", "../b", &none));
        assert!(resolves_outside("a/link", "../../b", &none));
        assert!(resolves_outside("link", "/etc/passwd", &none));
        assert!(!resolves_outside("link", "missing/./file", &none));
    }

    #[test]
    fn symlink_through_other_link_is_followed() {
        // `here -> .` is harmless alone, but `up -> here/..` leaves the root.
        let map = links(&[("here", "."), ("up", "here/..")]);
        assert!(resolves_outside("up", "here/..", &map));
        let loop_map = links(&[("a", "b"), ("b", "a")]);
        assert!(resolves_outside("a", "b", &loop_map));
    }
}
