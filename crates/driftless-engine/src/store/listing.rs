//! The App list: beside each App's status the store keeps its sync status and
//! health in a small index, so a filtered page of many Apps reads a few bytes
//! per App and decodes only the statuses on the page.
//!
//! The index is written in the transaction that writes the status, so the two
//! never disagree; a store written before the index existed gets it on open.

use driftless_api::list::{AppList, AppSummary, continue_after};
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::{APPS, AppStatus, HealthStatus, META, Named, Result, Store, SyncStatus};

/// App name → `SYNC HEALTH`, the words the API uses (`OutOfSync Degraded`).
pub(super) const APP_INDEX: TableDefinition<&str, &str> = TableDefinition::new("app_index");
/// Meta counter set once [`APP_INDEX`] holds every App.
const APPS_INDEXED: &str = "app_index_built";

/// The index entry of `status`.
fn entry(status: &AppStatus) -> String {
    format!("{} {}", status.sync, status.health)
}

/// Sync status and health of an index entry; words a later version may add read as `Unknown`.
fn states(entry: &str) -> (SyncStatus, HealthStatus) {
    let (sync, health) = entry.split_once(' ').unwrap_or((entry, ""));
    let sync = SyncStatus::ALL
        .into_iter()
        .find(|s| s.as_str() == sync)
        .unwrap_or_default();
    let health = HealthStatus::ALL
        .into_iter()
        .find(|h| h.as_str() == health)
        .unwrap_or_default();
    (sync, health)
}

impl Store {
    /// One page of the Apps `selects` keeps (it sees each App's name, sync status
    /// and health), ordered by name: at most `limit` of them, after the App named
    /// `after` when given; the summary counts every App kept, on any page.
    pub fn app_list(
        &self,
        selects: impl Fn(&str, SyncStatus, HealthStatus) -> bool,
        after: Option<&str>,
        limit: usize,
    ) -> Result<AppList> {
        let tx = self.db.begin_read().map_err(self.err("begin read"))?;
        let index = tx
            .open_table(APP_INDEX)
            .map_err(self.err("open app index"))?;
        let mut summary = AppSummary::default();
        let mut page = Vec::new();
        let mut remaining = 0;
        for row in index.iter().map_err(self.err("scan app index"))? {
            let (key, value) = row.map_err(self.err("scan app index"))?;
            let name = key.value();
            let (sync, health) = states(value.value());
            if !selects(name, sync, health) {
                continue;
            }
            summary.add(sync, health);
            if after.is_some_and(|after| name <= after) {
                continue;
            }
            if page.len() < limit {
                page.push(name.to_owned());
            } else {
                remaining += 1;
            }
        }
        let apps = tx.open_table(APPS).map_err(self.err("open apps table"))?;
        let mut items = Vec::with_capacity(page.len());
        for name in page {
            // Read in the same snapshot as the index: every indexed App is there.
            if let Some(value) = apps.get(name.as_str()).map_err(self.err("read app"))? {
                let status = self.decode("apps", &name, value.value())?;
                items.push(Named::new(name, status));
            }
        }
        let continue_ = match items.last() {
            Some(last) if remaining > 0 => Some(continue_after(&last.name)),
            _ => None,
        };
        Ok(AppList {
            items,
            continue_,
            remaining,
            summary,
        })
    }

    /// Stores every status of `apps` in one transaction (an import, or seeding
    /// a store with many Apps), replacing what was there.
    pub fn put_apps<'a>(
        &self,
        apps: impl IntoIterator<Item = (&'a str, &'a AppStatus)>,
    ) -> Result<()> {
        let tx = self.db.begin_write().map_err(self.err("begin write"))?;
        let mut names = Vec::new();
        {
            let mut table = tx.open_table(APPS).map_err(self.err("open apps table"))?;
            let mut index = tx
                .open_table(APP_INDEX)
                .map_err(self.err("open app index"))?;
            for (name, status) in apps {
                let mut status = status.clone();
                status.last_update_time = Some(driftless_api::Time::now());
                table
                    .insert(name, super::encode(&status).as_slice())
                    .map_err(self.err("write app"))?;
                index
                    .insert(name, entry(&status).as_str())
                    .map_err(self.err("index app"))?;
                names.push(name);
            }
        }
        tx.commit().map_err(self.err("commit apps"))?;
        for name in names {
            self.note_change(name);
        }
        Ok(())
    }

    /// Records `status` as App `name`'s in the index, in the transaction that stores it.
    pub(super) fn index_app(
        &self,
        tx: &WriteTransaction,
        name: &str,
        status: Option<&AppStatus>,
    ) -> Result<()> {
        let mut index = tx
            .open_table(APP_INDEX)
            .map_err(self.err("open app index"))?;
        match status {
            Some(status) => index
                .insert(name, entry(status).as_str())
                .map(drop)
                .map_err(self.err("index app")),
            None => index
                .remove(name)
                .map(drop)
                .map_err(self.err("remove app from index")),
        }
    }

    /// Indexes the Apps of a store written before the index existed.
    pub(super) fn index_apps(&self, tx: &WriteTransaction) -> Result<()> {
        let mut meta = tx.open_table(META).map_err(self.err("open meta table"))?;
        if meta
            .get(APPS_INDEXED)
            .map_err(self.err("read meta"))?
            .is_some()
        {
            return Ok(());
        }
        let apps = tx.open_table(APPS).map_err(self.err("open apps table"))?;
        let mut index = tx
            .open_table(APP_INDEX)
            .map_err(self.err("open app index"))?;
        for row in apps.iter().map_err(self.err("scan apps"))? {
            let (key, value) = row.map_err(self.err("scan apps"))?;
            let name = key.value();
            let status: AppStatus = self.decode("apps", &name, value.value())?;
            index
                .insert(name, entry(&status).as_str())
                .map_err(self.err("index app"))?;
        }
        meta.insert(APPS_INDEXED, 1)
            .map_err(self.err("write meta"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_entries_read_back_and_unknown_words_are_unknown() {
        for sync in SyncStatus::ALL {
            for health in HealthStatus::ALL {
                let status = AppStatus {
                    sync,
                    health,
                    ..AppStatus::default()
                };
                assert_eq!(states(&entry(&status)), (sync, health));
            }
        }
        assert_eq!(
            states("Drifting Glowing"),
            (SyncStatus::Unknown, HealthStatus::Unknown)
        );
        assert_eq!(states(""), (SyncStatus::Unknown, HealthStatus::Unknown));
    }

    fn status(sync: SyncStatus, health: HealthStatus) -> AppStatus {
        AppStatus {
            sync,
            health,
            ..AppStatus::default()
        }
    }

    #[test]
    fn pages_follow_names_and_the_summary_counts_every_selected_app() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let (ok, bad) = (
            status(SyncStatus::Synced, HealthStatus::Healthy),
            status(SyncStatus::OutOfSync, HealthStatus::Degraded),
        );
        let names: Vec<String> = (0..7).map(|i| format!("app-{i}")).collect();
        store
            .put_apps(
                names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.as_str(), if i % 3 == 0 { &bad } else { &ok })),
            )
            .expect("put");
        let all = |_: &str, _: SyncStatus, _: HealthStatus| true;
        let first = store.app_list(all, None, 3).expect("list");
        let listed = |l: &AppList| l.items.iter().map(|a| a.name.clone()).collect::<Vec<_>>();
        assert_eq!(listed(&first), ["app-0", "app-1", "app-2"]);
        assert_eq!((first.remaining, first.summary.total), (4, 7));
        assert_eq!(first.summary.synced(SyncStatus::OutOfSync), 3);
        let after = driftless_api::list::continue_from(first.continue_.as_deref().expect("more"))
            .expect("token");
        assert_eq!(after, "app-2");
        let second = store.app_list(all, Some(after.as_str()), 3).expect("list");
        assert_eq!(listed(&second), ["app-3", "app-4", "app-5"]);
        let last = store.app_list(all, Some("app-5"), 3).expect("list");
        assert_eq!(
            (listed(&last), last.remaining),
            (vec!["app-6".to_owned()], 0)
        );
        assert_eq!(last.continue_, None);
        // A removed App leaves the list, and a changed one moves between the counts.
        store.remove_app("app-0").expect("remove");
        store
            .update_app("app-3", |s| *s = ok.clone())
            .expect("update");
        let degraded = |_: &str, _: SyncStatus, h: HealthStatus| h == HealthStatus::Degraded;
        let left = store.app_list(degraded, None, 10).expect("list");
        assert_eq!(listed(&left), ["app-6"]);
        assert_eq!(left.summary.total, 1);
        assert_eq!(left.items[0].status.health, HealthStatus::Degraded);
    }

    #[test]
    fn a_store_without_the_index_gets_it_on_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = Store::open(dir.path()).expect("open");
            store
                .put_app("web", &status(SyncStatus::OutOfSync, HealthStatus::Missing))
                .expect("put");
            // As an earlier version left it: statuses, no index.
            let tx = store.db.begin_write().expect("write");
            tx.delete_table(APP_INDEX).expect("drop index");
            tx.open_table(META)
                .expect("meta")
                .remove(APPS_INDEXED)
                .expect("forget");
            tx.commit().expect("commit");
        }
        let store = Store::open(dir.path()).expect("reopen");
        let list = store
            .app_list(|_, _, h| h == HealthStatus::Missing, None, 10)
            .expect("list");
        assert_eq!(list.items.len(), 1, "{list:?}");
        assert_eq!(list.summary.synced(SyncStatus::OutOfSync), 1);
    }
}
