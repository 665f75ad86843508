//! Random trees of directories, files and symlinks (to anywhere: absolute,
//! `..`, loops) and a random path to resolve in them: whatever
//! `confine::confine` returns must lie inside the repository root, and a
//! path that really resolves outside must be refused.
//!
//! Input: one operation a line, `d PATH` (directory), `f PATH` (file),
//! `l PATH TARGET` (symlink), all below the repository root; the last line is
//! `q BASE REL`, the path to resolve (`BASE` below the root).
#![no_main]

use std::path::{Component, Path};

use driftless_kustomize::confine::confine;
use driftless_kustomize_fuzz::Scratch;
use libfuzzer_sys::fuzz_target;

thread_local! {
    static SCRATCH: Scratch = Scratch::new("confine");
}

/// Trees stay small so each input runs in well under a millisecond.
const MAX_OPS: usize = 24;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if text.contains('\0') {
        return;
    }
    let lines: Vec<&str> = text.lines().collect();
    let Some((query, ops)) = lines.split_last() else {
        return;
    };
    let Some(("q", rest)) = query.split_once(' ') else {
        return;
    };
    let (base, rel) = rest.split_once(' ').unwrap_or((rest, ""));
    SCRATCH.with(|scratch| {
        let top = scratch
            .write(&[("outside-secret", b"secret".as_slice())])
            .to_path_buf();
        let root = top.join("repo");
        std::fs::create_dir(&root).expect("repository root");
        let root = root.canonicalize().expect("canonical root");
        for op in ops.iter().take(MAX_OPS) {
            build(&root, op);
        }
        if !base.is_empty() && !stays_below(Path::new(base)) {
            return;
        }
        let base = root.join(base);
        let joined = base.join(rel);
        if let Ok(real) = confine(&root, &base, Path::new(rel)) {
            assert!(real.starts_with(&root), "{joined:?} resolved to {real:?}");
            // Whatever exists of the result is its own real path.
            if let Ok(again) = real.canonicalize() {
                assert_eq!(again, real, "{joined:?} resolved to a non-canonical path");
            }
        }
        // The kernel's own resolution never leads outside without a refusal.
        if let Ok(kernel) = joined.canonicalize()
            && !kernel.starts_with(&root)
        {
            assert!(
                confine(&root, &base, Path::new(rel)).is_err(),
                "{joined:?} really is {kernel:?}, outside, but was accepted"
            );
        }
    });
});

/// Applies one tree-building operation below `root`. Only link targets may
/// point anywhere: a path whose parent does not really lie inside the root
/// (through a link made earlier) is skipped, and nothing follows a final link,
/// so no input writes outside the scratch directory.
fn build(root: &Path, op: &str) {
    let mut parts = op.splitn(3, ' ');
    let (Some(kind), Some(path)) = (parts.next(), parts.next()) else {
        return;
    };
    if !stays_below(Path::new(path)) {
        return;
    }
    let at = root.join(path);
    let parent_inside = at
        .parent()
        .and_then(|p| p.canonicalize().ok())
        .is_some_and(|p| p.starts_with(root));
    if !parent_inside {
        return;
    }
    // Failures (a name taken, a parent that is a file) are part of the game.
    let _ = match kind {
        "d" => std::fs::create_dir(&at),
        "f" => std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&at)
            .map(drop),
        "l" => std::os::unix::fs::symlink(parts.next().unwrap_or(""), &at),
        _ => Ok(()),
    };
}

/// True for a non-empty relative path with no `..`.
fn stays_below(path: &Path) -> bool {
    path.components().next().is_some()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}
