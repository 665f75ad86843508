//! How strings are written: the exact text kustomize v5.5.0 prints for
//! strings that look like other types or need a scalar style of their own
//! (the driftless-kustomize corpus checks the same against the real binary),
//! and that an independent YAML reader reads every one back unchanged.

use driftless_yaml::{emit_document, parse_documents};
use serde_json::{Value, json};

fn emit(value: &Value) -> String {
    emit_document(value).expect("emit")
}

/// Reads YAML with a parser that shares no scalar resolution with this crate.
fn read_independently(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("reading back: {e}\n{text}"))
}

#[test]
fn values_that_look_like_other_types_are_quoted() {
    let cases = [
        ("true", r#""true""#),
        ("False", r#""False""#),
        ("yes", r#""yes""#),
        ("Off", r#""Off""#),
        ("y", r#""y""#),
        ("null", r#""null""#),
        ("~", r#""~""#),
        ("", r#""""#),
        ("123", r#""123""#),
        ("-1.5", r#""-1.5""#),
        ("1e3", r#""1e3""#),
        ("0x1F", r#""0x1F""#),
        ("0o17", r#""0o17""#),
        ("0755", r#""0755""#),
        ("1_000", r#""1_000""#),
        ("12:30", r#""12:30""#),
        ("2024-01-31", r#""2024-01-31""#),
        (".inf", r#"".inf""#),
        (".Inf", r#"".Inf""#),
        ("+.INF", r#""+.INF""#),
        ("-.inf", r#""-.inf""#),
        (".nan", r#"".nan""#),
        (".NaN", r#"".NaN""#),
        (".NAN", r#"".NAN""#),
        // Not spellings of a YAML float: they stay plain.
        (".inF", ".inF"),
        ("-.nan", "-.nan"),
        ("inf", "inf"),
        ("Infinity", "Infinity"),
        ("1-2", "1-2"),
    ];
    for (value, written) in cases {
        assert_eq!(
            emit(&json!({ "k": value })),
            format!("k: {written}\n"),
            "{value:?}"
        );
    }
}

#[test]
fn values_needing_a_scalar_style_get_the_one_go_yaml_picks() {
    let cases = [
        (" lead", "' lead'\n"),
        ("trail ", "'trail '\n"),
        ("a: b", "'a: b'\n"),
        ("a #b", "'a #b'\n"),
        ("#c", "'#c'\n"),
        ("- x", "'- x'\n"),
        ("'q'", "'''q'''\n"),
        ("--flag", "--flag\n"),
        ("it's", "it's\n"),
        ("a:b", "a:b\n"),
        ("tab\tin", "\"tab\\tin\"\n"),
        ("bell\u{7}", "\"bell\\a\"\n"),
        ("line\nbreak", "|-\n  line\n  break\n"),
        ("ends\n", "|\n  ends\n"),
        ("two\n\n", "|+\n  two\n\n"),
        ("  indented\nblock", "|2-\n    indented\n  block\n"),
        ("space \nbreak", "\"space \\nbreak\"\n"),
        ("crlf\r\n", "\"crlf\\r\\n\"\n"),
    ];
    for (value, written) in cases {
        assert_eq!(
            emit(&json!({ "k": value })),
            format!("k: {written}"),
            "{value:?}"
        );
    }
}

#[test]
fn keys_are_quoted_like_values() {
    let cases = [
        ("yes", r#""yes": 1"#),
        ("y", r#""y": 1"#),
        ("123", r#""123": 1"#),
        (".inf", r#"".inf": 1"#),
        ("-.Inf", r#""-.Inf": 1"#),
        ("null", r#""null": 1"#),
        ("", r#""": 1"#),
        ("#hash", "'#hash': 1"),
        ("key with spaces", "key with spaces: 1"),
        ("key:colon", "key:colon: 1"),
        ("a: b", "'a: b': 1"),
        (" lead", "' lead': 1"),
        ("tab\tkey", "\"tab\\tkey\": 1"),
        // Plain, the merge key would merge the value when read back.
        ("<<", r#""<<": 1"#),
        ("=", "=: 1"),
    ];
    for (key, written) in cases {
        assert_eq!(emit(&json!({ key: 1 })), format!("{written}\n"), "{key:?}");
    }
}

#[test]
fn long_and_multi_line_keys_are_explicit() {
    let longest = "k".repeat(128);
    let too_long = "k".repeat(129);
    let value = json!({
        longest.clone(): 1,
        too_long.clone(): "scalar",
        "two\nlines": [1, {"k": "v"}],
        "map\nvalue": {"b": 1, "a": [1]},
        "ends\n": "two\nlines",
        "crlf\r\nkey": true,
        "list": [{too_long.clone(): 1, "z": 2}],
    });
    // `ends\n` as a key keeps its clipped break (`|`); the value is stripped (`|-`).
    let expected = format!(
        "? \"crlf\\r\\nkey\"\n: true\n\
         ? |\n  ends\n: |-\n  two\n  lines\n\
         {longest}: 1\n\
         ? {too_long}\n: scalar\n\
         list:\n- ? {too_long}\n  : 1\n  z: 2\n\
         ? |-\n  map\n  value\n: a:\n  - 1\n  b: 1\n\
         ? |-\n  two\n  lines\n: - 1\n  - k: v\n"
    );
    let text = emit(&value);
    assert_eq!(text, expected);
    assert_eq!(read_independently(&text), value);
    assert_eq!(parse_documents(&text, "keys").expect("parse"), vec![value]);
}

#[test]
fn awkward_strings_read_back_unchanged() {
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
        "-.inf",
        "+.Inf",
        ".NaN",
        ".NAN",
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
    let long = "word ".repeat(40);
    for s in strings.into_iter().chain([long.as_str()]) {
        for value in [json!({ s: s }), json!([s]), json!({"nested": {s: [s]}})] {
            let text = emit(&value);
            assert_eq!(read_independently(&text), value, "{s:?} as\n{text}");
            let own = parse_documents(&text, "emitted").expect("parse");
            assert_eq!(own, vec![value], "{s:?} as\n{text}");
        }
    }
}

#[test]
fn nesting_and_scalars_read_back_unchanged() {
    let value = json!({
        "empty_map": {}, "empty_list": [], "null": null, "t": true, "f": false,
        "int": -42, "big": 9_007_199_254_740_993_u64, "float": 0.25,
        "nested": [[[1]], [{"a": [{"b": {}}]}], {"c": [[], {}]}],
        "script": "#!/bin/sh\nset -e\n  echo \"hi\"\n",
    });
    assert_eq!(read_independently(&emit(&value)), value);
}
