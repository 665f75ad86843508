//! Render options and the stable key that identifies them in the render cache.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::helm::HelmOptions;
use crate::limits::RenderLimits;
use crate::plain::PlainOptions;
use crate::substitute::Substitution;
use crate::worker::RenderWorker;

/// How a directory is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RenderKind {
    /// A kustomization, built natively.
    Kustomize,
    /// A Helm chart, rendered with `helm template`.
    Helm,
    /// A Jsonnet program.
    Jsonnet,
    /// Plain YAML/JSON manifests.
    Plain,
}

impl std::str::FromStr for RenderKind {
    type Err = String;

    fn from_str(s: &str) -> Result<RenderKind, String> {
        match s {
            "kustomize" => Ok(RenderKind::Kustomize),
            "helm" => Ok(RenderKind::Helm),
            "jsonnet" => Ok(RenderKind::Jsonnet),
            "plain" | "directory" => Ok(RenderKind::Plain),
            other => Err(format!(
                "unknown render kind {other:?} (expected kustomize, helm, jsonnet or plain)"
            )),
        }
    }
}

/// Jsonnet evaluation settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct JsonnetOptions {
    /// File to evaluate, relative to the directory (default `main.jsonnet`, or
    /// the only `*.jsonnet` file there).
    pub main: Option<String>,
    /// Library search paths for imports, relative to the repository root.
    pub lib_paths: Vec<PathBuf>,
    /// `--ext-str` variables.
    pub ext_vars: BTreeMap<String, String>,
    /// `--ext-code` variables (Jsonnet source).
    pub ext_code: BTreeMap<String, String>,
    /// `--tla-str` top-level arguments.
    pub tla_vars: BTreeMap<String, String>,
    /// `--tla-code` top-level arguments (Jsonnet source).
    pub tla_code: BTreeMap<String, String>,
}

/// Everything that decides how a directory renders.
#[derive(Clone, Debug, Default)]
pub struct RenderOptions {
    /// Force a kind instead of detecting it.
    pub kind: Option<RenderKind>,
    /// Repository root: nothing outside it is read. Empty means the rendered directory.
    pub root: PathBuf,
    /// Native kustomize options.
    pub kustomize: driftless_kustomize::Options,
    /// Helm options.
    pub helm: HelmOptions,
    /// Jsonnet options.
    pub jsonnet: JsonnetOptions,
    /// Plain manifest options.
    pub plain: PlainOptions,
    /// Post-render substitution, off when `None`.
    pub substitute: Option<Substitution>,
    /// Resource bounds; not part of the cache key, as they never change a
    /// successful render.
    pub limits: RenderLimits,
    /// Where Jsonnet is evaluated under the memory and time limits, and
    /// through which helm starts with its memory limited; `None` evaluates
    /// Jsonnet in this process, bounded only in output size, and runs helm
    /// bounded only in time and output.
    pub worker: Option<RenderWorker>,
    /// How remote kustomize resources (Git bases, HTTP(S) files) are
    /// fetched; `None` refuses them, naming the URL.
    pub remote: Option<crate::RemoteSources>,
    /// Keys that decrypt kustomize generator sources (`envs:`, `files:`)
    /// encrypted by sops; without them such a source fails the render. Not
    /// part of the cache key: a render that decrypted something is never
    /// cached, and the others do not depend on the keys.
    pub decryption_keys: Option<std::sync::Arc<driftless_sops::Keys>>,
    /// Where the dependencies of a chart kept in Git without them are taken
    /// from (`helm dependency build`); `None` leaves them to helm, which
    /// fails naming a missing one. Renders that took one are never cached.
    pub chart_repositories: Option<std::sync::Arc<driftless_source::ChartRepositories>>,
}

impl RenderOptions {
    /// Default options restricted to `root`.
    pub fn new(root: impl Into<PathBuf>) -> RenderOptions {
        RenderOptions {
            root: root.into(),
            ..RenderOptions::default()
        }
    }

    /// A deterministic text naming every option that changes the output; two
    /// option sets render the same files alike exactly when their keys are
    /// equal. The root is not part of it: where the files are does not
    /// change what they render to (the render cache keys them by content).
    pub fn cache_key(&self) -> String {
        let mut key = String::new();
        // Debug output of these plain data types is stable within one build,
        // and the on-disk cache is versioned by crate version as well.
        let k = &self.kustomize;
        let _ = write!(
            key,
            "v{}|kind={:?}|kustomize={:?},{:?},{},{:?},remote={}|helm={:?}|jsonnet={:?}|plain={:?}|subst={:?}",
            env!("CARGO_PKG_VERSION"),
            self.kind,
            k.reorder,
            k.load_restrictor,
            k.enable_helm,
            k.helm_command,
            // Renders that fetched remotes are never cached; whether they
            // may changes the result of those that name one.
            self.remote.is_some(),
            self.helm,
            self.jsonnet,
            self.plain,
            self.substitute,
        );
        key
    }
}

#[cfg(test)]
mod tests {
    use super::{RenderKind, RenderOptions};

    #[test]
    fn every_option_changes_the_cache_key() {
        let base = RenderOptions::new("/repo");
        let mut variants: Vec<RenderOptions> = Vec::new();
        let mut push = |change: &dyn Fn(&mut RenderOptions)| {
            let mut o = base.clone();
            change(&mut o);
            variants.push(o);
        };
        push(&|o| o.kind = Some(RenderKind::Plain));
        push(&|o| o.jsonnet.lib_paths.push("lib".into()));
        push(&|o| o.kustomize.enable_helm = true);
        push(&|o| o.kustomize.reorder = driftless_kustomize::Reorder::None);
        push(&|o| o.helm.release_name = Some("r".into()));
        push(&|o| o.helm.values = Some(serde_json::json!({"a": 1})));
        push(&|o| {
            o.jsonnet.ext_vars.insert("k".into(), "v".into());
        });
        push(&|o| o.plain.recursive = true);
        push(&|o| o.plain.exclude.push("*.json".into()));
        push(&|o| o.substitute = Some(Default::default()));
        push(&|o| {
            let fetcher = driftless_source::Fetcher::new("/cache");
            o.remote = Some(crate::RemoteSources::new(std::sync::Arc::new(fetcher)));
        });
        let mut keys: Vec<String> = variants.iter().map(RenderOptions::cache_key).collect();
        keys.push(base.cache_key());
        let count = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), count, "two option sets share a cache key");
        assert_eq!(base.cache_key(), base.clone().cache_key());
        let elsewhere = RenderOptions::new("/another/checkout");
        assert_eq!(
            base.cache_key(),
            elsewhere.cache_key(),
            "the root is not an option"
        );
    }
}
