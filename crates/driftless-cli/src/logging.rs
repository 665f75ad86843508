//! The log of `driftless serve`: the libraries' `tracing` events on stderr,
//! as text for people or as one JSON object per line for machines.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::args::{LogArgs, LogFormat};
use crate::exit::Failure;

/// Why the log could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// `--log-level` (or `RUST_LOG`) does not parse.
    #[error("--log-level {filter:?} is neither a level nor a RUST_LOG filter")]
    Filter {
        /// The filter as given.
        filter: String,
        /// Why it does not parse.
        source: tracing_subscriber::filter::ParseError,
    },
    /// Another log was installed first.
    #[error("setting up the log: {0}")]
    Install(String),
}

/// Sends the events `args` select to stderr in the format it names.
pub fn init(args: &LogArgs) -> Result<(), Failure> {
    let filter = EnvFilter::try_new(&args.log_level).map_err(|source| {
        Failure::input(LogError::Filter {
            filter: args.log_level.clone(),
            source,
        })
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match args.log_format {
        // The module path is noise to a person reading along.
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
    installed.map_err(|e| Failure::operational(LogError::Install(e.to_string())))
}
