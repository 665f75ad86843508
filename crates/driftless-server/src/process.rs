//! Process-wide settings `driftless serve` makes at start: as many open files as
//! the hard limit allows, and files created private to the user running it.

use rustix::fs::Mode;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// The open-file limit after [`raise_open_file_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileLimit {
    /// The soft limit before.
    pub before: Option<u64>,
    /// The soft limit now (`None`: unlimited).
    pub now: Option<u64>,
}

/// Raises the soft limit on open files to the hard limit: every connection, Git
/// fetch and store file holds a descriptor, and the usual soft default (1024 or
/// less) runs out long before the machine does.
pub fn raise_open_file_limit() -> std::io::Result<OpenFileLimit> {
    let limit = getrlimit(Resource::Nofile);
    let before = limit.current;
    if limit.current != limit.maximum {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        )?;
    }
    Ok(OpenFileLimit {
        before,
        now: getrlimit(Resource::Nofile).current,
    })
}

/// Makes files and directories the process creates from now on inaccessible to
/// group and others (umask 077): caches and snapshots may hold secrets from Git.
pub fn private_file_creation() {
    rustix::process::umask(Mode::from_raw_mode(0o077));
}
