//! `dependsOn` ordering between Apps: cycle detection and the gate that holds an App
//! until everything it depends on is Healthy at the same source revision.

use std::collections::{BTreeMap, HashMap};

use crate::store::HealthStatus;

/// Errors in the dependency graph; each names the Apps at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepsError {
    /// `dependsOn` names an App that does not exist.
    #[error("app {app}: dependsOn names unknown app {dependency}")]
    UnknownDependency {
        /// The App whose `dependsOn` is wrong.
        app: String,
        /// The missing App.
        dependency: String,
    },
    /// Apps depend on each other in a loop, so none of them could ever run.
    #[error("dependency cycle: {}", cycle.join(" -> "))]
    Cycle {
        /// The loop, first App repeated at the end.
        cycle: Vec<String>,
    },
}

/// One App as the dependency graph sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppNode {
    /// App name.
    pub name: String,
    /// Name of its GitSource.
    pub source: String,
    /// Apps that must be Healthy first.
    pub depends_on: Vec<String>,
}

/// Checks that every dependency exists and that there is no cycle.
pub fn validate(apps: &[AppNode]) -> Result<(), DepsError> {
    let graph: BTreeMap<&str, &AppNode> = apps.iter().map(|a| (a.name.as_str(), a)).collect();
    for app in apps {
        if let Some(missing) = app
            .depends_on
            .iter()
            .find(|d| !graph.contains_key(d.as_str()))
        {
            return Err(DepsError::UnknownDependency {
                app: app.name.clone(),
                dependency: missing.clone(),
            });
        }
    }
    let mut done: HashMap<&str, bool> = HashMap::new(); // false: on the current path
    for name in graph.keys() {
        let mut path = Vec::new();
        visit(name, &graph, &mut done, &mut path)?;
    }
    Ok(())
}

fn visit<'a>(
    name: &'a str,
    graph: &BTreeMap<&'a str, &'a AppNode>,
    done: &mut HashMap<&'a str, bool>,
    path: &mut Vec<&'a str>,
) -> Result<(), DepsError> {
    match done.get(name) {
        Some(true) => return Ok(()),
        Some(false) => {
            let from = path.iter().position(|p| *p == name).unwrap_or(0);
            let mut cycle: Vec<String> = path[from..].iter().map(|s| (*s).to_owned()).collect();
            cycle.push(name.to_owned());
            return Err(DepsError::Cycle { cycle });
        }
        None => {}
    }
    done.insert(name, false);
    path.push(name);
    if let Some(node) = graph.get(name) {
        for dep in &node.depends_on {
            visit(dep, graph, done, path)?;
        }
    }
    path.pop();
    done.insert(name, true);
    Ok(())
}

/// What the gate needs to know about one dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyState {
    /// Name of the dependency's GitSource.
    pub source: String,
    /// Its aggregated health.
    pub health: HealthStatus,
    /// Commit it last applied.
    pub applied_sha: Option<String>,
}

/// Whether an App may run now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Every dependency is ready.
    Open,
    /// Waiting on `dependency` for `reason`; re-checked when that App changes.
    Blocked {
        /// The dependency holding the App back.
        dependency: String,
        /// Why, for the App's status.
        reason: String,
    },
}

/// Decides whether `app`, about to apply `target_sha` of its source, may run.
///
/// A dependency on the same source must have applied that same commit, so a change that
/// spans a CRD and its users rolls out in order; a dependency on another source only
/// has to be Healthy.
pub fn gate(
    app: &AppNode,
    target_sha: &str,
    lookup: impl Fn(&str) -> Option<DependencyState>,
) -> Gate {
    for dep in &app.depends_on {
        let blocked = |reason: String| Gate::Blocked {
            dependency: dep.clone(),
            reason,
        };
        let Some(state) = lookup(dep) else {
            return blocked(format!("dependency {dep} has not been reconciled yet"));
        };
        if state.health != HealthStatus::Healthy {
            return blocked(format!(
                "dependency {dep} is {:?}, not Healthy",
                state.health
            ));
        }
        if state.source == app.source && state.applied_sha.as_deref() != Some(target_sha) {
            let at = state.applied_sha.as_deref().unwrap_or("nothing");
            return blocked(format!("dependency {dep} is at {at}, not {target_sha}"));
        }
    }
    Gate::Open
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, source: &str, deps: &[&str]) -> AppNode {
        AppNode {
            name: name.into(),
            source: source.into(),
            depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    #[test]
    fn acyclic_graph_validates() {
        let apps = [
            node("crds", "p", &[]),
            node("operator", "p", &["crds"]),
            node("app", "p", &["operator", "crds"]),
        ];
        assert_eq!(validate(&apps), Ok(()));
    }

    #[test]
    fn cycle_is_named_in_order() {
        let apps = [
            node("a", "p", &["b"]),
            node("b", "p", &["c"]),
            node("c", "p", &["a"]),
            node("d", "p", &[]),
        ];
        let err = validate(&apps).expect_err("cycle");
        assert_eq!(err.to_string(), "dependency cycle: a -> b -> c -> a");
        let self_loop = [node("solo", "p", &["solo"])];
        assert_eq!(
            validate(&self_loop).expect_err("self").to_string(),
            "dependency cycle: solo -> solo"
        );
    }

    #[test]
    fn unknown_dependency_names_both_apps() {
        let err = validate(&[node("web", "p", &["db"])]).expect_err("unknown");
        assert_eq!(err.to_string(), "app web: dependsOn names unknown app db");
    }

    #[test]
    fn gate_requires_healthy_dependencies_at_the_same_revision() {
        let app = node("web", "platform", &["db", "certs"]);
        let state = |source: &str, health, sha: &str| DependencyState {
            source: source.into(),
            health,
            applied_sha: Some(sha.into()),
        };
        let all_good = |name: &str| match name {
            "db" => Some(state("platform", HealthStatus::Healthy, "c2")),
            _ => Some(state("other-repo", HealthStatus::Healthy, "zz")),
        };
        assert_eq!(gate(&app, "c2", all_good), Gate::Open);

        let stale = |name: &str| match name {
            "db" => Some(state("platform", HealthStatus::Healthy, "c1")),
            _ => Some(state("other-repo", HealthStatus::Healthy, "zz")),
        };
        assert!(
            matches!(gate(&app, "c2", stale), Gate::Blocked { ref dependency, ref reason }
            if dependency == "db" && reason == "dependency db is at c1, not c2")
        );

        let progressing = |name: &str| match name {
            "db" => Some(state("platform", HealthStatus::Healthy, "c2")),
            _ => Some(state("other-repo", HealthStatus::Progressing, "zz")),
        };
        assert!(
            matches!(gate(&app, "c2", progressing), Gate::Blocked { ref dependency, .. } if dependency == "certs")
        );
        assert!(
            matches!(gate(&app, "c2", |_| None), Gate::Blocked { ref reason, .. } if reason.contains("not been reconciled"))
        );
    }
}
