//! Retention: per App, the store keeps the newest syncs, drift events and operations up to a
//! count and an age, so its file stays bounded however long driftless runs.
//!
//! The count is enforced in the write transaction that adds a record (for that App);
//! the age by [`Store::prune`] (for every App, including those that no longer sync),
//! which the server runs periodically. redb reuses the pages freed here, so the file
//! stops growing once it holds the retained records.

use std::collections::BTreeSet;

use driftless_api::Retention;
use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::operations::OPERATIONS;
use super::{AUDIT, HISTORY, META, RUNNING, Result, Store};
use crate::store::{AuditEvent, SyncRecord};
use crate::timing::now_ms;

/// (App name, audit id) → (): the audit log indexed by App, for per-App retention.
pub(super) const AUDIT_BY_APP: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("audit_by_app");
/// Meta counter set once [`AUDIT_BY_APP`] indexes every audit event.
const AUDIT_INDEXED: &str = "audit_by_app_built";

/// The age limit never removes an App's newest syncs, so a rollback keeps a target
/// and `driftless history` something to show for an App that rarely changes.
pub const MIN_SYNCS_KEPT_BY_AGE: usize = 10;

/// Records removed by one [`Store::prune`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Sync history entries removed.
    pub syncs: usize,
    /// Drift events removed.
    pub drift_events: usize,
    /// Operations removed from the audit log of mutations.
    pub operations: usize,
}

impl Store {
    /// Applies `retention` from now on (to new records and the next [`Store::prune`]).
    pub fn set_retention(&self, retention: Retention) {
        *self
            .retention
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = retention;
    }

    /// The retention in force.
    pub fn retention(&self) -> Retention {
        self.retention
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Removes, for every App, the syncs and drift events beyond the retention's count
    /// or older than its age limit.
    pub fn prune(&self) -> Result<Pruned> {
        let tx = self.db.begin_write().map_err(self.err("begin prune"))?;
        let mut apps = BTreeSet::new();
        {
            let history = tx
                .open_table(HISTORY)
                .map_err(self.err("open history table"))?;
            let audit = tx
                .open_table(AUDIT_BY_APP)
                .map_err(self.err("open audit index"))?;
            for entry in history.iter().map_err(self.err("scan history"))? {
                let (key, _) = entry.map_err(self.err("scan history"))?;
                apps.insert(key.value().0.to_owned());
            }
            for entry in audit.iter().map_err(self.err("scan audit index"))? {
                let (key, _) = entry.map_err(self.err("scan audit index"))?;
                apps.insert(key.value().0.to_owned());
            }
            let operations = tx
                .open_table(OPERATIONS)
                .map_err(self.err("open operations table"))?;
            for entry in operations.iter().map_err(self.err("scan operations"))? {
                let (key, _) = entry.map_err(self.err("scan operations"))?;
                apps.insert(key.value().0.to_owned());
            }
        }
        let mut pruned = Pruned::default();
        for app in &apps {
            pruned.syncs += self.prune_history(&tx, app, Age::Checked)?;
            pruned.drift_events += self.prune_audit(&tx, app, Age::Checked)?;
            pruned.operations += self.prune_operations(&tx, app, Age::Checked)?;
        }
        tx.commit().map_err(self.err("commit prune"))?;
        Ok(pruned)
    }

    /// Indexes the audit events of a store written before the per-App index existed.
    pub(super) fn index_audit(&self, tx: &WriteTransaction) -> Result<()> {
        let mut meta = tx.open_table(META).map_err(self.err("open meta table"))?;
        if meta
            .get(AUDIT_INDEXED)
            .map_err(self.err("read meta"))?
            .is_some()
        {
            return Ok(());
        }
        let audit = tx.open_table(AUDIT).map_err(self.err("open audit table"))?;
        let mut index = tx
            .open_table(AUDIT_BY_APP)
            .map_err(self.err("open audit index"))?;
        for entry in audit.iter().map_err(self.err("scan audit log"))? {
            let (key, value) = entry.map_err(self.err("scan audit log"))?;
            let event: AuditEvent = self.decode("audit", &key.value(), value.value())?;
            index
                .insert((event.app.as_str(), event.id), ())
                .map_err(self.err("index audit event"))?;
        }
        meta.insert(AUDIT_INDEXED, 1)
            .map_err(self.err("write meta"))?;
        Ok(())
    }

    /// Removes `app`'s syncs beyond the newest `retention.syncs` and those older than
    /// `retention.maxAge` (sparing the newest [`MIN_SYNCS_KEPT_BY_AGE`]); running
    /// syncs stay. Returns how many were removed.
    pub(super) fn prune_history(
        &self,
        tx: &WriteTransaction,
        app: &str,
        age: Age,
    ) -> Result<usize> {
        let retention = self.retention();
        let mut history = tx
            .open_table(HISTORY)
            .map_err(self.err("open history table"))?;
        let running = tx
            .open_table(RUNNING)
            .map_err(self.err("open running table"))?;
        let ids = ids_of(&history, app).map_err(self.err("scan history"))?;
        let keep = (retention.syncs as usize).max(1);
        let cutoff = cutoff(&retention, age);
        let doomed = doomed(&ids, keep, cutoff, MIN_SYNCS_KEPT_BY_AGE, |id| {
            self.time_of(&history, "history", (app, id), |r: &SyncRecord| {
                r.start_time
            })
        })?;
        let mut removed = 0;
        for id in doomed {
            if running
                .get((app, id))
                .map_err(self.err("read running syncs"))?
                .is_some()
            {
                continue;
            }
            history
                .remove((app, id))
                .map_err(self.err("remove old sync"))?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Removes `app`'s drift events beyond the newest `retention.driftEvents` and
    /// those older than `retention.maxAge`. Returns how many were removed.
    pub(super) fn prune_audit(&self, tx: &WriteTransaction, app: &str, age: Age) -> Result<usize> {
        let retention = self.retention();
        let mut audit = tx.open_table(AUDIT).map_err(self.err("open audit table"))?;
        let mut index = tx
            .open_table(AUDIT_BY_APP)
            .map_err(self.err("open audit index"))?;
        let ids = ids_of(&index, app).map_err(self.err("scan audit index"))?;
        let keep = retention.drift_events as usize;
        let doomed = doomed(&ids, keep, cutoff(&retention, age), 0, |id| {
            let Some(bytes) = audit.get(id).map_err(self.err("read audit event"))? else {
                return Ok(None);
            };
            let event: AuditEvent = self.decode("audit", &id, bytes.value())?;
            Ok(Some(event.time.unix_ms()))
        })?;
        for &id in &doomed {
            audit
                .remove(id)
                .map_err(self.err("remove old audit event"))?;
            index
                .remove((app, id))
                .map_err(self.err("remove old audit event"))?;
        }
        Ok(doomed.len())
    }
}

/// Of `ids` (oldest first), those to remove: all but the newest `keep`, then,
/// sparing the newest `spare`, those whose time (`time_of`, ms since the epoch;
/// `None` for a vanished entry) is before `cutoff`. Times grow with ids.
pub(super) fn doomed(
    ids: &[u64],
    keep: usize,
    cutoff: Option<u64>,
    spare: usize,
    mut time_of: impl FnMut(u64) -> Result<Option<u64>>,
) -> Result<Vec<u64>> {
    let excess = ids.len().saturating_sub(keep);
    let mut doomed = ids[..excess].to_vec();
    if let Some(cutoff) = cutoff {
        let ageable = ids.len().saturating_sub(spare);
        for &id in ids.iter().take(ageable).skip(excess) {
            match time_of(id)? {
                None => continue,
                Some(time) if time >= cutoff => break,
                Some(_) => doomed.push(id),
            }
        }
    }
    Ok(doomed)
}

/// The ids stored under `app` in a table keyed by (app, id), oldest first.
pub(super) fn ids_of<V: redb::Value + 'static>(
    table: &impl ReadableTable<(&'static str, u64), V>,
    app: &str,
) -> Result<Vec<u64>, redb::StorageError> {
    table
        .range((app, 0)..=(app, u64::MAX))?
        .map(|entry| entry.map(|(key, _)| key.value().1))
        .collect()
}

/// Whether a pruning pass also applies the age limit (decoding the oldest records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Age {
    /// Count only: the cheap pass run with every new record.
    Ignored,
    /// Count and age.
    Checked,
}

/// Records that started before this time (ms since the epoch) are too old; `None`
/// when the age is not checked or there is no age limit.
pub(super) fn cutoff(retention: &Retention, age: Age) -> Option<u64> {
    let max = u64::try_from(retention.max_age.get().as_millis()).unwrap_or(u64::MAX);
    (age == Age::Checked && max > 0).then(|| now_ms().saturating_sub(max))
}
