//! `parse_stream` on arbitrary text, then a round trip of what parsed:
//! emitted YAML must parse back to the same objects and emit identically.
#![no_main]

use std::path::Path;

use driftless_kustomize::{parse_stream, to_yaml_stream};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Whether any key or string holds U+0085, which the emitter folds like a
/// line break on purpose (kustomize does the same), so values may change.
fn has_next_line(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\u{85}'),
        Value::Array(items) => items.iter().any(has_next_line),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.contains('\u{85}') || has_next_line(v)),
        _ => false,
    }
}

/// Equality up to what the emitter changes on purpose, as kustomize does:
/// key order (keys are sorted) and number form (a float with an integral
/// value prints as an integer, the way Go formats it).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let origin = Path::new("fuzz.yaml");
    let Ok(objects) = parse_stream(text, origin) else {
        return;
    };
    let Ok(emitted) = to_yaml_stream(&objects) else {
        return;
    };
    let reparsed = parse_stream(&emitted, origin)
        .unwrap_or_else(|e| panic!("emitted YAML does not parse: {e}\n{emitted}"));
    if objects.iter().any(has_next_line) {
        // Folding can also reorder keys; kustomize itself rejects such keys.
        return;
    }
    let unchanged =
        objects.len() == reparsed.len() && objects.iter().zip(&reparsed).all(|(a, b)| same(a, b));
    assert!(
        unchanged,
        "round trip changed the objects:\n{emitted}\n{objects:?}\n{reparsed:?}"
    );
    let again = to_yaml_stream(&reparsed)
        .unwrap_or_else(|e| panic!("re-emitting parsed output failed: {e}\n{emitted}"));
    assert_eq!(emitted, again, "emitting is not stable");
});
