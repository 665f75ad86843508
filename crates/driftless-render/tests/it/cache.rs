//! The render cache: reuse while nothing a render read changed, a render on
//! any change to what it read, wherever the checkout lives.

use std::path::Path;
use std::sync::Arc;

use driftless_render::{CacheStats, RenderCache, RenderOptions, Served, Substitution, tree_digest};

use crate::{Repo, config_map};

/// Where the cache's answer for `dir` came from.
fn served(cache: &RenderCache, dir: &Path, opts: &RenderOptions) -> Served {
    cache.get_or_render(dir, opts).expect("render").served
}

#[test]
fn unchanged_reads_are_rendered_once_and_other_changes_do_not_matter() {
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
    assert_eq!(cache.stats().misses, 2);
    // A change the render did not read is no reason to render again.
    repo.write("other/b.yaml", &config_map("b", "1"));
    repo.write("notes.txt", "x");
    assert_eq!(served(&cache, &repo.path("app"), &opts), Served::Memory);
    // A changed file of the directory is.
    repo.write("app/a.yaml", &config_map("a", "2"));
    assert_eq!(served(&cache, &repo.path("app"), &opts), Served::Rendered);
    // So is a new one.
    repo.write("app/c.yaml", &config_map("c", "1"));
    let set = cache
        .get_or_render(&repo.path("app"), &opts)
        .expect("render");
    assert_eq!((set.served, set.set.len()), (Served::Rendered, 2));
}

#[test]
fn a_checkout_elsewhere_with_the_same_reads_reuses_the_set() {
    let (one, two) = (Repo::new(), Repo::new());
    for repo in [&one, &two] {
        repo.write("apps/web/a.yaml", &config_map("web", "1"));
    }
    two.write("apps/api/a.yaml", &config_map("api", "1"));
    let cache = RenderCache::new(4);
    let first = cache
        .get_or_render(&one.path("apps/web"), &one.opts())
        .expect("render");
    assert_eq!(first.served, Served::Rendered);
    let second = cache
        .get_or_render(&two.path("apps/web"), &two.opts())
        .expect("render");
    assert_eq!(second.served, Served::Memory, "another commit's checkout");
    assert!(Arc::ptr_eq(&first.set, &second.set));
    // The directory relative to the root is part of the key.
    assert_eq!(
        served(&cache, &two.path("apps/api"), &two.opts()),
        Served::Rendered
    );
}

#[test]
fn an_overlay_renders_again_when_its_base_changes_and_only_then() {
    let repo = Repo::new();
    repo.write("base/kustomization.yaml", "resources:\n- cm.yaml\n");
    repo.write("base/cm.yaml", &config_map("settings", "1"));
    for env in ["dev", "prod"] {
        repo.write(
            &format!("overlays/{env}/kustomization.yaml"),
            &format!("resources:\n- ../../base\nnamePrefix: {env}-\n"),
        );
    }
    repo.write("apps/other/cm.yaml", &config_map("other", "1"));
    let cache = RenderCache::new(8);
    let opts = repo.opts();
    let dirs = ["overlays/dev", "overlays/prod", "apps/other"];
    for dir in dirs {
        assert_eq!(served(&cache, &repo.path(dir), &opts), Served::Rendered);
    }
    repo.write(
        "overlays/dev/kustomization.yaml",
        "resources:\n- ../../base\nnamePrefix: d-\n",
    );
    let now: Vec<Served> = dirs
        .iter()
        .map(|d| served(&cache, &repo.path(d), &opts))
        .collect();
    assert_eq!(now, [Served::Rendered, Served::Memory, Served::Memory]);
    repo.write("base/cm.yaml", &config_map("settings", "2"));
    let now: Vec<Served> = dirs
        .iter()
        .map(|d| served(&cache, &repo.path(d), &opts))
        .collect();
    assert_eq!(
        now,
        [Served::Rendered, Served::Rendered, Served::Memory],
        "both overlays read the base"
    );
    let set = cache
        .render(&repo.path("overlays/prod"), &opts)
        .expect("render");
    let data = &set.iter().next().expect("one object")["data"]["v"];
    assert_eq!(data, "2");
}

#[test]
fn going_back_to_an_earlier_input_finds_its_set_again() {
    let repo = Repo::new();
    repo.write("app/kustomization.yaml", "resources:\n- a.yaml\n");
    repo.write("app/a.yaml", &config_map("a", "1"));
    repo.write("app/b.yaml", &config_map("b", "1"));
    let cache = RenderCache::new(8);
    let opts = repo.opts();
    assert_eq!(served(&cache, &repo.path("app"), &opts), Served::Rendered);
    // The next revision reads another file; then the first comes back.
    repo.write("app/kustomization.yaml", "resources:\n- a.yaml\n- b.yaml\n");
    assert_eq!(served(&cache, &repo.path("app"), &opts), Served::Rendered);
    repo.write("app/kustomization.yaml", "resources:\n- a.yaml\n");
    assert_eq!(served(&cache, &repo.path("app"), &opts), Served::Memory);
    // b.yaml is not read now, so a change to it is no reason to render.
    repo.write("app/b.yaml", &config_map("b", "2"));
    assert_eq!(served(&cache, &repo.path("app"), &opts), Served::Memory);
}

#[test]
fn a_chart_renders_again_when_it_or_a_values_file_outside_it_changes() {
    let repo = Repo::new();
    repo.write(
        "charts/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 1.0.0\n",
    );
    repo.write("charts/web/values.yaml", "v: default\n");
    repo.write(
        "charts/web/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  v: {{ .Values.v | quote }}\n",
    );
    repo.write("env/prod.yaml", "v: prod\n");
    let mut opts = repo.opts();
    opts.helm.command = Some(crate::helm::helm());
    opts.helm.values_files = vec!["../../env/prod.yaml".into()];
    let cache = RenderCache::new(4);
    let chart = repo.path("charts/web");
    assert_eq!(served(&cache, &chart, &opts), Served::Rendered);
    repo.write("env/dev.yaml", "v: dev\n");
    assert_eq!(served(&cache, &chart, &opts), Served::Memory);
    repo.write("env/prod.yaml", "v: prod-2\n");
    let set = cache.get_or_render(&chart, &opts).expect("render");
    assert_eq!(set.served, Served::Rendered);
    assert_eq!(
        set.set.iter().next().expect("object")["data"]["v"],
        "prod-2"
    );
    repo.write(
        "charts/web/templates/_helpers.tpl",
        "{{- define \"x\" -}}x{{- end -}}\n",
    );
    assert_eq!(
        served(&cache, &chart, &opts),
        Served::Rendered,
        "any file of the chart"
    );
}

#[cfg(feature = "jsonnet")]
#[test]
fn a_jsonnet_import_shadowed_by_a_new_file_renders_again() {
    let repo = Repo::new();
    let lib = |name: &str| {
        format!(
            "{{ cm:: {{ apiVersion: 'v1', kind: 'ConfigMap', metadata: {{ name: '{name}' }} }} }}\n"
        )
    };
    repo.write("apps/web/main.jsonnet", "(import 'k.libsonnet').cm\n");
    repo.write("vendor/k.libsonnet", &lib("from-vendor"));
    let mut opts = repo.opts();
    opts.jsonnet.lib_paths = vec!["vendor".into()];
    let cache = RenderCache::new(4);
    let dir = repo.path("apps/web");
    assert_eq!(served(&cache, &dir, &opts), Served::Rendered);
    repo.write("vendor/other.libsonnet", &lib("unused"));
    assert_eq!(served(&cache, &dir, &opts), Served::Memory);
    // An import is looked for beside the importing file first.
    repo.write("apps/web/k.libsonnet", &lib("from-beside"));
    let set = cache.get_or_render(&dir, &opts).expect("render");
    assert_eq!(set.served, Served::Rendered);
    let name = &set.set.iter().next().expect("object")["metadata"]["name"];
    assert_eq!(name, "from-beside");
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
    let a2 = cache
        .get_or_render(&repo.path("a"), &opts)
        .expect("a again");
    assert_eq!((a.digest(), a2.served), (a2.set.digest(), Served::Disk));
    assert_eq!(
        cache.stats(),
        CacheStats {
            memory_hits: 0,
            disk_hits: 1,
            misses: 2
        }
    );

    // A new cache (a restart) reads both what was read and what was rendered.
    let fresh = RenderCache::new(4).with_disk(disk.path().join("render"));
    let b = fresh
        .get_or_render(&repo.path("b"), &opts)
        .expect("b from disk");
    assert_eq!(b.served, Served::Disk);
    assert_eq!(
        b.set.iter().next().expect("object")["metadata"]["name"],
        "b"
    );

    // A corrupted entry is a miss, not an error.
    for entry in std::fs::read_dir(disk.path().join("render")).expect("entries") {
        std::fs::write(entry.expect("entry").path(), "{not json").expect("corrupt");
    }
    let fresh = RenderCache::new(4).with_disk(disk.path().join("render"));
    assert_eq!(served(&fresh, &repo.path("a"), &opts), Served::Rendered);
    assert_eq!(fresh.stats().misses, 1);
}

#[test]
fn old_disk_entries_are_collected_unless_in_use() {
    let repo = Repo::new();
    let disk = tempfile::tempdir().expect("temp dir");
    repo.write("a/x.yaml", &config_map("a", "x"));
    let opts = repo.opts();
    let cache = RenderCache::new(4).with_disk(disk.path().join("render"));
    cache.render(&repo.path("a"), &opts).expect("a");
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(cache.gc_disk(hour), 0, "fresh entries stay");
    assert_eq!(
        cache.gc_disk(std::time::Duration::ZERO),
        0,
        "entries in memory are in use"
    );
    // A cache that holds nothing in memory collects the set and its reads.
    let other = RenderCache::new(4).with_disk(disk.path().join("render"));
    assert_eq!(other.gc_disk(std::time::Duration::ZERO), 2);
    // Still served from memory; a new cache renders again.
    assert_eq!(served(&cache, &repo.path("a"), &opts), Served::Memory);
    let fresh = RenderCache::new(4).with_disk(disk.path().join("render"));
    assert_eq!(served(&fresh, &repo.path("a"), &opts), Served::Rendered);
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
