//! Builds a kustomization directory and prints the YAML, like `kustomize build DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

use driftless_kustomize::{LoadRestrictor, Options, Reorder, build};

fn main() -> ExitCode {
    let mut opts = Options::default();
    let mut dir = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--reorder=none" => opts.reorder = Reorder::None,
            "--reorder=legacy" => opts.reorder = Reorder::Legacy,
            "--load-restrictor=LoadRestrictionsNone" => opts.load_restrictor = LoadRestrictor::None,
            "--enable-helm" => opts.enable_helm = true,
            other if other.starts_with("--helm-command=") => {
                opts.helm_command = Some(PathBuf::from(&other["--helm-command=".len()..]));
            }
            other => dir = Some(PathBuf::from(other)),
        }
    }
    let Some(dir) = dir else {
        eprintln!(
            "usage: kbuild [--reorder=none] [--load-restrictor=LoadRestrictionsNone] \
             [--enable-helm] [--helm-command=PATH] DIR"
        );
        return ExitCode::from(2);
    };
    match build(&dir, &opts).and_then(|l| Ok(l.to_yaml()?)) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}
