//! A small deterministic YAML emitter for JSON values, used to render diffs:
//! block style, 2-space indent, sequences at their key's column (as kubectl
//! prints them), keys in object order, multi-line strings as literal blocks.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// Renders one value as a YAML document (without a `---` marker).
pub(crate) fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_mapping(&mut out, map, 0, false),
        Value::Array(items) if !items.is_empty() => write_sequence(&mut out, items, 0, false),
        other => {
            let mut tail = String::new();
            write_scalar_tail(&mut tail, other, 0);
            // The tail starts with the separating space that follows a key.
            out.push_str(tail.trim_start_matches(' '));
        }
    }
    out
}

fn indent(out: &mut String, width: usize) {
    out.extend(std::iter::repeat_n(' ', width));
}

/// `inline_first`: the first key goes on the current line (after `- `).
fn write_mapping(out: &mut String, map: &Map<String, Value>, width: usize, inline_first: bool) {
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 || !inline_first {
            indent(out, width);
        }
        out.push_str(&scalar_string(key));
        out.push(':');
        match value {
            Value::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                write_mapping(out, inner, width + 2, false);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                write_sequence(out, items, width, false);
            }
            scalar => write_scalar_tail(out, scalar, width + 2),
        }
    }
}

fn write_sequence(out: &mut String, items: &[Value], width: usize, inline_first: bool) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !inline_first {
            indent(out, width);
        }
        out.push('-');
        match item {
            Value::Object(inner) if !inner.is_empty() => {
                out.push(' ');
                write_mapping(out, inner, width + 2, true);
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push(' ');
                write_sequence(out, inner, width + 2, true);
            }
            scalar => write_scalar_tail(out, scalar, width + 2),
        }
    }
}

/// Writes ` <scalar>\n`; `block_width` is the indent of literal block lines.
fn write_scalar_tail(out: &mut String, value: &Value, block_width: usize) {
    match value {
        Value::String(s) if literal_block_fits(s) => {
            let (chomp, body) = match s.strip_suffix('\n') {
                Some(rest) if rest.ends_with('\n') => ("+", rest),
                Some(rest) => ("", rest),
                None => ("-", s.as_str()),
            };
            out.push_str(" |");
            out.push_str(chomp);
            out.push('\n');
            for line in body.split('\n') {
                if !line.is_empty() {
                    indent(out, block_width);
                    out.push_str(line);
                }
                out.push('\n');
            }
        }
        Value::String(s) => {
            out.push(' ');
            out.push_str(&scalar_string(s));
            out.push('\n');
        }
        Value::Null => out.push_str(" null\n"),
        Value::Bool(b) => {
            let _ = writeln!(out, " {b}");
        }
        Value::Number(n) => {
            let _ = writeln!(out, " {n}");
        }
        Value::Object(_) => out.push_str(" {}\n"),
        Value::Array(_) => out.push_str(" []\n"),
    }
}

/// Multi-line text reads best as a literal block, when one can hold it exactly.
fn literal_block_fits(s: &str) -> bool {
    s.contains('\n')
        // Blank-only text would lose its line breaks under clip chomping.
        && s.chars().any(|c| !c.is_whitespace())
        && !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
        // A first line starting with blanks would need an indentation indicator.
        && !s
            .split('\n')
            .find(|l| !l.is_empty())
            .is_some_and(|l| l.starts_with([' ', '\t']))
}

/// A string as a plain scalar when that reads back as the same string, else double-quoted.
fn scalar_string(s: &str) -> String {
    if plain_is_safe(s) {
        s.to_owned()
    } else {
        double_quoted(s)
    }
}

fn plain_is_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    // Words YAML 1.1 or 1.2 parsers read as null, booleans, special floats or
    // the 1.1 value and merge keys.
    const RESERVED: &[&str] = &[
        "null", "~", "true", "false", "yes", "no", "y", "n", "on", "off", ".inf", "-.inf", "+.inf",
        ".nan", "=", "<<",
    ];
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(s)) {
        return false;
    }
    // Anything starting like a number (including dates, times, 0x..., 1_000) is quoted:
    // simpler than tracking every numeric form of both YAML versions.
    if first.is_ascii_digit() || (matches!(first, '-' | '+' | '.') && s.len() > 1) {
        let second = s.chars().nth(1).unwrap_or(' ');
        if first.is_ascii_digit() || second.is_ascii_digit() || second == '.' {
            return false;
        }
    }
    // `-` may start a plain scalar when a non-blank follows (`--port=80`).
    let dash_ok = first == '-' && s.len() > 1 && !s[1..].starts_with([' ', '\t']);
    if !dash_ok && "-?:,[]{}#&*!|>'\"%@` \t".contains(first) {
        return false;
    }
    // At the start of a line these would read as document markers.
    if s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    if s.ends_with([' ', '\t', ':']) || s.contains(": ") || s.contains(" #") {
        return false;
    }
    !s.chars().any(|c| c.is_control() || c == '\u{feff}')
}

fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || c == '\u{feff}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn block_style_with_kubectl_sequences() {
        let v = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {}},
            "spec": {"replicas": 2, "paused": false, "x": null, "ports": [],
                "template": {"spec": {"containers": [
                    {"name": "app", "args": ["-v", "--port=80"], "env": [{"name": "A", "value": "1"}]},
                    {"name": "side"}]}},
                "matrix": [[1, 2], [3]]}});
        let expected = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {}
spec:
  replicas: 2
  paused: false
  x: null
  ports: []
  template:
    spec:
      containers:
      - name: app
        args:
        - -v
        - --port=80
        env:
        - name: A
          value: \"1\"
      - name: side
  matrix:
  - - 1
    - 2
  - - 3
";
        assert_eq!(to_yaml(&v), expected);
    }

    #[test]
    fn ambiguous_strings_are_quoted() {
        for s in [
            "",
            "true",
            "No",
            "null",
            "~",
            "123",
            "1.5",
            "-1",
            ".5",
            "0x1f",
            "2024-01-01",
            "a: b",
            "a #b",
            "#x",
            "*alias",
            "&anchor",
            "!tag",
            "{x}",
            "[x]",
            " lead",
            "trail ",
            "key:",
            "@at",
            "%p",
            "`b",
            "- x",
            "-",
            "'q'",
            "\"q\"",
            "?x",
            "|",
            ">",
        ] {
            let out = scalar_string(s);
            assert!(out.starts_with('"'), "{s:?} rendered as {out}");
        }
        for s in [
            "web",
            "apps/v1",
            "a:b",
            "a#b",
            "IfNotPresent",
            "--port=80",
            "-v",
            "it's",
            "x-1",
            "über",
        ] {
            assert_eq!(scalar_string(s), s);
        }
        assert_eq!(scalar_string("tab\there\u{1}"), "\"tab\\there\\u0001\"");
    }

    #[test]
    fn multi_line_strings_use_literal_blocks_with_exact_chomping() {
        let v = json!({"clip": "a\nb\n", "strip": "a\n\nb", "keep": "a\n\n", "indented": "  x\ny", "blank": "\n",
            "list": ["one\ntwo\n"]});
        let expected = "\
clip: |
  a
  b
strip: |-
  a

  b
keep: |+
  a

indented: \"  x\\ny\"
blank: \"\\n\"
list:
- |
  one
  two
";
        assert_eq!(to_yaml(&v), expected);
    }

    #[test]
    fn top_level_scalars_and_empty_collections() {
        assert_eq!(to_yaml(&json!("x")), "x\n");
        assert_eq!(to_yaml(&json!({})), "{}\n");
        assert_eq!(to_yaml(&json!([])), "[]\n");
        assert_eq!(to_yaml(&json!([1, "a"])), "- 1\n- a\n");
    }
}
