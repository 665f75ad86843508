//! Embedded state store: app status, append-only sync history, the drift audit log and
//! the audit log of operations people asked for.
//!
//! The records are driftless-api's status and history types, stored as JSON: the
//! REST API sends what the store holds. Records written before those types moved
//! to driftless-api (integer millisecond times under `*Ms` names) still decode.
//!
//! Backed by one `redb` file in the data dir. redb gives serialisable write transactions
//! and MVCC snapshots, so the API server reads while the reconcile loop writes, and a
//! crash leaves the last committed state intact.

mod listing;
mod observe;
mod operations;
mod retention;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use driftless_api::Retention;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use driftless_api::Time;
pub use driftless_api::history::{
    AdoptedObject, AuditEvent, DriftAction, ObjectCounts, Operation, OperationKind, Revision,
    SyncRecord, SyncResult, SyncStart, SyncTrigger,
};
pub use driftless_api::status::{
    AppStatus, Condition, ConditionStatus, HealthStatus, Named, ResourceStatus, SyncStatus,
};
pub use observe::{Glance, Observer, Recorded};
pub use retention::{MIN_SYNCS_KEPT_BY_AGE, Pruned};

/// How a sync ended, as the reconcile loop reports it to [`Store::finish_sync`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    /// Final result; must not be `Running`.
    pub result: SyncResult,
    /// Object counts.
    pub counts: ObjectCounts,
    /// Error message for failed or interrupted syncs.
    pub error: Option<String>,
    /// Objects the sync took over (also when it failed later).
    pub adopted: Vec<AdoptedObject>,
    /// For an App deploying to hosts: each host's part of the rollout.
    pub hosts: Vec<driftless_api::HostRollout>,
    /// The hooks the sync ran, as each ended.
    pub hooks: Vec<driftless_api::history::HookRun>,
}

/// App name → JSON [`AppStatus`].
const APPS: TableDefinition<&str, &[u8]> = TableDefinition::new("apps");
/// (App name, sync id) → JSON [`SyncRecord`]; ids increase, so a reverse range is newest first.
const HISTORY: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("history");
/// Syncs recorded as started and not yet finished: (app, id) → ().
const RUNNING: TableDefinition<(&str, u64), ()> = TableDefinition::new("running");
/// Audit id → JSON [`AuditEvent`].
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// Counters: `next_sync_id`, `next_audit_id`, `next_operation_id`; and [`IN_USE`].
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Meta key set to 1 while a process has the store open and cleared by
/// [`Store::mark_stopped`]: found set on open, the last process ended
/// without a stop (killed or crashed).
const IN_USE: &str = "in_use";

/// History error of a sync the previous process was running when it ended
/// without a stop.
pub const ENDED_WITHOUT_STOP: &str = "interrupted: the driftless process ended without a stop \
                                      (killed or crashed) while this sync ran";
/// History error of a sync still running when the previous process stopped.
pub const STOPPED_DURING_SYNC: &str = "interrupted: driftless was stopped before the sync finished";

/// File name of the database inside the data dir.
pub const DB_FILE: &str = "driftless.redb";

/// Errors of the state store; each names the file, table or record at fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data dir could not be created or made private (mode 0700).
    #[error("creating data dir {path}: {source}")]
    CreateDir {
        /// Directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The database file could not be opened (locked by another process, corrupt, ...).
    #[error("opening state store {path}: {source}")]
    Open {
        /// Database file.
        path: PathBuf,
        /// Cause.
        source: Box<redb::Error>,
    },
    /// A read or write transaction failed.
    #[error("state store {path}: {op}: {source}")]
    Database {
        /// Database file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// Cause.
        source: Box<redb::Error>,
    },
    /// A stored record does not decode (written by an incompatible version).
    #[error("state store {path}: record {key} in table {table} does not decode: {source}")]
    Decode {
        /// Database file.
        path: PathBuf,
        /// Table name.
        table: &'static str,
        /// Record key.
        key: String,
        /// Cause.
        source: serde_json::Error,
    },
    /// A sync id that was never started for this app.
    #[error("app {app}: no sync with id {id} in the history")]
    UnknownSync {
        /// App name.
        app: String,
        /// Sync id.
        id: u64,
    },
    /// The outcome passed to `finish_sync` was `Running`.
    #[error("app {app}: sync {id} cannot finish with result Running")]
    StillRunning {
        /// App name.
        app: String,
        /// Sync id.
        id: u64,
    },
}

/// Result alias of this module.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Handle on the state store; cheap to clone, safe to share between threads.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    path: Arc<PathBuf>,
    interrupted: Arc<Vec<SyncRecord>>,
    retention: Arc<RwLock<Retention>>,
    changes: Arc<std::sync::Mutex<Changes>>,
    /// The latest change number, for those who wait for changes.
    latest: Arc<tokio::sync::watch::Sender<u64>>,
    /// Told of each recorded change.
    observer: observe::Slot,
}

/// Which App statuses changed when: a sequence number per change.
#[derive(Debug, Default)]
struct Changes {
    seq: u64,
    by_app: std::collections::HashMap<String, u64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the store in `data_dir`.
    ///
    /// Syncs recorded as started but never finished were cut off by a crash: they are
    /// marked `Interrupted` here and listed by [`Store::interrupted`] so the engine re-runs them.
    /// The data dir is made private (mode 0700, also when it exists with a looser
    /// mode) and so is the database file (0600): history names commits and objects.
    pub fn open(data_dir: &Path) -> Result<Self> {
        let private = |path: &Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(
                |source| StoreError::CreateDir {
                    path: path.to_path_buf(),
                    source,
                },
            )
        };
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::CreateDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        private(data_dir, 0o700)?;
        let path = data_dir.join(DB_FILE);
        let db = Database::create(&path).map_err(|e| StoreError::Open {
            path: path.clone(),
            source: Box::new(e.into()),
        })?;
        private(&path, 0o600)?;
        let mut store = Self {
            db: Arc::new(db),
            path: Arc::new(path),
            interrupted: Arc::default(),
            retention: Arc::default(),
            changes: Arc::default(),
            latest: Arc::new(tokio::sync::watch::Sender::new(0)),
            observer: observe::Slot::default(),
        };
        store.interrupted = Arc::new(store.recover()?);
        Ok(store)
    }

    /// Makes `observer` the one told of every change recorded from now on
    /// (`None`: nobody).
    pub fn observe(&self, observer: Option<Observer>) {
        self.observer.set(observer);
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs that were running when the previous process stopped, now marked `Interrupted`.
    pub fn interrupted(&self) -> &[SyncRecord] {
        &self.interrupted
    }

    /// Records that this process stops cleanly (call after its last sync
    /// ended): the next open then knows the process was not killed.
    pub fn mark_stopped(&self) -> Result<()> {
        let tx = self.db.begin_write().map_err(self.err("begin write"))?;
        tx.open_table(META)
            .map_err(self.err("open meta table"))?
            .insert(IN_USE, 0)
            .map_err(self.err("record a clean stop"))?;
        tx.commit().map_err(self.err("commit clean stop"))
    }

    fn err<E: Into<redb::Error>>(&self, op: &'static str) -> impl FnOnce(E) -> StoreError + '_ {
        move |e| StoreError::Database {
            path: self.path.to_path_buf(),
            op,
            source: Box::new(e.into()),
        }
    }

    fn decode<T: DeserializeOwned>(
        &self,
        table: &'static str,
        key: &dyn std::fmt::Display,
        bytes: &[u8],
    ) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|source| StoreError::Decode {
            path: self.path.to_path_buf(),
            table,
            key: key.to_string(),
            source,
        })
    }

    /// Creates every table so readers never meet a missing one, then finishes crashed syncs.
    fn recover(&self) -> Result<Vec<SyncRecord>> {
        let tx = self.db.begin_write().map_err(self.err("begin recovery"))?;
        tx.open_table(APPS).map_err(self.err("create apps table"))?;
        tx.open_table(AUDIT)
            .map_err(self.err("create audit table"))?;
        tx.open_table(META).map_err(self.err("create meta table"))?;
        tx.open_table(HISTORY)
            .map_err(self.err("create history table"))?;
        tx.open_table(operations::OPERATIONS)
            .map_err(self.err("create operations table"))?;
        self.index_audit(&tx)?;
        self.index_apps(&tx)?;
        let keys: Vec<(String, u64)> = {
            let running = tx
                .open_table(RUNNING)
                .map_err(self.err("open running table"))?;
            running
                .iter()
                .map_err(self.err("scan running syncs"))?
                .map(|entry| entry.map(|(k, _)| (k.value().0.to_owned(), k.value().1)))
                .collect::<Result<_, _>>()
                .map_err(self.err("scan running syncs"))?
        };
        let ended_without_stop = {
            let mut meta = tx.open_table(META).map_err(self.err("open meta table"))?;
            meta.insert(IN_USE, 1)
                .map_err(self.err("record the store in use"))?
                .is_some_and(|v| v.value() == 1)
        };
        let why = if ended_without_stop {
            ENDED_WITHOUT_STOP
        } else {
            STOPPED_DURING_SYNC
        };
        let now = Time::now();
        let mut recovered = Vec::new();
        for (app, id) in keys {
            let Some(mut record) = self.read_sync(&tx, &app, id)? else {
                continue;
            };
            record.result = SyncResult::Interrupted;
            record.finish_time = Some(now);
            record.error = Some(why.to_owned());
            self.write_sync(&tx, &record)?;
            recovered.push(record);
        }
        tx.commit().map_err(self.err("commit recovery"))?;
        Ok(recovered)
    }

    /// The status of one app, if it was ever recorded.
    pub fn app(&self, name: &str) -> Result<Option<AppStatus>> {
        let tx = self.db.begin_read().map_err(self.err("begin read"))?;
        let table = tx.open_table(APPS).map_err(self.err("open apps table"))?;
        let value = table.get(name).map_err(self.err("read app"))?;
        value
            .map(|v| self.decode("apps", &name, v.value()))
            .transpose()
    }

    /// Every recorded app status with its name, ordered by name.
    pub fn apps(&self) -> Result<Vec<Named<AppStatus>>> {
        let tx = self.db.begin_read().map_err(self.err("begin read"))?;
        let table = tx.open_table(APPS).map_err(self.err("open apps table"))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(self.err("scan apps"))? {
            let (key, value) = entry.map_err(self.err("scan apps"))?;
            let name = key.value();
            out.push(Named::new(name, self.decode("apps", &name, value.value())?));
        }
        Ok(out)
    }

    /// Stores `status` as app `name`'s, replacing what was there.
    pub fn put_app(&self, name: &str, status: &AppStatus) -> Result<()> {
        self.update_app(name, |s| *s = status.clone()).map(|_| ())
    }

    /// Gives each of `names` without a recorded status the default one, all
    /// in one transaction (one disk sync however many Apps a config adds).
    /// Returns how many were added.
    pub fn ensure_apps<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Result<usize> {
        let tx = self.db.begin_write().map_err(self.err("begin write"))?;
        let mut added = Vec::new();
        {
            let mut table = tx.open_table(APPS).map_err(self.err("open apps table"))?;
            for name in names {
                if table.get(name).map_err(self.err("read app"))?.is_some() {
                    continue;
                }
                let status = AppStatus {
                    last_update_time: Some(Time::now()),
                    ..AppStatus::default()
                };
                table
                    .insert(name, encode(&status).as_slice())
                    .map_err(self.err("write app"))?;
                self.index_app(&tx, name, Some(&status))?;
                added.push(name);
            }
        }
        if added.is_empty() {
            tx.abort().map_err(self.err("end write"))?;
            return Ok(0);
        }
        tx.commit().map_err(self.err("commit apps"))?;
        for name in &added {
            self.note_change(name);
        }
        Ok(added.len())
    }

    /// Read-modify-write of one app in a single transaction; a missing app starts from
    /// the default status. Returns the stored status.
    pub fn update_app(&self, name: &str, change: impl FnOnce(&mut AppStatus)) -> Result<AppStatus> {
        let observer = self.observer.get();
        let mut before = Glance::default();
        let tx = self.db.begin_write().map_err(self.err("begin write"))?;
        let status = {
            let mut table = tx.open_table(APPS).map_err(self.err("open apps table"))?;
            let current = table
                .get(name)
                .map_err(self.err("read app"))?
                .map(|v| v.value().to_vec());
            let mut status = match current {
                Some(bytes) => self.decode("apps", &name, &bytes)?,
                None => AppStatus::default(),
            };
            if observer.is_some() {
                before = Glance::of(&status);
            }
            change(&mut status);
            status.last_update_time = Some(Time::now());
            table
                .insert(name, encode(&status).as_slice())
                .map_err(self.err("write app"))?;
            status
        };
        self.index_app(&tx, name, Some(&status))?;
        tx.commit().map_err(self.err("commit app"))?;
        self.note_change(name);
        if let Some(observer) = observer {
            observer(&Recorded::App {
                name,
                before,
                after: &status,
            });
        }
        Ok(status)
    }

    /// The Apps whose status changed (or was removed) after change `since`, and the
    /// number of the latest change, to pass as `since` next time; `since` 0 lists
    /// every App changed since the store opened.
    pub fn app_changes_since(&self, since: u64) -> (u64, Vec<String>) {
        let changes = self
            .changes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let names = changes
            .by_app
            .iter()
            .filter(|(_, seq)| **seq > since)
            .map(|(name, _)| name.clone())
            .collect();
        (changes.seq, names)
    }

    /// Follows the number of the latest App status change (see
    /// [`Store::app_changes_since`]); it moves with every change.
    pub fn watch_app_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.latest.subscribe()
    }

    fn note_change(&self, name: &str) {
        let mut changes = self
            .changes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        changes.seq += 1;
        let seq = changes.seq;
        changes.by_app.insert(name.to_owned(), seq);
        self.latest.send_replace(seq);
    }

    /// Removes an app's status (its history and audit entries stay). True if it existed.
    pub fn remove_app(&self, name: &str) -> Result<bool> {
        let tx = self.db.begin_write().map_err(self.err("begin write"))?;
        let existed = {
            let mut table = tx.open_table(APPS).map_err(self.err("open apps table"))?;
            table
                .remove(name)
                .map_err(self.err("remove app"))?
                .is_some()
        };
        self.index_app(&tx, name, None)?;
        tx.commit().map_err(self.err("commit app removal"))?;
        self.note_change(name);
        Ok(existed)
    }

    /// Records a sync as running *before* it runs, so a crash during it is detectable.
    pub fn begin_sync(&self, app: &str, start: SyncStart) -> Result<SyncRecord> {
        let tx = self.db.begin_write().map_err(self.err("begin write"))?;
        let id = next_id(&tx, "next_sync_id").map_err(self.err("allocate sync id"))?;
        let record = SyncRecord {
            id,
            app: app.to_owned(),
            start,
            start_time: Time::now(),
            finish_time: None,
            result: SyncResult::Running,
            counts: ObjectCounts::default(),
            error: None,
            adopted: Vec::new(),
            hosts: Vec::new(),
            hooks: Vec::new(),
        };
        self.write_sync(&tx, &record)?;
        self.prune_history(&tx, app, retention::Age::Ignored)?;
        tx.commit().map_err(self.err("commit sync start"))?;
        if let Some(observer) = self.observer.get() {
            observer(&Recorded::SyncBegun(&record));
        }
        Ok(record)
    }

    /// Records how sync `id` of `app` ended.
    pub fn finish_sync(&self, app: &str, id: u64, outcome: SyncOutcome) -> Result<SyncRecord> {
        if outcome.result == SyncResult::Running {
            return Err(StoreError::StillRunning {
                app: app.to_owned(),
                id,
            });
        }
        let tx = self.db.begin_write().map_err(self.err("begin write"))?;
        let Some(mut record) = self.read_sync(&tx, app, id)? else {
            return Err(StoreError::UnknownSync {
                app: app.to_owned(),
                id,
            });
        };
        record.result = outcome.result;
        record.counts = outcome.counts;
        record.error = outcome.error;
        record.adopted = outcome.adopted;
        record.hosts = outcome.hosts;
        record.hooks = outcome.hooks;
        record.finish_time = Some(Time::now());
        self.write_sync(&tx, &record)?;
        tx.commit().map_err(self.err("commit sync finish"))?;
        if let Some(observer) = self.observer.get() {
            observer(&Recorded::SyncFinished(&record));
        }
        Ok(record)
    }

    fn read_sync(&self, tx: &WriteTransaction, app: &str, id: u64) -> Result<Option<SyncRecord>> {
        let history = tx
            .open_table(HISTORY)
            .map_err(self.err("open history table"))?;
        let stored = history.get((app, id)).map_err(self.err("read sync"))?;
        stored
            .map(|g| self.decode("history", &format_args!("{app}/{id}"), g.value()))
            .transpose()
    }

    /// Writes `record` to the history and keeps the running index in step with its result.
    fn write_sync(&self, tx: &WriteTransaction, record: &SyncRecord) -> Result<()> {
        let key = (record.app.as_str(), record.id);
        let mut history = tx
            .open_table(HISTORY)
            .map_err(self.err("open history table"))?;
        history
            .insert(key, encode(record).as_slice())
            .map_err(self.err("write sync"))?;
        let mut running = tx
            .open_table(RUNNING)
            .map_err(self.err("open running table"))?;
        if record.result == SyncResult::Running {
            running
                .insert(key, ())
                .map_err(self.err("mark sync running"))?;
        } else {
            running
                .remove(key)
                .map_err(self.err("clear running sync"))?;
        }
        Ok(())
    }

    /// The newest `limit` syncs of `app`, newest first.
    pub fn history(&self, app: &str, limit: usize) -> Result<Vec<SyncRecord>> {
        self.newest(HISTORY, "history", app, limit)
    }

    /// The newest `limit` records of `app` in `table` (called `name` in errors),
    /// keyed by (app, id), newest first.
    fn newest<T: DeserializeOwned>(
        &self,
        table: TableDefinition<(&str, u64), &[u8]>,
        name: &'static str,
        app: &str,
        limit: usize,
    ) -> Result<Vec<T>> {
        let tx = self.db.begin_read().map_err(self.err("begin read"))?;
        let table = tx.open_table(table).map_err(self.err("open table"))?;
        let range = table
            .range((app, 0)..=(app, u64::MAX))
            .map_err(self.err("scan table"))?;
        let mut out = Vec::new();
        for entry in range.rev().take(limit) {
            let (key, value) = entry.map_err(self.err("scan table"))?;
            let id = key.value().1;
            out.push(self.decode(name, &format_args!("{app}/{id}"), value.value())?);
        }
        Ok(out)
    }

    /// The time (ms since the epoch) `time` reads from record (`app`, `id`) of
    /// `table`; `None` when the record is gone.
    fn time_of<T: DeserializeOwned>(
        &self,
        table: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
        name: &'static str,
        (app, id): (&str, u64),
        time: fn(&T) -> Time,
    ) -> Result<Option<u64>> {
        let Some(bytes) = table.get((app, id)).map_err(self.err("read record"))? else {
            return Ok(None);
        };
        let record: T = self.decode(name, &format_args!("{app}/{id}"), bytes.value())?;
        Ok(Some(time(&record).unix_ms()))
    }

    /// Appends a drift event to the audit log; returns it with its assigned id.
    pub fn record_audit(&self, mut event: AuditEvent) -> Result<AuditEvent> {
        let tx = self.db.begin_write().map_err(self.err("begin write"))?;
        {
            event.id = next_id(&tx, "next_audit_id").map_err(self.err("allocate audit id"))?;
            let mut table = tx.open_table(AUDIT).map_err(self.err("open audit table"))?;
            table
                .insert(event.id, encode(&event).as_slice())
                .map_err(self.err("write audit event"))?;
            let mut index = tx
                .open_table(retention::AUDIT_BY_APP)
                .map_err(self.err("open audit index"))?;
            index
                .insert((event.app.as_str(), event.id), ())
                .map_err(self.err("index audit event"))?;
        }
        self.prune_audit(&tx, &event.app, retention::Age::Ignored)?;
        tx.commit().map_err(self.err("commit audit event"))?;
        if let Some(observer) = self.observer.get() {
            observer(&Recorded::Audit(&event));
        }
        Ok(event)
    }

    /// The newest `limit` audit events, newest first, optionally only those of one app.
    pub fn audit(&self, app: Option<&str>, limit: usize) -> Result<Vec<AuditEvent>> {
        let tx = self.db.begin_read().map_err(self.err("begin read"))?;
        let table = tx.open_table(AUDIT).map_err(self.err("open audit table"))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(self.err("scan audit log"))?.rev() {
            if out.len() >= limit {
                break;
            }
            let (key, value) = entry.map_err(self.err("scan audit log"))?;
            let event: AuditEvent = self.decode("audit", &key.value(), value.value())?;
            if app.is_none_or(|a| a == event.app) {
                out.push(event);
            }
        }
        Ok(out)
    }
}

/// Takes the next value of a counter in the meta table (starting at 1).
fn next_id(tx: &redb::WriteTransaction, counter: &str) -> Result<u64, redb::Error> {
    let mut meta = tx.open_table(META)?;
    let next = meta.get(counter)?.map_or(1, |v| v.value());
    meta.insert(counter, next + 1)?;
    Ok(next)
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // The record types are plain structs with string keys: serialising cannot fail.
    serde_json::to_vec(value).expect("store records serialise to JSON")
}
