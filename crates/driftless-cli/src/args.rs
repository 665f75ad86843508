//! Command-line arguments, parsed into raw values before anything runs.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// GitOps continuous delivery: Git is the source of truth for what runs.
#[derive(Debug, Parser)]
#[command(name = "driftless", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render a directory (Kustomize, Helm chart, Jsonnet or plain manifests) to a YAML stream.
    Render(RenderArgs),
    /// Show what applying DIR would change (exit 0: none, 1: changes, 2: error); with
    /// --server, what a sync of the server's App --app would change.
    Diff(DiffArgs),
    /// Apply DIR to the cluster as an app: server-side apply in waves, optional prune and wait.
    Apply(ApplyArgs),
    /// Delete everything an app owns in the cluster.
    Delete(DeleteArgs),
    /// Keep the Apps of a config in sync with Git, continuously, with an HTTP API.
    Serve(ServeArgs),
    /// Run the in-cluster operator: reconcile the GitSource, App, Cluster and Receiver
    /// custom resources of the cluster, with the same API as serve.
    Controller(ControllerArgs),
    /// Install the controller and its CRDs into a cluster and wait until it runs;
    /// with --export, print the manifests instead.
    Install(InstallArgs),
    /// Remove the controller from a cluster; the Apps' workloads keep running.
    Uninstall(UninstallArgs),
    /// Put the controller into a Git repository, install it from there, and let it
    /// manage itself and everything else under the path from then on.
    Bootstrap {
        #[command(subcommand)]
        command: BootstrapCommand,
    },
    /// Show the Apps of a running server: a table of all, or one App in detail.
    Status(StatusArgs),
    /// List an App's syncs, newest first: time, commit, author, subject, trigger, result;
    /// with --operations, the syncs, suspends, resumes and rollbacks people asked for.
    History(HistoryArgs),
    /// Drift seen on an App's objects, newest first: which fields changed, who changed
    /// them, and whether they were reverted.
    Drift(ListArgs),
    /// Reconcile an App now; with --wait, until the sync ends (exit 1 unless it succeeds).
    Sync(SyncArgs),
    /// Stop reconciling an App (no sync, no self-heal) until it is resumed.
    Suspend(AppArgs),
    /// Reconcile an App again, following Git (ends a suspend and a rollback pin).
    Resume(AppArgs),
    /// Pin an App to an earlier successfully synced revision and sync it.
    Rollback(RollbackArgs),
    /// Work with Git sources.
    Source {
        #[command(subcommand)]
        command: SourceCommand,
    },
    /// Push and pull artifacts of manifests in OCI registries.
    Artifact {
        #[command(subcommand)]
        command: ArtifactCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ArtifactCommand {
    /// Pack a directory as one tar.gz layer and push it to oci://REGISTRY/REPOSITORY:TAG;
    /// prints the digest.
    Push(ArtifactPushArgs),
    /// Pull an artifact (by tag, digest or --semver range) into a new directory; prints
    /// the digest and the annotations.
    Pull(ArtifactPullArgs),
}

#[derive(Debug, Args)]
pub struct ArtifactPushArgs {
    /// Where to push: oci://REGISTRY/REPOSITORY:TAG.
    pub url: String,
    /// The directory to pack (`.git` is left out; symbolic links are refused).
    #[arg(long, value_name = "DIR")]
    pub path: PathBuf,
    /// Annotation on the manifest, repeatable; `revision=` and `source=` become the
    /// standard org.opencontainers.image.revision and .source.
    #[arg(long = "annotate", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct ArtifactPullArgs {
    /// What to pull: oci://REGISTRY/REPOSITORY[:TAG][@DIGEST].
    pub url: String,
    /// The directory to unpack into; it must not exist yet.
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
    /// Pull the highest tag in this version range (`>=1.0.0 <2.0.0`, `~1.2`, `^1`).
    #[arg(long, value_name = "RANGE", conflicts_with = "digest_only")]
    pub semver: Option<String>,
    /// Print nothing but the digest.
    #[arg(long = "digest-only")]
    pub digest_only: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// How to reach a registry.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// User name for the registry; the password comes from --password-env.
    #[arg(long, requires = "password_env")]
    pub username: Option<String>,
    /// Environment variable holding the registry password or access token.
    #[arg(long, value_name = "VAR", requires = "username")]
    pub password_env: Option<String>,
    /// Environment variable holding a bearer token for the registry.
    #[arg(long, value_name = "VAR", conflicts_with = "username")]
    pub token_env: Option<String>,
    /// PEM file of certificate authorities the registry's certificate is checked against.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Plain HTTP instead of HTTPS (a registry on a trusted network only).
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Subcommand)]
pub enum SourceCommand {
    /// Fetch a repository at a ref and print the resolved revision.
    Fetch(FetchArgs),
}

/// How data is printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    #[default]
    Yaml,
    Json,
}

/// Output choice for commands that print a human summary by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum SummaryOutput {
    #[default]
    Text,
    Json,
}

/// Resource order of a Kustomize build.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ReorderArg {
    /// Kustomize's kind-based order (its default).
    #[default]
    Legacy,
    /// Keep the input order.
    None,
}

/// Which files a kustomization may load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LoadRestrictorArg {
    /// Only files inside the kustomization root (the default).
    #[default]
    #[value(name = "LoadRestrictionsRootOnly", alias = "root-only")]
    RootOnly,
    /// Any file.
    #[value(name = "LoadRestrictionsNone", alias = "none")]
    None,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub input: RenderInput,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub decrypt: DecryptArgs,
}

/// Decryption of rendered objects encrypted by sops.
#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// Decrypt objects encrypted by sops (age keys from SOPS_AGE_KEY_FILE,
    /// SOPS_AGE_KEY and --age-key-file).
    #[arg(long)]
    pub decrypt: bool,
    /// With --decrypt: an age key file (repeatable).
    #[arg(long, value_name = "FILE", requires = "decrypt")]
    pub age_key_file: Vec<PathBuf>,
    /// With --decrypt: an armored OpenPGP secret key file (repeatable).
    #[arg(long, value_name = "FILE", requires = "decrypt")]
    pub pgp_key_file: Vec<PathBuf>,
}

/// The directory to render and how to render it.
#[derive(Debug, Args)]
pub struct RenderInput {
    /// Directory to render.
    #[arg(required = true)]
    pub dir: Option<PathBuf>,
    /// Resource order, as kustomize's --reorder.
    #[arg(long, value_enum, default_value_t)]
    pub reorder: ReorderArg,
    /// File loading restrictions, as kustomize's --load-restrictor.
    #[arg(long, value_enum, default_value_t)]
    pub load_restrictor: LoadRestrictorArg,
    /// Allow helmCharts (runs the helm binary).
    #[arg(long)]
    pub enable_helm: bool,
    /// The helm binary (for charts and kustomize helmCharts).
    #[arg(long)]
    pub helm_command: Option<PathBuf>,
    /// Render as this kind instead of detecting it.
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// Repository root: nothing outside it is read (default: the top of the
    /// Git working tree holding DIR, else DIR itself).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Refuse remote resources (Git bases and files by URL) in kustomizations,
    /// and chart dependencies from Helm repositories.
    #[arg(long)]
    pub no_remote_resources: bool,
    /// Where remote resources are fetched and cached (default: the user cache dir).
    #[arg(long, env = "DRIFTLESS_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Plain manifests: descend into subdirectories.
    #[arg(long)]
    pub recursive: bool,
    /// Plain manifests: only files matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Plain manifests: skip files matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Helm: release name (default: the chart directory's name).
    #[arg(long)]
    pub release_name: Option<String>,
    /// Helm: values file relative to the chart (repeatable; must stay inside the root).
    #[arg(long = "values", value_name = "FILE")]
    pub values_files: Vec<PathBuf>,
    /// Substitute ${NAME} with VALUE after rendering (repeatable; turns substitution on).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Fail on a ${NAME} that is unset and has no default (turns substitution on).
    #[arg(long)]
    pub strict_vars: bool,
    /// Time limit of a Jsonnet evaluation or a helm run (e.g. 30s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub render_timeout: String,
    /// Memory limit of the Jsonnet evaluation, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = driftless_api::DEFAULT_MEMORY_LIMIT_MIB,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub memory_limit_mib: u64,
    /// Bytes the render may read (files, helm's output, the Jsonnet result), in MiB.
    #[arg(long, value_name = "MIB", default_value_t = driftless_api::DEFAULT_INPUT_LIMIT_MIB,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub input_limit_mib: u64,
    /// Objects the render may produce.
    #[arg(long, value_name = "N", default_value_t = driftless_api::DEFAULT_OBJECT_LIMIT,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub object_limit: u64,
}

/// A render kind forced from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    Kustomize,
    Helm,
    Jsonnet,
    Plain,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Repository URL: a local path, file://, http(s)://, git:// or ssh.
    pub url: String,
    /// What to fetch: branch:NAME, tag:NAME, semver:RANGE, commit:SHA or name:REF.
    #[arg(long = "ref", value_name = "REF")]
    pub reference: Option<String>,
    /// Export the fetched tree into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where fetched repositories are cached (default: the user cache dir).
    #[arg(long, env = "DRIFTLESS_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t)]
    pub output: SummaryOutput,
}

/// Where the cluster is and which app the objects belong to.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The app that owns the objects (owner label and inventory name).
    #[arg(long)]
    pub app: String,
    /// Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current one).
    #[arg(long)]
    pub context: Option<String>,
    /// Namespace for objects that name none (default: the context's).
    #[arg(long, short)]
    pub namespace: Option<String>,
    /// Act as this ServiceAccount (NAME in the namespace, or NAMESPACE:NAME).
    #[arg(long, value_name = "SERVICE_ACCOUNT")]
    pub impersonate: Option<String>,
    /// Namespace holding the apps' inventories.
    #[arg(long, default_value = "driftless-system")]
    pub inventory_namespace: String,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t)]
    pub output: SummaryOutput,
}

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub input: RenderInput,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub decrypt: DecryptArgs,
    /// Count objects that left the set as deletions (as apply --prune would).
    #[arg(long)]
    pub prune: bool,
}

/// Arguments of `driftless diff`: a directory, or an App of a running server.
#[derive(Debug, Args)]
#[command(mut_arg("dir", |a| a.required(false).required_unless_present("server")))]
pub struct DiffArgs {
    /// Compare the App --app of this running server instead of DIR: its commit (as
    /// the server renders it) against its cluster.
    #[arg(long, value_name = "URL", conflicts_with = "dir")]
    pub server: Option<String>,
    /// API token for --server, sent as a bearer token.
    #[arg(long, env = "DRIFTLESS_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Let an empty set prune everything the app owns.
    #[arg(long, requires = "prune")]
    pub allow_empty_prune: bool,
    /// Wait until every object is healthy.
    #[arg(long)]
    pub wait: bool,
    /// How long to wait for health (e.g. 30s, 5m).
    #[arg(long, default_value = "5m")]
    pub timeout: String,
    /// Take over conflicting fields; delete and re-create objects whose immutable fields changed.
    #[arg(long)]
    pub force: bool,
    /// Create the namespace when it does not exist.
    #[arg(long)]
    pub create_namespace: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Arguments of `driftless serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file, or a directory of them (GitSource, App, Cluster, Receiver, Server objects).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// State, listener and log.
    #[command(flatten)]
    pub run: RunArgs,
}

/// What the long-running commands (`serve`, `controller`) share.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// State directory (sync history, audit log); default: the Server object's, else /var/lib/driftless.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the REST API, webhooks and metrics; default: the Server object's, else 127.0.0.1:9480.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Apps reconciled at once; default: the Server object's, else 4.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u32>,
    /// What the log says and how.
    #[command(flatten)]
    pub log: LogArgs,
}

/// Arguments of `driftless controller`.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// Reconcile only the custom resources of this namespace (default: all namespaces).
    #[arg(long, value_name = "NS", env = "DRIFTLESS_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Reconcile only objects labelled sharding.driftless.dev/key=KEY; without it,
    /// only objects without that label.
    #[arg(long, value_name = "KEY")]
    pub shard: Option<String>,
    /// Let references name objects of other namespaces as NAMESPACE/NAME.
    #[arg(long)]
    pub allow_cross_namespace_refs: bool,
    /// Reconcile only while holding a Lease, so replicas can stand by
    /// (default: on inside a pod, off elsewhere).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: Option<bool>,
    /// The controller's own namespace, where its Lease lives.
    #[arg(
        long,
        value_name = "NS",
        env = "POD_NAMESPACE",
        default_value = "driftless-system"
    )]
    pub namespace: String,
    /// A file holding one Server object: API tokens, retention, render bounds.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// State, listener and log.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Arguments of `driftless install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Print the manifests (CRDs, Namespace, ServiceAccount, RBAC, Deployments, Service)
    /// as YAML instead of applying them.
    #[arg(long)]
    pub export: bool,
    /// Namespace of the controller.
    #[arg(long, default_value = "driftless-system")]
    pub namespace: String,
    /// Container image of the controller (default: this version's).
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Add a controller instance for objects labelled sharding.driftless.dev/key=KEY (repeatable).
    #[arg(long = "shard", value_name = "KEY")]
    pub shards: Vec<String>,
    /// Keep the state store on a PersistentVolumeClaim of this size (e.g. 1Gi) instead of an emptyDir.
    #[arg(long, value_name = "SIZE")]
    pub persistence: Option<String>,
    /// How long to wait until the controller runs.
    #[arg(long, default_value = "5m")]
    pub timeout: String,
    /// The cluster to install into.
    #[command(flatten)]
    pub cluster: KubeconfigArgs,
}

/// Arguments of `driftless uninstall`.
#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// Namespace of the controller.
    #[arg(long, default_value = "driftless-system")]
    pub namespace: String,
    /// Also remove the CRDs, and with them every driftless custom resource (the
    /// Apps' workloads stay); needs --yes.
    #[arg(long, requires = "yes")]
    pub crds: bool,
    /// Confirms that removing the CRDs deletes every GitSource, App, Cluster and Receiver.
    #[arg(long)]
    pub yes: bool,
    /// The cluster to remove the controller from.
    #[command(flatten)]
    pub cluster: KubeconfigArgs,
}

#[derive(Debug, Subcommand)]
pub enum BootstrapCommand {
    /// Commit the controller's manifests and the App that syncs PATH to a Git
    /// repository (never by force), apply them, and wait until that App is Ready.
    Git(BootstrapGitArgs),
}

/// Arguments of `driftless bootstrap git`.
#[derive(Debug, Args)]
pub struct BootstrapGitArgs {
    /// Repository URL (HTTP(S) or SSH).
    #[arg(long)]
    pub url: String,
    /// Branch to commit to and sync from (created when missing).
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// Directory of this cluster in the repository; the controller syncs all of it.
    #[arg(long, default_value = "clusters/default")]
    pub path: String,
    /// Namespace of the controller, its GitSource and its App.
    #[arg(long, default_value = "driftless-system")]
    pub namespace: String,
    /// User name for HTTP basic auth; the password comes from --password-env.
    #[arg(long, requires = "password_env")]
    pub username: Option<String>,
    /// Environment variable holding the password or access token.
    #[arg(long, value_name = "VAR", requires = "username")]
    pub password_env: Option<String>,
    /// SSH private key for an SSH URL.
    #[arg(long, value_name = "FILE", conflicts_with = "username")]
    pub private_key_file: Option<PathBuf>,
    /// known_hosts lines of the SSH server (needed with --private-key-file).
    #[arg(long, value_name = "FILE", requires = "private_key_file")]
    pub known_hosts_file: Option<PathBuf>,
    /// PEM file of certificate authorities an HTTPS server's certificate is
    /// checked against (besides the system's); kept in the cluster's Secret.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Container image of the controller (default: this version's).
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Author of the commit.
    #[arg(long, default_value = "driftless")]
    pub author_name: String,
    /// Author e-mail of the commit.
    #[arg(long, default_value = "driftless@localhost")]
    pub author_email: String,
    /// How often the controller looks for new commits (and reconciles the path).
    #[arg(long, default_value = "1m")]
    pub interval: String,
    /// How long to wait until the App of the path is Ready.
    #[arg(long, default_value = "5m")]
    pub timeout: String,
    /// The cluster to bootstrap.
    #[command(flatten)]
    pub cluster: KubeconfigArgs,
}

/// Which cluster a command acts on.
#[derive(Debug, Args)]
pub struct KubeconfigArgs {
    /// Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current one).
    #[arg(long)]
    pub context: Option<String>,
}

/// The log of a long-running command, on stderr.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log lines as text for people, or as one JSON object per line for machines.
    #[arg(long, value_enum, default_value_t, env = "DRIFTLESS_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Which events are logged: a level (error, warn, info, debug, trace), or
    /// directives per module as RUST_LOG takes them (`info,driftless_engine=debug`).
    #[arg(long, env = "RUST_LOG", default_value = "info", value_name = "FILTER")]
    pub log_level: String,
}

/// Format of log lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `TIME LEVEL message field=value ...`.
    #[default]
    Text,
    /// `{"timestamp":…,"level":…,"target":…,"message":…,"app":…}`.
    Json,
}

/// Where the running server is and how to talk to it.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Base URL of a running `driftless serve`.
    #[arg(long, env = "DRIFTLESS_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,
    /// API token, sent as a bearer token (its role decides what it may do).
    #[arg(long, env = "DRIFTLESS_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t)]
    pub output: SummaryOutput,
}

/// The server `--server` names by default: the default listen address of `serve`.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:9480";

/// Arguments of `driftless status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Show this App in detail (default: a summary and a table of all Apps).
    pub app: Option<String>,
    /// Only Apps of this health: Healthy, Progressing, Degraded, Suspended, Missing,
    /// Unknown (comma-separated or repeated: any of them).
    #[arg(long, value_name = "HEALTH", conflicts_with = "app")]
    pub health: Vec<String>,
    /// Only Apps of this sync status: Synced, OutOfSync, Unknown (comma-separated or
    /// repeated: any of them).
    #[arg(long, value_name = "SYNC", conflicts_with = "app")]
    pub sync: Vec<String>,
    /// Only Apps whose labels match: k=v, k!=v, k (set), !k (not set); comma-separated
    /// or repeated, all must hold.
    #[arg(long, short = 'l', value_name = "SELECTOR", conflicts_with = "app")]
    pub label: Vec<String>,
    /// Only Apps whose name contains this text, ignoring case.
    #[arg(long, short = 'q', value_name = "TEXT", conflicts_with = "app")]
    pub query: Option<String>,
    /// List at most this many Apps (default: all, read a page at a time).
    #[arg(long, value_name = "N", conflicts_with = "app",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Arguments of `driftless history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub list: ListArgs,
    /// List the audit log of operations instead: each sync, suspend, resume and
    /// rollback asked through the API, when, by which token, and what came of it.
    #[arg(long)]
    pub operations: bool,
}

/// Arguments of the commands that list an App's past, newest first.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The App.
    pub app: String,
    /// Most entries to list (the server caps it at 1000).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Arguments of `driftless sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The App.
    pub app: String,
    /// Wait until the sync ends; exit 0 when it succeeded, 1 otherwise.
    #[arg(long)]
    pub wait: bool,
    /// How long to wait (e.g. 30s, 5m).
    #[arg(long, default_value = "5m", requires = "wait")]
    pub timeout: String,
    /// Sync even where a sync window holds the App (needs the operate role; the
    /// server's audit log records it).
    #[arg(long)]
    pub override_window: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Arguments of commands that act on one App.
#[derive(Debug, Args)]
pub struct AppArgs {
    /// The App.
    pub app: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Arguments of `driftless rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The App.
    pub app: String,
    /// Commit SHA (or a prefix) of an earlier successful sync; default: the one before the live one.
    #[arg(long, value_name = "REVISION")]
    pub to: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

impl RenderInput {
    /// The directory to render.
    pub fn dir(&self) -> &Path {
        self.dir
            .as_deref()
            .expect("clap requires DIR wherever a directory is rendered")
    }
}
