//! Order-preserving YAML reading and kustomize-identical YAML writing.

mod emit;
mod parse;
mod scalar;

pub use emit::{emit_document, format_number, natural_cmp};
pub use parse::{MAX_INPUT_BYTES, parse_documents, parse_documents_lenient, resolve_plain};

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
