//! `driftless`: GitOps continuous delivery. A thin binary: parse arguments,
//! call the libraries, print results.

mod args;
mod artifact;
mod bootstrap;
mod cluster;
mod controller;
mod exit;
mod logging;
mod remote;
mod render;
mod serve;
mod source;

use clap::Parser;

use crate::args::{ArtifactCommand, BootstrapCommand, Cli, Command, SourceCommand};

fn main() -> std::process::ExitCode {
    // The render worker speaks a protocol on stdin/stdout, not the command line.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == render::WORKER_ARG)
    {
        return driftless_render::run_worker();
    }
    // Apps' jq path expressions run in bounded worker processes.
    if let Ok(worker) = render::worker() {
        driftless_api::jq::run_in(Box::new(driftless_render::JqWorker::new(worker)));
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Render(args) => render::run(&args),
        Command::Diff(args) => match &args.server {
            Some(server) => remote::diff(server, args.token.as_deref(), &args.cluster.target),
            None => cluster::diff(&args.cluster),
        },
        Command::Apply(args) => cluster::apply(&args),
        Command::Delete(args) => cluster::delete(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Controller(args) => controller::run(&args),
        Command::Install(args) => controller::install(&args),
        Command::Uninstall(args) => controller::uninstall(&args),
        Command::Bootstrap {
            command: BootstrapCommand::Git(args),
        } => bootstrap::git(&args),
        Command::Status(args) => remote::status(&args),
        Command::History(args) => remote::history(&args),
        Command::Drift(args) => remote::drift(&args),
        Command::Sync(args) => remote::sync(&args),
        Command::Suspend(args) => remote::suspend(&args),
        Command::Resume(args) => remote::resume(&args),
        Command::Rollback(args) => remote::rollback(&args),
        Command::Source {
            command: SourceCommand::Fetch(args),
        } => source::fetch(&args),
        Command::Artifact {
            command: ArtifactCommand::Push(args),
        } => artifact::push(&args),
        Command::Artifact {
            command: ArtifactCommand::Pull(args),
        } => artifact::pull(&args),
    };
    exit::finish(result)
}
