//! JSON and binary files: sops keeps both as a JSON object (a binary file's
//! bytes are its `data` value), and prints JSON the way Go's encoder does.

use serde_json::Value;

use crate::cipher::Plain;
use crate::{Format, Keys, SopsError, data_key, tree};

/// Decrypts a JSON file, or with `binary` the bytes a binary file held.
pub(crate) fn decrypt(
    text: &str,
    keys: &Keys,
    file: &str,
    binary: bool,
) -> Result<Vec<u8>, SopsError> {
    let format = if binary { Format::Binary } else { Format::Json };
    let syntax = |message: String| SopsError::Syntax {
        file: file.to_string(),
        format: format.name(),
        message,
    };
    let mut document: Value = serde_json::from_str(text).map_err(|e| syntax(e.to_string()))?;
    let Value::Object(map) = &mut document else {
        return Err(syntax("the top level is not an object".into()));
    };
    let sops = map
        .shift_remove("sops")
        .ok_or_else(|| SopsError::Metadata {
            file: file.to_string(),
            problem: "is missing (no top-level `sops` key)".into(),
        })?;
    let (metadata, key) = data_key(&sops, keys, file)?;
    let mut documents = [document];
    let decrypted = tree::decrypt_documents(&mut documents, &metadata, &key, file)?;
    let [document] = documents;
    if binary {
        return binary_data(&document, decrypted, file);
    }
    let mut out = String::new();
    write_value(&document, 0, &mut out);
    out.push('\n');
    Ok(out.into_bytes())
}

/// The bytes of a binary file: its decrypted `data` value.
fn binary_data(
    document: &Value,
    decrypted: Vec<tree::Decrypted>,
    file: &str,
) -> Result<Vec<u8>, SopsError> {
    let missing = || SopsError::Metadata {
        file: file.to_string(),
        problem: "of a binary file: no `data` value".into(),
    };
    let data = document.get("data").ok_or_else(missing)?;
    // The raw bytes (which may not be UTF-8) come from the decrypted value.
    if let Some(first) = decrypted.into_iter().next() {
        return Ok(match first.plain {
            Plain::Bytes(bytes) => bytes,
            Plain::Str(s) => s.into_bytes(),
            _ => data.as_str().unwrap_or_default().as_bytes().to_vec(),
        });
    }
    Ok(data.as_str().ok_or_else(missing)?.as_bytes().to_vec())
}

/// Writes `value` as Go's `json.Indent` with a tab lays it out.
fn write_value(value: &Value, depth: usize, out: &mut String) {
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n('\t', depth));
    };
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('{');
            for (i, (key, child)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                driftless_yaml::write_go_json_string(key, out);
                out.push_str(": ");
                write_value(child, depth + 1, out);
            }
            newline(out, depth);
            out.push('}');
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, child) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_value(child, depth + 1, out);
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Object(_) => out.push_str("{}"),
        Value::Array(_) => out.push_str("[]"),
        Value::String(s) => driftless_yaml::write_go_json_string(s, out),
        Value::Number(n) => match n.as_i64() {
            Some(i) => out.push_str(&i.to_string()),
            None => out.push_str(&go_float(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
    }
}

/// A float as Go's JSON encoder prints it: plain digits between 1e-6 and
/// 1e21, otherwise an exponent without padding (`1e+21`, `1e-7`).
fn go_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let text = format!("{f:e}");
        match text.split_once('e') {
            Some((mantissa, exp)) if exp.starts_with('-') => format!("{mantissa}e{exp}"),
            Some((mantissa, exp)) => format!("{mantissa}e+{exp}"),
            None => text,
        }
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_go_prints_them() {
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1e-7), "1e-7");
        assert_eq!(go_float(0.000001), "0.000001");
        assert_eq!(go_float(2.5), "2.5");
        assert_eq!(go_float(1.0), "1");
    }
}
