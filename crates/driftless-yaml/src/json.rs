//! Strings as Go's `encoding/json` writes them, for outputs and digests that
//! must equal the Go tools' byte for byte (kustomize's generator hashes,
//! sops' JSON files).

/// Appends `s` quoted and escaped as Go (1.22 and later) escapes it: HTML-safe
/// (`<`, `>`, `&`, U+2028, U+2029 as `\uXXXX`), `\b` and `\f` in short form,
/// other control characters as `\u00XX`.
pub fn write_go_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_as_go_escapes_them() {
        let mut out = String::new();
        write_go_json_string("a\"b\\c\n\t\u{8}\u{c}\u{1}<&>\u{2028}é", &mut out);
        assert_eq!(out, r#""a\"b\\c\n\t\b\f\u0001\u003c\u0026\u003e\u2028é""#);
    }
}
