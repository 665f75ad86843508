//! What an apply, diff or delete is asked to do, and the identity and
//! namespace its requests use.

use std::time::Duration;

use crate::compare::MaskedFields;
use crate::hooks::HookRuns;
use crate::ignore::IgnoredDifferences;
use crate::inventory::DEFAULT_INVENTORY_NAMESPACE;
use crate::sync_options::Propagation;
use crate::target::{Target, TargetError};

/// What an apply, diff or delete should do.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// The App; its name goes into the owner label and the inventory.
    pub app: String,
    /// Namespace for namespaced objects that name none (default: the context's).
    pub namespace: Option<String>,
    /// Delete objects of the previous inventory that left the set.
    pub prune: bool,
    /// Let an empty set prune everything (otherwise an empty set prunes nothing).
    pub allow_empty_prune: bool,
    /// Wait until every object is healthy.
    pub wait: bool,
    /// Deadline for each health wait.
    pub timeout: Duration,
    /// Take over fields of other managers and objects of other Apps;
    /// delete and re-create objects whose immutable fields changed.
    pub force: bool,
    /// Take over fields other field managers own (server-side apply
    /// `force`) without the rest of `force`: Git wins over manual edits.
    pub force_conflicts: bool,
    /// Create the destination namespace when missing.
    pub create_namespace: bool,
    /// Take over live objects no App owns yet (no owner label); each one is
    /// reported. When false, applying such an object fails instead, as it
    /// does for a manifest annotated `driftless.dev/adopt: "false"`.
    pub adopt_existing: bool,
    /// ServiceAccount to act as (`NAME` in the destination namespace or `NAMESPACE:NAME`).
    pub impersonate: Option<String>,
    /// Namespace of the inventory ConfigMaps.
    pub inventory_namespace: String,
    /// How the dependents of a pruned or deleted object go, unless the
    /// object's own sync options say otherwise.
    pub propagation: Propagation,
    /// Fields other writers own: not drift, not written over.
    pub ignore: IgnoredDifferences,
    /// Fields a diff masks in objects of any kind, by kind and name (JSON
    /// Pointers): values that were decrypted before the apply.
    pub masked_fields: MaskedFields,
    /// When the set's hooks run.
    pub hooks: HookRuns,
}

impl ApplyOptions {
    /// Defaults for `app`: no prune, no wait, 5 minute timeout, no force,
    /// adopt existing objects.
    pub fn new(app: impl Into<String>) -> Self {
        Self {
            app: app.into(),
            namespace: None,
            prune: false,
            allow_empty_prune: false,
            wait: false,
            timeout: Duration::from_secs(300),
            force: false,
            force_conflicts: false,
            create_namespace: false,
            adopt_existing: true,
            impersonate: None,
            inventory_namespace: DEFAULT_INVENTORY_NAMESPACE.to_owned(),
            propagation: Propagation::Background,
            ignore: IgnoredDifferences::default(),
            masked_fields: MaskedFields::new(),
            hooks: HookRuns::WhenChanged,
        }
    }
}

/// The identity requests are made as: the impersonated ServiceAccount, or
/// the target itself.
pub(crate) fn tenant(target: &Target, opts: &ApplyOptions) -> Result<Target, TargetError> {
    match &opts.impersonate {
        Some(account) => target.impersonate(account, destination(target, opts)),
        None => Ok(target.clone()),
    }
}

/// The namespace objects without one go to.
pub(crate) fn destination<'a>(target: &'a Target, opts: &'a ApplyOptions) -> &'a str {
    opts.namespace
        .as_deref()
        .unwrap_or(target.default_namespace())
}
