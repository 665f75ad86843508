//! What `driftless source fetch URL [--ref REF] [--out DIR]` does, as a standalone
//! example: `cargo run --example source_fetch -- URL --ref tag:v1 --out DIR`.
//! The cache lives in `$DRIFTLESS_CACHE_DIR` or a `driftless-cache` dir in the temp dir.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut url, mut reference, mut out) = (None, None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--ref" => reference = args.next(),
            "--out" => out = args.next().map(PathBuf::from),
            _ if url.is_none() => url = Some(arg),
            _ => {
                eprintln!("unexpected argument `{arg}`");
                return ExitCode::from(2);
            }
        }
    }
    let Some(url) = url else {
        eprintln!(
            "usage: source_fetch URL [--ref branch:main|tag:v1|semver:>=1.0|commit:SHA] [--out DIR]"
        );
        return ExitCode::from(2);
    };
    let cache = std::env::var_os("DRIFTLESS_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("driftless-cache"));
    match driftless_source::fetch_to_dir(&cache, &url, reference.as_deref(), out.as_deref()) {
        Ok(rev) => {
            println!("revision: {rev}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
