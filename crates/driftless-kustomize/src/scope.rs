//! Kinds a custom OpenAPI schema (`openapi.path`) declares namespaced or
//! cluster-scoped through its `paths`, as kustomize reads them.
//!
//! kustomize keeps its schema in process-wide state that every identity
//! comparison consults, and the first custom schema set in a build (the top
//! kustomization's, or else the first base's or component's) adds to it the
//! scope of each kind a `GET` path names: namespaced when the path holds
//! `namespaces/{namespace}`, cluster-scoped otherwise. Since scope checks sit
//! deep in identity code here too, the scopes of the build running on this
//! thread are kept in a thread-local that a [`BuildScopes`] guard clears.

use std::cell::RefCell;

use serde_json::Value;

use crate::resource::Gvk;

thread_local! {
    static CUSTOM: RefCell<Option<Vec<(Gvk, bool)>>> = const { RefCell::new(None) };
}

/// Scopes of the build on this thread; dropping it forgets them.
pub(crate) struct BuildScopes(());

impl BuildScopes {
    /// Starts a build with no custom scopes.
    pub(crate) fn start() -> BuildScopes {
        CUSTOM.with(|c| *c.borrow_mut() = None);
        BuildScopes(())
    }
}

impl Drop for BuildScopes {
    fn drop(&mut self) {
        CUSTOM.with(|c| *c.borrow_mut() = None);
    }
}

/// Takes the scopes of a custom schema unless one was taken already in this
/// build (kustomize sets its schema once).
pub(crate) fn set_from_schema(doc: &Value) {
    CUSTOM.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = Some(read(doc));
        }
    });
}

/// Marks the schema of the build as chosen without custom scopes (a
/// built-in `openapi.version` at the top).
pub(crate) fn set_builtin() {
    CUSTOM.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = Some(Vec::new());
        }
    });
}

/// Whether the custom schema of this build says `gvk` is namespaced, if it
/// says anything.
pub(crate) fn custom_namespaced(gvk: &Gvk) -> Option<bool> {
    CUSTOM.with(|c| {
        c.borrow()
            .as_ref()?
            .iter()
            .find(|(g, _)| g == gvk)
            .map(|(_, namespaced)| *namespaced)
    })
}

/// Reads the scope of each kind the `GET` operations of `paths` name; a
/// kind with any namespaced path is namespaced.
fn read(doc: &Value) -> Vec<(Gvk, bool)> {
    let mut out: Vec<(Gvk, bool)> = Vec::new();
    for (path, item) in doc
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let Some(gvk) = item
            .pointer("/get/x-kubernetes-group-version-kind")
            .and_then(Value::as_object)
        else {
            continue;
        };
        let s = |k: &str| gvk.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let gvk = Gvk {
            group: s("group"),
            version: s("version"),
            kind: s("kind"),
        };
        let namespaced = path.contains("namespaces/{namespace}");
        match out.iter_mut().find(|(g, _)| *g == gvk) {
            Some((_, seen)) => *seen |= namespaced,
            None => out.push((gvk, namespaced)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gvk(kind: &str) -> Gvk {
        Gvk::from_api_version("example.com/v1", kind)
    }

    #[test]
    fn paths_give_scopes_and_the_first_schema_wins() {
        let _build = BuildScopes::start();
        let get = |kind: &str| {
            json!({"get": {"x-kubernetes-group-version-kind":
                {"group": "example.com", "version": "v1", "kind": kind}}})
        };
        set_from_schema(&json!({"paths": {
            "/apis/example.com/v1/widgets/{name}": get("Widget"),
            "/apis/example.com/v1/gadgets": get("Gadget"),
            "/apis/example.com/v1/namespaces/{namespace}/gadgets/{name}": get("Gadget"),
        }}));
        assert_eq!(custom_namespaced(&gvk("Widget")), Some(false));
        assert_eq!(custom_namespaced(&gvk("Gadget")), Some(true));
        assert_eq!(custom_namespaced(&gvk("Other")), None);
        set_from_schema(&json!({"paths": {"/x": get("Other")}}));
        assert_eq!(custom_namespaced(&gvk("Other")), None);
    }

    #[test]
    fn a_finished_build_forgets_its_scopes() {
        {
            let _build = BuildScopes::start();
            set_from_schema(
                &json!({"paths": {"/w": {"get": {"x-kubernetes-group-version-kind":
                {"group": "example.com", "version": "v1", "kind": "Widget"}}}}}),
            );
            assert_eq!(custom_namespaced(&gvk("Widget")), Some(false));
        }
        assert_eq!(custom_namespaced(&gvk("Widget")), None);
    }
}
