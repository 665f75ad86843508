//! driftless object types, their validation, JSON schemas and CRDs.
//!
//! The kinds (`GitSource`, `App`, `Cluster`, `Host`, `Receiver`, `Notifier`,
//! `SyncWindow`, `Server`) look like
//! Kubernetes objects so one YAML file works as a standalone config and as
//! CustomResources. Everything here is pure except [`load`], which reads files.
//!
//! ```
//! use driftless_api::{Config, Document};
//!
//! let source = serde_json::json!({
//!     "apiVersion": "driftless.dev/v1alpha1",
//!     "kind": "GitSource",
//!     "metadata": {"name": "platform"},
//!     "spec": {"url": "https://git.example.com/org/platform.git", "ref": {"branch": "main"}}
//! });
//! let app = serde_json::json!({
//!     "apiVersion": "driftless.dev/v1alpha1",
//!     "kind": "App",
//!     "metadata": {"name": "web"},
//!     "spec": {"sourceRef": {"name": "platfrom"}, "interval": "5 minutes"}
//! });
//! let docs = [source, app].into_iter().enumerate().map(|(i, value)| Document {
//!     file: "config.yaml".into(),
//!     index: i + 1,
//!     value,
//! });
//! let problems = Config::from_documents(docs).unwrap_err();
//! assert_eq!(
//!     problems.0[0].to_string(),
//!     "config.yaml (document 2, App/web): spec.interval: invalid duration \"5 minutes\" (expected e.g. 30s, 5m, 1h)"
//! );
//! ```

mod access;
mod app;
mod cluster;
mod config;
mod cron;
mod decode;
mod decryption;
mod duration;
mod helm_repo;
pub mod history;
pub mod host;
mod ignore;
pub mod inspect;
pub mod jq;
pub mod list;
pub mod load;
mod meta;
mod notifier;
mod oci_source;
mod receiver;
pub mod schema;
mod scope;
mod server;
mod shape;
mod source;
pub mod status;
pub mod time;
mod validate;
mod window;

pub use access::{ApiAccess, ApiToken, LEGACY_TOKEN_NAME, Role};
pub use app::{
    App, AppSpec, Backoff, DEFAULT_APP_INTERVAL, DEFAULT_APP_TIMEOUT, Destination, HelmRender,
    JsonnetRender, KustomizeRender, LoadRestrictor, PlainRender, PrunePropagation, Render,
    RenderKind, Retry, SourceKind, SourceRef, Substitutions, SyncPolicy,
};
pub use cluster::{Cluster, ClusterSpec, KubeconfigRef};
pub use config::{Config, Document, Problem, Problems};
pub use decode::{AnyObject, KINDS, decode};
pub use decryption::{Decryption, DecryptionProvider};
pub use duration::{Duration, DurationError};
pub use helm_repo::{
    DEFAULT_HELM_REPOSITORY_INTERVAL, DEFAULT_HELM_REPOSITORY_TIMEOUT, HelmChart, HelmRepository,
    HelmRepositorySpec, ValuesKind, ValuesReference,
};
pub use host::{
    DEFAULT_APPS_ROOT, DEFAULT_KEEP_RELEASES, DEFAULT_SSH_PORT, HealthCheck, Hooks, Host,
    HostDelivery, HostResult, HostRollout, HostSelector, HostSpec, HostStatus, HttpCheck, Rollout,
};
pub use ignore::IgnoreDifference;
pub use load::{LoadError, load_config};
pub use meta::{API_VERSION, GROUP, Kind, LocalRef, Object, ObjectMeta, PrinterColumn, VERSION};
pub use notifier::{
    EventKind, NotificationDelivery, Notifier, NotifierSpec, NotifierType, Severity,
};
pub use oci_source::{DEFAULT_OCI_TAG, OciRef, OciSource, OciSourceSpec};
pub use receiver::{Receiver, ReceiverSpec, ReceiverType};
pub use scope::{Naming, decode_namespaced, qualified_name, split_qualified};
pub use server::{
    DEFAULT_CONCURRENCY, DEFAULT_DATA_DIR, DEFAULT_INPUT_LIMIT_MIB, DEFAULT_LISTEN,
    DEFAULT_MEMORY_LIMIT_MIB, DEFAULT_OBJECT_LIMIT, HttpLimits, MAX_CONCURRENCY, NoStatus,
    RenderBounds, Retention, SecretValue, Server, ServerSpec, concurrency_problem,
};
pub use source::{
    CA_KEY, DEFAULT_SOURCE_INTERVAL, DEFAULT_SOURCE_TIMEOUT, GitRef, GitSource, GitSourceSpec,
    IDENTITY_KEY, KNOWN_HOSTS_KEY, Verification, VerifyMode, VerifyProvider,
};
pub use time::{Time, UnixMillis};
pub use validate::{FieldProblem, dns_label_error, suggest};
pub use window::{
    AppLabels, SyncWindow, SyncWindowSpec, SyncWindowStatus, WindowHold, WindowKind, glob,
    hold as window_hold, next_change as next_window_change, selects as window_selects,
};
