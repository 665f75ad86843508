//! Which files a kustomization may read: an option of the kustomize library
//! and a field of the App config, defined once for both.

/// kustomize load restriction.
///
/// The serde names (`root-only`, `none`) are the config file's; the
/// `kustomize` command line spells them `LoadRestrictionsRootOnly` and
/// `LoadRestrictionsNone`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "kebab-case")
)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum LoadRestrictor {
    /// Only files under the kustomization root (kustomize's default).
    #[default]
    RootOnly,
    /// Any file inside the source.
    None,
}
