//! YAML files. sops prints a decrypted YAML file with the layout it gave the
//! encrypted one (go-yaml, four-space indentation), so the decrypted text is
//! the encrypted text with each encrypted scalar and comment replaced by its
//! plaintext as go-yaml prints it, encrypted inline comments moved to their
//! own line above (sops drops their inline mark when it decrypts them), and
//! the `sops` section removed.

use std::collections::VecDeque;

use serde_json::{Map, Value};

use crate::cipher::{self, Plain};
use crate::tree::{Decrypted, additional_data};
use crate::{Keys, SopsError, data_key, tree};

/// Where an encrypted inline comment starts on a line.
const INLINE_ENCRYPTED_COMMENT: &str = " #ENC[AES256_GCM,";

/// Decrypts a YAML file and prints it as `sops --decrypt` does.
pub(crate) fn decrypt(text: &str, keys: &Keys, file: &str) -> Result<String, SopsError> {
    let mut documents =
        driftless_yaml::parse_documents(text, file).map_err(|e| SopsError::Syntax {
            file: file.to_string(),
            format: "YAML",
            message: e.to_string(),
        })?;
    let mut sops = None;
    for document in &mut documents {
        if let Value::Object(map) = document
            && let Some(section) = map.shift_remove("sops")
        {
            sops.get_or_insert(section);
        }
    }
    let sops = sops.ok_or_else(|| SopsError::Metadata {
        file: file.to_string(),
        problem: "is missing (no top-level `sops` key)".into(),
    })?;
    let (metadata, key) = data_key(&sops, keys, file)?;
    documents.retain(|d| !d.is_null());
    let decrypted = tree::decrypt_documents(&mut documents, &metadata, &key, file)?;
    let mut pass = TextPass {
        key: &key,
        file,
        values: decrypted.into(),
        encrypts_comments: |path: &[String]| metadata.rules.encrypts(path),
        stack: Vec::new(),
        out: String::with_capacity(text.len()),
    };
    pass.run(text)?;
    Ok(pass.out)
}

/// The line-by-line rewrite of the encrypted text.
struct TextPass<'a, F: Fn(&[String]) -> bool> {
    key: &'a [u8],
    file: &'a str,
    values: VecDeque<Decrypted>,
    encrypts_comments: F,
    /// The mapping keys above the current line, with their columns.
    stack: Vec<(usize, String)>,
    out: String,
}

impl<F: Fn(&[String]) -> bool> TextPass<'_, F> {
    fn run(&mut self, text: &str) -> Result<(), SopsError> {
        let mut in_sops = false;
        let mut block_scalar_above: Option<usize> = None;
        for line in text.split_inclusive('\n') {
            let content = line.trim_end_matches('\n');
            if content == "---" {
                in_sops = false;
                block_scalar_above = None;
                self.stack.clear();
                self.out.push_str(line);
                continue;
            }
            let column = content.len() - content.trim_start_matches(' ').len();
            if let Some(parent) = block_scalar_above {
                if content.trim().is_empty() || column > parent {
                    if !in_sops {
                        self.out.push_str(line);
                    }
                    continue;
                }
                block_scalar_above = None;
            }
            if column == 0 && content.starts_with("sops:") {
                in_sops = true;
            }
            if in_sops {
                continue;
            }
            block_scalar_above = self.line(content, column)?;
        }
        if let Some(left) = self.values.front() {
            return Err(self.layout(&format!(
                "value {} not found in the text",
                shorten(&left.ciphertext)
            )));
        }
        Ok(())
    }

    /// Rewrites one line; returns the column a block scalar it opens hangs from.
    fn line(&mut self, content: &str, column: usize) -> Result<Option<usize>, SopsError> {
        let rest = &content[column..];
        if let Some(comment) = rest.strip_prefix('#') {
            let shown = self.comment(comment, column);
            self.push_line(column, &format!("#{shown}"));
            return Ok(None);
        }
        self.stack.retain(|(c, _)| *c < column);
        let (main, inline) = match content.find(INLINE_ENCRYPTED_COMMENT) {
            Some(at) => (&content[..at], Some(&content[at + 1..])),
            None => (content, None),
        };
        // Leading `- ` of sequence items.
        let mut position = column;
        let mut dash = None;
        while main[position..].starts_with("- ") || &main[position..] == "-" {
            dash = Some(position);
            position += 2.min(main.len() - position);
        }
        let (value_start, key_column) = match split_key(&main[position..]) {
            Some((key, value_offset)) => {
                self.stack.retain(|(c, _)| *c < position);
                self.stack.push((position, key));
                (position + value_offset, Some(position))
            }
            None => (position, None),
        };
        if let Some(comment) = inline {
            // The comment belongs to the mapping (or sequence) holding this item.
            let holder = key_column.or(dash).unwrap_or(column);
            let shown = self.comment(&comment[1..], holder);
            self.push_line(holder, &format!("#{shown}"));
        }
        let value = main[value_start..].trim_end();
        let hang = key_column.or(dash).unwrap_or(column);
        // A comment left in clear after an encrypted value (a comment regex
        // kept it): go-yaml keeps it on the value's line.
        let (value, kept_comment) = match value.find(" #") {
            Some(at) if cipher::is_encrypted(value) => (&value[..at], &value[at..]),
            _ => (value, ""),
        };
        if cipher::is_encrypted(value) {
            let decrypted = self
                .values
                .pop_front()
                .filter(|d| d.ciphertext == value)
                .ok_or_else(|| {
                    self.layout(&format!(
                        "value {} out of the order sops writes values in",
                        shorten(value)
                    ))
                })?;
            let indent = match key_column {
                Some(k) => k + 4,
                None => dash.map_or(column + 4, |d| d + 2),
            };
            if let (Plain::Comment(comment), None, Some(d)) = (&decrypted.plain, key_column, dash) {
                self.push_line(d, &format!("#{comment}"));
                return Ok(None);
            }
            let scalar = format_scalar(&decrypted.plain, indent);
            self.out.push_str(&main[..value_start]);
            self.out.push_str(&scalar);
            self.out.push_str(kept_comment);
            self.out.push('\n');
            return Ok(None);
        }
        self.out.push_str(main);
        self.out.push('\n');
        let opens_block = {
            let v = value.as_bytes();
            !v.is_empty()
                && (v[0] == b'|' || v[0] == b'>')
                && v[1..]
                    .iter()
                    .all(|b| matches!(b, b'-' | b'+' | b'0'..=b'9'))
        };
        Ok(opens_block.then_some(hang))
    }

    /// The text of a comment (without `#`) at `column`: decrypted when sops
    /// encrypted it, as it is otherwise (as sops keeps it).
    fn comment(&self, comment: &str, column: usize) -> String {
        let path: Vec<String> = self
            .stack
            .iter()
            .filter(|(c, _)| *c < column)
            .map(|(_, k)| k.clone())
            .collect();
        if !cipher::is_encrypted(comment) || !(self.encrypts_comments)(&path) {
            return comment.to_string();
        }
        match cipher::decrypt(comment, self.key, &additional_data(&path)) {
            Ok(Plain::Comment(text)) => text,
            _ => comment.to_string(),
        }
    }

    fn push_line(&mut self, column: usize, text: &str) {
        self.out.extend(std::iter::repeat_n(' ', column));
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn layout(&self, problem: &str) -> SopsError {
        SopsError::Unsupported {
            file: self.file.to_string(),
            feature: format!("a YAML layout other than the one sops writes ({problem})"),
        }
    }
}

/// Splits `key: value` (or `key:`), returning the unquoted key and where the
/// value starts.
fn split_key(text: &str) -> Option<(String, usize)> {
    let key_end = match text.as_bytes().first()? {
        b'"' => closing_double_quote(text)? + 1,
        b'\'' => closing_single_quote(text)? + 1,
        _ => match text.find(": ") {
            Some(at) => at,
            None => text.strip_suffix(':').map(str::len)?,
        },
    };
    let after = &text[key_end..];
    let value_offset = if after.starts_with(": ") {
        key_end + 2
    } else if after == ":" {
        key_end + 1
    } else {
        return None;
    };
    let raw = &text[..key_end];
    let key = match raw.as_bytes()[0] {
        b'"' => serde_json::from_str(raw).ok()?,
        b'\'' => raw[1..raw.len() - 1].replace("''", "'"),
        _ => raw.to_string(),
    };
    Some((key, value_offset))
}

fn closing_double_quote(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn closing_single_quote(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            if bytes.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Some(i);
        }
        i += 1;
    }
    None
}

/// A decrypted scalar as go-yaml prints it, block scalar lines indented to
/// `indent`.
fn format_scalar(plain: &Plain, indent: usize) -> String {
    let value = match plain {
        // go-yaml prints a time unquoted, in Go's text form.
        Plain::Time(t) => return t.clone(),
        Plain::Str(s) | Plain::Comment(s) => Value::String(s.clone()),
        Plain::Bytes(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        Plain::Int(i) => Value::Number((*i).into()),
        Plain::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Plain::Bool(b) => Value::Bool(*b),
    };
    let mut map = Map::new();
    map.insert("k".to_string(), value);
    let emitted = driftless_yaml::emit_document(&Value::Object(map)).unwrap_or_default();
    let body = emitted
        .strip_prefix("k: ")
        .unwrap_or(&emitted)
        .trim_end_matches('\n');
    if !body.starts_with(['|', '>']) {
        return unfold(body);
    }
    let mut lines = body.split('\n');
    let mut out = lines.next().unwrap_or_default().to_string();
    for line in lines {
        out.push('\n');
        if let Some(text) = line.strip_prefix("  ") {
            out.extend(std::iter::repeat_n(' ', indent));
            out.push_str(text);
        } else {
            out.push_str(line);
        }
    }
    out
}

/// A flow scalar on one line: the emitter folds long ones at 80 columns,
/// go-yaml as sops configures it never does. A fold stands for one space; in
/// a double-quoted scalar a `\` opening the next line escapes a space that
/// follows the fold.
fn unfold(body: &str) -> String {
    let double = body.starts_with('"');
    let mut lines = body.split('\n');
    let mut out = lines.next().unwrap_or_default().to_string();
    for line in lines {
        let line = line.trim_start_matches(' ');
        out.push(' ');
        match line.strip_prefix('\\') {
            Some(rest) if double && rest.starts_with(' ') => out.push_str(rest),
            _ => out.push_str(line),
        }
    }
    out
}

fn shorten(text: &str) -> String {
    text.chars().take(40).collect::<String>() + "…"
}
