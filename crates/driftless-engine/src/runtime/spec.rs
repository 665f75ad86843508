//! Turning config objects into the options of the source, render and kube crates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use driftless_api::{
    App, CA_KEY, GitSource, IDENTITY_KEY, IgnoreDifference, KNOWN_HOSTS_KEY, RenderBounds,
    RenderKind, VerifyMode, VerifyProvider,
};
use driftless_kube::ApplyOptions;
use driftless_kube::ignore::IgnoredDifferences;
use driftless_render::{HostCredentials, RemoteSources, RenderLimits, RenderOptions, Substitution};
use driftless_source::{Auth, Fetcher, RefSpec, RefSpecError, SourceSpec, Tls, TrustedKey, Verify};

/// Secret data by key, as read from a Secret.
pub(super) type SecretData = BTreeMap<String, String>;

/// Why a GitSource's spec does not make a fetch spec.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpecError {
    /// `spec.ref` does not parse.
    #[error("spec.ref.{field}: {source}")]
    Ref {
        /// The ref field set (`branch`, `tag`, ...).
        field: &'static str,
        /// Why it does not parse.
        source: RefSpecError,
    },
    /// The Secret `spec.secretRef` names holds no usable credentials.
    #[error("spec.secretRef: Secret {secret}: {source}")]
    Credentials {
        /// The Secret's name.
        secret: String,
        /// What it lacks.
        source: CredentialsError,
    },
    /// `spec.caFile` cannot be read.
    #[error("spec.caFile: {path}: {source}")]
    CaFile {
        /// The file.
        path: String,
        /// Why it cannot be read.
        source: std::io::Error,
    },
}

/// Which keys a credentials Secret lacks (Flux's key names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CredentialsError {
    /// An SSH key without the host keys to check the server against.
    #[error("key identity needs key known_hosts: host keys are always checked")]
    KnownHostsMissing,
    /// A user name without a password.
    #[error("key username needs key password")]
    PasswordMissing,
    /// None of the known kinds of credentials.
    #[error(
        "expected keys username and password, bearerToken, identity and known_hosts, or ca.crt"
    )]
    Unrecognised,
}

/// The fetch spec of `source`; `secret` and `keys` are the Secrets its
/// `secretRef` and `verify.secretRef` name, read by the caller.
pub(super) fn source_spec(
    source: &GitSource,
    secret: Option<&SecretData>,
    keys: Option<&SecretData>,
) -> Result<SourceSpec, SpecError> {
    let spec = &source.spec;
    let reference = match spec.git_ref.set_fields().first() {
        Some((field, value)) => RefSpec::parse(&format!("{field}:{value}"))
            .map_err(|source| SpecError::Ref { field, source })?,
        None => RefSpec::default(),
    };
    let mut out = SourceSpec::new(spec.url.clone(), reference);
    out.timeout = spec.timeout.get();
    if let Some(data) = secret {
        out.auth = auth(data).map_err(|source| SpecError::Credentials {
            secret: spec
                .secret_ref
                .as_ref()
                .map_or_else(String::new, |r| r.name.clone()),
            source,
        })?;
    }
    out.tls = tls(spec.ca_file.as_deref(), secret)
        .map_err(|(path, source)| SpecError::CaFile { path, source })?;
    if let (Some(verify), Some(data)) = (&spec.verify, keys) {
        let keys = data
            .values()
            .map(|v| match verify.provider {
                VerifyProvider::Ssh => TrustedKey::SshAllowedSigners(v.clone()),
                VerifyProvider::Openpgp => TrustedKey::OpenPgp(v.clone()),
            })
            .collect();
        out.verify = Some(Verify {
            mode: match verify.mode {
                VerifyMode::HeadCommit => driftless_source::VerifyMode::HeadCommit,
                VerifyMode::Tag => driftless_source::VerifyMode::Tag,
            },
            keys,
        });
    }
    if let Some(ignore) = &spec.ignore {
        out.ignore = ignore.lines().map(str::to_owned).collect();
    }
    Ok(out)
}

/// Certificate authorities from a `caFile` and the `ca.crt` of a Secret;
/// a file that cannot be read is returned with its path.
pub(super) fn tls(
    ca_file: Option<&str>,
    secret: Option<&SecretData>,
) -> Result<Tls, (String, std::io::Error)> {
    let mut cas = Vec::new();
    if let Some(path) = ca_file {
        let pem = std::fs::read_to_string(path).map_err(|e| (path.to_owned(), e))?;
        cas.push(pem);
    }
    if let Some(pem) = secret.and_then(|data| data.get(CA_KEY)) {
        cas.push(pem.clone());
    }
    Ok(Tls {
        ca_bundle: (!cas.is_empty()).then(|| cas.join("\n")),
    })
}

/// Credentials from Secret data, Flux's key names.
pub(super) fn auth(data: &SecretData) -> Result<Auth, CredentialsError> {
    if let Some(key) = data.get(IDENTITY_KEY) {
        let known_hosts = data
            .get(KNOWN_HOSTS_KEY)
            .ok_or(CredentialsError::KnownHostsMissing)?;
        return Ok(Auth::Ssh {
            private_key: key.clone(),
            passphrase: data.get("password").cloned(),
            known_hosts: known_hosts.clone(),
        });
    }
    if let Some(token) = data.get("bearerToken") {
        return Ok(Auth::Bearer {
            token: token.clone(),
        });
    }
    match (data.get("username"), data.get("password")) {
        (Some(username), Some(password)) => Ok(Auth::Basic {
            username: username.clone(),
            password: password.clone(),
        }),
        (Some(_), None) => Err(CredentialsError::PasswordMissing),
        // Only certificate authorities: a server that needs no credentials.
        (None, _) if data.contains_key(CA_KEY) => Ok(Auth::None),
        _ => Err(CredentialsError::Unrecognised),
    }
}

/// Render options of `app` for a snapshot exported at `root`.
pub(super) fn render_options(app: &App, root: &Path, vars: Option<SecretData>) -> RenderOptions {
    let render = &app.spec.render;
    let mut opts = RenderOptions::new(root);
    opts.kind = match render.kind {
        RenderKind::Auto => None,
        RenderKind::Kustomize => Some(driftless_render::RenderKind::Kustomize),
        RenderKind::Helm => Some(driftless_render::RenderKind::Helm),
        RenderKind::Jsonnet => Some(driftless_render::RenderKind::Jsonnet),
        RenderKind::Plain => Some(driftless_render::RenderKind::Plain),
    };
    if let Some(k) = &render.kustomize {
        opts.kustomize.enable_helm = k.enable_helm;
        opts.kustomize.load_restrictor = k.load_restrictor;
    }
    // The App's own name: under the controller, without its namespace.
    let own = driftless_api::split_qualified(app.name()).map_or(app.name(), |(_, name)| name);
    opts.helm.release_name = Some(own.to_owned());
    opts.helm.namespace = app.spec.destination.namespace.clone();
    if let Some(h) = &render.helm {
        if h.release_name.is_some() {
            opts.helm.release_name = h.release_name.clone();
        }
        if h.namespace.is_some() {
            opts.helm.namespace = h.namespace.clone();
        }
        // Relative to the App's path (the chart); the render keeps them in the snapshot.
        opts.helm.values_files = h.values_files.iter().map(PathBuf::from).collect();
        opts.helm.values = h.values.clone().map(serde_json::Value::Object);
    }
    if let Some(j) = &render.jsonnet {
        opts.jsonnet.main = j.main.clone();
        opts.jsonnet.ext_vars = j.ext_vars.clone();
        opts.jsonnet.tla_vars = j.tlas.clone();
        // Relative to the snapshot root; the render keeps them inside it.
        opts.jsonnet.lib_paths = j.lib_paths.iter().map(PathBuf::from).collect();
    }
    if let Some(p) = &render.plain {
        opts.plain.recursive = p.recursive;
        opts.plain.include = p.include.clone();
        opts.plain.exclude = p.exclude.clone();
    }
    if let Some(subst) = &app.spec.substitutions {
        opts.substitute = Some(Substitution {
            vars: vars.unwrap_or_default(),
            strict: subst.strict,
        });
    }
    opts
}

/// How `app` fetches kustomize remote resources: into the engine's source
/// cache, offering its GitSource's credentials to that source's host; `None`
/// (a remote entry then fails naming its URL) when the server or the App
/// turns them off.
pub(super) fn remote_sources(
    app: &App,
    bounds: &RenderBounds,
    fetcher: &Arc<Fetcher>,
    source: Option<&SourceSpec>,
) -> Option<RemoteSources> {
    let by_app = app
        .spec
        .render
        .kustomize
        .as_ref()
        .is_none_or(|k| k.remote_resources);
    if !(bounds.kustomize_remote_resources && by_app) {
        return None;
    }
    let mut sources = RemoteSources::new(fetcher.clone());
    if let Some(source) = source {
        let source = source.without_url_password();
        sources.credentials.push(HostCredentials::for_url(
            &source.url,
            source.auth.clone(),
            source.tls.clone(),
        ));
    }
    Some(sources)
}

/// Render bounds of `app`: the server's, with the App's `timeout` as the time limit.
pub(super) fn render_limits(app: &App, bounds: &RenderBounds) -> RenderLimits {
    const MIB: u64 = 1024 * 1024;
    RenderLimits {
        max_input_bytes: bounds.input_limit_mib.saturating_mul(MIB),
        max_objects: usize::try_from(bounds.object_limit).unwrap_or(usize::MAX),
        max_memory: bounds.memory_limit_mib.saturating_mul(MIB),
        timeout: app.spec.timeout.get(),
    }
}

/// Apply options of `app`, its ignored differences after the server's
/// `defaults`.
pub(super) fn apply_options(app: &App, defaults: &[IgnoreDifference]) -> ApplyOptions {
    let spec = &app.spec;
    let mut opts = ApplyOptions::new(app.name());
    opts.namespace = spec.destination.namespace.clone();
    opts.create_namespace = spec.destination.create_namespace;
    opts.prune = spec.prune;
    opts.allow_empty_prune = spec.allow_empty_prune;
    opts.propagation = spec.prune_propagation;
    let rules = defaults.iter().chain(&spec.ignore_differences).cloned();
    opts.ignore = IgnoredDifferences::new(rules.collect())
        .expect("ignored differences are checked when the App and the Server are decoded");
    opts.wait = spec.wait;
    opts.timeout = spec.timeout.get();
    opts.force = spec.force;
    // Git wins: fields changed by hand are taken back, as Flux does.
    opts.force_conflicts = true;
    opts.adopt_existing = spec.adopt_existing;
    opts.impersonate = spec.service_account_name.clone();
    opts
}

#[cfg(test)]
mod tests {
    use driftless_api::PrunePropagation as Propagation;

    use super::*;

    fn data(pairs: &[(&str, &str)]) -> SecretData {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_apps_prune_propagation_reaches_the_apply_options() {
        let app = |spec: serde_json::Value| -> App {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "driftless.dev/v1alpha1",
                "kind": "App",
                "metadata": {"name": "web"},
                "spec": spec,
            }))
            .expect("valid App")
        };
        let plain = app(serde_json::json!({"sourceRef": {"name": "repo"}}));
        assert_eq!(
            apply_options(&plain, &[]).propagation,
            Propagation::Background
        );
        let orphan = app(serde_json::json!({
            "sourceRef": {"name": "repo"}, "prune": true, "prunePropagation": "orphan"
        }));
        assert_eq!(apply_options(&orphan, &[]).propagation, Propagation::Orphan);
        let foreground = app(serde_json::json!({
            "sourceRef": {"name": "repo"}, "prunePropagation": "foreground"
        }));
        assert_eq!(
            apply_options(&foreground, &[]).propagation,
            Propagation::Foreground
        );
    }

    #[test]
    fn the_apps_ignored_differences_reach_the_apply_options() {
        let app: App = serde_json::from_value(serde_json::json!({
            "apiVersion": "driftless.dev/v1alpha1",
            "kind": "App",
            "metadata": {"name": "web"},
            "spec": {"sourceRef": {"name": "repo"}, "ignoreDifferences": [
                {"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}
            ]},
        }))
        .expect("valid App");
        let object = driftless_kube::ObjectRef {
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
            namespace: Some("web".into()),
            name: "api".into(),
        };
        let desired = serde_json::json!({"metadata": {"annotations": {"injected": "x"}}});
        let opts = apply_options(&app, &[]);
        assert_eq!(
            opts.ignore.paths(&object, &desired, None).expect("answers"),
            [vec!["spec".to_owned(), "replicas".to_owned()]]
        );
        // The server's defaults come first, for every App.
        let defaults = [IgnoreDifference {
            group: "apps".into(),
            kind: "Deployment".into(),
            jq_path_expressions: vec![".metadata.annotations.injected".into()],
            ..IgnoreDifference::default()
        }];
        let opts = apply_options(&app, &defaults);
        assert_eq!(
            opts.ignore.paths(&object, &desired, None).expect("answers"),
            [
                ["metadata", "annotations", "injected"]
                    .map(str::to_owned)
                    .to_vec(),
                vec!["spec".to_owned(), "replicas".to_owned()]
            ]
        );
    }

    #[test]
    fn render_limits_are_the_servers_with_the_apps_timeout() {
        let app: App = serde_json::from_value(serde_json::json!({
            "apiVersion": "driftless.dev/v1alpha1",
            "kind": "App",
            "metadata": {"name": "web"},
            "spec": {"sourceRef": {"name": "repo"}, "path": "apps/web", "timeout": "10s"},
        }))
        .expect("valid App");
        let bounds = RenderBounds {
            memory_limit_mib: 512,
            input_limit_mib: 8,
            object_limit: 300,
            kustomize_remote_resources: true,
        };
        let limits = render_limits(&app, &bounds);
        assert_eq!(limits.max_memory, 512 << 20);
        assert_eq!(limits.max_input_bytes, 8 << 20);
        assert_eq!(limits.max_objects, 300);
        assert_eq!(limits.timeout, std::time::Duration::from_secs(10));
    }

    #[test]
    fn remote_resources_are_on_unless_the_server_or_the_app_turns_them_off() {
        let app = |kustomize: serde_json::Value| -> App {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "driftless.dev/v1alpha1",
                "kind": "App",
                "metadata": {"name": "web"},
                "spec": {"sourceRef": {"name": "repo"}, "path": "apps/web",
                         "render": {"kustomize": kustomize}},
            }))
            .expect("valid App")
        };
        let fetcher = Arc::new(Fetcher::new("/cache"));
        let source = SourceSpec {
            url: "https://u:secret@git.example.com/org/repo.git".into(),
            ..SourceSpec::default()
        };
        let on = RenderBounds::default();
        let off = RenderBounds {
            kustomize_remote_resources: false,
            ..RenderBounds::default()
        };
        let default = app(serde_json::json!({}));
        let sources =
            remote_sources(&default, &on, &fetcher, Some(&source)).expect("on by default");
        assert_eq!(
            sources.credentials,
            [HostCredentials {
                host: "git.example.com".into(),
                auth: Auth::Basic {
                    username: "u".into(),
                    password: "secret".into()
                },
                tls: Tls::default(),
            }]
        );
        assert!(remote_sources(&default, &off, &fetcher, Some(&source)).is_none());
        let refused = app(serde_json::json!({"remoteResources": false}));
        assert!(remote_sources(&refused, &on, &fetcher, Some(&source)).is_none());
    }

    #[test]
    fn secret_keys_choose_the_credentials() {
        let basic = auth(&data(&[("username", "u"), ("password", "p")])).expect("basic");
        assert_eq!(
            basic,
            Auth::Basic {
                username: "u".into(),
                password: "p".into()
            }
        );
        let bearer = auth(&data(&[("bearerToken", "t")])).expect("bearer");
        assert_eq!(bearer, Auth::Bearer { token: "t".into() });
        let err = auth(&data(&[("identity", "k")])).expect_err("no known_hosts");
        assert_eq!(err, CredentialsError::KnownHostsMissing);
        let err = auth(&data(&[("username", "u")])).expect_err("no password");
        assert_eq!(err, CredentialsError::PasswordMissing);
        let err = auth(&data(&[("token", "t")])).expect_err("unknown keys");
        assert_eq!(err, CredentialsError::Unrecognised);
        assert!(err.to_string().contains("bearerToken"), "{err}");
        let ca_only = auth(&data(&[(CA_KEY, "PEM")])).expect("CA only");
        assert_eq!(ca_only, Auth::None);
    }

    #[test]
    fn the_secrets_certificate_authorities_are_trusted_beside_the_ca_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, "FILE-PEM").expect("write");
        let source: GitSource = serde_json::from_value(serde_json::json!({
            "apiVersion": driftless_api::API_VERSION,
            "kind": "GitSource",
            "metadata": {"name": "platform"},
            "spec": {"url": "https://git.example.com/p.git", "ref": {"branch": "main"},
                     "caFile": file.display().to_string(),
                     "secretRef": {"name": "git"}},
        }))
        .expect("GitSource");
        let secret = data(&[("username", "u"), ("password", "p"), (CA_KEY, "SECRET-PEM")]);
        let spec = source_spec(&source, Some(&secret), None).expect("spec");
        let bundle = spec.tls.ca_bundle.expect("a CA bundle");
        assert!(
            bundle.contains("FILE-PEM") && bundle.contains("SECRET-PEM"),
            "{bundle}"
        );
        assert!(matches!(spec.auth, Auth::Basic { .. }));
        let without = source_spec(&source, None, None).expect("spec");
        assert_eq!(without.tls.ca_bundle.as_deref(), Some("FILE-PEM"));
    }

    /// An App of the given render settings at `path`, as a config file holds it.
    fn app(path: &str, render: serde_json::Value) -> App {
        serde_json::from_value(serde_json::json!({
            "apiVersion": driftless_api::API_VERSION,
            "kind": "App",
            "metadata": {"name": "web"},
            "spec": {"sourceRef": {"name": "platform"}, "path": path, "render": render},
        }))
        .expect("valid App")
    }

    /// A snapshot-like tree: `files` written below a fresh directory.
    fn snapshot(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        for (rel, body) in files {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
            std::fs::write(path, body).expect("write");
        }
        let root = dir.path().canonicalize().expect("canonical");
        (dir, root)
    }

    #[test]
    fn jsonnet_lib_paths_are_relative_to_the_snapshot_root() {
        let (_dir, root) = snapshot(&[
            ("lib/names.libsonnet", "{ name: 'from-lib' }\n"),
            (
                "apps/j/main.jsonnet",
                "local n = import 'names.libsonnet';\n{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: n.name } }\n",
            ),
        ]);
        let lib = app(
            "apps/j",
            serde_json::json!({"jsonnet": {"libPaths": ["lib"]}}),
        );
        let opts = render_options(&lib, &root, None);
        let set = driftless_render::render(&root.join("apps/j"), &opts).expect("renders");
        let names: Vec<&str> = set
            .iter()
            .filter_map(|o| o["metadata"]["name"].as_str())
            .collect();
        assert_eq!(names, vec!["from-lib"]);
        let above = app(
            "apps/j",
            serde_json::json!({"jsonnet": {"libPaths": ["../outside"]}}),
        );
        let err =
            driftless_render::render(&root.join("apps/j"), &render_options(&above, &root, None))
                .expect_err("a library path above the snapshot");
        assert!(
            err.to_string().contains("outside the repository root"),
            "{err}"
        );
    }

    #[test]
    fn helm_values_files_are_relative_to_the_app_path() {
        let (_dir, root) = snapshot(&[
            (
                "charts/web/Chart.yaml",
                "apiVersion: v2\nname: web\nversion: 0.1.0\n",
            ),
            ("charts/web/values.yaml", "name: default\nsize: small\n"),
            ("charts/web/values-prod.yaml", "name: prod\n"),
            ("values/shared.yaml", "size: large\n"),
            (
                "charts/web/templates/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.name }}-{{ .Values.size }}\n",
            ),
        ]);
        let chart = app(
            "charts/web",
            serde_json::json!({"helm": {"valuesFiles": ["values-prod.yaml", "../../values/shared.yaml"]}}),
        );
        let mut opts = render_options(&chart, &root, None);
        opts.helm.command = Some(helm());
        let set = driftless_render::render(&root.join("charts/web"), &opts).expect("renders");
        let names: Vec<&str> = set
            .iter()
            .filter_map(|o| o["metadata"]["name"].as_str())
            .collect();
        assert_eq!(names, vec!["prod-large"]);
    }

    /// The helm that scripts/ci/install-driftless-render.sh pins, else `helm` on PATH.
    fn helm() -> PathBuf {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        let pinned = home.join(".cache/driftless/helm-v3.16.3/helm");
        if pinned.is_file() {
            pinned
        } else {
            PathBuf::from("helm")
        }
    }
}
