//! `driftless render DIR`.

use driftless_kustomize::{LoadRestrictor, Options, Reorder};

use crate::args::{LoadRestrictorArg, Output, RenderArgs, ReorderArg};
use crate::exit::{Failure, Outcome};

pub fn run(args: &RenderArgs) -> Outcome {
    if !args.dir.is_dir() {
        return Err(Failure::input(anyhow::anyhow!(
            "{}: not a directory",
            args.dir.display()
        )));
    }
    let opts = Options {
        reorder: match args.reorder {
            ReorderArg::Legacy => Reorder::Legacy,
            ReorderArg::None => Reorder::None,
        },
        load_restrictor: match args.load_restrictor {
            LoadRestrictorArg::RootOnly => LoadRestrictor::RootOnly,
            LoadRestrictorArg::None => LoadRestrictor::None,
        },
        enable_helm: args.enable_helm,
        helm_command: args.helm_command.clone(),
    };
    let built = driftless_kustomize::build(&args.dir, &opts).map_err(Failure::input)?;
    let text = match args.output {
        Output::Yaml => built.to_yaml().map_err(Failure::operational)?,
        Output::Json => {
            let items: Vec<_> = built.iter().map(|r| r.to_json()).collect();
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
            let mut text = serde_json::to_string_pretty(&list).map_err(Failure::operational)?;
            text.push('\n');
            text
        }
    };
    print!("{text}");
    Ok(0)
}
