//! A base object and a strategic-merge patch from structured input, applied
//! through `build` with a `patches:` entry (the merge itself is private).
#![no_main]

use driftless_kustomize::{Options, build};
use driftless_kustomize_fuzz::{Scratch, split};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

thread_local! {
    static SCRATCH: Scratch = Scratch::new("strategic_merge");
}

const KUSTOMIZATION: &[u8] = b"resources:\n- base.json\npatches:\n- path: patch.json\n";

/// Parses `bytes` as JSON, falling back to a string so every input counts.
fn body(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// An object of `kind` (a built-in kind keeps the merge-key schema in play)
/// named `app`, with the fuzzed body as its `spec`.
fn object(kind: &str, spec: Value) -> Value {
    let mut map = Map::new();
    map.insert("apiVersion".into(), Value::String(api_version(kind).into()));
    map.insert("kind".into(), Value::String(kind.into()));
    map.insert("metadata".into(), serde_json::json!({"name": "app"}));
    map.insert("spec".into(), spec);
    Value::Object(map)
}

fn api_version(kind: &str) -> &'static str {
    match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" => "apps/v1",
        "Pod" | "Service" => "v1",
        _ => "example.com/v1",
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let kind = ["Deployment", "Pod", "Service", "StatefulSet", "Widget"][usize::from(selector) % 5];
    let parts = split(rest, b"\n%%%\n", 2);
    let base = object(kind, body(&parts[0]));
    let patch = object(kind, body(parts.get(1).map_or(&[][..], Vec::as_slice)));
    let (Ok(base), Ok(patch)) = (serde_json::to_vec(&base), serde_json::to_vec(&patch)) else {
        return;
    };
    SCRATCH.with(|scratch| {
        let dir = scratch.write(&[
            ("kustomization.yaml", KUSTOMIZATION),
            ("base.json", &base),
            ("patch.json", &patch),
        ]);
        if let Ok(list) = build(dir, &Options::default()) {
            let _ = list.to_yaml();
        }
    });
});
