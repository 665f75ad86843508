//! The layout of an App on a host and the POSIX shell scripts that act on it.
//! Building scripts and reading their answers is pure; running them is the
//! callers' business.
//!
//! ```text
//! <appsRoot>/<app>/
//!   current -> releases/<commit>      switched by rename of a fresh symlink
//!   previous -> releases/<commit>     the release to switch back to
//!   releases/<commit>/                one release, unchanged files hard-linked
//!   releases/<commit>.manifest        its manifest (JSON)
//!   releases/.staging-<commit>/       an upload in progress
//! ```

use std::time::Duration;

use crate::manifest::Manifest;

/// Where an App lives on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: String,
}

/// The symlink target of a release, as `current` and `previous` hold it.
fn link_target(revision: &str) -> String {
    format!("releases/{revision}")
}

impl Layout {
    /// `<appsRoot>/<app>`.
    pub fn new(apps_root: &str, app: &str) -> Self {
        Self {
            root: format!("{}/{app}", apps_root.trim_end_matches('/')),
        }
    }

    /// The App's directory.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The directory of one release.
    pub fn release(&self, revision: &str) -> String {
        format!("{}/releases/{revision}", self.root)
    }

    /// Prints `current`, `previous` and the current release's manifest.
    pub fn read_state(&self) -> String {
        sh(&format!(
            r#"cd {root} 2>/dev/null || exit 0
c=$(readlink current 2>/dev/null || true)
p=$(readlink previous 2>/dev/null || true)
printf '%s\n%s\n' "$c" "$p"
case "$c" in releases/*) if [ -d "$c" ]; then cat "$c.manifest" 2>/dev/null || true; fi;; esac"#,
            root = quote(&self.root)
        ))
    }

    /// Reads a tar stream on standard input into a fresh staging directory,
    /// then hard-links the files it lists from release `base`.
    pub fn build_release(&self, revision: &str, base: Option<&str>) -> String {
        let releases = format!("{}/releases", self.root);
        let staging = format!("{releases}/.staging-{revision}");
        let link = base.map_or(String::new(), |base| {
            format!(
                "if [ -s links ]; then (cd {base} && xargs -d '\\n' cp -l --parents -t {tree} < {links}); fi",
                base = quote(&format!("{releases}/{base}")),
                tree = quote(&format!("{staging}/tree")),
                links = quote(&format!("{staging}/links")),
            )
        });
        sh(&format!(
            "set -e\nmkdir -p {releases}\nrm -rf {staging}\nmkdir {staging}\ncd {staging}\ntar -x -p -f -\n{link}",
            releases = quote(&releases),
            staging = quote(&staging),
        ))
    }

    /// Moves a finished staging directory to its release name, replacing a
    /// stale release of that name (never the current one: see [`crate::deploy`]).
    pub fn activate(&self, revision: &str) -> String {
        sh(&format!(
            "set -e\ncd {releases}\nrm -rf {rev} {rev}.manifest\nmv .staging-{rev}/tree {rev}\nmv .staging-{rev}/manifest {rev}.manifest\nrm -rf .staging-{rev}\ntouch {rev}",
            releases = quote(&format!("{}/releases", self.root)),
            rev = quote(revision),
        ))
    }

    /// Points `current` (and `previous`) at releases, each by renaming a fresh
    /// symlink over the old one so no reader ever sees it missing.
    pub fn switch(&self, current: &str, previous: Option<&str>) -> String {
        let mut script = self.point_current_script(current);
        match previous {
            Some(previous) => script.push_str(&format!(
                "ln -sfn {} .previous.tmp\nmv -T .previous.tmp previous\n",
                quote(&link_target(previous))
            )),
            None => script.push_str("rm -f previous\n"),
        }
        sh(&script)
    }

    /// Points `current` at a release, leaving `previous` alone.
    pub fn point_current(&self, current: &str) -> String {
        sh(&self.point_current_script(current))
    }

    fn point_current_script(&self, current: &str) -> String {
        format!(
            "set -e\ncd {root}\nln -sfn {target} .current.tmp\nmv -T .current.tmp current\n",
            root = quote(&self.root),
            target = quote(&link_target(current)),
        )
    }

    /// Runs a hook (or health command) in a release directory with the
    /// DRIFTLESS_* variables; `timeout` kills it and its children at the limit.
    pub fn hook(&self, revision: &str, command: &str, env: &HookEnv, limit: Duration) -> String {
        let secs = limit.as_millis().div_ceil(1000).max(1);
        sh(&format!(
            "cd {dir} || exit 125\nexport DRIFTLESS_APP={app} DRIFTLESS_HOST={host} DRIFTLESS_REVISION={rev} DRIFTLESS_PREVIOUS_RELEASE={prev}\nexec timeout -k 2 {secs} sh -c {command}",
            dir = quote(&self.release(revision)),
            app = quote(&env.app),
            host = quote(&env.host),
            rev = quote(revision),
            prev = quote(env.previous_release.as_deref().unwrap_or("")),
            command = quote(command),
        ))
    }

    /// Lists releases with their modification times.
    pub fn list_releases(&self) -> String {
        sh(&format!(
            "cd {}/releases 2>/dev/null || exit 0\nfind . -mindepth 1 -maxdepth 1 -type d -printf '%T@ %f\\n'",
            quote(&self.root)
        ))
    }

    /// Removes releases (with their manifests) and leftover staging directories.
    pub fn remove(&self, names: &[String]) -> String {
        let mut args = String::new();
        for name in names {
            args.push_str(&format!(
                " {} {}",
                quote(name),
                quote(&format!("{name}.manifest"))
            ));
        }
        sh(&format!(
            "set -e\ncd {}/releases\nrm -rf --{args}",
            quote(&self.root)
        ))
    }

    /// Prints `current`, the release's manifest, its entries and their digests.
    pub fn observe(&self, revision: &str) -> String {
        sh(&format!(
            r#"cd {root} 2>/dev/null || {{ printf 'current \n\n'; exit 0; }}
printf 'current %s\n' "$(readlink current 2>/dev/null || true)"
cat releases/{rev}.manifest 2>/dev/null || true
printf '\n'
cd releases/{rev} 2>/dev/null || exit 0
find . -mindepth 1 \( -type d -printf 'd %m %P\n' \) -o \( -type l -printf 'l %m %P\t%l\n' \) -o \( -type f -printf 'f %m %P\n' \) -o -printf 'o %m %P\n'
printf -- '--\n'
find . -type f -print0 | xargs -0 -r sha256sum"#,
            root = quote(&self.root),
            rev = quote(revision),
        ))
    }

    /// Extracts a stream of entries over a release in place (each file
    /// replaced, not rewritten, so hard links to other releases stay intact),
    /// after removing the `extra` paths.
    pub fn repair(&self, revision: &str, extra: &[String]) -> String {
        let mut rm = String::new();
        for path in extra {
            rm.push_str(&format!(" {}", quote(path)));
        }
        let rm = if rm.is_empty() {
            String::new()
        } else {
            format!("rm -rf --{rm}\n")
        };
        sh(&format!(
            "set -e\ncd {dir}\n{rm}tar -x -p -U -f -",
            dir = quote(&self.release(revision)),
        ))
    }

    /// Writes a release's manifest from standard input, atomically.
    pub fn write_manifest(&self, revision: &str) -> String {
        let path = format!("{}.manifest", self.release(revision));
        sh(&format!(
            "set -e\ncat > {tmp}\nmv {tmp} {path}",
            tmp = quote(&format!("{path}.tmp")),
            path = quote(&path),
        ))
    }
}

/// The variables hooks and checks see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookEnv {
    /// App name.
    pub app: String,
    /// Host name.
    pub host: String,
    /// Directory of the release that was current before, if any.
    pub previous_release: Option<String>,
}

/// `current`, `previous` and the current release's manifest on a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostState {
    /// Commit `current` points at.
    pub current: Option<String>,
    /// Commit `previous` points at.
    pub previous: Option<String>,
    /// Manifest of the current release, when it is there and readable.
    pub manifest: Option<Manifest>,
}

impl HostState {
    /// Reads the answer of [`Layout::read_state`].
    pub fn parse(stdout: &[u8]) -> Self {
        let text = String::from_utf8_lossy(stdout);
        let mut lines = text.splitn(3, '\n');
        let release = |line: Option<&str>| {
            line.and_then(|l| l.strip_prefix("releases/"))
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
        };
        let current = release(lines.next());
        let previous = release(lines.next());
        let manifest = lines
            .next()
            .and_then(|json| Manifest::from_json(json.trim().as_bytes()).ok());
        Self {
            current,
            previous,
            manifest,
        }
    }
}

/// Wraps a script so it runs under `sh` whatever the user's login shell.
fn sh(script: &str) -> String {
    format!("sh -c {}", quote(script))
}

/// Quotes a word for the shell: single quotes, with `'` written as `'\''`.
pub fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Parses `find -printf '%T@ %f'` lines into (name, modification time).
pub fn parse_releases(stdout: &[u8]) -> Vec<(String, f64)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| {
            let (time, name) = line.split_once(' ')?;
            Some((name.to_owned(), time.parse().ok()?))
        })
        .collect()
}

/// The releases to remove: all but the `keep` newest, and never `current` or
/// `previous`. Leftover staging directories (names starting with `.`) go too.
pub fn releases_to_remove(
    releases: &[(String, f64)],
    current: Option<&str>,
    previous: Option<&str>,
    keep: usize,
) -> Vec<String> {
    let mut finished: Vec<&(String, f64)> = releases
        .iter()
        .filter(|(name, _)| !name.starts_with('.'))
        .collect();
    finished.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let protected = |name: &str| Some(name) == current || Some(name) == previous;
    let mut remove: Vec<String> = finished
        .iter()
        .skip(keep)
        .map(|(name, _)| name.clone())
        .filter(|name| !protected(name))
        .collect();
    remove.extend(
        releases
            .iter()
            .filter(|(name, _)| name.starts_with('.'))
            .map(|(name, _)| name.clone()),
    );
    remove
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("it's"), r"'it'\''s'");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", quote("a 'b' $c")))
            .output()
            .expect("test step succeeds");
        assert_eq!(out.stdout, b"a 'b' $c");
    }

    #[test]
    fn state_names_current_previous_and_manifest() {
        let manifest = Manifest {
            revision: "b2".into(),
            entries: Default::default(),
        };
        let mut answer = b"releases/b2\nreleases/a1\n".to_vec();
        answer.extend(manifest.to_json());
        let state = HostState::parse(&answer);
        assert_eq!(state.current.as_deref(), Some("b2"));
        assert_eq!(state.previous.as_deref(), Some("a1"));
        assert_eq!(state.manifest, Some(manifest));
        assert_eq!(HostState::parse(b""), HostState::default());
        assert_eq!(HostState::parse(b"\n\n").current, None);
    }

    #[test]
    fn pruning_keeps_the_newest_and_never_current_or_previous() {
        let releases: Vec<(String, f64)> = [
            ("a", 1.0),
            ("b", 2.0),
            ("c", 3.0),
            ("d", 4.0),
            (".staging-e", 5.0),
        ]
        .iter()
        .map(|(n, t)| ((*n).to_owned(), *t))
        .collect();
        assert_eq!(
            releases_to_remove(&releases, Some("d"), Some("c"), 2),
            ["b", "a", ".staging-e"]
        );
        // A rollback made an old release current: it stays, as does previous.
        assert_eq!(
            releases_to_remove(&releases, Some("a"), Some("d"), 2),
            ["b", ".staging-e"]
        );
        assert_eq!(
            releases_to_remove(&releases[..2], Some("b"), None, 5),
            Vec::<String>::new()
        );
    }

    #[test]
    fn releases_parse_from_find_output() {
        let parsed = parse_releases(b"1700000000.5 abc\n1700000001.0 .staging-x\nbad\n");
        assert_eq!(
            parsed,
            [
                ("abc".to_owned(), 1_700_000_000.5),
                (".staging-x".to_owned(), 1_700_000_001.0)
            ]
        );
    }
}
