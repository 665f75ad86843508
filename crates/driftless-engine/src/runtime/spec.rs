//! Turning config objects into the options of the source, render and kube crates.

use std::collections::BTreeMap;
use std::path::Path;

use driftless_api::{App, GitSource, LoadRestrictor, RenderKind, VerifyMode, VerifyProvider};
use driftless_kube::ApplyOptions;
use driftless_render::{RenderOptions, Substitution};
use driftless_source::{Auth, RefSpec, SourceSpec, Tls, TrustedKey, Verify};

/// Secret data by key, as read from a Secret.
pub(super) type SecretData = BTreeMap<String, String>;

/// The fetch spec of `source`; `secret` and `keys` are the Secrets its
/// `secretRef` and `verify.secretRef` name, read by the caller.
pub(super) fn source_spec(
    source: &GitSource,
    secret: Option<&SecretData>,
    keys: Option<&SecretData>,
) -> Result<SourceSpec, String> {
    let spec = &source.spec;
    let reference = match spec.git_ref.set_fields().first() {
        Some((field, value)) => RefSpec::parse(&format!("{field}:{value}"))
            .map_err(|e| format!("spec.ref.{field}: {e}"))?,
        None => RefSpec::default(),
    };
    let mut out = SourceSpec::new(spec.url.clone(), reference);
    out.timeout = spec.timeout.get();
    if let Some(data) = secret {
        out.auth = auth(data).map_err(|e| {
            let name = spec.secret_ref.as_ref().map_or("", |r| r.name.as_str());
            format!("spec.secretRef: Secret {name}: {e}")
        })?;
    }
    if let Some(path) = &spec.ca_file {
        let pem = std::fs::read_to_string(path).map_err(|e| format!("spec.caFile: {path}: {e}"))?;
        out.tls = Tls {
            ca_bundle: Some(pem),
        };
    }
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

/// Credentials from Secret data, Flux's key names.
fn auth(data: &SecretData) -> Result<Auth, String> {
    if let Some(key) = data.get("identity") {
        let known_hosts = data
            .get("known_hosts")
            .ok_or("key identity needs key known_hosts: host keys are always checked")?;
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
        (Some(_), None) => Err("key username needs key password".to_owned()),
        _ => Err(
            "expected keys username and password, bearerToken, or identity and known_hosts"
                .to_owned(),
        ),
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
        opts.kustomize.load_restrictor = match k.load_restrictor {
            LoadRestrictor::RootOnly => driftless_kustomize::LoadRestrictor::RootOnly,
            LoadRestrictor::None => driftless_kustomize::LoadRestrictor::None,
        };
    }
    opts.helm.release_name = Some(app.name().to_owned());
    opts.helm.namespace = app.spec.destination.namespace.clone();
    if let Some(h) = &render.helm {
        if h.release_name.is_some() {
            opts.helm.release_name = h.release_name.clone();
        }
        if h.namespace.is_some() {
            opts.helm.namespace = h.namespace.clone();
        }
        opts.helm.values_files = h.values_files.iter().map(|f| root.join(f)).collect();
        opts.helm.values = h.values.clone().map(serde_json::Value::Object);
    }
    if let Some(j) = &render.jsonnet {
        opts.jsonnet.main = j.main.clone();
        opts.jsonnet.ext_vars = j.ext_vars.clone();
        opts.jsonnet.tla_vars = j.tlas.clone();
        opts.jsonnet.lib_paths = j.lib_paths.iter().map(|p| root.join(p)).collect();
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

/// Apply options of `app`.
pub(super) fn apply_options(app: &App) -> ApplyOptions {
    let spec = &app.spec;
    let mut opts = ApplyOptions::new(app.name());
    opts.namespace = spec.destination.namespace.clone();
    opts.create_namespace = spec.destination.create_namespace;
    opts.prune = spec.prune;
    opts.allow_empty_prune = spec.allow_empty_prune;
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
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> SecretData {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
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
        assert!(err.contains("known_hosts"), "{err}");
        let err = auth(&data(&[("token", "t")])).expect_err("unknown keys");
        assert!(err.contains("bearerToken"), "{err}");
    }
}
