//! Resource bounds of one render: bytes read, objects produced, and for the
//! programs a render runs (the Jsonnet worker, helm) memory and wall-clock time.
//! A render that crosses a bound fails with a [`LimitError`]; nothing else does.

use std::fmt;
use std::path::Path;
use std::time::Duration;

/// Bytes a render reads by default: six times Argo CD's default cap on the
/// manifests of one directory, far above what real Apps render.
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 64 * MIB;
/// Objects one render may produce by default.
pub const DEFAULT_MAX_OBJECTS: usize = 10_000;
/// Memory of the Jsonnet worker process and of helm by default.
pub const DEFAULT_MAX_MEMORY: u64 = 1024 * MIB;
/// Wall-clock time of a Jsonnet evaluation or a helm run by default (the
/// default `timeout` of an App).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

const MIB: u64 = 1024 * 1024;

/// The bounds of one render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderLimits {
    /// Bytes a render may read: manifest files, every file of a Kustomize
    /// build, helm's output and the result of a Jsonnet worker.
    pub max_input_bytes: u64,
    /// Objects a render may produce.
    pub max_objects: usize,
    /// Memory of the Jsonnet worker process and of helm (both need a
    /// [`crate::RenderWorker`]).
    pub max_memory: u64,
    /// Wall-clock time of a Jsonnet worker or a `helm template` run.
    pub timeout: Duration,
}

impl Default for RenderLimits {
    fn default() -> RenderLimits {
        RenderLimits {
            max_input_bytes: DEFAULT_MAX_INPUT_BYTES,
            max_objects: DEFAULT_MAX_OBJECTS,
            max_memory: DEFAULT_MAX_MEMORY,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// A render crossed one of its bounds.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    /// A worker or helm ran out of its memory.
    #[error("{what} exceeded the memory limit of {}", Bytes(*limit))]
    Memory {
        /// What ran, e.g. `jsonnet evaluation of apps/x/main.jsonnet`.
        what: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// A worker or helm ran longer than allowed and was stopped.
    #[error("{what} exceeded the time limit of {}", Seconds(*limit))]
    Time {
        /// What ran.
        what: String,
        /// The limit.
        limit: Duration,
    },
    /// The render read more bytes than allowed.
    #[error("{what}: reading {at} brings the render to {total} bytes, over the limit of {} per render", Bytes(*limit))]
    Input {
        /// The rendered directory.
        what: String,
        /// The file or output that crossed the limit.
        at: String,
        /// Bytes read including it.
        total: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The render produced more objects than allowed.
    #[error("{what}: the render produced {count} objects, over the limit of {limit} per App")]
    Objects {
        /// The rendered directory.
        what: String,
        /// How many objects it produced.
        count: usize,
        /// The limit.
        limit: usize,
    },
}

/// Counts the bytes a render reads against its limit, before reading them.
#[derive(Debug)]
pub(crate) struct InputBudget {
    what: String,
    limit: u64,
    used: u64,
}

impl InputBudget {
    /// A budget of `limit` bytes for rendering `what`.
    pub(crate) fn new(what: String, limit: u64) -> InputBudget {
        InputBudget {
            what,
            limit,
            used: 0,
        }
    }

    /// Takes `size` bytes for reading `at`, or fails when they do not fit.
    pub(crate) fn take(&mut self, at: &str, size: u64) -> Result<(), LimitError> {
        let total = self.used.saturating_add(size);
        if total > self.limit {
            return Err(LimitError::Input {
                what: self.what.clone(),
                at: at.to_string(),
                total,
                limit: self.limit,
            });
        }
        self.used = total;
        Ok(())
    }
}

/// Fails when `count` objects are more than the limit.
pub(crate) fn check_objects(what: &str, count: usize, limit: usize) -> Result<(), LimitError> {
    if count > limit {
        return Err(LimitError::Objects {
            what: what.to_string(),
            count,
            limit,
        });
    }
    Ok(())
}

/// How a rendered directory is named in messages: relative to the root, or
/// the whole path when it is the root itself.
pub(crate) fn shown_dir(root: &Path, dir: &Path) -> String {
    let rel = crate::paths::display_relative(root, dir);
    if rel.is_empty() {
        dir.display().to_string()
    } else {
        rel
    }
}

/// A byte count in the largest binary unit that divides it (`512 MiB`).
pub(crate) struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{} {unit}", self.0 / size);
            }
        }
        write!(f, "{} bytes", self.0)
    }
}

/// A duration in seconds, with milliseconds only when there are some (`10s`, `1.5s`).
struct Seconds(Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.subsec_millis() == 0 {
            write!(f, "{}s", self.0.as_secs())
        } else {
            write!(f, "{}s", self.0.as_secs_f64())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Bytes, InputBudget, LimitError};

    #[test]
    fn messages_name_the_limit_in_readable_units() {
        assert_eq!(Bytes(512 << 20).to_string(), "512 MiB");
        assert_eq!(Bytes(1 << 30).to_string(), "1 GiB");
        assert_eq!(Bytes(1000).to_string(), "1000 bytes");
        let err = LimitError::Time {
            what: "jsonnet evaluation of apps/x/main.jsonnet".into(),
            limit: Duration::from_millis(1500),
        };
        assert_eq!(
            err.to_string(),
            "jsonnet evaluation of apps/x/main.jsonnet exceeded the time limit of 1.5s"
        );
    }

    #[test]
    fn the_budget_refuses_the_read_that_crosses_it() {
        let mut budget = InputBudget::new("apps/x".into(), 100);
        budget.take("apps/x/a.yaml", 60).expect("fits");
        budget.take("apps/x/b.yaml", 40).expect("exactly fits");
        let err = budget.take("apps/x/c.yaml", 1).expect_err("over");
        assert_eq!(
            err.to_string(),
            "apps/x: reading apps/x/c.yaml brings the render to 101 bytes, over the limit of 100 bytes per render"
        );
    }
}
