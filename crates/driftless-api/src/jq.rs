//! jq path expressions (`jqPathExpressions` of ignored differences), run by
//! jaq: an expression names the fields it yields, as `path(EXPR)` finds them,
//! so that ignoring them is jq's `del(EXPR)`, as Argo CD applies them.
//!
//! jq is a full language: an App's expression can recurse without end or
//! ask for gigabytes. A process that runs other teams' Apps therefore
//! evaluates them through a [`JqRunner`] (a worker process with memory and
//! time limits, see `driftless-render`), set once with [`run_in`]; without
//! one they are evaluated here, unbounded.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde_json::Value;

/// Most paths one expression may yield on one object: an expression like
/// `..` on a large object stays bounded.
const MAX_PATHS: usize = 10_000;
/// Longest expression accepted.
const MAX_SOURCE_BYTES: usize = 4096;
/// Deepest nesting of brackets accepted.
const MAX_NESTING: usize = 64;

/// How deep `(`, `[` and `{` nest in `text` (brackets in strings count too:
/// a bound, not a parse).
fn nesting(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for c in text.chars() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// For each expression, for each document, the paths it yields there as
/// key or index segments; `None` where it fails on that document.
pub type JqAnswers = Vec<Vec<Option<Vec<Vec<String>>>>>;

/// Evaluates jq path expressions within bounds.
pub trait JqRunner: Send + Sync {
    /// The answers of `expressions` on `documents`; an `Err` says which
    /// bound was crossed or why the evaluation could not run.
    fn run(&self, expressions: &[&str], documents: &[&Value]) -> Result<JqAnswers, String>;
}

static RUNNER: std::sync::OnceLock<Box<dyn JqRunner>> = std::sync::OnceLock::new();

/// Makes `runner` evaluate every jq expression of this process; the first
/// call wins (`false` when one was set already).
pub fn run_in(runner: Box<dyn JqRunner>) -> bool {
    RUNNER.set(runner).is_ok()
}

/// Evaluates `expressions` on `documents` in this process, unbounded: what a
/// worker process runs once its own limits are set.
pub fn evaluate_here(expressions: &[&str], documents: &[&Value]) -> Result<JqAnswers, String> {
    let compiled = expressions
        .iter()
        .map(|e| JqPath::compile(e))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(answers_here(&compiled, documents))
}

fn answers_here(expressions: &[JqPath], documents: &[&Value]) -> JqAnswers {
    expressions
        .iter()
        .map(|e| documents.iter().map(|d| e.paths_here(d)).collect())
        .collect()
}

/// The answers of `expressions` on `documents`, through the process's
/// [`JqRunner`] when one is set.
pub fn answers(expressions: &[JqPath], documents: &[&Value]) -> Result<JqAnswers, String> {
    if expressions.is_empty() || documents.is_empty() {
        return Ok(vec![Vec::new(); expressions.len()]);
    }
    match RUNNER.get() {
        Some(runner) => {
            let sources: Vec<&str> = expressions.iter().map(JqPath::source).collect();
            let out = runner.run(&sources, documents)?;
            let fits = out.len() == expressions.len()
                && out.iter().all(|per| per.len() == documents.len());
            if fits {
                Ok(out)
            } else {
                Err("the jq evaluation answered for other expressions or documents".into())
            }
        }
        None => Ok(answers_here(expressions, documents)),
    }
}

/// A compiled jq path expression.
#[derive(Clone)]
pub struct JqPath {
    source: String,
    filter: std::sync::Arc<jaq_core::Filter<data::JustLut<Val>>>,
}

impl std::fmt::Debug for JqPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JqPath({:?})", self.source)
    }
}

impl PartialEq for JqPath {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for JqPath {}

impl JqPath {
    /// Compiles `expression`, or says why it is not a jq path expression.
    pub fn compile(expression: &str) -> Result<JqPath, String> {
        if expression.trim().is_empty() {
            return Err("is empty".into());
        }
        // Parsing runs in the engine's own process: its size and nesting are
        // bounded before the parser's recursion sees it.
        if expression.len() > MAX_SOURCE_BYTES {
            return Err(format!(
                "is longer than {MAX_SOURCE_BYTES} bytes ({})",
                expression.len()
            ));
        }
        if nesting(expression) > MAX_NESTING {
            return Err(format!("nests brackets deeper than {MAX_NESTING}"));
        }
        let code = format!("path({expression})");
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let modules = loader
            .load(
                &arena,
                File {
                    code: &code,
                    path: (),
                },
            )
            .map_err(|errors| {
                format!(
                    "{expression:?} does not parse as jq ({})",
                    describe(&errors)
                )
            })?;
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errors| {
                format!(
                    "{expression:?} does not compile as jq ({})",
                    describe(&errors)
                )
            })?;
        Ok(JqPath {
            source: expression.to_owned(),
            filter: std::sync::Arc::new(filter),
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The paths the expression yields on `object`, as key or index segments;
    /// `None` when it fails there (as a failing `del` leaves an object as it
    /// is). Evaluated in this process, unbounded: see [`answers`].
    pub fn paths_here(&self, object: &Value) -> Option<Vec<Vec<String>>> {
        let text = serde_json::to_vec(object).ok()?;
        let input = jaq_json::read::parse_single(&text).ok()?;
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        let mut out = Vec::new();
        for path in self.filter.id.run((ctx, input)).map(unwrap_valr) {
            let path = path.ok()?;
            let path: Value = serde_json::from_str(&path.to_string()).ok()?;
            let segments = path
                .as_array()?
                .iter()
                .map(|s| match s {
                    Value::String(key) => Some(key.clone()),
                    Value::Number(n) => n.as_u64().map(|i| i.to_string()),
                    _ => None,
                })
                .collect::<Option<Vec<String>>>()?;
            out.push(segments);
            if out.len() > MAX_PATHS {
                return None;
            }
        }
        Some(out)
    }
}

/// The first of jaq's errors, in few words.
fn describe<E: std::fmt::Debug>(errors: &E) -> String {
    let text = format!("{errors:?}");
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_or_deeply_nested_expressions_are_refused_before_parsing() {
        let deep = format!("{}.a{}", "(".repeat(10_000), ")".repeat(10_000));
        let err = JqPath::compile(&deep).expect_err("too long");
        assert!(err.contains("longer than 4096 bytes"), "{err}");
        let nested = format!("{}.a{}", "[".repeat(65), "]".repeat(65));
        let err = JqPath::compile(&nested).expect_err("too deep");
        assert!(err.contains("deeper than 64"), "{err}");
        let fine = format!("{}.a{}", "(".repeat(64), ")".repeat(64));
        assert!(JqPath::compile(&fine).is_ok());
    }
}
