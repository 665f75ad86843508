//! `driftless bootstrap git`: writes the controller's manifests and the App that
//! syncs them into a Git repository, installs them from there, and leaves the
//! controller managing itself and everything else under the path.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use driftless_api::qualified_name;
use driftless_controller::install::{self, InstallOptions};
use driftless_controller::objects::CrKind;
use driftless_kube::{ApplyOptions, Target};
use driftless_source::auth::{self, Auth, Tls};
use driftless_source::git::{Git, GitError};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};

use crate::args::BootstrapGitArgs;
use crate::controller::{block_on, connect, print_report};
use crate::exit::{Failure, Outcome};

/// Name of the GitSource, the App and the Secret bootstrap creates.
pub const NAME: &str = "driftless-system";
/// Field manager of the credentials Secret (kept out of Git and of the App).
const SECRET_MANAGER: &str = "driftless-bootstrap";
/// Pushes tried before giving up when others keep pushing first.
const PUSH_ATTEMPTS: usize = 5;
/// Limit of each git run.
const GIT_TIMEOUT: Duration = Duration::from_secs(120);

/// What bootstrap writes and where.
struct Plan {
    /// Repository URL without credentials.
    url: String,
    auth: Auth,
    /// Extra certificate authorities of an HTTPS server (PEM).
    ca: Option<String>,
    branch: String,
    /// Directory of the cluster in the repository, without surrounding slashes.
    path: String,
    namespace: String,
    install: InstallOptions,
    interval: String,
    author_name: String,
    author_email: String,
}

impl Plan {
    fn from_args(args: &BootstrapGitArgs) -> Result<Self, Failure> {
        let (url, url_auth) = auth::split_url_credentials(&args.url);
        let auth = credentials(args)?.or(url_auth).unwrap_or_default();
        let ca = args
            .ca_file
            .as_deref()
            .map(|path| {
                std::fs::read_to_string(path)
                    .with_context(|| format!("--ca-file {}", path.display()))
                    .map_err(Failure::input)
            })
            .transpose()?;
        let path = args.path.trim_matches('/').to_owned();
        if path.split('/').any(|part| part == ".." || part == ".") || path.contains('\\') {
            return Err(Failure::input(anyhow!(
                "--path {}: must be a relative path inside the repository without `.` or `..`",
                args.path
            )));
        }
        if args.branch.is_empty() || args.branch.starts_with('-') || args.branch.contains("..") {
            return Err(Failure::input(anyhow!(
                "--branch {:?}: not a branch name",
                args.branch
            )));
        }
        args.interval
            .parse::<driftless_api::Duration>()
            .map_err(|e| Failure::input(anyhow!("--interval: {e}")))?;
        let mut install = InstallOptions::new(env!("CARGO_PKG_VERSION"));
        install.namespace.clone_from(&args.namespace);
        if let Some(image) = &args.image {
            install.image.clone_from(image);
        }
        Ok(Self {
            url,
            auth,
            ca,
            branch: args.branch.clone(),
            path,
            namespace: args.namespace.clone(),
            install,
            interval: args.interval.clone(),
            author_name: args.author_name.clone(),
            author_email: args.author_email.clone(),
        })
    }

    /// Whether the GitSource needs the Secret: credentials, or a CA to trust.
    fn has_secret(&self) -> bool {
        self.auth != Auth::None || self.ca.is_some()
    }

    /// The TLS settings of bootstrap's own pushes and fetches.
    fn tls(&self) -> Tls {
        Tls {
            ca_bundle: self.ca.clone(),
        }
    }

    /// The directory of the controller's own files in the repository.
    fn system_dir(&self) -> String {
        if self.path.is_empty() {
            NAME.to_owned()
        } else {
            format!("{}/{NAME}", self.path)
        }
    }

    /// The controller's manifests, as `install --export` prints them.
    fn install_objects(&self) -> Vec<Value> {
        let mut objects = install::crds();
        objects.extend(install::controller(&self.install));
        objects
    }

    /// The GitSource of the repository and the App of the cluster's path.
    fn sync_objects(&self) -> Vec<Value> {
        let mut source = json!({
            "apiVersion": driftless_api::API_VERSION,
            "kind": "GitSource",
            "metadata": {"name": NAME, "namespace": self.namespace},
            "spec": {
                "url": self.url,
                "ref": {"branch": self.branch},
                "interval": self.interval,
            },
        });
        if self.has_secret() {
            source["spec"]["secretRef"] = json!({"name": NAME});
        }
        let path = if self.path.is_empty() {
            "."
        } else {
            &self.path
        };
        let app = json!({
            "apiVersion": driftless_api::API_VERSION,
            "kind": "App",
            "metadata": {"name": NAME, "namespace": self.namespace},
            "spec": {
                "sourceRef": {"name": NAME},
                "path": path,
                "prune": true,
                "interval": self.interval,
                "render": {"plain": {"recursive": true}},
            },
        });
        vec![source, app]
    }

    /// The files bootstrap owns in the repository, by path.
    fn files(&self) -> Result<Vec<(String, String)>, Failure> {
        let header = "# Written by `driftless bootstrap`; the controller applies this \
                      directory from Git.\n";
        let emit = |objects: &[Value]| {
            driftless_yaml::emit_stream(objects)
                .map(|text| format!("{header}{text}"))
                .map_err(Failure::operational)
        };
        let dir = self.system_dir();
        Ok(vec![
            (
                format!("{dir}/install.yaml"),
                emit(&self.install_objects())?,
            ),
            (format!("{dir}/sync.yaml"), emit(&self.sync_objects())?),
        ])
    }

    /// The engine's name of the App: applying under it gives the objects to it.
    fn app(&self) -> String {
        qualified_name(&self.namespace, NAME)
    }
}

/// The credentials given on the command line.
fn credentials(args: &BootstrapGitArgs) -> Result<Option<Auth>, Failure> {
    if let (Some(username), Some(var)) = (&args.username, &args.password_env) {
        let password = std::env::var(var).map_err(|_| {
            Failure::input(anyhow!(
                "--password-env {var}: the environment variable is not set"
            ))
        })?;
        return Ok(Some(Auth::Basic {
            username: username.clone(),
            password,
        }));
    }
    let Some(key_file) = &args.private_key_file else {
        return Ok(None);
    };
    let read = |flag: &str, path: &Path| {
        std::fs::read_to_string(path)
            .with_context(|| format!("{flag} {}", path.display()))
            .map_err(Failure::input)
    };
    let private_key = read("--private-key-file", key_file)?;
    let hosts_file = args.known_hosts_file.as_deref().ok_or_else(|| {
        Failure::input(anyhow!(
            "--private-key-file needs --known-hosts-file: the server's host key is always checked"
        ))
    })?;
    Ok(Some(Auth::Ssh {
        private_key,
        passphrase: None,
        known_hosts: read("--known-hosts-file", hosts_file)?,
    }))
}

pub fn git(args: &BootstrapGitArgs) -> Outcome {
    let plan = Plan::from_args(args)?;
    let timeout: driftless_api::Duration = args
        .timeout
        .parse()
        .map_err(|e| Failure::input(anyhow!("--timeout: {e}")))?;
    let files = plan.files()?;
    eprintln!(
        "writing {} to {} (branch {})",
        plan.system_dir(),
        auth::redact_url(&plan.url),
        plan.branch
    );
    let published = publish(&plan, &files)?;
    if published.committed {
        eprintln!("pushed {}", short(&published.sha));
    } else {
        eprintln!(
            "the repository is up to date at {}: nothing committed",
            short(&published.sha)
        );
    }
    block_on(async {
        let target = connect(&args.cluster).await?;
        install_from(&target, &plan, &files).await?;
        eprintln!(
            "waiting until App {}/{NAME} is Ready at {}",
            plan.namespace,
            short(&published.sha)
        );
        wait_ready(&target, &plan, &published.sha, timeout.get()).await?;
        eprintln!(
            "bootstrapped: the controller in {} syncs {} from Git, itself included",
            plan.namespace,
            if plan.path.is_empty() {
                "the repository"
            } else {
                &plan.path
            }
        );
        Ok(0)
    })
}

/// The commit the branch ends at after publishing, and whether it is new.
struct Published {
    sha: String,
    committed: bool,
}

/// Commits `files` on the branch and pushes, never by force: a push the server
/// rejects because someone pushed first is fetched, done again and retried.
fn publish(plan: &Plan, files: &[(String, String)]) -> Result<Published, Failure> {
    let scratch = tempfile::tempdir().map_err(Failure::operational)?;
    let work = scratch.path().join("repository");
    std::fs::create_dir(&work).map_err(Failure::operational)?;
    let local = Git::in_dir(&work).timeout(GIT_TIMEOUT);
    let (remote, _files) = auth::apply(
        local.clone(),
        &plan.url,
        &plan.auth,
        &plan.tls(),
        scratch.path(),
    )
    .map_err(Failure::input)?;
    let fail = |what: &str, e: GitError| Failure::operational(anyhow!("{what}: {e}"));
    local
        .run(&["init", "-q"])
        .map_err(|e| fail("creating a work tree", e))?;
    local
        .run(&["remote", "add", "origin", &plan.url])
        .map_err(|e| fail("adding the remote", e))?;
    let branch_ref = format!("refs/heads/{}", plan.branch);
    let tracking = format!("refs/remotes/origin/{}", plan.branch);
    for attempt in 1..=PUSH_ATTEMPTS {
        let heads = remote
            .run(&["ls-remote", "--heads", "origin", &branch_ref])
            .map_err(|e| fail(&format!("reading {}", auth::redact_url(&plan.url)), e))?;
        if heads.trim().is_empty() {
            // A new branch (or an empty repository): start from nothing.
            local
                .run(&["symbolic-ref", "HEAD", &branch_ref])
                .map_err(|e| fail("starting the branch", e))?;
            let _ = local.run(&["update-ref", "-d", &branch_ref]);
            local
                .run(&["rm", "-r", "-q", "--cached", "--ignore-unmatch", "."])
                .map_err(|e| fail("starting the branch", e))?;
            local
                .run(&["clean", "-f", "-d", "-x", "-q"])
                .map_err(|e| fail("starting the branch", e))?;
        } else {
            let refspec = format!("+{branch_ref}:{tracking}");
            remote
                .run(&["fetch", "-q", "--no-tags", "origin", &refspec])
                .map_err(|e| fail(&format!("fetching branch {}", plan.branch), e))?;
            local
                .run(&["checkout", "-q", "-f", "-B", &plan.branch, &tracking])
                .map_err(|e| fail(&format!("checking out branch {}", plan.branch), e))?;
        }
        for (path, text) in files {
            let file = work.join(path);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {path}"))
                    .map_err(Failure::operational)?;
            }
            std::fs::write(&file, text)
                .with_context(|| format!("writing {path}"))
                .map_err(Failure::operational)?;
        }
        let mut add = vec!["add", "--"];
        add.extend(files.iter().map(|(p, _)| p.as_str()));
        local.run(&add).map_err(|e| fail("adding the files", e))?;
        let unchanged = local
            .succeeds(&["diff", "--cached", "--quiet"])
            .map_err(|e| fail("comparing the files", e))?;
        if unchanged && !heads.trim().is_empty() {
            let sha = local
                .run(&["rev-parse", "HEAD"])
                .map_err(|e| fail("reading the commit", e))?;
            return Ok(Published {
                sha: sha.trim().to_owned(),
                committed: false,
            });
        }
        let message = format!(
            "Bootstrap driftless {} in {}\n\nThe controller's manifests and the App that syncs {} from this repository.",
            env!("CARGO_PKG_VERSION"),
            plan.system_dir(),
            if plan.path.is_empty() {
                "."
            } else {
                &plan.path
            }
        );
        local
            .clone()
            .config("user.name", &plan.author_name)
            .config("user.email", &plan.author_email)
            .config("commit.gpgSign", "false")
            .run(&["commit", "-q", "--no-verify", "-m", &message])
            .map_err(|e| fail("committing", e))?;
        let push = format!("HEAD:{branch_ref}");
        match remote.run(&["push", "-q", "--no-verify", "origin", &push]) {
            Ok(_) => {
                let sha = local
                    .run(&["rev-parse", "HEAD"])
                    .map_err(|e| fail("reading the commit", e))?;
                return Ok(Published {
                    sha: sha.trim().to_owned(),
                    committed: true,
                });
            }
            Err(e) if rejected(&e) && attempt < PUSH_ATTEMPTS => {
                eprintln!("the push was rejected (the branch moved); fetching and trying again");
            }
            Err(e) => {
                return Err(fail(
                    &format!("pushing to {}", auth::redact_url(&plan.url)),
                    e,
                ));
            }
        }
    }
    Err(Failure::operational(anyhow!(
        "pushing to {}: the branch moved under every one of {PUSH_ATTEMPTS} tries",
        auth::redact_url(&plan.url)
    )))
}

/// Whether a push failed because the branch moved on the server.
fn rejected(error: &GitError) -> bool {
    let stderr = error.stderr();
    let moved = [
        "[rejected]",
        "non-fast-forward",
        "fetch first",
        "cannot lock ref",
        "failed to update ref",
    ];
    moved.iter().any(|s| stderr.contains(s))
}

/// Applies the manifests under the App's own name (so the controller takes them
/// over as its own, not as someone else's), with the credentials Secret in between.
/// The objects are read back from the files as committed, so that they are
/// exactly what the controller reads from Git.
async fn install_from(
    target: &Target,
    plan: &Plan,
    files: &[(String, String)],
) -> Result<(), Failure> {
    let mut opts = ApplyOptions::new(plan.app());
    opts.namespace = Some(plan.namespace.clone());
    opts.force_conflicts = true;
    let parse = |(path, text): &(String, String)| {
        driftless_yaml::parse_documents(text, path).map_err(Failure::operational)
    };
    let [install, sync] = files else {
        return Err(Failure::operational(anyhow!(
            "bootstrap writes two files, not {}",
            files.len()
        )));
    };
    let installed = parse(install)?;
    eprintln!("installing the controller in namespace {}", plan.namespace);
    driftless_kube::apply(target, &installed, &opts, &|_| {})
        .await
        .context("applying the controller's manifests")
        .map_err(Failure::operational)?;
    if plan.has_secret() {
        write_secret(target, plan).await?;
    }
    let mut all = installed;
    all.extend(parse(sync)?);
    let report = driftless_kube::apply(target, &all, &opts, &|_| {})
        .await
        .context("applying the GitSource and the App")
        .map_err(Failure::operational)?;
    print_report("applied", &report);
    Ok(())
}

/// The Secret the GitSource reads its credentials from; written to the cluster
/// only, never to Git.
async fn write_secret(target: &Target, plan: &Plan) -> Result<(), Failure> {
    let mut data = match &plan.auth {
        Auth::Basic { username, password } => json!({"username": username, "password": password}),
        Auth::Bearer { token } => json!({"bearerToken": token}),
        Auth::Ssh {
            private_key,
            passphrase,
            known_hosts,
        } => {
            let mut data = json!({"identity": private_key, "known_hosts": known_hosts});
            if let Some(passphrase) = passphrase {
                data["password"] = json!(passphrase);
            }
            data
        }
        Auth::None => json!({}),
    };
    if let Some(ca) = &plan.ca {
        data[driftless_api::CA_KEY] = json!(ca);
    }
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "Secret"));
    let api: Api<DynamicObject> =
        Api::namespaced_with(target.client().clone(), &plan.namespace, &resource);
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": NAME, "namespace": plan.namespace},
        "type": "Opaque",
        "stringData": data,
    });
    api.patch(
        NAME,
        &PatchParams::apply(SECRET_MANAGER).force(),
        &Patch::Apply(&secret),
    )
    .await
    .map_err(|e| {
        Failure::operational(anyhow!(
            "writing Secret {}/{NAME} with the Git credentials: {e}",
            plan.namespace
        ))
    })?;
    eprintln!(
        "credentials stored in Secret {}/{NAME} (not in Git)",
        plan.namespace
    );
    Ok(())
}

/// Waits until the App is Ready with `sha` applied.
async fn wait_ready(
    target: &Target,
    plan: &Plan,
    sha: &str,
    timeout: Duration,
) -> Result<(), Failure> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        target.client().clone(),
        &plan.namespace,
        &CrKind::App.resource(),
    );
    let start = Instant::now();
    let mut last = String::from("the App has no status yet");
    loop {
        if let Ok(app) = api.get(NAME).await {
            let status = app.data.get("status").cloned().unwrap_or(Value::Null);
            let applied = status
                .pointer("/lastApplied/sha")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let ready = status
                .get("conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Ready");
            if let Some(ready) = ready {
                if ready["status"] == "True" && applied == sha {
                    return Ok(());
                }
                last = format!(
                    "Ready={} ({}), applied {}",
                    ready["status"].as_str().unwrap_or("?"),
                    ready["message"].as_str().unwrap_or_default(),
                    if applied.is_empty() {
                        "nothing yet"
                    } else {
                        short(applied)
                    }
                );
            }
        }
        if start.elapsed() >= timeout {
            return Err(Failure::operational(anyhow!(
                "App {}/{NAME} was not Ready at {} within {}s: {last}; the controller's \
                 Deployment in {} may not be running (kubectl -n {} get pods)",
                plan.namespace,
                short(sha),
                timeout.as_secs(),
                plan.namespace,
                plan.namespace
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use driftless_testenv::git::{GitRepo, git, init_bare};

    use super::*;

    fn plan(url: &str) -> Plan {
        Plan {
            url: url.to_owned(),
            auth: Auth::None,
            ca: None,
            branch: "main".to_owned(),
            path: "clusters/dev".to_owned(),
            namespace: NAME.to_owned(),
            install: InstallOptions::new("0.0.0-test"),
            interval: "1m".to_owned(),
            author_name: "Bot".to_owned(),
            author_email: "bot@example.com".to_owned(),
        }
    }

    fn files() -> Vec<(String, String)> {
        vec![(
            "clusters/dev/driftless-system/a.yaml".to_owned(),
            "a: 1\n".to_owned(),
        )]
    }

    #[test]
    fn an_empty_repository_gets_the_branch_and_a_second_run_commits_nothing() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let bare = tmp.path().join("r.git");
        init_bare(&bare);
        let plan = plan(bare.to_str().expect("UTF-8"));
        let first = publish(&plan, &files()).expect("published");
        assert!(first.committed);
        assert_eq!(git(&bare, &["rev-parse", "main"]), first.sha);
        assert_eq!(
            git(&bare, &["log", "-1", "--format=%an <%ae>", "main"]),
            "Bot <bot@example.com>"
        );
        let again = publish(&plan, &files()).expect("published");
        assert!(!again.committed, "no empty commit");
        assert_eq!(again.sha, first.sha);
    }

    #[test]
    fn a_push_the_server_refuses_because_the_branch_moved_is_done_again_on_top() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let bare = tmp.path().join("r.git");
        let other = GitRepo::with_origin(&bare);
        other.write("README.md", "one\n");
        let first = other.push("first");
        // While bootstrap's push is received, someone else's commit lands first.
        other.write("README.md", "two\n");
        let theirs = other.commit("theirs");
        let hook = bare.join("hooks/pre-receive");
        let moved = tmp.path().join("moved");
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\ncat >/dev/null\n[ -e {moved} ] && exit 0\ntouch {moved}\n\
                 env -i PATH=\"$PATH\" GIT_CONFIG_GLOBAL=/dev/null git -C {other} push -q origin main\n",
                moved = moved.display(),
                other = other.path().display()
            ),
        )
        .expect("hook");
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");

        let published = publish(&plan(bare.to_str().expect("UTF-8")), &files()).expect("published");
        assert!(moved.exists(), "the branch moved during the first push");
        assert!(published.committed);
        let log = git(&bare, &["log", "--format=%H", "main"]);
        let shas: Vec<&str> = log.lines().collect();
        assert_eq!(
            shas,
            [published.sha.as_str(), theirs.as_str(), first.as_str()]
        );
        assert_eq!(git(&bare, &["show", "main:README.md"]), "two");
    }

    #[test]
    fn paths_leaving_the_repository_are_refused() {
        use clap::Parser;
        for path in ["../x", "a/../../b", "./a"] {
            let cli = crate::args::Cli::try_parse_from([
                "driftless",
                "bootstrap",
                "git",
                "--url",
                "https://git.example/r.git",
                "--path",
                path,
            ])
            .expect("parses");
            let crate::args::Command::Bootstrap {
                command: crate::args::BootstrapCommand::Git(args),
            } = cli.command
            else {
                panic!("bootstrap git");
            };
            let err = Plan::from_args(&args).err().expect("refused");
            assert!(err.error.to_string().contains("--path"), "{}", err.error);
        }
    }
}
