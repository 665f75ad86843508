//! `driftless artifact push|pull`: artifacts of manifests in OCI registries.

use std::collections::BTreeMap;

use anyhow::anyhow;
use driftless_source::oci::{self, Limits, OciError, Options, Reference, Registry, artifact};
use driftless_source::{Auth, Tls};

use crate::args::{ArtifactPullArgs, ArtifactPushArgs, RegistryArgs};
use crate::exit::{Failure, Outcome};

pub fn push(args: &ArtifactPushArgs) -> Outcome {
    let reference = Reference::parse(&args.url).map_err(Failure::input)?;
    if reference.tag.is_none() || reference.digest.is_some() {
        return Err(Failure::input(anyhow!(
            "{}: a push needs a tag and no digest (oci://REGISTRY/REPOSITORY:TAG)",
            args.url
        )));
    }
    let annotations = annotations(&args.annotations)?;
    let registry = registry(&reference, &args.registry)?;
    let pushed = artifact::push(&registry, &reference, &args.path, annotations).map_err(failure)?;
    println!("{}", pushed.digest);
    Ok(0)
}

pub fn pull(args: &ArtifactPullArgs) -> Outcome {
    let mut reference = Reference::parse(&args.url).map_err(Failure::input)?;
    if args.output.exists() {
        return Err(Failure::input(anyhow!(
            "--output {}: already exists; the artifact is unpacked into a new directory",
            args.output.display()
        )));
    }
    let registry = registry(&reference, &args.registry)?;
    if let Some(range) = &args.semver {
        let tag = oci::highest_tag(&registry, &reference, range).map_err(failure)?;
        reference = reference.with_tag(&tag);
    }
    let pulled =
        artifact::pull(&registry, &reference, &args.output, Limits::default()).map_err(failure)?;
    if args.digest_only {
        println!("{}", pulled.digest);
        return Ok(0);
    }
    println!("artifact: {}@{}", reference.repository_url(), pulled.digest);
    if let Some(tag) = &reference.tag {
        println!("tag: {tag}");
    }
    for (key, value) in &pulled.annotations {
        println!("{key}: {value}");
    }
    Ok(0)
}

/// `KEY=VALUE` flags; `revision` and `source` become the standard keys.
fn annotations(flags: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    let mut out = BTreeMap::new();
    for flag in flags {
        let (key, value) = flag
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| Failure::input(anyhow!("--annotate {flag:?}: expected KEY=VALUE")))?;
        let key = match key {
            "revision" => artifact::REVISION_ANNOTATION,
            "source" => artifact::SOURCE_ANNOTATION,
            other => other,
        };
        out.insert(key.to_owned(), value.to_owned());
    }
    Ok(out)
}

fn registry(reference: &Reference, args: &RegistryArgs) -> Result<Registry, Failure> {
    let env = |flag: &str, var: &str| {
        std::env::var(var).map_err(|_| {
            Failure::input(anyhow!("{flag} {var}: the environment variable is not set"))
        })
    };
    let auth = match (&args.username, &args.password_env, &args.token_env) {
        (Some(username), Some(var), _) => Auth::Basic {
            username: username.clone(),
            password: env("--password-env", var)?,
        },
        (_, _, Some(var)) => Auth::Bearer {
            token: env("--token-env", var)?,
        },
        _ => Auth::None,
    };
    let ca_bundle = match &args.ca_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| Failure::input(anyhow!("--ca-file {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let options = Options {
        auth,
        tls: Tls { ca_bundle },
        insecure: args.insecure,
        ..Options::default()
    };
    Registry::new(reference, &options).map_err(failure)
}

/// Local files and references are the user's to fix (exit 2); the rest is
/// the registry or the network (exit 1).
fn failure(e: OciError) -> Failure {
    match e {
        OciError::Reference { .. } | OciError::Range { .. } | OciError::Io { .. } => {
            Failure::input(e)
        }
        _ => Failure::operational(e),
    }
}
