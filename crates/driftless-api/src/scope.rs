//! Names of objects read from a cluster, where each namespace has names of its own.
//!
//! The engine keys everything by one name per kind. Custom resources in different
//! namespaces may share a name, so in-cluster objects are known to the engine by
//! their qualified name `NAMESPACE.NAME`: both parts are DNS labels, which hold no
//! dot, so the split is never ambiguous and no qualified name can be a config
//! file's name. References name an object of the referrer's namespace, or of
//! another one as `NAMESPACE/NAME` when cross-namespace references are allowed.

use crate::decode::AnyObject;
use crate::meta::{Kind, Object};
use crate::validate::FieldProblem;

/// How the objects of a config are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Naming {
    /// Config files: names as written, one namespace for all.
    #[default]
    Plain,
    /// Custom resources: names qualified by namespace.
    Namespaced {
        /// Whether a reference may name an object of another namespace.
        cross_namespace: bool,
    },
}

/// The engine's name of the object `name` in `namespace`.
pub fn qualified_name(namespace: &str, name: &str) -> String {
    format!("{namespace}.{name}")
}

/// Namespace and name of a qualified name; `None` for a plain one.
pub fn split_qualified(name: &str) -> Option<(&str, &str)> {
    name.split_once('.')
}

/// Decodes a custom resource and qualifies its name and references; returns
/// every problem found.
pub fn decode_namespaced(
    value: serde_json::Value,
    cross_namespace: bool,
) -> Result<AnyObject, Vec<FieldProblem>> {
    let mut object = crate::decode::decode(value)?;
    let problems = qualify(&mut object, cross_namespace);
    if problems.is_empty() {
        Ok(object)
    } else {
        Err(problems)
    }
}

/// `spec.caFile` in a custom resource of `kind`: a file of the controller's
/// machine, which a resource must not name.
fn ca_file_refused(kind: &str) -> FieldProblem {
    FieldProblem::new(
        "spec.caFile",
        format!(
            "is for config files; {kind} custom resource gives its certificate \
             authorities in the Secret of spec.secretRef (key ca.crt)"
        ),
    )
}

/// Qualifies the name and references of a decoded custom resource; returns the
/// problems that prevent it (no namespace, a refused cross-namespace reference,
/// a kind that is not a custom resource).
fn qualify(object: &mut AnyObject, cross_namespace: bool) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    match object {
        AnyObject::GitSource(o) => {
            own_name(o, &mut problems);
        }
        AnyObject::Cluster(o) => {
            own_name(o, &mut problems);
        }
        AnyObject::App(o) => {
            let Some(ns) = own_name(o, &mut problems) else {
                return problems;
            };
            let spec = &mut o.spec;
            let mut refer = |field: String, name: &mut String| {
                reference(&ns, cross_namespace, &field, name, &mut problems);
            };
            refer("spec.sourceRef.name".into(), &mut spec.source_ref.name);
            if let Some(cluster) = &mut spec.destination.cluster {
                refer("spec.destination.cluster".into(), cluster);
            }
            for (i, dep) in spec.depends_on.iter_mut().enumerate() {
                refer(format!("spec.dependsOn[{i}]"), dep);
            }
            let host_names = spec.destination.hosts.iter_mut().flat_map(|h| &mut h.names);
            for (i, host) in host_names.enumerate() {
                refer(format!("spec.destination.hosts.names[{i}]"), host);
            }
            let charts = spec.render.helm.iter_mut().flat_map(|h| &mut h.chart);
            for chart in charts {
                refer(
                    "spec.render.helm.chart.repository".into(),
                    &mut chart.repository,
                );
            }
        }
        AnyObject::HelmRepository(o) => {
            if o.spec.ca_file.is_some() {
                problems.push(ca_file_refused("a HelmRepository"));
            }
            own_name(o, &mut problems);
        }
        AnyObject::OciSource(o) => {
            if o.spec.ca_file.is_some() {
                problems.push(ca_file_refused("an OCISource"));
            }
            own_name(o, &mut problems);
        }
        AnyObject::Receiver(o) => {
            let Some(ns) = own_name(o, &mut problems) else {
                return problems;
            };
            for (i, source) in o.spec.resources.iter_mut().enumerate() {
                let field = format!("spec.resources[{i}]");
                reference(&ns, cross_namespace, &field, source, &mut problems);
            }
        }
        AnyObject::Server(_) => problems.push(FieldProblem::new(
            "kind",
            "Server is a settings object of config files, not a custom resource",
        )),
        AnyObject::Notifier(o) => {
            let Some(ns) = own_name(o, &mut problems) else {
                return problems;
            };
            for (i, app) in o.spec.apps.iter_mut().enumerate() {
                let field = format!("spec.apps[{i}]");
                reference(&ns, cross_namespace, &field, app, &mut problems);
            }
        }
        AnyObject::SyncWindow(o) => {
            // A window selects the Apps of its own namespace.
            if let Some(ns) = own_name(o, &mut problems) {
                for pattern in &mut o.spec.apps {
                    *pattern = qualified_name(&ns, pattern);
                }
            }
        }
        AnyObject::Host(o) => {
            // Files in the controller's pod are no place for a host's credentials.
            for (field, set) in [
                ("spec.identityFile", o.spec.identity_file.is_some()),
                ("spec.knownHostsFile", o.spec.known_hosts_file.is_some()),
            ] {
                if set {
                    problems.push(FieldProblem::new(
                        field,
                        "is for config files; a Host custom resource names its Secret in \
                         spec.secretRef (keys identity and known_hosts)",
                    ));
                }
            }
            own_name(o, &mut problems);
        }
    }
    problems
}

/// Qualifies the object's own name; returns its namespace.
fn own_name<S: Kind>(object: &mut Object<S>, problems: &mut Vec<FieldProblem>) -> Option<String> {
    let Some(ns) = object.metadata.namespace.clone() else {
        problems.push(FieldProblem::new(
            "metadata.namespace",
            "required for a custom resource",
        ));
        return None;
    };
    object.metadata.name = qualified_name(&ns, &object.metadata.name);
    Some(ns)
}

/// Qualifies one reference in place.
fn reference(
    namespace: &str,
    cross_namespace: bool,
    field: &str,
    name: &mut String,
    problems: &mut Vec<FieldProblem>,
) {
    match name.split_once('/') {
        None => *name = qualified_name(namespace, name),
        Some((other, _)) if other == namespace => {
            *name = name.replacen('/', ".", 1);
        }
        Some(_) if cross_namespace => *name = name.replacen('/', ".", 1),
        Some((other, target)) => problems.push(FieldProblem::new(
            field,
            format!(
                "{other}/{target} is in namespace {other}: cross-namespace references are refused \
                 (the controller allows them with --allow-cross-namespace-refs)"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_split_back() {
        let q = qualified_name("team-a", "web");
        assert_eq!(q, "team-a.web");
        assert_eq!(split_qualified(&q), Some(("team-a", "web")));
        assert_eq!(split_qualified("web"), None);
    }

    #[test]
    fn references_resolve_in_the_own_namespace_unless_allowed() {
        let mut problems = Vec::new();
        let mut local = "platform".to_owned();
        reference("team-a", false, "f", &mut local, &mut problems);
        assert_eq!(local, "team-a.platform");
        let mut same = "team-a/platform".to_owned();
        reference("team-a", false, "f", &mut same, &mut problems);
        assert_eq!(same, "team-a.platform");
        assert!(problems.is_empty());
        let mut other = "shared/platform".to_owned();
        reference(
            "team-a",
            false,
            "spec.sourceRef.name",
            &mut other,
            &mut problems,
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "spec.sourceRef.name");
        assert!(problems[0].message.contains("--allow-cross-namespace-refs"));
        reference("team-a", true, "f", &mut other, &mut problems);
        assert_eq!(other, "shared.platform");
    }

    fn doc(index: usize, value: serde_json::Value) -> crate::config::Document {
        crate::config::Document {
            file: "cluster".into(),
            index,
            value,
        }
    }

    fn objects(ns: &str, source_ref: &str) -> Vec<serde_json::Value> {
        let meta = |name: &str| serde_json::json!({"name": name, "namespace": ns});
        vec![
            serde_json::json!({"apiVersion": crate::API_VERSION, "kind": "GitSource",
                "metadata": meta("platform"),
                "spec": {"url": "https://git.example.com/p.git", "ref": {"branch": "main"}}}),
            serde_json::json!({"apiVersion": crate::API_VERSION, "kind": "App",
                "metadata": meta("web"),
                "spec": {"sourceRef": {"name": source_ref}, "path": "web"}}),
        ]
    }

    #[test]
    fn namespaces_keep_equal_names_apart() {
        let docs = objects("team-a", "platform")
            .into_iter()
            .chain(objects("team-b", "platform"))
            .enumerate()
            .map(|(i, v)| doc(i + 1, v));
        let naming = Naming::Namespaced {
            cross_namespace: false,
        };
        let config = crate::Config::from_named_documents(docs, naming).expect("valid");
        let apps: Vec<&str> = config.apps().map(|a| a.name()).collect();
        assert_eq!(apps, ["team-a.web", "team-b.web"]);
        let app = config.app("team-b.web").expect("qualified");
        assert_eq!(app.spec.source_ref.name, "team-b.platform");
        assert_eq!(app.metadata.namespace.as_deref(), Some("team-b"));
    }

    #[test]
    fn a_refused_cross_namespace_reference_names_the_object_and_field() {
        let docs = objects("team-a", "shared/platform")
            .into_iter()
            .enumerate()
            .map(|(i, v)| doc(i + 1, v));
        let naming = Naming::Namespaced {
            cross_namespace: false,
        };
        let problems = crate::Config::from_named_documents(docs, naming).expect_err("refused");
        assert_eq!(problems.0.len(), 1, "{problems}");
        let p = &problems.0[0];
        assert_eq!(p.object.as_deref(), Some("App/team-a.web"));
        assert_eq!(p.field.as_deref(), Some("spec.sourceRef.name"));
        assert_eq!(p.document, Some(2));
    }
}
