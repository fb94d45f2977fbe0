//! Wake-ups for inserted requests: at once for this process's inserts into the same database,
//! and through `PRAGMA data_version` for other processes' commits.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, SqliteConnection};

use super::SqliteStore;
use crate::store::local_wake;
use crate::store::{Heard, Listener};
use crate::Result;

/// Wakes this process's workers of database `db`, a [`SqliteStore::db`] key (all of them when
/// it is not known: an insert in the application's own transaction).
pub(super) fn wake_local(db: Option<&str>) {
    local_wake::wake(db);
}

/// How often another process's commit is looked for.
const DATA_VERSION_EVERY: Duration = Duration::from_millis(50);

/// Wakes for this process's inserts into the same database at once, and for other processes'
/// commits through `PRAGMA data_version`.
struct InsertListener {
    local: Arc<local_wake::Waiter>,
    /// The connection `data_version` is read on (None for an in-memory database, or once it
    /// failed: in-process wake-ups and polling remain).
    watch: Option<SqliteConnection>,
    last_version: Option<i64>,
}

#[async_trait::async_trait]
impl Listener for InsertListener {
    /// Every change is reported as requests: cancels and pauses are found by the worker's look
    /// every poll interval (a look at each commit would cost the drain a query per commit).
    async fn wait(&mut self) -> Result<Heard> {
        loop {
            let Some(conn) = self.watch.as_mut() else {
                self.local.requests.notified().await;
                return Ok(Heard::Requests);
            };
            tokio::select! {
                _ = self.local.requests.notified() => return Ok(Heard::Requests),
                _ = tokio::time::sleep(DATA_VERSION_EVERY) => {}
            }
            match sqlx::query_scalar::<_, i64>("PRAGMA data_version")
                .fetch_one(&mut *conn)
                .await
            {
                Ok(v) => {
                    let changed = self.last_version.is_some_and(|l| l != v);
                    self.last_version = Some(v);
                    if changed {
                        return Ok(Heard::Requests);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch the SQLite file for changes; polling");
                    self.watch = None;
                }
            }
        }
    }
}

/// See [`Store::listener`](crate::store::Store::listener).
pub(super) async fn listener(store: &SqliteStore) -> Result<Option<Box<dyn Listener>>> {
    let local = local_wake::waiter(store.db.clone());
    // Other processes' commits show up as a change of PRAGMA data_version on a connection
    // of our own; checking it reads shared memory only.
    let watch = match &store.watch {
        Some(opts) => Some(SqliteConnection::connect_with(opts).await?),
        None => None,
    };
    Ok(Some(Box::new(InsertListener {
        local,
        watch,
        last_version: None,
    })))
}
