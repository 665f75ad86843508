//! Exit codes and error printing shared by all commands.

use std::process::ExitCode;

/// A command's failure and the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    /// 2 for usage and input errors, 1 for operational failures.
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    /// Bad input: a file, object or field the user must fix.
    pub fn input(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: 2,
            error: error.into(),
        }
    }

    /// The input was fine but the operation failed (network, cluster, ...).
    pub fn operational(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: 1,
            error: error.into(),
        }
    }
}

/// What a command returns: success with an exit code, or a failure.
pub type Outcome = Result<u8, Failure>;

/// Prints the error chain, one cause per line, and returns the exit code.
pub fn finish(result: Outcome) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("error: {}", failure.error);
            for cause in failure.error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(failure.code)
        }
    }
}
