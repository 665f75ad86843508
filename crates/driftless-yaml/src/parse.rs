//! YAML stream parsing into JSON-like values, resolving plain scalars the way
//! kustomize's YAML library does (YAML 1.2 core schema plus 1.1 octals and
//! date timestamps).

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

use super::YamlError;

/// Most nested collections accepted in one document.
const MAX_DEPTH: usize = 200;
/// Most nodes an alias expansion may produce per stream (guards "billion laughs").
const MAX_ALIAS_NODES: usize = 100_000;
/// Largest input accepted, in bytes.
pub const MAX_INPUT_BYTES: usize = 64 * 1024 * 1024;

/// Parses a multi-document YAML (or JSON) stream. Empty documents are skipped.
pub fn parse_documents(text: &str, origin: &str) -> Result<Vec<Value>, YamlError> {
    parse_documents_with(text, origin, false)
}

/// Like [`parse_documents`], but the way kustomization files are read: a
/// repeated mapping key replaces the earlier value instead of failing, and
/// YAML 1.1 booleans (`yes`, `no`, `on`, `off`, `y`, `n`) are booleans.
pub fn parse_documents_lenient(text: &str, origin: &str) -> Result<Vec<Value>, YamlError> {
    parse_documents_with(text, origin, true)
}

fn parse_documents_with(
    text: &str,
    origin: &str,
    allow_duplicates: bool,
) -> Result<Vec<Value>, YamlError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(YamlError::TooLarge {
            origin: origin.to_string(),
            limit: MAX_INPUT_BYTES,
        });
    }
    let mut builder = Builder {
        origin,
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        alias_budget: MAX_ALIAS_NODES,
        allow_duplicates,
        yaml11_bools: allow_duplicates,
        open_end: (!text.is_empty() && !text.ends_with('\n')).then(|| text.chars().count()),
    };
    builder.stream()
}

struct Builder<'a> {
    origin: &'a str,
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    anchors: HashMap<usize, Value>,
    alias_budget: usize,
    allow_duplicates: bool,
    yaml11_bools: bool,
    /// The length in characters of a text that ends without a line break: a
    /// block scalar running to that end has no final line break to keep.
    open_end: Option<usize>,
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), YamlError> {
        match self.parser.next() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(YamlError::Syntax {
                origin: self.origin.to_string(),
                line: e.marker().line(),
                column: e.marker().col() + 1,
                message: e.info().to_string(),
            }),
            None => Ok((Event::StreamEnd, Span::default())),
        }
    }

    fn stream(&mut self) -> Result<Vec<Value>, YamlError> {
        let mut docs = Vec::new();
        loop {
            let (ev, span) = self.next()?;
            match ev {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::StreamEnd => return Ok(docs),
                Event::DocumentStart(_) => {
                    let (ev, span) = self.next()?;
                    if matches!(ev, Event::DocumentEnd) {
                        continue;
                    }
                    let value = self.node(ev, span, 0)?;
                    if !value.is_null() {
                        docs.push(value);
                    }
                }
                other => {
                    let value = self.node(other, span, 0)?;
                    if !value.is_null() {
                        docs.push(value);
                    }
                }
            }
        }
    }

    fn error(&self, span: Span, message: impl Into<String>) -> YamlError {
        YamlError::Syntax {
            origin: self.origin.to_string(),
            line: span.start.line(),
            column: span.start.col() + 1,
            message: message.into(),
        }
    }

    fn node(&mut self, ev: Event<'a>, span: Span, depth: usize) -> Result<Value, YamlError> {
        if depth > MAX_DEPTH {
            return Err(self.error(span, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        match ev {
            Event::Scalar(mut text, style, anchor, tag) => {
                let block = matches!(style, ScalarStyle::Literal | ScalarStyle::Folded);
                if block && self.open_end.is_some_and(|end| span.end.index() >= end) {
                    // The parser reads the end of the text as a line break; YAML
                    // (and kustomize) keep none that is not there.
                    if let Some(kept) = text.strip_suffix('\n') {
                        text = kept.to_owned().into();
                    }
                }
                let tag = tag.map(|t| t.suffix.clone());
                let typed = match tag.as_deref() {
                    None => style == ScalarStyle::Plain,
                    Some(t) => t == "float",
                };
                if typed && is_non_finite(&text) {
                    return Err(self.error(span, non_finite_message(&text)));
                }
                let mut value = resolve_scalar(&text, style, tag.as_deref());
                if self.yaml11_bools && style == ScalarStyle::Plain && tag.is_none() {
                    value = match text.as_ref() {
                        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Value::Bool(true),
                        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
                            Value::Bool(false)
                        }
                        _ => value,
                    };
                }
                if anchor > 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                Ok(value)
            }
            Event::Alias(id) => {
                let Some(value) = self.anchors.get(&id).cloned() else {
                    return Err(self.error(span, "unknown anchor"));
                };
                let cost = count_nodes(&value);
                if cost > self.alias_budget {
                    return Err(self.error(span, "alias expansion exceeds the size limit"));
                }
                self.alias_budget -= cost;
                Ok(value)
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (ev, span) = self.next()?;
                    match ev {
                        Event::SequenceEnd => break,
                        Event::StreamEnd => return Err(self.error(span, "unterminated sequence")),
                        ev => items.push(self.node(ev, span, depth + 1)?),
                    }
                }
                let value = Value::Array(items);
                if anchor > 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                Ok(value)
            }
            Event::MappingStart(anchor, _) => {
                let value = Value::Object(self.mapping(depth)?);
                if anchor > 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                Ok(value)
            }
            _ => Err(self.error(span, "unexpected YAML event")),
        }
    }

    fn mapping(&mut self, depth: usize) -> Result<Map<String, Value>, YamlError> {
        let mut map = Map::new();
        let mut merged: Vec<Map<String, Value>> = Vec::new();
        loop {
            let (ev, span) = self.next()?;
            let is_merge =
                matches!(&ev, Event::Scalar(t, ScalarStyle::Plain, _, None) if t == "<<");
            let key = match ev {
                Event::MappingEnd => break,
                Event::StreamEnd => return Err(self.error(span, "unterminated mapping")),
                ev => self.node(ev, span, depth + 1)?,
            };
            let (ev, vspan) = self.next()?;
            let value = self.node(ev, vspan, depth + 1)?;
            if is_merge {
                match value {
                    Value::Object(m) => merged.push(m),
                    Value::Array(items) => {
                        merged.extend(items.into_iter().filter_map(|v| match v {
                            Value::Object(m) => Some(m),
                            _ => None,
                        }))
                    }
                    _ => return Err(self.error(vspan, "map merge requires a mapping")),
                }
                continue;
            }
            // Kubernetes objects are JSON: keys must be strings (kustomize
            // fails on other keys when it converts to JSON).
            let Value::String(key) = key else {
                return Err(self.error(
                    span,
                    format!("mapping key {} is not a string", key_string(&key)),
                ));
            };
            if map.contains_key(&key) && !self.allow_duplicates {
                return Err(self.error(span, format!("mapping key \"{key}\" already defined")));
            }
            map.insert(key, value);
        }
        for m in merged {
            for (k, v) in m {
                map.entry(k).or_insert(v);
            }
        }
        Ok(map)
    }
}

fn count_nodes(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(count_nodes).sum::<usize>(),
        Value::Object(m) => 1 + m.values().map(count_nodes).sum::<usize>(),
        _ => 1,
    }
}

/// Renders a mapping key as the string kustomize would use.
fn key_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

/// Resolves one scalar to a typed value.
fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&str>) -> Value {
    match tag {
        Some("str") => return Value::String(text.to_string()),
        Some("binary") => {
            use base64::Engine as _;
            let compact: String = text.split_whitespace().collect();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(compact.as_bytes())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            return Value::String(decoded.unwrap_or_else(|| text.to_string()));
        }
        Some("null") => return Value::Null,
        _ => {}
    }
    if style != ScalarStyle::Plain && tag.is_none() {
        return Value::String(text.to_string());
    }
    resolve_plain(text)
}

/// The spellings go-yaml v3 reads as infinity or NaN. JSON (and so every
/// Kubernetes object) has no such numbers: kustomize fails on them, and a
/// string with this text must be quoted to stay a string.
pub(crate) fn is_non_finite(text: &str) -> bool {
    matches!(
        text,
        ".inf"
            | ".Inf"
            | ".INF"
            | "+.inf"
            | "+.Inf"
            | "+.INF"
            | "-.inf"
            | "-.Inf"
            | "-.INF"
            | ".nan"
            | ".NaN"
            | ".NAN"
    )
}

fn non_finite_message(text: &str) -> String {
    format!(
        "{text} is a YAML float (infinity or NaN) that JSON cannot hold; \
         quote it (\"{text}\") to keep it as text"
    )
}

/// Resolves a plain scalar following go-yaml v3's rules.
pub fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if first.is_ascii_digit() || first == b'-' || first == b'+' {
        if let Some(ts) = parse_date(text) {
            return Value::String(ts);
        }
        let plain: String = text.chars().filter(|c| *c != '_').collect();
        if let Some(n) = parse_go_int(text) {
            return Value::Number(n);
        }
        if is_yaml_float(&plain)
            && let Ok(f) = plain.parse::<f64>()
            && let Some(n) = Number::from_f64(f)
        {
            return Value::Number(n);
        }
        let (neg, rest) = match plain.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, plain.strip_prefix('+').unwrap_or(&plain)),
        };
        for (prefix, radix) in [("0b", 2), ("0o", 8)] {
            if let Some(digits) = rest.strip_prefix(prefix)
                && let Ok(v) = i64::from_str_radix(digits, radix)
            {
                return Value::Number(Number::from(if neg { -v } else { v }));
            }
        }
    } else if first == b'.'
        && let Ok(f) = text.parse::<f64>()
        && !text.contains(['i', 'I', 'n', 'N'])
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(text.to_string())
}

/// Parses an integer the way Go's `strconv.ParseInt(s, 0, 64)` does (with
/// underscores between digits, base prefixes, and leading-zero octal).
fn parse_go_int(text: &str) -> Option<Number> {
    let (neg, body) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if body.is_empty() {
        return None;
    }
    let (radix, digits) = if let Some(d) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        (16, d)
    } else if let Some(d) = body.strip_prefix("0o").or(body.strip_prefix("0O")) {
        (8, d)
    } else if let Some(d) = body.strip_prefix("0b").or(body.strip_prefix("0B")) {
        (2, d)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    // Underscores are only allowed between digits (or right after a prefix).
    if digits.is_empty() || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    if radix == 10 && digits.starts_with('_') {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() {
        return None;
    }
    let magnitude = u64::from_str_radix(&clean, radix).ok()?;
    if neg {
        if magnitude <= i64::MAX as u64 + 1 {
            return Some(Number::from((magnitude as i128).wrapping_neg() as i64));
        }
        return None;
    }
    if magnitude <= i64::MAX as u64 {
        Some(Number::from(magnitude as i64))
    } else {
        Some(Number::from(magnitude))
    }
}

/// Matches `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Date-only timestamps (`2001-12-14`) become RFC 3339 strings, as they do when
/// kustomize round-trips them through JSON.
fn parse_date(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split('-').collect();
    if parts.len() != 3 || parts[0].len() != 4 {
        return None;
    }
    let valid = |p: &str| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit());
    if !parts[0].bytes().all(|b| b.is_ascii_digit()) || !valid(parts[1]) || !valid(parts[2]) {
        return None;
    }
    let month: u32 = parts[1].parse().ok()?;
    let day: u32 = parts[2].parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(format!("{}-{month:02}-{day:02}T00:00:00Z", parts[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_scalar_ending_the_text_has_no_line_break_the_text_lacks() {
        let parse = |text: &str| parse_documents(text, "t.yaml").expect("parses")[0].clone();
        assert_eq!(parse("a: |\n  x\n  y")["a"], "x\ny");
        assert_eq!(parse("a: |\n  x\n  y\n")["a"], "x\ny\n");
        assert_eq!(parse("a: >\n  x\n  y")["a"], "x y");
        // Only the scalar that runs to the end loses it.
        let both = parse("a: |\n  x\nb: |\n  y");
        assert_eq!(
            (both["a"].clone(), both["b"].clone()),
            ("x\n".into(), "y".into())
        );
    }

    #[test]
    fn plain_scalars_resolve_like_go_yaml_v3() {
        assert_eq!(resolve_plain("012"), Value::from(10));
        assert_eq!(resolve_plain("0x1F"), Value::from(31));
        assert_eq!(resolve_plain("1_000"), Value::from(1000));
        assert_eq!(resolve_plain("+12"), Value::from(12));
        assert_eq!(resolve_plain("0o17"), Value::from(15));
        assert_eq!(resolve_plain("yes"), Value::from("yes"));
        assert_eq!(resolve_plain("1.5"), Value::from(1.5));
        assert_eq!(resolve_plain("09"), Value::from(9.0));
        assert_eq!(
            resolve_plain("2001-12-14"),
            Value::from("2001-12-14T00:00:00Z")
        );
        assert_eq!(resolve_plain("~"), Value::Null);
        assert_eq!(resolve_plain("1-2"), Value::from("1-2"));
    }

    #[test]
    fn infinity_and_nan_are_refused_unless_quoted() {
        for text in [".inf", "-.Inf", "+.INF", ".nan", ".NaN", "!!float .inf"] {
            let doc = format!("key: {text}\n");
            let err = parse_documents(&doc, "floats.yaml").expect_err(text);
            assert!(
                err.to_string().starts_with("floats.yaml:1:6: ")
                    && err.to_string().contains("quote it"),
                "{err}"
            );
            let key = format!("{text}: value\n");
            assert!(parse_documents_lenient(&key, "key.yaml").is_err(), "{key}");
        }
        let quoted = parse_documents(
            "a: \".inf\"\nb: '-.nan'\nc: !!str .NaN\nd: .inF\ne: inf\n",
            "ok.yaml",
        )
        .expect("quoted and other spellings are strings");
        assert_eq!(
            quoted,
            vec![
                serde_json::json!({"a": ".inf", "b": "-.nan", "c": ".NaN", "d": ".inF", "e": "inf"})
            ]
        );
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse_documents(&text, "bomb.yaml").expect_err("bomb must fail");
        assert!(err.to_string().contains("bomb.yaml"), "{err}");
    }

    #[test]
    fn oversized_input_is_refused() {
        let text = " ".repeat(MAX_INPUT_BYTES + 1);
        let err = parse_documents(&text, "huge.yaml").expect_err("too large");
        assert!(err.to_string().contains("huge.yaml"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("{}{}", "[".repeat(500), "]".repeat(500));
        assert!(parse_documents(&text, "deep.yaml").is_err());
    }
}
