//! Decryption of an App's rendered objects encrypted by sops, with the keys
//! of its `spec.decryption`: after the render cache (which keeps the
//! encrypted objects), in memory, as `driftless render --decrypt` does.

use std::path::Path;

use driftless_api::{App, DecryptionProvider};
use driftless_render::ObjectSet;
use driftless_render::decrypt::{DecryptError, EncryptedFields, decrypt_objects, encrypted_fields};
use driftless_sops::{Keys, SopsError};

use super::clusters::{ClusterError, secret};
use super::sources::secret_namespace;

/// Secret keys holding age identities, as Flux names them.
const AGE_SUFFIX: &str = ".agekey";
/// Secret keys holding armored OpenPGP secret keys, as Flux names them.
const PGP_SUFFIX: &str = ".asc";

/// Why an App's objects could not be decrypted. No message holds a
/// decrypted value or a key.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecryptionError {
    /// A key file or a key of the Secret is not a key.
    #[error("App {app}: decryption keys: {source}")]
    Key {
        /// The App.
        app: String,
        /// What is wrong, naming the file or Secret key.
        source: SopsError,
    },
    /// The Secret of `spec.decryption.secretRef` could not be read.
    #[error("App {app}: decryption keys: {source}")]
    Secret {
        /// The App.
        app: String,
        /// Why, naming the Secret.
        source: ClusterError,
    },
    /// The Secret holds no key under a name ending in `.agekey` or `.asc`.
    #[error(
        "App {app}: Secret {namespace}/{name} of spec.decryption has no key ending in \
         {AGE_SUFFIX} or {PGP_SUFFIX}"
    )]
    EmptySecret {
        /// The App.
        app: String,
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
    },
    /// An object did not decrypt; the error names its file.
    #[error("App {app}: {source}")]
    Decrypt {
        /// The App.
        app: String,
        /// Why, naming the file and document.
        source: DecryptError,
    },
    /// An object is encrypted but the App asks for no decryption.
    #[error("App {app}: {origin} is encrypted by sops, but the App has no spec.decryption")]
    NotConfigured {
        /// The App.
        app: String,
        /// The file and document of the object.
        origin: String,
    },
}

/// The keys of `app`'s `spec.decryption`, `None` when it has none: read
/// before the render, which decrypts kustomize generator sources with them.
pub(crate) async fn app_keys(
    app: &App,
    target: &driftless_kube::Target,
) -> Result<Option<Keys>, DecryptionError> {
    let Some(decryption) = &app.spec.decryption else {
        return Ok(None);
    };
    match decryption.provider {
        DecryptionProvider::Sops => {}
    }
    let mut keys = Keys::new();
    for file in &decryption.key_files {
        keys.add_key_file(Path::new(file))
            .map_err(|source| DecryptionError::Key {
                app: app.name().to_owned(),
                source,
            })?;
    }
    if let Some(r) = &decryption.secret_ref {
        add_secret_keys(&mut keys, app, target, &r.name).await?;
    }
    Ok(Some(keys))
}

/// `set` with its encrypted objects decrypted with `keys` (those of the
/// App's `spec.decryption`), and the fields that were encrypted (for
/// masking). A set without encrypted objects is returned as it is.
pub(crate) fn decrypt_app(
    app: &App,
    keys: Option<&Keys>,
    set: &ObjectSet,
) -> Result<Option<(ObjectSet, EncryptedFields)>, DecryptionError> {
    let first = set
        .items()
        .iter()
        .find(|i| driftless_render::decrypt::is_encrypted(&i.object));
    let Some(first) = first else {
        return Ok(None);
    };
    let Some(keys) = keys else {
        return Err(DecryptionError::NotConfigured {
            app: app.name().to_owned(),
            origin: first.origin.clone(),
        });
    };
    let fields = encrypted_fields(set);
    let set = decrypt_objects(set, keys).map_err(|source| DecryptionError::Decrypt {
        app: app.name().to_owned(),
        source,
    })?;
    Ok(Some((set, fields)))
}

/// Adds the keys of Secret `name` in the App's namespace: `*.agekey` entries
/// as age identities, `*.asc` entries as OpenPGP secret keys.
async fn add_secret_keys(
    keys: &mut Keys,
    app: &App,
    target: &driftless_kube::Target,
    name: &str,
) -> Result<(), DecryptionError> {
    let namespace = secret_namespace(&app.metadata);
    let data = secret(target, namespace, name)
        .await
        .map_err(|source| DecryptionError::Secret {
            app: app.name().to_owned(),
            source,
        })?;
    let mut found = false;
    for (key, text) in &data {
        let origin = format!("Secret {namespace}/{name} key {key}");
        let added = if key.ends_with(AGE_SUFFIX) {
            keys.add_age_identities(text, &origin)
        } else if key.ends_with(PGP_SUFFIX) {
            keys.add_pgp_secret_keys(text, &origin)
        } else {
            continue;
        };
        added.map_err(|source| DecryptionError::Key {
            app: app.name().to_owned(),
            source,
        })?;
        found = true;
    }
    if !found {
        return Err(DecryptionError::EmptySecret {
            app: app.name().to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        });
    }
    Ok(())
}
