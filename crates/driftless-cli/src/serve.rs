//! `driftless serve --config FILE`.

use driftless_server::serve::{Desired, ServeError, ServeOptions};

use crate::args::ServeArgs;
use crate::exit::{Failure, Outcome};

pub fn run(args: &ServeArgs) -> Outcome {
    crate::logging::init(&args.run.log)?;
    let opts = ServeOptions {
        desired: Desired::Files(args.config.clone()),
        data_dir: args.run.data_dir.clone(),
        listen: args.run.listen,
        on_ready: Box::new(|_| {}),
        render_worker: Some(crate::render::worker().map_err(Failure::operational)?),
        concurrency: args.run.concurrency,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Failure::operational)?;
    runtime
        .block_on(driftless_server::serve::run(opts, shutdown_signal()))
        .map_err(|e| match e {
            ServeError::Config(_) | ServeError::Setting(_) => Failure::input(e),
            _ => Failure::operational(e),
        })?;
    Ok(0)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
