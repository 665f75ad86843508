//! A YAML emitter whose output matches go-yaml v3 marshalling a Go map, which
//! is what kustomize prints: keys in go-yaml's natural order, block style,
//! sequences not indented under their key, 80-column folding of long scalars.

use std::cmp::Ordering;
use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

use super::YamlError;
use super::scalar::{Analysis, needs_quotes};

const BEST_WIDTH: usize = 80;

/// Emits one document (without a `---` separator).
pub fn emit_document(value: &Value) -> Result<String, YamlError> {
    let mut e = Emitter {
        out: String::new(),
        column: 0,
    };
    match value {
        Value::Object(m) if !m.is_empty() => e.map(m, 0, false)?,
        Value::Array(a) if !a.is_empty() => e.seq(a, 0, false)?,
        other => {
            // go-yaml indents a document-root scalar like a mapping value
            // (two columns); block scalar lines at column 0 would not parse.
            e.scalar_value(other, 2, false)?;
            e.end_line();
        }
    }
    Ok(e.out)
}

struct Emitter {
    out: String,
    column: usize,
}

/// The scalar styles go-yaml chooses between.
#[derive(Clone, Copy, PartialEq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

impl Emitter {
    fn push(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn push_str(&mut self, s: &str) {
        self.out.push_str(s);
        self.column += s.chars().count();
    }

    fn newline(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    /// Ends the current line unless a block scalar already did.
    fn end_line(&mut self) {
        if self.column > 0 {
            self.newline();
        }
    }

    fn indent(&mut self, n: usize) {
        if self.column > 0 {
            self.newline();
        }
        for _ in 0..n {
            self.push(' ');
        }
    }

    fn map(
        &mut self,
        m: &Map<String, Value>,
        indent: usize,
        inline: bool,
    ) -> Result<(), YamlError> {
        let mut keys: Vec<&String> = m.keys().collect();
        keys.sort_by(|a, b| natural_cmp(a, b));
        for (i, key) in keys.into_iter().enumerate() {
            if i > 0 || !inline {
                self.indent(indent);
            }
            let value = &m[key.as_str()];
            if !is_simple_key(key) {
                self.complex_entry(key, value, indent)?;
                continue;
            }
            if key == MERGE_KEY {
                // Plain, it would read back as a merge of the value.
                self.double(key, indent + 2, false);
            } else {
                self.string(key, indent + 2, true);
            }
            self.push(':');
            match value {
                Value::Object(child) if !child.is_empty() => {
                    self.newline();
                    self.map(child, indent + 2, false)?;
                }
                Value::Array(items) if !items.is_empty() => {
                    self.newline();
                    self.seq(items, indent, false)?;
                }
                other => {
                    self.push(' ');
                    self.scalar_value(other, indent + 2, false)?;
                    self.end_line();
                }
            }
        }
        Ok(())
    }

    /// An entry whose key cannot be an implicit key: `? key` on its own
    /// line(s), then `: value` with a collection value starting on that line.
    fn complex_entry(&mut self, key: &str, value: &Value, indent: usize) -> Result<(), YamlError> {
        self.push_str("? ");
        self.string(key, indent + 2, false);
        self.indent(indent);
        self.push_str(": ");
        match value {
            Value::Object(child) if !child.is_empty() => self.map(child, indent + 2, true),
            Value::Array(items) if !items.is_empty() => self.seq(items, indent + 2, true),
            other => {
                self.scalar_value(other, indent + 2, false)?;
                self.end_line();
                Ok(())
            }
        }
    }

    fn seq(&mut self, items: &[Value], indent: usize, inline: bool) -> Result<(), YamlError> {
        for (i, item) in items.iter().enumerate() {
            if i > 0 || !inline {
                self.indent(indent);
            }
            self.push_str("- ");
            match item {
                Value::Object(child) if !child.is_empty() => self.map(child, indent + 2, true)?,
                Value::Array(inner) if !inner.is_empty() => self.seq(inner, indent + 2, true)?,
                other => {
                    self.scalar_value(other, indent + 2, false)?;
                    self.end_line();
                }
            }
        }
        Ok(())
    }

    fn scalar_value(&mut self, v: &Value, indent: usize, key: bool) -> Result<(), YamlError> {
        match v {
            Value::Null => self.push_str("null"),
            Value::Bool(b) => self.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => {
                let text = format_number(n)?;
                self.push_str(&text);
            }
            Value::String(s) => self.string(s, indent, key),
            Value::Object(_) => self.push_str("{}"),
            Value::Array(_) => self.push_str("[]"),
        }
        Ok(())
    }

    /// Writes a string the way go-yaml's `stringv` plus the emitter's style
    /// selection would.
    fn string(&mut self, s: &str, indent: usize, simple_key: bool) {
        if s.contains('\u{85}') {
            let folded = fold_next_lines(s);
            return self.string_unfolded(&folded, indent, simple_key);
        }
        self.string_unfolded(s, indent, simple_key)
    }

    fn string_unfolded(&mut self, s: &str, indent: usize, simple_key: bool) {
        let a = Analysis::of(s);
        let mut style = if s.contains('\n') {
            Style::Literal
        } else if needs_quotes(s) {
            Style::Double
        } else {
            Style::Plain
        };
        if style == Style::Plain && (!a.block_plain_allowed || (s.is_empty() && simple_key)) {
            style = Style::Single;
        }
        if style == Style::Single && !a.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block_allowed || simple_key) {
            style = Style::Double;
        }
        let allow_breaks = !simple_key;
        match style {
            Style::Plain => self.plain(s, indent, allow_breaks),
            Style::Single => self.single(s, indent, allow_breaks),
            Style::Double => self.double(s, indent, allow_breaks),
            Style::Literal => self.literal(s, indent),
        }
    }

    fn plain(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !next_space {
                    self.indent(indent);
                } else {
                    self.push(c);
                }
                spaces = true;
            } else {
                self.push(c);
                spaces = false;
            }
        }
    }

    fn single(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        self.push('\'');
        let mut spaces = false;
        let mut breaks = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i + 1 < chars.len()
                    && !next_space
                {
                    self.indent(indent);
                } else {
                    self.push(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.newline();
                }
                self.out.push(c);
                self.column = 0;
                breaks = true;
            } else {
                if breaks {
                    self.indent(indent);
                }
                if c == '\'' {
                    self.push('\'');
                }
                self.push(c);
                spaces = false;
                breaks = false;
            }
        }
        self.push('\'');
    }

    fn double(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        // Observed in kustomize's output: after a leading byte-order mark
        // every character is written as an escape.
        let escape_all = chars.first() == Some(&'\u{feff}');
        self.push('"');
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if escape_all
                || !is_printable(c)
                || c == '\u{feff}'
                || is_break(c)
                || c == '"'
                || c == '\\'
            {
                self.push('\\');
                match c {
                    '\0' => self.push('0'),
                    '\x07' => self.push('a'),
                    '\x08' => self.push('b'),
                    '\t' => self.push('t'),
                    '\n' => self.push('n'),
                    '\x0b' => self.push('v'),
                    '\x0c' => self.push('f'),
                    '\r' => self.push('r'),
                    '\x1b' => self.push('e'),
                    '"' => self.push('"'),
                    '\\' => self.push('\\'),
                    '\u{85}' => self.push('N'),
                    '\u{a0}' => self.push('_'),
                    '\u{2028}' => self.push('L'),
                    '\u{2029}' => self.push('P'),
                    other => {
                        let v = other as u32;
                        let mut text = String::new();
                        if v <= 0xff {
                            let _ = write!(text, "x{v:02X}");
                        } else if v <= 0xffff {
                            let _ = write!(text, "u{v:04X}");
                        } else {
                            let _ = write!(text, "U{v:08X}");
                        }
                        self.push_str(&text);
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i + 1 < chars.len()
                {
                    self.indent(indent);
                    if chars.get(i + 1) == Some(&' ') {
                        self.push('\\');
                    }
                } else {
                    self.push(c);
                }
                spaces = true;
            } else {
                self.push(c);
                spaces = false;
            }
        }
        self.push('"');
    }

    fn literal(&mut self, s: &str, indent: usize) {
        self.push('|');
        let chars: Vec<char> = s.chars().collect();
        if chars.first().is_some_and(|c| *c == ' ' || is_break(*c)) {
            self.push('2');
        }
        let chomp = match chars.len() {
            0 => Some('-'),
            n if !is_break(chars[n - 1]) => Some('-'),
            1 => Some('+'),
            n if is_break(chars[n - 2]) => Some('+'),
            _ => None,
        };
        if let Some(c) = chomp {
            self.push(c);
        }
        self.newline();
        let mut breaks = true;
        for &c in &chars {
            if is_break(c) {
                self.out.push(c);
                self.column = 0;
                breaks = true;
            } else {
                if breaks {
                    self.indent(indent);
                }
                self.push(c);
                breaks = false;
            }
        }
    }
}

/// kustomize passes objects through JSON, which leaves U+0085 (NEXT LINE)
/// raw, and reads that JSON as YAML, which folds it like a line break: one
/// becomes a space, each further one a newline, and blanks around them go.
fn fold_next_lines(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{85}' {
            out.push(c);
            continue;
        }
        while out.ends_with([' ', '\t']) {
            out.pop();
        }
        let mut breaks = 1;
        loop {
            match chars.peek() {
                Some(' ' | '\t') => {
                    chars.next();
                }
                Some('\u{85}') => {
                    chars.next();
                    breaks += 1;
                }
                _ => break,
            }
        }
        if breaks == 1 {
            out.push(' ');
        } else {
            out.extend(std::iter::repeat_n('\n', breaks - 1));
        }
    }
    out
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// The YAML 1.1 merge key. go-yaml writes a `<<` key plain, but kustomize
/// never prints one (it merges such keys while reading), so quoting it costs
/// no identity with kustomize and keeps the key a key when read back.
const MERGE_KEY: &str = "<<";

/// Longest key, in bytes, go-yaml writes as an implicit key; YAML readers
/// limit implicit keys too (to 1024 characters), so longer keys need `?`.
const MAX_SIMPLE_KEY: usize = 128;

/// Whether go-yaml writes `key` as an implicit key (`key: value`): it fits on
/// one line and within [`MAX_SIMPLE_KEY`] bytes, after the folding
/// [`Emitter::string`] applies.
fn is_simple_key(key: &str) -> bool {
    let folded;
    let key = if key.contains('\u{85}') {
        folded = fold_next_lines(key);
        folded.as_str()
    } else {
        key
    };
    key.len() <= MAX_SIMPLE_KEY && !key.chars().any(is_break)
}

/// go-yaml's notion of a printable character.
pub(super) fn is_printable(c: char) -> bool {
    matches!(c, '\n' | '\x20'..='\x7e' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        && c != '\u{feff}'
}

/// Formats a number as Go's JSON encoder and go-yaml would after a round trip:
/// integral values print as integers, others in Go's shortest `%g` form.
pub fn format_number(n: &Number) -> Result<String, YamlError> {
    if let Some(i) = n.as_i64() {
        return Ok(i.to_string());
    }
    if let Some(u) = n.as_u64() {
        return Ok(u.to_string());
    }
    let f = n.as_f64().ok_or(YamlError::UnsupportedNumber)?;
    // Integral values come back from JSON as integers when they fit one.
    if f.fract() == 0.0 && f.abs() < 1e21 {
        if f >= i64::MIN as f64 && f < i64::MAX as f64 {
            return Ok((f as i64).to_string());
        }
        if f >= 0.0 && f < u64::MAX as f64 {
            return Ok((f as u64).to_string());
        }
    }
    Ok(go_format_g(f))
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`.
fn go_format_g(f: f64) -> String {
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if negative { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (head, tail) = digits.split_at(1);
        let frac = if tail.is_empty() {
            String::new()
        } else {
            format!(".{tail}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{head}{frac}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1;
    if point <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!(
            "{sign}{digits}{}",
            "0".repeat(point as usize - digits.len())
        )
    } else {
        let (a, b) = digits.split_at(point as usize);
        format!("{sign}{a}.{b}")
    }
}

/// go-yaml's map key order: byte-wise, except that runs of digits compare
/// numerically and letters sort after other characters.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    if less(a, b) {
        Ordering::Less
    } else if less(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

fn less(a: &str, b: &str) -> bool {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut digits = false;
    let n = ar.len().min(br.len());
    for i in 0..n {
        if ar[i] == br[i] {
            digits = ar[i].is_numeric();
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return if digits { al } else { bl };
        }
        let mut an: i64 = 0;
        let mut bn: i64 = 0;
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .wrapping_mul(10)
                .wrapping_add(i64::from(ar[ai] as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(i64::from(br[bi] as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_naturally() {
        let mut keys = vec![
            "a10", "a9", "a_", "aB", "a.b", "a-b", "A", "a09", "1", "10", "2", "",
        ];
        keys.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            keys,
            vec![
                "", "1", "2", "10", "A", "a-b", "a.b", "a_", "a9", "a09", "a10", "aB"
            ]
        );
    }

    #[test]
    fn root_block_scalar_is_indented_and_reads_back() {
        let value = Value::String("D >\n\n\noa0:0 *x".into());
        let text = emit_document(&value).expect("emit");
        assert_eq!(text, "|-\n  D >\n\n\n  oa0:0 *x\n");
        let stream = format!("{text}---\nkey: v\n");
        let back = crate::parse_documents(&stream, "root-scalar").expect("parse");
        assert_eq!(back, vec![value, serde_json::json!({"key": "v"})]);
    }

    #[test]
    fn floats_format_like_go() {
        let f = |x: f64| format_number(&Number::from_f64(x).expect("finite")).expect("format");
        assert_eq!(f(1.0), "1");
        assert_eq!(f(-0.0), "0");
        assert_eq!(f(1e20), "1e+20");
        assert_eq!(f(1.5), "1.5");
        assert_eq!(f(1000000.5), "1.0000005e+06");
        assert_eq!(f(1e-7), "1e-07");
        assert_eq!(f(1.2345678901234569e23), "1.2345678901234569e+23");
        assert_eq!(f(0.001), "0.001");
        assert_eq!(f(123456.7), "123456.7");
    }
}
