//! dotenv files: `KEY=value` lines and `#` comments, with the `sops` section
//! flattened into `sops_…` keys.

use serde_json::{Map, Value};

use crate::cipher::{self, Plain};
use crate::metadata::unflatten;
use crate::{Keys, SopsError, data_key, tree};

/// One line of a dotenv file.
enum Line {
    Comment(String),
    Entry(String),
}

/// Decrypts a dotenv file and prints it as sops does.
pub(crate) fn decrypt(text: &str, keys: &Keys, file: &str) -> Result<String, SopsError> {
    let mut lines = Vec::new();
    let mut values = Map::new();
    let mut sops = Vec::new();
    for line in text.split('\n').filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            lines.push(Line::Comment(comment.to_string()));
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| SopsError::Syntax {
            file: file.to_string(),
            format: "dotenv",
            message: format!("a line without `=`: {:?}", truncate(line)),
        })?;
        let value = value.replace("\\n", "\n");
        if key.starts_with("sops_") {
            sops.push((key.to_string(), value));
        } else {
            values.insert(key.to_string(), Value::String(value));
            lines.push(Line::Entry(key.to_string()));
        }
    }
    if sops.is_empty() {
        return Err(SopsError::Metadata {
            file: file.to_string(),
            problem: "is missing (no `sops_` keys)".into(),
        });
    }
    let (metadata, key) = data_key(&unflatten(&sops), keys, file)?;
    let mut documents = [Value::Object(values)];
    tree::decrypt_documents(&mut documents, &metadata, &key, file)?;
    let mut out = String::new();
    for line in lines {
        match line {
            Line::Comment(comment) => {
                let shown = match cipher::decrypt(&comment, &key, ":") {
                    Ok(Plain::Comment(plain)) if metadata.rules.encrypts(&[]) => plain,
                    // sops keeps a comment that does not decrypt as it is.
                    _ => comment,
                };
                out.push('#');
                out.push_str(&shown);
            }
            Line::Entry(name) => {
                let value = match documents[0].get(&name) {
                    Some(Value::String(s)) => s.replace('\n', "\\n"),
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                out.push_str(&name);
                out.push('=');
                out.push_str(&value);
            }
        }
        out.push('\n');
    }
    Ok(out)
}

/// The start of a long line, for error messages.
fn truncate(line: &str) -> String {
    line.chars().take(40).collect()
}
