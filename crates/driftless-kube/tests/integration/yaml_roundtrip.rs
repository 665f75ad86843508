//! The diff's YAML emitter checked against an independent YAML parser: what it
//! writes must read back as the same value.

use driftless_kube::diff::to_yaml;
use serde_json::{Value, json};

use crate::support::{conformance_dir, load_yaml, parse_yaml};

fn assert_round_trip(value: &Value) {
    let text = to_yaml(value);
    assert_eq!(
        &parse_yaml(&text, "emitted YAML"),
        value,
        "round trip changed the value:\n{text}"
    );
}

#[test]
fn awkward_strings_round_trip() {
    let strings = [
        "",
        " ",
        "true",
        "False",
        "yes",
        "NO",
        "on",
        "null",
        "~",
        "123",
        "-1",
        "+1",
        "1.5",
        ".5",
        "1e3",
        "0x1F",
        "0o17",
        "017",
        "1_000",
        "12:30",
        "2024-01-01",
        "2024-01-01T00:00:00Z",
        ".inf",
        ".NaN",
        "a: b",
        "a:b",
        "a #b",
        "a#b",
        "#c",
        "- x",
        "-",
        "--flag",
        "-v",
        "?q",
        ":",
        "key:",
        "[x]",
        "{x}",
        "a,b",
        "*ref",
        "&anchor",
        "!tag",
        "|",
        ">",
        "%dir",
        "@at",
        "`tick",
        "'single'",
        "\"double\"",
        "it's",
        "back\\slash",
        "tab\tin",
        "trail ",
        " lead",
        "line\nbreak",
        "ends\n",
        "two\n\n",
        "\n",
        "\nleading",
        "  indented\nblock",
        "crlf\r\n",
        "bell\u{7}",
        "\u{feff}bom",
        "ünïcödé ✓",
        "emoji 🚀",
        "x\n  more indented\ny\n",
        "# not a comment\nline",
        "---",
        "...",
        "--- x",
        "=",
        "<<",
    ];
    for s in strings {
        assert_round_trip(&json!({ s: s }));
        assert_round_trip(&json!([s]));
    }
}

#[test]
fn nesting_and_scalars_round_trip() {
    let value = json!({
        "empty_map": {}, "empty_list": [], "null": null, "t": true, "f": false,
        "int": -42, "big": 9_007_199_254_740_993_u64, "float": 0.25,
        "nested": [[[1]], [{"a": [{"b": {}}]}], {"c": [[], {}]}],
        "script": "#!/bin/sh\nset -e\n  echo \"hi\"\n",
    });
    assert_round_trip(&value);
}

#[test]
fn conformance_objects_round_trip() {
    let Some(dir) = conformance_dir() else {
        return;
    };
    let dir = dir.join("cases");
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    let mut count = 0;
    for entry in entries {
        let path = entry.expect("directory entry").path();
        assert_round_trip(&load_yaml(&path));
        count += 1;
    }
    assert!(count >= 44, "only {count} objects in {}", dir.display());
}
