//! The render cache: hits on unchanged input, misses on any change.

use std::sync::Arc;

use driftless_render::{CacheStats, RenderCache, Substitution, tree_digest};

use crate::{Repo, config_map};

#[test]
fn unchanged_input_is_rendered_once() {
    let repo = Repo::new();
    repo.write("app/a.yaml", &config_map("a", "${V:=1}"));
    let cache = RenderCache::new(4);
    let opts = repo.opts();
    let first = cache.render(&repo.path("app"), &opts).expect("render");
    let again = cache.render(&repo.path("app"), &opts).expect("render");
    assert!(Arc::ptr_eq(&first, &again));
    assert_eq!(
        cache.stats(),
        CacheStats {
            memory_hits: 1,
            disk_hits: 0,
            misses: 1
        }
    );

    // Other options are another entry.
    let mut with_subst = opts.clone();
    with_subst.substitute = Some(Substitution::default());
    let subst = cache
        .render(&repo.path("app"), &with_subst)
        .expect("render");
    assert_ne!(first.digest(), subst.digest());
    // Any change under the root, even outside the directory, is a miss.
    repo.write("other/b.txt", "x");
    cache.render(&repo.path("app"), &opts).expect("render");
    assert_eq!(cache.stats().misses, 3);
}

#[test]
fn lru_evicts_and_disk_survives_a_new_cache() {
    let repo = Repo::new();
    let disk = tempfile::tempdir().expect("temp dir");
    repo.write("a/x.yaml", &config_map("a", "x"));
    repo.write("b/x.yaml", &config_map("b", "x"));
    let cache = RenderCache::new(1).with_disk(disk.path().join("render"));
    let opts = repo.opts();
    let a = cache.render(&repo.path("a"), &opts).expect("a");
    cache.render(&repo.path("b"), &opts).expect("b");
    // `a` was evicted from memory but is on disk.
    let a2 = cache.render(&repo.path("a"), &opts).expect("a again");
    assert_eq!(a.digest(), a2.digest());
    assert_eq!(
        cache.stats(),
        CacheStats {
            memory_hits: 0,
            disk_hits: 1,
            misses: 2
        }
    );

    let fresh = RenderCache::new(4).with_disk(disk.path().join("render"));
    let b = fresh.render(&repo.path("b"), &opts).expect("b from disk");
    assert_eq!(fresh.stats().disk_hits, 1);
    assert_eq!(b.iter().next().expect("object")["metadata"]["name"], "b");

    // A corrupted entry is a miss, not an error.
    for entry in std::fs::read_dir(disk.path().join("render")).expect("entries") {
        std::fs::write(entry.expect("entry").path(), "{not json").expect("corrupt");
    }
    let fresh = RenderCache::new(4).with_disk(disk.path().join("render"));
    fresh.render(&repo.path("a"), &opts).expect("re-render");
    assert_eq!(fresh.stats().misses, 1);
}

#[test]
fn old_disk_entries_are_collected() {
    let repo = Repo::new();
    let disk = tempfile::tempdir().expect("temp dir");
    repo.write("a/x.yaml", &config_map("a", "x"));
    let opts = repo.opts();
    let cache = RenderCache::new(4).with_disk(disk.path().join("render"));
    cache.render(&repo.path("a"), &opts).expect("a");
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(cache.gc_disk(hour), 0, "a fresh entry stays");
    assert_eq!(cache.gc_disk(std::time::Duration::ZERO), 1);
    // Still served from memory; a new cache renders again.
    cache.render(&repo.path("a"), &opts).expect("a from memory");
    assert_eq!(cache.stats().memory_hits, 1);
    let fresh = RenderCache::new(4).with_disk(disk.path().join("render"));
    fresh.render(&repo.path("a"), &opts).expect("a again");
    assert_eq!(fresh.stats().misses, 1);
    // A cache without a disk has nothing to collect.
    assert_eq!(RenderCache::new(4).gc_disk(std::time::Duration::ZERO), 0);
}

#[test]
fn tree_digest_covers_names_content_and_links() {
    let repo = Repo::new();
    repo.write("d/a.yaml", "x");
    let one = tree_digest(repo.root()).expect("digest");
    assert_eq!(one, tree_digest(repo.root()).expect("digest"));
    repo.write("d/a.yaml", "y");
    let two = tree_digest(repo.root()).expect("digest");
    assert_ne!(one, two);
    std::fs::rename(repo.path("d/a.yaml"), repo.path("d/b.yaml")).expect("rename");
    let three = tree_digest(repo.root()).expect("digest");
    assert_ne!(two, three);
    repo.write(".git/HEAD", "ref: refs/heads/main");
    assert_eq!(three, tree_digest(repo.root()).expect("digest"));
}
