//! The audit log of mutations: each sync, suspend, resume and rollback asked of an
//! App, with the API token that asked and what came of it.
//!
//! Kept per App under the same retention as the sync history (`retention.syncs`
//! entries, `retention.maxAge`).

use redb::{TableDefinition, WriteTransaction};

use super::retention::{Age, cutoff, doomed, ids_of};
use super::{Operation, Result, Store, encode, next_id};

/// (App name, operation id) → JSON [`Operation`]; ids increase, so a reverse range is newest first.
pub(super) const OPERATIONS: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("operations");

impl Store {
    /// Appends an operation to the audit log, assigning its id; returns it.
    pub fn record_operation(&self, mut operation: Operation) -> Result<Operation> {
        let tx = self.db.begin_write().map_err(self.err("begin write"))?;
        {
            operation.id =
                next_id(&tx, "next_operation_id").map_err(self.err("allocate operation id"))?;
            let mut table = tx
                .open_table(OPERATIONS)
                .map_err(self.err("open operations table"))?;
            table
                .insert(
                    (operation.app.as_str(), operation.id),
                    encode(&operation).as_slice(),
                )
                .map_err(self.err("write operation"))?;
        }
        self.prune_operations(&tx, &operation.app, Age::Ignored)?;
        tx.commit().map_err(self.err("commit operation"))?;
        Ok(operation)
    }

    /// The newest `limit` operations asked of `app`, newest first.
    pub fn operations(&self, app: &str, limit: usize) -> Result<Vec<Operation>> {
        self.newest(OPERATIONS, "operations", app, limit)
    }

    /// Removes `app`'s operations beyond the newest `retention.syncs` and those
    /// older than `retention.maxAge`. Returns how many were removed.
    pub(super) fn prune_operations(
        &self,
        tx: &WriteTransaction,
        app: &str,
        age: Age,
    ) -> Result<usize> {
        let retention = self.retention();
        let mut table = tx
            .open_table(OPERATIONS)
            .map_err(self.err("open operations table"))?;
        let ids = ids_of(&table, app).map_err(self.err("scan operations"))?;
        let keep = (retention.syncs as usize).max(1);
        let doomed = doomed(&ids, keep, cutoff(&retention, age), 0, |id| {
            self.time_of(&table, "operations", (app, id), |o: &Operation| o.time)
        })?;
        for &id in &doomed {
            table
                .remove((app, id))
                .map_err(self.err("remove old operation"))?;
        }
        Ok(doomed.len())
    }
}
