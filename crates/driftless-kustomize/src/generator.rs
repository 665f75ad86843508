//! ConfigMap and Secret generators, and the content-hash name suffix.

use std::path::Path;

use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::Error;
use crate::kustomization::Kustomization;
use crate::loader::Loader;
use crate::origin::Origin;
use crate::resource::{Resource, append_unique, scalar_text};

/// Runs `configMapGenerator:`, `secretGenerator:` and `generators:`.
pub fn run(
    loader: &Loader,
    k: &Kustomization,
    configs: &[(Value, std::path::PathBuf)],
    res: &mut Vec<Resource>,
) -> Result<(), Error> {
    let options = k
        .fields
        .get("generatorOptions")
        .cloned()
        .unwrap_or(Value::Null);
    for (field, kind, secret) in [
        ("configMapGenerator", "ConfigMapGenerator", false),
        ("secretGenerator", "SecretGenerator", true),
    ] {
        for entry in k.list(field)? {
            let mut r = generate(loader, &k.path, &entry, &options, (field, secret))?;
            r.origin = Some(Origin::Generated {
                configured_in: k.path.clone(),
                kind: kind.into(),
                name: None,
            });
            add_generated(res, r, &k.path)?;
        }
    }
    for (config, path) in configs {
        {
            let kind = config.get("kind").and_then(Value::as_str).unwrap_or("");
            let mut spec = config.clone();
            let meta = spec
                .as_object_mut()
                .and_then(|m| m.remove("metadata"))
                .unwrap_or(Value::Null);
            if let Some(obj) = spec.as_object_mut() {
                for key in ["name", "namespace"] {
                    if let Some(v) = meta.get(key) {
                        obj.entry(key).or_insert_with(|| v.clone());
                    }
                }
            }
            let secret = match kind {
                "ConfigMapGenerator" => false,
                "SecretGenerator" => true,
                "IAMPolicyGenerator" => {
                    let r = iam_service_account(config, path)?;
                    append_unique(res, r, path)?;
                    continue;
                }
                _ => {
                    return Err(Error::invalid(
                        path,
                        crate::resource::unsupported_plugin(config, "generator"),
                    ));
                }
            };
            let mut r = generate(loader, path, &spec, &Value::Null, ("generators", secret))?;
            r.origin = Some(Origin::Generated {
                configured_in: path.clone(),
                kind: kind.to_string(),
                name: meta.get("name").and_then(Value::as_str).map(str::to_string),
            });
            add_generated(res, r, &k.path)?;
        }
    }
    Ok(())
}

/// The ServiceAccount a GKE workload-identity `IAMPolicyGenerator` describes.
fn iam_service_account(config: &Value, path: &Path) -> Result<Resource, Error> {
    let s = |p: &str| config.pointer(p).and_then(Value::as_str).unwrap_or("");
    if s("/cloud") != "gke" {
        return Err(Error::invalid(
            path,
            "IAMPolicyGenerator: only cloud 'gke' is supported",
        ));
    }
    let (name, gsa, project) = (
        s("/kubernetesService/name"),
        s("/serviceAccount/name"),
        s("/serviceAccount/projectId"),
    );
    if name.is_empty() || gsa.is_empty() || project.is_empty() {
        return Err(Error::invalid(
            path,
            "IAMPolicyGenerator needs kubernetesService.name, serviceAccount.name and serviceAccount.projectId",
        ));
    }
    let mut meta = Map::new();
    meta.insert(
        "annotations".into(),
        serde_json::json!({ "iam.gke.io/gcp-service-account": format!("{gsa}@{project}.iam.gserviceaccount.com") }),
    );
    meta.insert("name".into(), Value::String(name.into()));
    let ns = s("/kubernetesService/namespace");
    if !ns.is_empty() {
        meta.insert("namespace".into(), Value::String(ns.into()));
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), Value::String("v1".into()));
    obj.insert("kind".into(), Value::String("ServiceAccount".into()));
    obj.insert("metadata".into(), Value::Object(meta));
    Ok(Resource::new(Value::Object(obj)))
}

/// What a generator does to a resource of the same id.
#[derive(Clone, Copy)]
enum Behavior {
    Create,
    Merge,
    Replace,
}

/// Adds a generated resource honouring its `behavior`.
fn add_generated(res: &mut Vec<Resource>, new: Resource, origin: &Path) -> Result<(), Error> {
    // kustomize reads any other value (`add`, a typo) as unspecified, which creates.
    let behavior = match new.behavior.as_deref() {
        Some("merge") => Behavior::Merge,
        Some("replace") => Behavior::Replace,
        _ => Behavior::Create,
    };
    let id = new.cur_id();
    let existing = res.iter().position(|r| {
        if !r.had_name(&id.name) {
            return false;
        }
        let oid = r.org_id();
        let cid = r.cur_id();
        (oid.gvk == id.gvk
            && oid.name == id.name
            && (id.namespace.is_empty() || oid.effective_namespace() == id.effective_namespace()))
            || cid.same_as(&id)
    });
    match (behavior, existing) {
        (Behavior::Create, None) => {
            res.push(new);
            Ok(())
        }
        // kustomize's words: the id exists, so a generator must merge or replace.
        (Behavior::Create, Some(_)) => Err(Error::invalid(
            origin,
            format!("id {id} exists; behavior must be merge or replace"),
        )),
        (Behavior::Merge | Behavior::Replace, None) => Err(Error::invalid(
            origin,
            format!("id {id} does not exist; cannot merge or replace"),
        )),
        (Behavior::Merge, Some(i)) => {
            merge_into(&mut res[i], &new);
            Ok(())
        }
        (Behavior::Replace, Some(i)) => {
            // Replace swaps the data but keeps the metadata earlier layers added.
            let old = &mut res[i];
            for field in ["data", "binaryData"] {
                match new.obj.get(field) {
                    Some(v) => {
                        old.map_mut().insert(field.into(), v.clone());
                    }
                    None => {
                        old.map_mut().remove(field);
                    }
                }
            }
            let mut meta_only = new.clone();
            meta_only.map_mut().remove("data");
            meta_only.map_mut().remove("binaryData");
            merge_into(old, &meta_only);
            old.needs_hash = new.needs_hash;
            // The replacing generator is where the object now comes from
            // (a merge keeps the first generator's origin).
            old.origin = new.origin.clone();
            Ok(())
        }
    }
}

fn merge_into(old: &mut Resource, new: &Resource) {
    for field in ["data", "binaryData"] {
        if let Some(Value::Object(add)) = new.obj.get(field) {
            let map = old.map_mut();
            let slot = map
                .entry(field)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = slot {
                for (k, v) in add {
                    m.insert(k.clone(), v.clone());
                }
            }
        }
    }
    for field in ["labels", "annotations"] {
        if let Some(Value::Object(add)) = new.obj.get("metadata").and_then(|m| m.get(field)) {
            let meta = old.metadata_mut();
            let slot = meta
                .entry(field)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = slot {
                for (k, v) in add {
                    m.insert(k.clone(), v.clone());
                }
            }
        }
    }
    if !new.needs_hash {
        old.needs_hash = false;
    }
}

/// Generates the object of one entry of the kustomization field named with
/// whether it makes a Secret.
fn generate(
    loader: &Loader,
    origin: &Path,
    entry: &Value,
    global: &Value,
    (field, secret): (&str, bool),
) -> Result<Resource, Error> {
    let name = entry.get("name").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() {
        return Err(Error::invalid(origin, "generator entry without a name"));
    }
    let mut pairs: Vec<(String, Vec<u8>)> = Vec::new();
    for lit in strings(entry, "literals") {
        let (k, v) = lit
            .split_once('=')
            .ok_or_else(|| Error::invalid(origin, format!("literal '{lit}' is not key=value")))?;
        pairs.push((k.to_string(), unquote(v).as_bytes().to_vec()));
    }
    let mut envs = strings(entry, "envs");
    if let Some(e) = entry.get("env").and_then(Value::as_str) {
        envs.push(e.to_string());
    }
    for env in envs {
        let (path, bytes) = loader.read_source(field, &env)?;
        let text = crate::loader::utf8(&path, bytes)?;
        pairs.extend(parse_env(&text, &path)?);
    }
    for file in strings(entry, "files") {
        let (key, rel) = match file.split_once('=') {
            Some((k, p)) => (k.to_string(), p.to_string()),
            None => {
                let key = Path::new(&file)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| file.clone());
                (key, file.clone())
            }
        };
        if !crate::remote::is_http_url(&rel) {
            let path = loader.resolve(&rel)?;
            if path.is_dir() {
                return Err(Error::invalid(
                    origin,
                    format!("file sources: '{}' must resolve to a file", path.display()),
                ));
            }
        }
        pairs.push((key, loader.read_source(field, &rel)?.1));
    }
    let mut data = Map::new();
    let mut binary = Map::new();
    for (k, v) in pairs {
        if data.contains_key(&k) || binary.contains_key(&k) {
            return Err(Error::invalid(
                origin,
                format!("configmap/secret {name}: key '{k}' appears more than once"),
            ));
        }
        if secret {
            data.insert(k, Value::String(encode_base64_lines(&v)));
        } else {
            match String::from_utf8(v) {
                Ok(s) => {
                    data.insert(k, Value::String(s));
                }
                Err(e) => {
                    binary.insert(k, Value::String(encode_base64_lines(e.as_bytes())));
                }
            }
        }
    }
    let mut meta = Map::new();
    meta.insert("name".into(), Value::String(name.into()));
    if let Some(ns) = entry
        .get("namespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        meta.insert("namespace".into(), Value::String(ns.into()));
    }
    let local = entry.get("options").cloned().unwrap_or(Value::Null);
    for field in ["labels", "annotations"] {
        let mut m = Map::new();
        for src in [global, &local] {
            if let Some(Value::Object(add)) = src.get(field) {
                for (k, v) in add {
                    m.insert(k.clone(), Value::String(scalar_text(v)));
                }
            }
        }
        if !m.is_empty() {
            meta.insert(field.into(), Value::Object(m));
        }
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), Value::String("v1".into()));
    obj.insert(
        "kind".into(),
        Value::String(if secret { "Secret" } else { "ConfigMap" }.into()),
    );
    obj.insert("metadata".into(), Value::Object(meta));
    // kustomize always gives a generated Secret its data map, empty or not.
    if !data.is_empty() || secret {
        obj.insert("data".into(), Value::Object(data));
    }
    if !binary.is_empty() {
        obj.insert("binaryData".into(), Value::Object(binary));
    }
    let flag = |field: &str| -> Option<bool> {
        local
            .get(field)
            .and_then(Value::as_bool)
            .or_else(|| global.get(field).and_then(Value::as_bool))
    };
    if flag("immutable") == Some(true) {
        obj.insert("immutable".into(), Value::Bool(true));
    }
    if secret {
        let t = entry
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("Opaque");
        obj.insert("type".into(), Value::String(t.into()));
    }
    let mut r = Resource::new(Value::Object(obj));
    r.needs_hash = flag("disableNameSuffixHash") != Some(true);
    r.behavior = entry
        .get("behavior")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(r)
}

fn strings(v: &Value, field: &str) -> Vec<String> {
    v.get(field)
        .and_then(Value::as_array)
        .map(|a| a.iter().map(scalar_text).collect())
        .unwrap_or_default()
}

fn unquote(v: &str) -> &str {
    let b = v.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

fn parse_env(text: &str, path: &Path) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = if i == 0 {
            raw.trim_start_matches('\u{feff}')
        } else {
            raw
        };
        let line = line.trim_end_matches('\r');
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match trimmed.split_once('=') {
            Some((k, v)) => {
                // kustomize keeps the key as written (trailing spaces too).
                if k.trim().is_empty() {
                    return Err(Error::invalid(
                        path,
                        format!("line {}: invalid key '{k}'", i + 1),
                    ));
                }
                out.push((k.to_string(), v.as_bytes().to_vec()));
            }
            None => {
                // A bare key gets an empty value: the build never reads the
                // process environment, so output depends on the files alone.
                out.push((trimmed.to_string(), Vec::new()));
            }
        }
    }
    Ok(out)
}

/// Base64 with a line break every 70 characters once the text is long, as
/// kustomize stores generated Secret data.
pub fn encode_base64_lines(bytes: &[u8]) -> String {
    const LINE: usize = 70;
    let enc = base64::engine::general_purpose::STANDARD.encode(bytes);
    if enc.len() < LINE {
        return enc;
    }
    let mut out = String::with_capacity(enc.len() + enc.len() / LINE + 1);
    for chunk in enc.as_bytes().chunks(LINE) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out
}

/// Appends content hashes to the names of generated resources.
pub fn add_hashes(res: &mut [Resource]) -> Result<(), Error> {
    for r in res.iter_mut().filter(|r| r.needs_hash) {
        let hash = content_hash(&r.obj);
        r.remember_id();
        let name = format!("{}-{hash}", r.name());
        r.set_name(&name);
    }
    Ok(())
}

/// kustomize's 10-character content hash of a ConfigMap or Secret.
pub fn content_hash(obj: &Value) -> String {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    // kustomize hashes generated objects before they are named.
    let name = "";
    let mut fields: Vec<(&str, String)> = vec![
        ("kind", go_json_string(kind)),
        ("name", go_json_string(name)),
    ];
    // An absent data map hashes as an empty string, as kustomize's does.
    let data = obj.get("data").map_or_else(|| "\"\"".to_string(), go_json);
    fields.push(("data", data));
    // `immutable` does not take part in kustomize's hash.
    if kind == "Secret" {
        let t = obj.get("type").and_then(Value::as_str).unwrap_or("");
        fields.push(("type", go_json_string(t)));
    } else if let Some(Value::Object(b)) = obj.get("binaryData")
        && !b.is_empty()
    {
        fields.push(("binaryData", go_json(&Value::Object(b.clone()))));
    }
    fields.sort_by(|a, b| a.0.cmp(b.0));
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", go_json_string(k)))
        .collect();
    let encoded = format!("{{{}}}", body.join(","));
    let digest = Sha256::digest(encoded.as_bytes());
    let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    hex.chars()
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            other => other,
        })
        .collect()
}

/// JSON as Go's `encoding/json` writes it (sorted keys, HTML-safe escapes).
fn go_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let body: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", go_json_string(k), go_json(&m[k.as_str()])))
                .collect();
            format!("{{{}}}", body.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(go_json).collect::<Vec<_>>().join(",")),
        Value::String(s) => go_json_string(s),
        other => other.to_string(),
    }
}

fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    driftless_yaml::write_go_json_string(s, &mut out);
    out
}
