//! `driftless source fetch URL`.

use std::path::PathBuf;

use anyhow::Context;
use driftless_source::Revision;

use crate::args::{FetchArgs, SummaryOutput};
use crate::exit::{Failure, Outcome};

pub fn fetch(args: &FetchArgs) -> Outcome {
    let cache_dir = match &args.cache_dir {
        Some(dir) => dir.clone(),
        None => default_cache_dir()
            .context("no cache directory: set --cache-dir, DRIFTLESS_CACHE_DIR or HOME")
            .map_err(Failure::input)?,
    };
    let revision = driftless_source::fetch_to_dir(
        &cache_dir,
        &args.url,
        args.reference.as_deref(),
        args.out.as_deref(),
    )
    .map_err(|e| {
        let input = matches!(e, driftless_source::Error::RefSpec(_));
        let e = anyhow::Error::new(e);
        if input {
            Failure::input(e)
        } else {
            Failure::operational(e)
        }
    })?;
    match args.output {
        SummaryOutput::Text => println!("revision: {revision}"),
        SummaryOutput::Json => println!("{}", revision_json(&revision)),
    }
    Ok(0)
}

fn revision_json(rev: &Revision) -> serde_json::Value {
    let person = |p: &driftless_source::Signature| serde_json::json!({"name": p.name, "email": p.email, "time": p.time});
    serde_json::json!({
        "revision": rev.to_string(),
        "ref": rev.reference,
        "sha": rev.sha,
        "author": person(&rev.author),
        "committer": person(&rev.committer),
        "subject": rev.subject,
        "message": rev.message(),
    })
}

/// The user's cache directory for fetched repositories.
pub(crate) fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("driftless").join("sources"))
}
