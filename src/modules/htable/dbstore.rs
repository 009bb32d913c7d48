//! [`HtableStore`] over the server's database (`db_url`): the module's load and save become the
//! storage layer's generic row calls, driven with [`Db::wait`] because the module calls its store
//! from plain threads (start-up, shutdown, RPC reload/store), outside the async runtime.

use super::store::{DbValue, HtableStore, StoreError};
use crate::db::Db;

/// The htable store backed by the server's database.
pub struct DbStore {
    db: Db,
}

impl DbStore {
    /// A store over `db`.
    pub fn new(db: Db) -> DbStore {
        DbStore { db }
    }
}

impl HtableStore for DbStore {
    fn select(&self, table: &str, columns: &[&str]) -> Result<Vec<Vec<DbValue>>, StoreError> {
        Ok(self.db.wait(self.db.rows_select(table, columns))?)
    }

    fn replace(
        &self,
        table: &str,
        columns: &[&str],
        rows: Vec<Vec<DbValue>>,
    ) -> Result<(), StoreError> {
        Ok(self.db.wait(self.db.rows_replace(table, columns, rows))?)
    }
}
