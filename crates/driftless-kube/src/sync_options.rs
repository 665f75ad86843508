//! Per-object sync options: the `driftless.dev/sync-options` annotation (and
//! Argo CD's `argocd.argoproj.io/sync-options`, so existing manifests keep
//! their meaning), a comma-separated list of `Name=value` pairs that change
//! how one object is written, pruned and deleted.

use serde_json::Value;

use crate::object::{ObjectRef, annotation};

/// The annotation holding an object's sync options.
pub const SYNC_OPTIONS_ANNOTATION: &str = "driftless.dev/sync-options";
/// Argo CD's annotation of the same meaning, read when ours is absent.
pub const ARGO_SYNC_OPTIONS_ANNOTATION: &str = "argocd.argoproj.io/sync-options";

pub use driftless_api::PrunePropagation as Propagation;

/// Reads `background`, `foreground` or `orphan` (any case).
fn parse_propagation(value: &str) -> Option<Propagation> {
    match value.to_ascii_lowercase().as_str() {
        "background" => Some(Propagation::Background),
        "foreground" => Some(Propagation::Foreground),
        "orphan" => Some(Propagation::Orphan),
        _ => None,
    }
}

/// The policy as the API's `DeleteOptions` names it.
pub fn policy(propagation: Propagation) -> kube::api::PropagationPolicy {
    match propagation {
        Propagation::Background => kube::api::PropagationPolicy::Background,
        Propagation::Foreground => kube::api::PropagationPolicy::Foreground,
        Propagation::Orphan => kube::api::PropagationPolicy::Orphan,
    }
}

/// How one object is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// Server-side apply (the default).
    #[default]
    Apply,
    /// `Replace=true`: the whole object is replaced (created when missing).
    Replace,
    /// `ServerSideApply=false`: a three-way merge patch against the
    /// configuration last applied this way, as client-side apply does.
    ClientSide,
    /// `CreateOnly=true`: created when missing, never written again.
    CreateOnly,
}

/// The sync options of one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncOptions {
    /// `Prune=false` clears it: the object is never pruned.
    pub prune: bool,
    /// `Delete=false` clears it: the object stays when its App is deleted.
    pub delete: bool,
    /// How the object is written.
    pub write: WriteMode,
    /// `Force=true`: fields other managers hold are taken over, and a change
    /// of an immutable field deletes and re-creates the object.
    pub force: bool,
    /// `PruneLast=true`: pruned after every other object of the prune.
    pub prune_last: bool,
    /// `PrunePropagationPolicy=...`: overrides the App's propagation.
    pub propagation: Option<Propagation>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            prune: true,
            delete: true,
            write: WriteMode::Apply,
            force: false,
            prune_last: false,
            propagation: None,
        }
    }
}

/// A sync options annotation that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object}: annotation {annotation}: {problem}")]
pub struct SyncOptionsError {
    /// The object.
    pub object: String,
    /// The annotation read.
    pub annotation: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// Options Argo CD knows that change nothing here: driftless validates on
/// the server and never dry-runs before a write.
const ACCEPTED_WITHOUT_EFFECT: &[&str] = &["Validate", "SkipDryRunOnMissingResource"];

impl SyncOptions {
    /// The options `obj` carries; an unknown option, a value that is not a
    /// boolean, or two write modes at once is an error naming the object.
    pub fn of(obj: &Value) -> Result<Self, SyncOptionsError> {
        let (name, text) = match annotation(obj, SYNC_OPTIONS_ANNOTATION) {
            Some(text) => (SYNC_OPTIONS_ANNOTATION, text),
            None => match annotation(obj, ARGO_SYNC_OPTIONS_ANNOTATION) {
                Some(text) => (ARGO_SYNC_OPTIONS_ANNOTATION, text),
                None => return Ok(Self::default()),
            },
        };
        parse(text).map_err(|problem| SyncOptionsError {
            object: ObjectRef::from_object(obj)
                .map_or_else(|_| "object".to_owned(), |r| r.to_string()),
            annotation: name,
            problem,
        })
    }

    /// Options that leave writing, pruning and deleting as they are.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

fn parse(text: &str) -> Result<SyncOptions, String> {
    let mut options = SyncOptions::default();
    let mut modes = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((key, value)) = item.split_once('=') else {
            return Err(format!("`{item}` is not of the form Name=value"));
        };
        let (key, value) = (key.trim(), value.trim());
        if key == "PrunePropagationPolicy" {
            options.propagation = Some(parse_propagation(value).ok_or_else(|| {
                format!("{key}={value}: expected background, foreground or orphan")
            })?);
            continue;
        }
        let flag = match value {
            "true" => true,
            "false" => false,
            _ => return Err(format!("{key}={value}: expected true or false")),
        };
        match key {
            "Prune" => options.prune = flag,
            "Delete" => options.delete = flag,
            "Force" => options.force = flag,
            "PruneLast" => options.prune_last = flag,
            "Replace" if flag => modes.push((item, WriteMode::Replace)),
            "ServerSideApply" if !flag => modes.push((item, WriteMode::ClientSide)),
            "CreateOnly" if flag => modes.push((item, WriteMode::CreateOnly)),
            "Replace" | "ServerSideApply" | "CreateOnly" => {}
            _ if ACCEPTED_WITHOUT_EFFECT.contains(&key) => {}
            _ => {
                return Err(format!(
                    "unknown option `{key}` (known: Prune, Delete, Replace, ServerSideApply, \
                     CreateOnly, Force, PruneLast, PrunePropagationPolicy)"
                ));
            }
        }
    }
    match modes.as_slice() {
        [] => {}
        [(_, mode)] => options.write = *mode,
        [(a, _), (b, _), ..] => return Err(format!("{a} and {b} cannot be combined")),
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn with(annotation: &str, text: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "c", "namespace": "n", "annotations": {annotation: text}}})
    }

    #[test]
    fn no_annotation_keeps_every_default() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert!(
            SyncOptions::of(&obj)
                .expect("readable options")
                .is_default()
        );
    }

    #[test]
    fn reads_every_option_of_a_list() {
        let obj = with(
            SYNC_OPTIONS_ANNOTATION,
            "Prune=false, Delete=false,Force=true,PruneLast=true,PrunePropagationPolicy=orphan,Replace=true",
        );
        let options = SyncOptions::of(&obj).expect("readable options");
        assert_eq!(
            options,
            SyncOptions {
                prune: false,
                delete: false,
                write: WriteMode::Replace,
                force: true,
                prune_last: true,
                propagation: Some(Propagation::Orphan),
            }
        );
    }

    #[test]
    fn each_write_mode_is_read() {
        for (text, mode) in [
            ("ServerSideApply=false", WriteMode::ClientSide),
            ("CreateOnly=true", WriteMode::CreateOnly),
            ("Replace=true", WriteMode::Replace),
            ("ServerSideApply=true,Replace=false", WriteMode::Apply),
        ] {
            let options =
                SyncOptions::of(&with(SYNC_OPTIONS_ANNOTATION, text)).expect("readable options");
            assert_eq!(options.write, mode, "{text}");
        }
    }

    #[test]
    fn argo_cd_annotation_is_read_and_its_no_op_options_accepted() {
        let obj = with(
            ARGO_SYNC_OPTIONS_ANNOTATION,
            "Validate=false,SkipDryRunOnMissingResource=true,Prune=false",
        );
        let options = SyncOptions::of(&obj).expect("readable options");
        assert!(!options.prune);
        assert_eq!(options.write, WriteMode::Apply);
    }

    #[test]
    fn bad_options_name_the_object_annotation_and_option() {
        let cases = [
            ("Prune=no", "Prune=no: expected true or false"),
            ("Bogus=true", "unknown option `Bogus`"),
            ("Prune", "`Prune` is not of the form Name=value"),
            (
                "PrunePropagationPolicy=later",
                "expected background, foreground or orphan",
            ),
            (
                "Replace=true,CreateOnly=true",
                "Replace=true and CreateOnly=true cannot be combined",
            ),
        ];
        for (text, problem) in cases {
            let err = SyncOptions::of(&with(SYNC_OPTIONS_ANNOTATION, text)).expect_err("refused");
            let message = err.to_string();
            assert!(
                message.starts_with("v1/ConfigMap/n/c: annotation driftless.dev/sync-options: "),
                "{message}"
            );
            assert!(message.contains(problem), "{text}: {message}");
        }
    }
}
