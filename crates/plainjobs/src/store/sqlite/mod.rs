//! The SQLite backend: the same four tables in one file, for one machine.
//!
//! Where PostgreSQL uses `FOR UPDATE SKIP LOCKED` and advisory locks, SQLite serializes every
//! write transaction (`BEGIN IMMEDIATE` takes the write lock up front, WAL mode lets readers go
//! on, and a busy timeout makes writers from other processes wait instead of failing). Times are
//! stored as integer microseconds since the Unix epoch; uuids and JSON as text. "Now" is the
//! host's clock, which every process on one machine shares.
//!
//! Wake-ups: an insert wakes the same database's workers of the same process at once; other
//! processes notice the commit through `PRAGMA data_version`, which a worker checks every 50 ms.
//!
//! `mod.rs` holds the store and its connections; each other file one concern: the claim
//! (`claim.rs`), inserting requests (`requests.rs`), the result writer (`finish.rs`), handing
//! jobs back (`hand_back.rs`), rescues (`rescue.rs`), wake-ups (`listen.rs`), the [`Conn`] and
//! [`StoreTx`] on a connection (`conn.rs`), and how the code shared with PostgreSQL runs here
//! (`sql.rs`).

mod claim;
mod conn;
mod errors;
mod finish;
mod hand_back;
mod listen;
pub(crate) mod migrate;
pub(crate) mod migrations;
mod paused;
mod requests;
mod rescue;
mod sql;
#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use uuid::Uuid;

pub(crate) use conn::SqliteConn;

pub(crate) use errors::error_kind;
use sql::now_us;

use crate::model::{JobProcess, JobRequest, JobResult};
use crate::store::sql::SqlBackend;
use crate::store::{
    browse, cancel, portable, CancelTarget, CancelledRows, ClaimHow, Conn, Finish, Listener,
    Located, Migrated, NewHeartbeat, NewRequest, Orphans, PausedQueue, SchemaReport, Store,
    StoreTx,
};
use crate::Result;

/// The SQLite store.
pub(crate) struct SqliteStore {
    pool: SqlitePool,
    /// Where `PRAGMA data_version` can be watched (None for in-memory databases).
    watch: Option<SqliteConnectOptions>,
    /// Which database this is, for in-process wake-ups: the file's canonical path, or a key of
    /// its own for an in-memory database (which no other store shares).
    db: Arc<str>,
}

/// How long a writer waits for another connection's write lock (another process's, say)
/// before it fails as [`DbErrorKind::Conflict`](crate::error::DbErrorKind::Conflict).
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path`, `sqlite:path` or
    /// `sqlite::memory:`), in WAL mode with a busy timeout.
    pub(crate) async fn open(
        url: &str,
        max_connections: u32,
    ) -> std::result::Result<SqliteStore, sqlx::Error> {
        SqliteStore::open_with_busy_timeout(url, max_connections, BUSY_TIMEOUT).await
    }

    /// As [`SqliteStore::open`], waiting at most `busy_timeout` for another connection's write
    /// lock (tests make it short to see what a busy database does).
    pub(crate) async fn open_with_busy_timeout(
        url: &str,
        max_connections: u32,
        busy_timeout: Duration,
    ) -> std::result::Result<SqliteStore, sqlx::Error> {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(if memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(busy_timeout)
            .foreign_keys(false);
        // An in-memory database lives in one connection: the pool must not open a second.
        let max = if memory { 1 } else { max_connections.max(2) };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .min_connections(if memory { 1 } else { 0 })
            .idle_timeout(if memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if memory {
                None
            } else {
                Some(Duration::from_secs(1800))
            })
            .connect_with(opts.clone())
            .await?;
        let db: Arc<str> = if memory {
            static MEMORY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = MEMORY.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            format!("memory:{n}").into()
        } else {
            let file = opts.get_filename();
            std::fs::canonicalize(file)
                .unwrap_or_else(|_| file.to_path_buf())
                .to_string_lossy()
                .into()
        };
        Ok(SqliteStore {
            pool,
            watch: (!memory).then_some(opts),
            db,
        })
    }

    /// Whether `url` names a database file that does not exist (never for in-memory ones, nor
    /// for a URL that does not parse: opening it reports that).
    pub(crate) fn file_is_missing(url: &str) -> bool {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        match SqliteConnectOptions::from_str(url) {
            Ok(opts) if !memory => !opts.get_filename().exists(),
            _ => false,
        }
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

#[async_trait::async_trait]
impl SqlBackend for SqliteStore {
    type Pooled = PoolConnection<Sqlite>;
    type WriteTx = Transaction<'static, Sqlite>;

    const CREATED_MINUTE: &'static str = "(created_at / 60000000 * 60)";

    async fn pooled(&self) -> Result<PoolConnection<Sqlite>> {
        Ok(self.pool.acquire().await?)
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        self.write_tx().await
    }

    async fn commit(tx: Transaction<'static, Sqlite>) -> Result<()> {
        tx.commit().await?;
        Ok(())
    }

    const LOCK_ROWS: &'static str = "";
    /// A version 4 uuid from 16 random bytes, hyphenated as the other uuids are stored.
    const NEW_UUID: &'static str = "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))";
    const CONTROL_NOTICE: Option<&'static str> = None;
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<Migrated> {
        migrate::apply(self, migrations::MIGRATIONS).await
    }

    async fn check_schema(&self) -> Result<SchemaReport> {
        migrate::check(self, migrations::MIGRATIONS).await
    }

    async fn now(&self) -> Result<DateTime<Utc>> {
        Ok(Utc::now())
    }

    async fn begin(&self) -> Result<Box<dyn StoreTx + '_>> {
        Ok(Box::new(SqliteConn(
            self.write_tx().await?,
            Some(self.db.clone()),
        )))
    }

    async fn autocommit(&self) -> Result<Box<dyn Conn + '_>> {
        Ok(Box::new(SqliteConn(
            self.pool.acquire().await?,
            Some(self.db.clone()),
        )))
    }

    async fn heartbeat(&self, hb: &NewHeartbeat) -> Result<bool> {
        let now = now_us();
        let updated = sqlx::query(
            "UPDATE plainjobs_workerheartbeat SET last_heartbeat_at = ?1 WHERE worker_id = ?2",
        )
        .bind(now)
        .bind(hb.worker_id.to_string())
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() > 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO plainjobs_workerheartbeat (worker_id, hostname, pid, queues, started_at, last_heartbeat_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT (worker_id) DO UPDATE SET last_heartbeat_at = excluded.last_heartbeat_at",
        )
        .bind(hb.worker_id.to_string())
        .bind(&hb.hostname)
        .bind(hb.pid)
        .bind(serde_json::json!(hb.queues).to_string())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(true)
    }

    async fn deregister(&self, worker_id: Uuid) -> Result<bool> {
        portable::deregister(self, worker_id).await
    }

    async fn insert_started(
        &self,
        worker_id: Uuid,
        req: &NewRequest,
        process_uuid: Uuid,
    ) -> Result<Option<(JobRequest, JobProcess)>> {
        requests::insert_started(self, worker_id, req, process_uuid).await
    }

    async fn claim(
        &self,
        worker_id: Uuid,
        queues: &[String],
        start: i64,
        prefetch: i64,
        how: ClaimHow,
    ) -> Result<Vec<JobProcess>> {
        claim::claim(self, worker_id, queues, start, prefetch, how).await
    }

    async fn finish_many(
        &self,
        worker_id: Uuid,
        starts: &[Uuid],
        items: &[Finish],
        _pinned_session: bool,
    ) -> Result<Vec<Uuid>> {
        finish::finish_many(self, worker_id, starts, items).await
    }

    async fn hand_back(&self, worker_id: Uuid, uuids: &[Uuid]) -> Result<u64> {
        hand_back::hand_back(self, worker_id, uuids).await
    }

    async fn hand_back_unaccounted(&self, worker_id: Uuid, accounted: &[Uuid]) -> Result<u64> {
        hand_back::hand_back_unaccounted(self, worker_id, accounted).await
    }

    async fn vacuum_requests(&self) -> Result<()> {
        // SQLite's b-trees free deleted entries at once.
        Ok(())
    }

    async fn next_start_in(&self, queues: &[String]) -> Result<Option<Duration>> {
        claim::next_start_in(self, queues).await
    }

    async fn stale_workers(&self, timeout: Duration) -> Result<Vec<Uuid>> {
        portable::stale_workers(self, timeout).await
    }

    async fn rescue_worker(
        &self,
        worker_id: Uuid,
        timeout: Duration,
    ) -> Result<Option<Vec<JobResult>>> {
        rescue::rescue_worker(self, worker_id, timeout).await
    }

    async fn rescue_orphans(
        &self,
        worker_id: Uuid,
        timeout: Duration,
        held: &[Uuid],
        began: &[Uuid],
    ) -> Result<Orphans> {
        rescue::rescue_orphans(self, worker_id, timeout, held, began).await
    }

    async fn rescue_unowned(&self, timeout: Duration) -> Result<Vec<JobResult>> {
        rescue::rescue_unowned(self, timeout).await
    }

    async fn retryable_results(
        &self,
        queues: &[String],
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<JobResult>> {
        portable::retryable_results(self, queues, after_id, limit).await
    }

    async fn bump_retry_attempt(&self, result_uuid: Uuid) -> Result<()> {
        portable::bump_retry_attempt(self, result_uuid).await
    }

    async fn delete_results_before(&self, age: Duration, batch: i64) -> Result<u64> {
        portable::delete_results_before(self, age, batch).await
    }

    async fn listener(&self) -> Result<Option<Box<dyn Listener>>> {
        listen::listener(self).await
    }

    async fn result_by_uuid(&self, uuid: Uuid) -> Result<Option<JobResult>> {
        portable::result_by_uuid(self, uuid).await
    }

    async fn locate_requests(&self, uuids: &[Uuid]) -> Result<Vec<(Uuid, Located)>> {
        portable::locate_requests(self, uuids).await
    }

    async fn cancel(&self, target: CancelTarget<'_>, reason: &str) -> Result<CancelledRows> {
        cancel::cancel(self, target, reason).await
    }

    async fn existing_processes(&self, uuids: &[Uuid]) -> Result<Vec<Uuid>> {
        cancel::existing_processes(self, uuids).await
    }

    async fn pause_queue(&self, queue: &str, by: &str) -> Result<bool> {
        paused::pause(self, queue, by).await
    }

    async fn resume_queue(&self, queue: &str) -> Result<bool> {
        paused::resume(self, queue).await
    }

    async fn paused_queues(&self) -> Result<Vec<PausedQueue>> {
        paused::paused_queues(self).await
    }

    async fn run_requests_now(&self, uuids: &[Uuid]) -> Result<u64> {
        browse::run_requests_now(self, uuids).await
    }

    async fn delete_results(&self, uuids: &[Uuid]) -> Result<u64> {
        browse::delete_results(self, uuids).await
    }
}
