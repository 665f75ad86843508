//! A validated set of driftless objects: the unit the engine runs and reloads.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::decode::{AnyObject, decode, describe, describe_namespaced};
use crate::meta::{Kind, Object};
use crate::scope::Naming;
use crate::validate::did_you_mean;
use crate::{
    App, Cluster, GitSource, HelmRepository, Host, Notifier, OciSource, Receiver, Server,
    SourceKind, SyncWindow,
};

/// One parsed document and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// File the document was read from.
    pub file: PathBuf,
    /// Position of the document in its file, from 1.
    pub index: usize,
    /// The parsed document.
    pub value: Value,
}

/// A problem with a config, naming file, document, object and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// File at fault.
    pub file: PathBuf,
    /// Document in that file, from 1; absent for file-level problems.
    pub document: Option<usize>,
    /// `Kind/name` of the object, when known.
    pub object: Option<String>,
    /// Field path, e.g. `spec.ref`; absent for file-level problems.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        match (self.document, &self.object) {
            (Some(doc), Some(obj)) => write!(f, " (document {doc}, {obj})")?,
            (Some(doc), None) => write!(f, " (document {doc})")?,
            (None, Some(obj)) => write!(f, " ({obj})")?,
            (None, None) => {}
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All problems of a config, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} problem{} in config", if n == 1 { "" } else { "s" })?;
        for p in &self.0 {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

/// Where an object was declared, for problems found across objects.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    file: PathBuf,
    index: usize,
}

impl Origin {
    fn problem(&self, object: String, field: &str, message: String) -> Problem {
        Problem {
            file: self.file.clone(),
            document: Some(self.index),
            object: Some(object),
            field: Some(field.to_owned()),
            message,
        }
    }
}

/// A validated config: every reference resolves and dependencies form no cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    git_sources: BTreeMap<String, GitSource>,
    apps: BTreeMap<String, App>,
    clusters: BTreeMap<String, Cluster>,
    receivers: BTreeMap<String, Receiver>,
    notifiers: BTreeMap<String, Notifier>,
    hosts: BTreeMap<String, Host>,
    sync_windows: BTreeMap<String, SyncWindow>,
    helm_repositories: BTreeMap<String, HelmRepository>,
    oci_sources: BTreeMap<String, OciSource>,
    server: Option<Server>,
    digest: String,
    /// Per App, the Apps whose `dependsOn` names it (derived from `apps`).
    dependents: BTreeMap<String, Vec<String>>,
}

impl Config {
    /// Decodes and validates documents; returns every problem at once.
    pub fn from_documents(docs: impl IntoIterator<Item = Document>) -> Result<Self, Problems> {
        Self::from_named_documents(docs, Naming::Plain)
    }

    /// Decodes and validates documents named as `naming` says (custom resources
    /// get names qualified by their namespace); returns every problem at once.
    pub fn from_named_documents(
        docs: impl IntoIterator<Item = Document>,
        naming: Naming,
    ) -> Result<Self, Problems> {
        let mut problems = Vec::new();
        let mut objects: Vec<(Origin, AnyObject)> = Vec::new();
        let mut broken = BTreeSet::new();
        for doc in docs {
            if doc.value.is_null() {
                continue;
            }
            let object = match naming {
                Naming::Plain => describe(&doc.value),
                Naming::Namespaced { .. } => describe_namespaced(&doc.value),
            };
            let decoded = match naming {
                Naming::Plain => decode(doc.value),
                Naming::Namespaced { cross_namespace } => {
                    crate::scope::decode_namespaced(doc.value, cross_namespace)
                }
            };
            match decoded {
                Ok(obj) => objects.push((
                    Origin {
                        file: doc.file,
                        index: doc.index,
                    },
                    obj,
                )),
                Err(found) => {
                    problems.extend(found.into_iter().map(|fp| Problem {
                        file: doc.file.clone(),
                        document: Some(doc.index),
                        object: object.clone(),
                        field: Some(fp.field),
                        message: fp.message,
                    }));
                    broken.extend(object);
                }
            }
        }
        let mut builder = Builder {
            broken,
            ..Builder::default()
        };
        for (origin, object) in objects {
            builder.add(origin, object, &mut problems);
        }
        builder.check_references(&mut problems);
        builder.check_cycles(&mut problems);
        if !problems.is_empty() {
            return Err(Problems(problems));
        }
        Ok(builder.finish())
    }

    /// The GitSource named `name`.
    pub fn git_source(&self, name: &str) -> Option<&GitSource> {
        self.git_sources.get(name)
    }

    /// The App named `name`.
    pub fn app(&self, name: &str) -> Option<&App> {
        self.apps.get(name)
    }

    /// The Cluster named `name`.
    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.get(name)
    }

    /// The Receiver named `name`.
    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.get(name)
    }

    /// The HelmRepository named `name`.
    pub fn helm_repository(&self, name: &str) -> Option<&HelmRepository> {
        self.helm_repositories.get(name)
    }

    /// All HelmRepositories by name.
    pub fn helm_repositories(&self) -> impl Iterator<Item = &HelmRepository> {
        self.helm_repositories.values()
    }

    /// Apps that render a chart of the HelmRepository `repository`.
    pub fn apps_of_helm_repository<'a>(
        &'a self,
        repository: &'a str,
    ) -> impl Iterator<Item = &'a App> + 'a {
        self.apps.values().filter(move |a| {
            let chart = a.spec.render.helm.as_ref().and_then(|h| h.chart.as_ref());
            chart.is_some_and(|c| c.repository == repository)
        })
    }

    /// All GitSources by name.
    pub fn git_sources(&self) -> impl Iterator<Item = &GitSource> {
        self.git_sources.values()
    }

    /// The names of the Apps that depend on App `name`, in name order;
    /// looked up, not searched, so it stays cheap with many Apps.
    pub fn dependents_of(&self, name: &str) -> &[String] {
        self.dependents.get(name).map_or(&[], Vec::as_slice)
    }

    /// All Apps by name.
    pub fn apps(&self) -> impl Iterator<Item = &App> {
        self.apps.values()
    }

    /// All Clusters by name.
    pub fn clusters(&self) -> impl Iterator<Item = &Cluster> {
        self.clusters.values()
    }

    /// All Receivers by name.
    pub fn receivers(&self) -> impl Iterator<Item = &Receiver> {
        self.receivers.values()
    }

    /// All Notifiers by name.
    pub fn notifiers(&self) -> impl Iterator<Item = &Notifier> {
        self.notifiers.values()
    }

    /// The Host named `name`.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.get(name)
    }

    /// All Hosts by name.
    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.hosts.values()
    }

    /// The Hosts an App deploys to, in rollout order; empty for a cluster App.
    /// Labels select Hosts of the App's namespace only (names may reach
    /// others where cross-namespace references are allowed).
    pub fn hosts_of(&self, app: &App) -> Vec<&Host> {
        let Some(selector) = &app.spec.destination.hosts else {
            return Vec::new();
        };
        if !selector.names.is_empty() {
            return selector.select(self.hosts.values());
        }
        let own = self
            .hosts
            .values()
            .filter(|h| h.metadata.namespace == app.metadata.namespace);
        selector.select(own)
    }

    /// All SyncWindows by name.
    pub fn sync_windows(&self) -> impl Iterator<Item = &SyncWindow> {
        self.sync_windows.values()
    }

    /// Server settings, when the config has a Server object.
    pub fn server(&self) -> Option<&Server> {
        self.server.as_ref()
    }

    /// Apps that use the GitSource `source`.
    pub fn apps_of_source<'a>(&'a self, source: &'a str) -> impl Iterator<Item = &'a App> + 'a {
        self.apps_of(SourceKind::GitSource, source)
    }

    /// Apps that use the source of `kind` named `source`.
    pub fn apps_of<'a>(
        &'a self,
        kind: SourceKind,
        source: &'a str,
    ) -> impl Iterator<Item = &'a App> + 'a {
        self.apps
            .values()
            .filter(move |a| a.spec.source_ref.kind == kind && a.spec.source_ref.name == source)
    }

    /// The OCISource named `name`.
    pub fn oci_source(&self, name: &str) -> Option<&OciSource> {
        self.oci_sources.get(name)
    }

    /// All OCISources by name.
    pub fn oci_sources(&self) -> impl Iterator<Item = &OciSource> {
        self.oci_sources.values()
    }

    /// App names ordered so every App comes after the Apps it depends on
    /// (ties by name, so the order is stable).
    pub fn apps_in_dependency_order(&self) -> Vec<&str> {
        let mut done: BTreeSet<&str> = BTreeSet::new();
        let mut order = Vec::with_capacity(self.apps.len());
        // Validation ruled out cycles, so each pass places at least one App.
        while order.len() < self.apps.len() {
            let before = order.len();
            for (name, app) in &self.apps {
                if !done.contains(name.as_str())
                    && app
                        .spec
                        .depends_on
                        .iter()
                        .all(|d| done.contains(d.as_str()))
                {
                    done.insert(name);
                    order.push(name.as_str());
                }
            }
            if order.len() == before {
                break;
            }
        }
        order
    }

    /// `sha256:<hex>` of the objects' desired state (status excluded), the
    /// same whatever the file layout or order: tells a reload whether anything changed.
    pub fn digest(&self) -> &str {
        &self.digest
    }
}

fn names<T>(m: &BTreeMap<String, T>) -> Vec<&str> {
    m.keys().map(String::as_str).collect()
}

/// Collects objects, remembering where each came from.
#[derive(Default)]
struct Builder {
    git_sources: BTreeMap<String, (Origin, GitSource)>,
    apps: BTreeMap<String, (Origin, App)>,
    clusters: BTreeMap<String, (Origin, Cluster)>,
    receivers: BTreeMap<String, (Origin, Receiver)>,
    notifiers: BTreeMap<String, (Origin, Notifier)>,
    hosts: BTreeMap<String, (Origin, Host)>,
    sync_windows: BTreeMap<String, (Origin, SyncWindow)>,
    helm_repositories: BTreeMap<String, (Origin, HelmRepository)>,
    oci_sources: BTreeMap<String, (Origin, OciSource)>,
    servers: Vec<(Origin, Server)>,
    /// `Kind/name` of documents that failed to decode: references to them are
    /// not reported as dangling, which would only repeat their own problem.
    broken: BTreeSet<String>,
}

/// Makes local file paths in an object relative to the file that declares
/// it, so a config directory can move as a whole. Objects without a file
/// (CustomResources) keep their paths.
fn resolve_paths(object: &mut AnyObject, file: &Path) {
    let Some(base) = file.parent().filter(|b| !b.as_os_str().is_empty()) else {
        return;
    };
    let resolve = |path: &mut String| {
        if !path.is_empty() && Path::new(path.as_str()).is_relative() {
            *path = base.join(path.as_str()).display().to_string();
        }
    };
    match object {
        AnyObject::GitSource(o) => o.spec.ca_file.iter_mut().for_each(resolve),
        AnyObject::HelmRepository(o) => o.spec.ca_file.iter_mut().for_each(resolve),
        AnyObject::OciSource(o) => o.spec.ca_file.iter_mut().for_each(resolve),
        AnyObject::Cluster(o) => o
            .spec
            .kubeconfig
            .iter_mut()
            .for_each(|k| resolve(&mut k.path)),
        AnyObject::Server(o) => {
            resolve(&mut o.spec.data_dir);
            let named = o.spec.api.tokens.iter_mut().map(|t| &mut t.secret);
            for secret in o.spec.api_token.iter_mut().chain(named) {
                secret.file.iter_mut().for_each(resolve);
            }
        }
        AnyObject::Host(o) => {
            let spec = &mut o.spec;
            for path in spec
                .identity_file
                .iter_mut()
                .chain(&mut spec.known_hosts_file)
            {
                resolve(path);
            }
        }
        AnyObject::App(o) => {
            let decryption = o.spec.decryption.iter_mut();
            decryption.flat_map(|d| &mut d.key_files).for_each(resolve);
        }
        AnyObject::Receiver(_) | AnyObject::Notifier(_) | AnyObject::SyncWindow(_) => {}
    }
}

/// Adds an object unless its kind already has one of that name.
fn insert<S: Kind>(
    map: &mut BTreeMap<String, (Origin, Object<S>)>,
    origin: Origin,
    object: Object<S>,
    problems: &mut Vec<Problem>,
) {
    if let Some((first, _)) = map.get(object.name()) {
        let message = format!(
            "duplicate name, first declared in {} (document {})",
            first.file.display(),
            first.index
        );
        problems.push(origin.problem(object.key(), "metadata.name", message));
        return;
    }
    map.insert(object.name().to_owned(), (origin, object));
}

impl Builder {
    fn add(&mut self, origin: Origin, mut object: AnyObject, problems: &mut Vec<Problem>) {
        let key = object.key();
        resolve_paths(&mut object, &origin.file);
        match object {
            AnyObject::GitSource(o) => insert(&mut self.git_sources, origin, *o, problems),
            AnyObject::App(o) => insert(&mut self.apps, origin, *o, problems),
            AnyObject::Cluster(o) => insert(&mut self.clusters, origin, *o, problems),
            AnyObject::Receiver(o) => insert(&mut self.receivers, origin, *o, problems),
            AnyObject::Notifier(o) => insert(&mut self.notifiers, origin, *o, problems),
            AnyObject::Host(o) => insert(&mut self.hosts, origin, *o, problems),
            AnyObject::SyncWindow(o) => insert(&mut self.sync_windows, origin, *o, problems),
            AnyObject::HelmRepository(o) => {
                insert(&mut self.helm_repositories, origin, *o, problems);
            }
            AnyObject::OciSource(o) => insert(&mut self.oci_sources, origin, *o, problems),
            AnyObject::Server(o) => {
                if let Some((first, _)) = self.servers.first() {
                    problems.push(Problem {
                        file: origin.file.clone(),
                        document: Some(origin.index),
                        object: Some(key),
                        field: None,
                        message: format!(
                            "only one Server object is allowed, first declared in {} (document {})",
                            first.file.display(),
                            first.index
                        ),
                    });
                }
                self.servers.push((origin, *o));
            }
        }
    }

    fn exists<T>(&self, map: &BTreeMap<String, T>, kind: &str, name: &str) -> bool {
        map.contains_key(name) || self.broken.contains(&format!("{kind}/{name}"))
    }

    /// Every name an object points at must exist.
    fn check_references(&self, problems: &mut Vec<Problem>) {
        let dangling = |kind: &str, name: &str, names: Vec<&str>| {
            format!("{kind} {name:?} not found{}", did_you_mean(name, names))
        };
        for (origin, app) in self.apps.values() {
            let source = &app.spec.source_ref.name;
            let kind = app.spec.source_ref.kind;
            let found = match kind {
                SourceKind::GitSource => self.exists(&self.git_sources, kind.as_str(), source),
                SourceKind::OciSource => self.exists(&self.oci_sources, kind.as_str(), source),
            };
            if !found {
                let known = match kind {
                    SourceKind::GitSource => names(&self.git_sources),
                    SourceKind::OciSource => names(&self.oci_sources),
                };
                let message = dangling(kind.as_str(), source, known);
                problems.push(origin.problem(app.key(), "spec.sourceRef.name", message));
            }
            let chart = app.spec.render.helm.as_ref().and_then(|h| h.chart.as_ref());
            if let Some(chart) = chart
                && !self.exists(&self.helm_repositories, "HelmRepository", &chart.repository)
            {
                let message = dangling(
                    "HelmRepository",
                    &chart.repository,
                    names(&self.helm_repositories),
                );
                let field = "spec.render.helm.chart.repository";
                problems.push(origin.problem(app.key(), field, message));
            }
            if let Some(cluster) = &app.spec.destination.cluster
                && !self.exists(&self.clusters, "Cluster", cluster)
            {
                let message = dangling("Cluster", cluster, names(&self.clusters));
                problems.push(origin.problem(app.key(), "spec.destination.cluster", message));
            }
            let host_names = app.spec.destination.hosts.iter().flat_map(|h| &h.names);
            for (i, host) in host_names.enumerate() {
                if !self.exists(&self.hosts, "Host", host) {
                    let message = dangling("Host", host, names(&self.hosts));
                    let field = format!("spec.destination.hosts.names[{i}]");
                    problems.push(origin.problem(app.key(), &field, message));
                }
            }
            for (i, dep) in app.spec.depends_on.iter().enumerate() {
                let field = format!("spec.dependsOn[{i}]");
                if dep == app.name() {
                    problems.push(origin.problem(
                        app.key(),
                        &field,
                        "an App cannot depend on itself".into(),
                    ));
                } else if !self.exists(&self.apps, "App", dep) {
                    let message = dangling("App", dep, names(&self.apps));
                    problems.push(origin.problem(app.key(), &field, message));
                }
            }
        }
        for (origin, receiver) in self.receivers.values() {
            for (i, source) in receiver.spec.resources.iter().enumerate() {
                if !self.exists(&self.git_sources, "GitSource", source) {
                    let message = dangling("GitSource", source, names(&self.git_sources));
                    problems.push(origin.problem(
                        receiver.key(),
                        &format!("spec.resources[{i}]"),
                        message,
                    ));
                }
            }
        }
        for (origin, notifier) in self.notifiers.values() {
            for (i, app) in notifier.spec.apps.iter().enumerate() {
                if !self.exists(&self.apps, "App", app) {
                    let message = dangling("App", app, names(&self.apps));
                    problems.push(origin.problem(
                        notifier.key(),
                        &format!("spec.apps[{i}]"),
                        message,
                    ));
                }
            }
        }
    }

    /// Reports each dependency cycle once, naming its members in order.
    fn check_cycles(&self, problems: &mut Vec<Problem>) {
        // 0 = unvisited, 1 = on the current path, 2 = finished.
        let mut state: BTreeMap<&str, u8> = BTreeMap::new();
        for start in self.apps.keys() {
            let mut path: Vec<&str> = Vec::new();
            self.visit(start, &mut state, &mut path, problems);
        }
    }

    fn visit<'a>(
        &'a self,
        name: &'a str,
        state: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
        problems: &mut Vec<Problem>,
    ) {
        match state.get(name) {
            Some(2) => return,
            Some(1) => {
                let from = path.iter().position(|n| *n == name).unwrap_or(0);
                let mut cycle: Vec<String> =
                    path[from..].iter().map(|n| format!("App/{n}")).collect();
                cycle.push(format!("App/{name}"));
                if let Some((origin, app)) = self.apps.get(name) {
                    let message = format!("dependency cycle: {}", cycle.join(" -> "));
                    problems.push(origin.problem(app.key(), "spec.dependsOn", message));
                }
                return;
            }
            _ => {}
        }
        let Some((_, app)) = self.apps.get(name) else {
            return;
        };
        state.insert(name, 1);
        path.push(name);
        for dep in &app.spec.depends_on {
            if dep != name {
                self.visit(dep, state, path, problems);
            }
        }
        path.pop();
        state.insert(name, 2);
    }

    fn finish(self) -> Config {
        fn strip<T>(m: BTreeMap<String, (Origin, T)>) -> BTreeMap<String, T> {
            m.into_iter().map(|(k, (_, v))| (k, v)).collect()
        }
        let mut config = Config {
            git_sources: strip(self.git_sources),
            apps: strip(self.apps),
            clusters: strip(self.clusters),
            receivers: strip(self.receivers),
            notifiers: strip(self.notifiers),
            hosts: strip(self.hosts),
            sync_windows: strip(self.sync_windows),
            helm_repositories: strip(self.helm_repositories),
            oci_sources: strip(self.oci_sources),
            server: self.servers.into_iter().next().map(|(_, s)| s),
            digest: String::new(),
            dependents: BTreeMap::new(),
        };
        for (name, app) in &config.apps {
            for dependency in &app.spec.depends_on {
                config
                    .dependents
                    .entry(dependency.clone())
                    .or_default()
                    .push(name.clone());
            }
        }
        config.digest = digest_of(&config);
        config
    }
}

/// Hashes kind, name and spec of every object in name order.
fn digest_of(config: &Config) -> String {
    let mut hasher = Sha256::new();
    let mut feed = |kind: &str, name: &str, spec: Result<Vec<u8>, serde_json::Error>| {
        // Serializing plain data types cannot fail; an empty spec would still
        // change the digest through kind and name.
        let spec = spec.unwrap_or_default();
        for part in [kind.as_bytes(), name.as_bytes(), &spec] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
    };
    for (name, o) in &config.git_sources {
        feed(
            "GitSource",
            name,
            serde_json::to_vec(&(&o.metadata, &o.spec)),
        );
    }
    for (name, o) in &config.apps {
        feed("App", name, serde_json::to_vec(&(&o.metadata, &o.spec)));
    }
    for (name, o) in &config.clusters {
        feed("Cluster", name, serde_json::to_vec(&(&o.metadata, &o.spec)));
    }
    for (name, o) in &config.receivers {
        feed(
            "Receiver",
            name,
            serde_json::to_vec(&(&o.metadata, &o.spec)),
        );
    }
    for (name, o) in &config.notifiers {
        feed(
            "Notifier",
            name,
            serde_json::to_vec(&(&o.metadata, &o.spec)),
        );
    }
    for (name, o) in &config.hosts {
        feed("Host", name, serde_json::to_vec(&(&o.metadata, &o.spec)));
    }
    for (name, o) in &config.sync_windows {
        let spec = serde_json::to_vec(&(&o.metadata, &o.spec));
        feed("SyncWindow", name, spec);
    }
    for (name, o) in &config.helm_repositories {
        let spec = serde_json::to_vec(&(&o.metadata, &o.spec));
        feed("HelmRepository", name, spec);
    }
    for (name, o) in &config.oci_sources {
        let spec = serde_json::to_vec(&(&o.metadata, &o.spec));
        feed("OCISource", name, spec);
    }
    if let Some(o) = &config.server {
        feed(
            "Server",
            o.name(),
            serde_json::to_vec(&(&o.metadata, &o.spec)),
        );
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}
