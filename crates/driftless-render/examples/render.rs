//! Renders a directory through the pipeline and prints YAML (or JSON) to stdout:
//! `render [--root DIR] [--kind KIND] [--recursive] [--json] DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

use driftless_render::{RenderOptions, render};

fn main() -> ExitCode {
    let mut opts = RenderOptions::default();
    let mut json = false;
    let mut dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--root" => opts.root = args.next().map(PathBuf::from).unwrap_or_default(),
            "--kind" => match args.next().unwrap_or_default().parse() {
                Ok(kind) => opts.kind = Some(kind),
                Err(e) => return usage(&e),
            },
            "--recursive" => opts.plain.recursive = true,
            "--json" => json = true,
            other if dir.is_none() && !other.starts_with("--") => dir = Some(PathBuf::from(other)),
            other => return usage(&format!("unexpected argument {other:?}")),
        }
    }
    let Some(dir) = dir else {
        return usage("missing DIR");
    };
    let printed = render(&dir, &opts)
        .map_err(|e| e.to_string())
        .and_then(|set| {
            if json {
                Ok(set.to_json() + "\n")
            } else {
                set.to_yaml().map_err(|e| e.to_string())
            }
        });
    match printed {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("{problem}\nusage: render [--root DIR] [--kind KIND] [--recursive] [--json] DIR");
    ExitCode::from(2)
}
