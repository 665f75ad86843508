//! Order-preserving YAML reading and kustomize-identical YAML writing.
//!
//! The YAML reader and writer of driftless: the kustomize library, the render
//! pipeline, the config loader and the CRD generator use it, so a value is
//! printed the same way wherever it is shown. The crate does no I/O, which
//! also makes it the home of [`LoadRestrictor`], the option both the kustomize
//! library and the App config model name.
//!
//! ```
//! let docs = driftless_yaml::parse_documents("b: 1\na: two\n", "example.yaml")?;
//! assert_eq!(driftless_yaml::emit_stream(&docs)?, "a: two\nb: 1\n");
//! # Ok::<(), driftless_yaml::YamlError>(())
//! ```

mod emit;
mod json;
mod parse;
mod restrictor;
mod scalar;

pub use emit::{emit_document, format_number, natural_cmp};
pub use json::write_go_json_string;
pub use parse::{MAX_INPUT_BYTES, parse_documents, parse_documents_lenient, resolve_plain};
pub use restrictor::LoadRestrictor;

/// Errors from reading or writing YAML.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    /// The text is not valid YAML.
    #[error("{origin}:{line}:{column}: {message}")]
    Syntax {
        /// File or other origin of the text.
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The input is larger than accepted.
    #[error("{origin}: input larger than {limit} bytes")]
    TooLarge {
        /// File or other origin of the text.
        origin: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// A number that has no YAML/JSON rendering (NaN, infinity).
    #[error("unsupported number value (NaN or infinity)")]
    UnsupportedNumber,
}

/// Renders documents as one YAML stream separated by `---`.
pub fn emit_stream<'a>(
    docs: impl IntoIterator<Item = &'a serde_json::Value>,
) -> Result<String, YamlError> {
    let mut out = String::new();
    for (i, doc) in docs.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&emit_document(doc)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value};

    use super::{emit_document, parse_documents};

    /// A small deterministic generator, so failures reproduce.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[(self.next() as usize) % items.len()]
        }
    }

    // U+0085 and U+2028 are left out: go-yaml writes them raw as line breaks
    // inside quotes, which YAML 1.2 readers do not fold back; kustomize's
    // output has the same property and byte-identity wins.
    const PIECES: &[&str] = &[
        "",
        " ",
        "a",
        "yes",
        "1",
        "0x1F",
        "1.5",
        "-",
        ":",
        ": ",
        "#",
        " #",
        "'",
        "\"",
        "\\",
        "\n",
        "\t",
        "~",
        "null",
        "é",
        "🎉",
        "---",
        "[",
        "{",
        "*",
        "&",
        "!",
        "|",
        ">",
        "%",
        "@",
        "`",
        "2024-01-31",
        "12:30",
        "word",
        "  ",
        "\r\n",
        "long text that keeps going and going ",
    ];

    fn random_string(rng: &mut Lcg) -> String {
        let n = rng.next() % 6;
        (0..n).map(|_| rng.pick(PIECES)).collect()
    }

    fn random_value(rng: &mut Lcg, depth: usize) -> Value {
        match rng.next() % if depth > 3 { 4 } else { 6 } {
            0 => Value::String(random_string(rng)),
            1 => Value::from(rng.next() as i64 - (1 << 30)),
            2 => Value::Bool(rng.next().is_multiple_of(2)),
            3 => Value::Null,
            4 => Value::Array(
                (0..rng.next() % 4)
                    .map(|_| random_value(rng, depth + 1))
                    .collect(),
            ),
            _ => {
                let mut m = Map::new();
                for _ in 0..rng.next() % 4 {
                    m.insert(random_string(rng), random_value(rng, depth + 1));
                }
                Value::Object(m)
            }
        }
    }

    /// Map key order is the emitter's, so compare maps as sorted entries.
    fn canonical(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut entries: Vec<(&String, &Value)> = m.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), canonical(v)))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
            other => other.clone(),
        }
    }

    #[test]
    fn emitted_yaml_reads_back_as_the_same_value() {
        let mut rng = Lcg(7);
        for round in 0..3000 {
            let mut doc = Map::new();
            doc.insert("kind".into(), Value::String("Test".into()));
            doc.insert("value".into(), random_value(&mut rng, 0));
            let value = Value::Object(doc);
            let text = emit_document(&value).expect("emit");
            let back = parse_documents(&text, "roundtrip")
                .unwrap_or_else(|e| panic!("round {round}: {e}\n{text}"));
            assert_eq!(back.len(), 1, "round {round}:\n{text}");
            assert_eq!(
                canonical(&back[0]),
                canonical(&value),
                "round {round}:\n{text}"
            );
        }
    }
}
