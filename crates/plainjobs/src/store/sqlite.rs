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

use std::collections::HashMap;
use std::ops::DerefMut;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection, Row, Sqlite, SqliteConnection, Transaction};
use tokio::sync::Notify;
use uuid::Uuid;

use super::migrations::SQLITE as MIGRATIONS;
use super::rows::{
    decode_all, decode_error, job_process, job_request, job_result, DecodeRow, PROCESS_COLUMNS,
    REQUEST_COLUMNS, RESULT_COLUMNS,
};
use super::sql::{Arg, Dialect, SqlBackend, SqlConn, Statement};
use super::{
    migrate, portable, ClaimHow, Conn, Finish, Listener, Located, NewHeartbeat, NewRequest,
    Orphans, Purged, Start, Store, StoreTx, NOT_BEGUN,
};
use crate::error::DbErrorKind;
use crate::model::{new_uuid, JobProcess, JobRequest, JobResult, JobStatus};
use crate::{Error, Result};

/// What a SQLite error means (by its extended result code).
pub(crate) fn error_kind(e: &sqlx::sqlite::SqliteError) -> DbErrorKind {
    use sqlx::error::DatabaseError;
    let code: i64 = e.code().and_then(|c| c.parse().ok()).unwrap_or(0);
    match code & 0xff {
        // SQLITE_CONSTRAINT: SQLite names the column, not the constraint.
        19 if e.message().contains("plainjobs_jobrequest.uuid") => {
            DbErrorKind::DuplicateRequestUuid
        }
        // SQLITE_BUSY, SQLITE_LOCKED: another writer held the file past the busy timeout.
        5 | 6 => DbErrorKind::Conflict,
        // SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN: the file cannot be written now.
        10 | 13 | 14 => DbErrorKind::Unavailable,
        _ => DbErrorKind::Rejected,
    }
}

/// Rows per multi-row INSERT (SQLite binds at most 32,766 values per statement).
const CHUNK: usize = 500;

fn now_us() -> i64 {
    Utc::now().timestamp_micros()
}

fn us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// A time stored as integer microseconds since the Unix epoch.
fn time_from_micros(column: &str, v: i64) -> sqlx::Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(v)
        .ok_or_else(|| decode_error(column, format!("{v} is not a time")))
}

fn uuid_from_text(column: &str, v: &str) -> sqlx::Result<Uuid> {
    Uuid::parse_str(v).map_err(|e| decode_error(column, format!("{v:?}: {e}")))
}

impl DecodeRow for SqliteRow {
    fn int64(&self, column: &str) -> sqlx::Result<i64> {
        self.try_get(column)
    }
    fn opt_int64(&self, column: &str) -> sqlx::Result<Option<i64>> {
        self.try_get(column)
    }
    fn int32(&self, column: &str) -> sqlx::Result<i32> {
        self.try_get(column)
    }
    fn int16(&self, column: &str) -> sqlx::Result<i16> {
        let v: i64 = self.try_get(column)?;
        i16::try_from(v).map_err(|_| decode_error(column, format!("{v} is out of range")))
    }
    fn text(&self, column: &str) -> sqlx::Result<String> {
        self.try_get(column)
    }
    fn opt_text(&self, column: &str) -> sqlx::Result<Option<String>> {
        self.try_get(column)
    }
    fn time(&self, column: &str) -> sqlx::Result<DateTime<Utc>> {
        time_from_micros(column, self.try_get(column)?)
    }
    fn opt_time(&self, column: &str) -> sqlx::Result<Option<DateTime<Utc>>> {
        let v: Option<i64> = self.try_get(column)?;
        v.map(|v| time_from_micros(column, v)).transpose()
    }
    fn uuid(&self, column: &str) -> sqlx::Result<Uuid> {
        uuid_from_text(column, &self.try_get::<String, _>(column)?)
    }
    fn opt_uuid(&self, column: &str) -> sqlx::Result<Option<Uuid>> {
        let v: Option<String> = self.try_get(column)?;
        v.map(|v| uuid_from_text(column, &v)).transpose()
    }
    fn json(&self, column: &str) -> sqlx::Result<Option<Value>> {
        let v: Option<String> = self.try_get(column)?;
        v.map(|v| serde_json::from_str(&v).map_err(|e| decode_error(column, e.to_string())))
            .transpose()
    }
}

/// A shared statement with its arguments bound as SQLite stores them.
fn bind<'q>(sql: &'q str, statement: &'q Statement<'_>) -> SqliteQuery<'q> {
    let now = now_us();
    statement
        .args()
        .iter()
        .fold(sqlx::query(sql), |query, arg| match *arg {
            Arg::Int(v) => query.bind(v),
            Arg::Bool(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
            Arg::Uuid(v) => query.bind(v.map(|u| u.to_string())),
            Arg::Uuids(v) => query.bind(uuid_list(v)),
            Arg::Now => query.bind(now),
            Arg::Ago(d) => query.bind(now.saturating_sub(micros(d))),
        })
}

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

#[async_trait::async_trait]
impl SqlConn for SqliteConnection {
    type Row = SqliteRow;

    async fn rows(&mut self, statement: &Statement<'_>) -> sqlx::Result<Vec<SqliteRow>> {
        let sql = statement.sql(Dialect::Sqlite);
        bind(&sql, statement).fetch_all(self).await
    }

    async fn row(&mut self, statement: &Statement<'_>) -> sqlx::Result<Option<SqliteRow>> {
        let sql = statement.sql(Dialect::Sqlite);
        bind(&sql, statement).fetch_optional(self).await
    }

    async fn run(&mut self, statement: &Statement<'_>) -> sqlx::Result<u64> {
        let sql = statement.sql(Dialect::Sqlite);
        Ok(bind(&sql, statement).execute(self).await?.rows_affected())
    }
}

#[async_trait::async_trait]
impl SqlBackend for SqliteStore {
    type Db = Sqlite;
    type Conn = SqliteConnection;

    const MIGRATION_HISTORY: &'static str = "CREATE TABLE IF NOT EXISTS plainjobs_rs_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)";

    async fn pooled(&self) -> Result<PoolConnection<Sqlite>> {
        Ok(self.pool.acquire().await?)
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        self.write_tx().await
    }

    async fn begin_migration(&self) -> Result<Transaction<'static, Sqlite>> {
        // The write lock is the migration lock.
        self.write_tx().await
    }
}

fn placeholders(rows: usize, cols: usize) -> String {
    let one = format!("({})", vec!["?"; cols].join(", "));
    vec![one; rows].join(", ")
}

fn params_text(v: &Option<Value>) -> Option<String> {
    v.as_ref().map(Value::to_string)
}

/// A worker of this process waiting for inserts into one database (its key).
type Waiter = (Arc<str>, Weak<Notify>);

/// In-process wake-ups: the SQLite workers of this process, each with the database it serves
/// (a [`SqliteStore::db`] key), woken when requests are inserted into that database.
fn local_waiters() -> &'static Mutex<Vec<Waiter>> {
    static WAITERS: OnceLock<Mutex<Vec<Waiter>>> = OnceLock::new();
    WAITERS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Wakes this process's workers of database `db` (all of them when it is not known: an insert
/// in the application's own transaction).
fn wake_local(db: Option<&str>) {
    let mut waiters = local_waiters().lock().unwrap_or_else(|e| e.into_inner());
    waiters.retain(|(key, w)| match w.upgrade() {
        Some(n) => {
            if db.is_none_or(|db| db == &**key) {
                n.notify_one();
            }
            true
        }
        None => false,
    });
}

async fn insert_requests(
    conn: &mut SqliteConnection,
    rows: &[NewRequest],
    db: Option<&str>,
) -> Result<Vec<JobRequest>> {
    let mut out = Vec::with_capacity(rows.len());
    let now = now_us();
    for chunk in rows.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO plainjobs_jobrequest (created_at, uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, start_at, trace_id, span_id)
             VALUES {} RETURNING {REQUEST_COLUMNS}",
            placeholders(chunk.len(), 13)
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            let start_at = match r.start {
                Start::Now => None,
                Start::After(d) => Some(now.saturating_add(micros(d))),
                Start::At(t) => Some(us(t)),
            };
            q = q
                .bind(now)
                .bind(r.uuid.to_string())
                .bind(&r.job_class)
                .bind(r.parameters.to_string())
                .bind(r.priority)
                .bind(&r.source)
                .bind(&r.queue)
                .bind(r.retries)
                .bind(r.retry_attempt)
                .bind(&r.concurrency_key)
                .bind(start_at)
                .bind(&r.trace_id)
                .bind(&r.span_id);
        }
        let rows = q.fetch_all(&mut *conn).await?;
        out.extend(decode_all(&rows, job_request)?);
    }
    out.sort_by_key(|r| r.id);
    if !out.is_empty() {
        wake_local(db);
    }
    Ok(out)
}

/// Inserts results for processes already deleted, in chunks; returns them.
async fn insert_results(
    conn: &mut SqliteConnection,
    items: &[(&JobProcess, JobStatus, &str, Option<Uuid>)],
) -> Result<Vec<JobResult>> {
    let mut out = Vec::with_capacity(items.len());
    let now = now_us();
    for chunk in items.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO plainjobs_jobresult (uuid, created_at, job_process_uuid, started_at, ended_at, error, status, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, retry_job_request_uuid, trace_id, span_id)
             VALUES {} RETURNING {RESULT_COLUMNS}",
            placeholders(chunk.len(), 20)
        );
        let mut q = sqlx::query(&sql);
        for (p, status, error, retry) in chunk {
            q = q
                .bind(new_uuid().to_string())
                .bind(now)
                .bind(p.uuid.to_string())
                .bind(p.started_at.map(us))
                .bind(now)
                .bind(*error)
                .bind(status.as_str())
                .bind(p.job_request_uuid.to_string())
                .bind(p.requested_at.map(us))
                .bind(&p.job_class)
                .bind(params_text(&p.parameters))
                .bind(p.priority)
                .bind(&p.source)
                .bind(&p.queue)
                .bind(p.retries)
                .bind(p.retry_attempt)
                .bind(&p.concurrency_key)
                .bind(retry.map(|u| u.to_string()))
                .bind(&p.trace_id)
                .bind(&p.span_id);
        }
        let rows = q.fetch_all(&mut *conn).await?;
        out.extend(decode_all(&rows, job_result)?);
    }
    out.sort_by_key(|r| r.id);
    Ok(out)
}

/// Deletes this worker's processes matching `uuids` (all of them when None) and returns them.
async fn delete_processes(
    conn: &mut SqliteConnection,
    worker_id: Uuid,
    uuids: Option<&[Uuid]>,
) -> Result<Vec<JobProcess>> {
    let rows = match uuids {
        Some(uuids) => {
            let list = uuid_list(uuids);
            let sql = format!(
                "DELETE FROM plainjobs_jobprocess WHERE worker_id = ?1 AND uuid IN (SELECT value FROM json_each(?2)) RETURNING {PROCESS_COLUMNS}"
            );
            sqlx::query(&sql)
                .bind(worker_id.to_string())
                .bind(list)
                .fetch_all(&mut *conn)
                .await?
        }
        None => {
            let sql = format!(
                "DELETE FROM plainjobs_jobprocess WHERE worker_id = ?1 RETURNING {PROCESS_COLUMNS}"
            );
            sqlx::query(&sql)
                .bind(worker_id.to_string())
                .fetch_all(&mut *conn)
                .await?
        }
    };
    let mut out = decode_all(&rows, job_process)?;
    out.sort_by_key(|p| p.id);
    Ok(out)
}

/// A uuid list as the JSON text `json_each` reads.
fn uuid_list(uuids: &[Uuid]) -> String {
    text_list(uuids.iter().map(Uuid::to_string))
}

/// Strings as the JSON array text `json_each` reads.
fn text_list(items: impl IntoIterator<Item = String>) -> String {
    Value::Array(items.into_iter().map(Value::String).collect()).to_string()
}

/// Deletes this worker's processes that `filter` selects (a condition that may use the uuid
/// list as `?2`), and puts them back in the request table as they were enqueued: same uuid,
/// same `created_at`, `start_at` NULL (they were due), no retry spent. With `min_age`, only
/// processes claimed longer ago than that. Returns how many went back.
async fn hand_back_where(
    conn: &mut SqliteConnection,
    worker_id: Uuid,
    filter: &str,
    uuids: &[Uuid],
    min_age: Option<Duration>,
) -> Result<u64> {
    let sql = format!(
        "DELETE FROM plainjobs_jobprocess WHERE worker_id = ?1 AND {filter}
           AND (?3 IS NULL OR created_at < ?3)
         RETURNING {PROCESS_COLUMNS}"
    );
    let rows = sqlx::query(&sql)
        .bind(worker_id.to_string())
        .bind(uuid_list(uuids))
        .bind(min_age.map(|age| now_us() - micros(age)))
        .fetch_all(&mut *conn)
        .await?;
    let mut gone = decode_all(&rows, job_process)?;
    gone.sort_by_key(|p| p.id);
    for chunk in gone.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO plainjobs_jobrequest (created_at, uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, start_at, trace_id, span_id)
             VALUES {}",
            placeholders(chunk.len(), 13)
        );
        let mut q = sqlx::query(&sql);
        for p in chunk {
            q = q
                .bind(us(p.requested_at.unwrap_or(p.created_at)))
                .bind(p.job_request_uuid.to_string())
                .bind(&p.job_class)
                .bind(params_text(&p.parameters))
                .bind(p.priority)
                .bind(&p.source)
                .bind(&p.queue)
                .bind(p.retries)
                .bind(p.retry_attempt)
                .bind(&p.concurrency_key)
                .bind(None::<i64>)
                .bind(&p.trace_id)
                .bind(&p.span_id);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(gone.len() as u64)
}

/// How often another process's commit is looked for.
const DATA_VERSION_EVERY: Duration = Duration::from_millis(50);

/// Wakes for this process's inserts into the same database at once, and for other processes'
/// commits through `PRAGMA data_version`.
struct InsertListener {
    local: Arc<Notify>,
    /// The connection `data_version` is read on (None for an in-memory database, or once it
    /// failed: in-process wake-ups and polling remain).
    watch: Option<SqliteConnection>,
    last_version: Option<i64>,
}

#[async_trait::async_trait]
impl Listener for InsertListener {
    async fn wait(&mut self) -> Result<()> {
        loop {
            let Some(conn) = self.watch.as_mut() else {
                self.local.notified().await;
                return Ok(());
            };
            tokio::select! {
                _ = self.local.notified() => return Ok(()),
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
                        return Ok(());
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

/// The SQLite store.
pub(crate) struct SqliteStore {
    pool: SqlitePool,
    /// Where `PRAGMA data_version` can be watched (None for in-memory databases).
    watch: Option<SqliteConnectOptions>,
    /// Which database this is, for in-process wake-ups: the file's canonical path, or a key of
    /// its own for an in-memory database (which no other store shares).
    db: Arc<str>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path`, `sqlite:path` or
    /// `sqlite::memory:`), in WAL mode with a busy timeout.
    pub(crate) async fn open(
        url: &str,
        max_connections: u32,
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
            .busy_timeout(Duration::from_secs(30))
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

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// A SQLite connection seen through [`Conn`].
/// The database key is the store's ([`SqliteStore::db`]) for its own connections, `None` for
/// the application's transaction (whose database this crate cannot name).
pub(crate) struct SqliteConn<C>(pub(crate) C, pub(crate) Option<Arc<str>>);

#[async_trait::async_trait]
impl<C: DerefMut<Target = SqliteConnection> + Send> Conn for SqliteConn<C> {
    async fn advisory_lock(&mut self, _id: i64) -> Result<()> {
        // SQLite has one writer at a time: the enqueue's `BEGIN IMMEDIATE` transaction already
        // serializes it against every other writer.
        Ok(())
    }

    async fn count_requests(
        &mut self,
        job_class: &str,
        key: &str,
        include_retries: bool,
    ) -> Result<i64> {
        portable::count_requests(&mut *self.0, job_class, key, include_retries).await
    }

    async fn count_processes(
        &mut self,
        job_class: &str,
        key: &str,
        include_retries: bool,
        exclude: Option<Uuid>,
    ) -> Result<i64> {
        portable::count_processes(&mut *self.0, job_class, key, include_retries, exclude).await
    }

    async fn count_results(&mut self, job_class: &str, key: &str) -> Result<i64> {
        portable::count_results(&mut *self.0, job_class, key).await
    }

    async fn insert_requests(&mut self, rows: Vec<NewRequest>) -> Result<Vec<JobRequest>> {
        insert_requests(&mut self.0, &rows, self.1.as_deref()).await
    }
}

#[async_trait::async_trait]
impl StoreTx for SqliteConn<Transaction<'static, Sqlite>> {
    async fn delete_process(
        &mut self,
        process_uuid: Uuid,
        worker_id: Uuid,
    ) -> Result<Option<JobProcess>> {
        Ok(
            delete_processes(&mut self.0, worker_id, Some(&[process_uuid]))
                .await?
                .pop(),
        )
    }

    async fn insert_result(
        &mut self,
        p: &JobProcess,
        status: JobStatus,
        error: &str,
        retry: Option<Uuid>,
    ) -> Result<JobResult> {
        let mut rows = insert_results(&mut self.0, &[(p, status, error, retry)]).await?;
        rows.pop()
            .ok_or_else(|| Error::from(sqlx::Error::RowNotFound))
    }

    async fn lock_retryable(
        &mut self,
        result_uuid: Uuid,
        force: bool,
    ) -> Result<Option<JobResult>> {
        // The transaction holds SQLite's write lock: no other retry of this result can run.
        let sql = format!(
            "SELECT {RESULT_COLUMNS} FROM plainjobs_jobresult
             WHERE uuid = ?1 AND retry_job_request_uuid IS NULL AND (?2 OR (retries > 0 AND retry_attempt < retries))
               AND status IN ('ERRORED', 'LOST', 'CANCELLED')"
        );
        let row = sqlx::query(&sql)
            .bind(result_uuid.to_string())
            .bind(force)
            .fetch_optional(&mut *self.0)
            .await?;
        Ok(row.as_ref().map(job_result).transpose()?)
    }

    async fn link_retry(&mut self, result_uuid: Uuid, request_uuid: Uuid) -> Result<()> {
        portable::link_retry(&mut *self.0, result_uuid, request_uuid).await
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.0.commit().await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        migrate::apply(self, MIGRATIONS).await
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
        let mut tx = self.write_tx().await?;
        let now = now_us();
        let row = sqlx::query(&format!(
            "INSERT INTO plainjobs_jobprocess (uuid, created_at, started_at, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, trace_id, span_id, worker_id)
             SELECT ?1, ?2, ?2, ?3, ?2, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14
             WHERE EXISTS (SELECT 1 FROM plainjobs_workerheartbeat WHERE worker_id = ?14)
             RETURNING {PROCESS_COLUMNS}"
        ))
        .bind(process_uuid.to_string())
        .bind(now)
        .bind(req.uuid.to_string())
        .bind(&req.job_class)
        .bind(req.parameters.to_string())
        .bind(req.priority)
        .bind(&req.source)
        .bind(&req.queue)
        .bind(req.retries)
        .bind(req.retry_attempt)
        .bind(&req.concurrency_key)
        .bind(&req.trace_id)
        .bind(&req.span_id)
        .bind(worker_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        let process = job_process(&row)?;
        let requested_at = process.requested_at.unwrap_or(process.created_at);
        Ok(Some((req.to_request(0, requested_at, None), process)))
    }

    async fn claim(
        &self,
        worker_id: Uuid,
        queues: &[String],
        start: i64,
        prefetch: i64,
        _how: ClaimHow,
    ) -> Result<Vec<JobProcess>> {
        let limit = start + prefetch;
        if limit <= 0 || queues.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_us();
        let queue_filter = if queues.len() == 1 {
            "queue = ?1"
        } else {
            "queue IN (SELECT value FROM json_each(?1))"
        };
        let queue_arg = if queues.len() == 1 {
            queues[0].clone()
        } else {
            text_list(queues.iter().cloned())
        };
        let sql = format!(
            "DELETE FROM plainjobs_jobrequest WHERE id IN (
                SELECT id FROM plainjobs_jobrequest
                WHERE {queue_filter} AND (start_at IS NULL OR start_at <= ?2)
                  AND EXISTS (SELECT 1 FROM plainjobs_workerheartbeat WHERE worker_id = ?3)
                ORDER BY priority DESC, COALESCE(start_at, created_at), id
                LIMIT ?4)
             RETURNING {REQUEST_COLUMNS}"
        );
        let mut tx = self.write_tx().await?;
        let rows = sqlx::query(&sql)
            .bind(queue_arg)
            .bind(now)
            .bind(worker_id.to_string())
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        let mut taken = decode_all(&rows, job_request)?;
        if taken.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        taken.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(
                    a.start_at
                        .unwrap_or(a.created_at)
                        .cmp(&b.start_at.unwrap_or(b.created_at)),
                )
                .then(a.id.cmp(&b.id))
        });
        let mut out = Vec::with_capacity(taken.len());
        for (chunk_no, chunk) in taken.chunks(CHUNK).enumerate() {
            let sql = format!(
                "INSERT INTO plainjobs_jobprocess (uuid, created_at, started_at, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, trace_id, span_id, worker_id)
                 VALUES {} RETURNING {PROCESS_COLUMNS}",
                placeholders(chunk.len(), 16)
            );
            let mut q = sqlx::query(&sql);
            for (i, r) in chunk.iter().enumerate() {
                let n = (chunk_no * CHUNK + i) as i64;
                q = q
                    .bind(new_uuid().to_string())
                    .bind(now)
                    .bind((n < start).then_some(now))
                    .bind(r.uuid.to_string())
                    .bind(us(r.created_at))
                    .bind(&r.job_class)
                    .bind(params_text(&r.parameters))
                    .bind(r.priority)
                    .bind(&r.source)
                    .bind(&r.queue)
                    .bind(r.retries)
                    .bind(r.retry_attempt)
                    .bind(&r.concurrency_key)
                    .bind(&r.trace_id)
                    .bind(&r.span_id)
                    .bind(worker_id.to_string());
            }
            let rows = q.fetch_all(&mut *tx).await?;
            out.extend(decode_all(&rows, job_process)?);
        }
        tx.commit().await?;
        out.sort_by_key(|p| p.id);
        Ok(out)
    }

    async fn finish_many(
        &self,
        worker_id: Uuid,
        starts: &[Uuid],
        items: &[Finish],
    ) -> Result<Vec<Uuid>> {
        if items.is_empty() && starts.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write_tx().await?;
        if !starts.is_empty() {
            let list = uuid_list(starts);
            sqlx::query(
                "UPDATE plainjobs_jobprocess SET started_at = ?1 WHERE worker_id = ?2 AND started_at IS NULL AND uuid IN (SELECT value FROM json_each(?3))",
            )
            .bind(now_us())
            .bind(worker_id.to_string())
            .bind(list)
            .execute(&mut *tx)
            .await?;
        }
        let uuids: Vec<Uuid> = items.iter().map(|i| i.process_uuid).collect();
        let by_uuid: HashMap<Uuid, &Finish> = items.iter().map(|i| (i.process_uuid, i)).collect();
        let mut gone = delete_processes(&mut tx, worker_id, Some(&uuids)).await?;
        // A job that began and ended between two writes has its start recorded as its end.
        let now = Utc::now();
        for p in gone.iter_mut().filter(|p| p.started_at.is_none()) {
            p.started_at = Some(now);
        }
        let rows: Vec<(&JobProcess, JobStatus, &str, Option<Uuid>)> = gone
            .iter()
            .filter_map(|p| {
                by_uuid
                    .get(&p.uuid)
                    .map(|f| (p, f.status, f.error.as_str(), None))
            })
            .collect();
        insert_results(&mut tx, &rows).await?;
        tx.commit().await?;
        Ok(gone.iter().map(|p| p.uuid).collect())
    }

    async fn hand_back(&self, worker_id: Uuid, uuids: &[Uuid]) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        // Only unstarted jobs go back; a started one stays ours.
        let n = hand_back_where(
            &mut tx,
            worker_id,
            "started_at IS NULL AND uuid IN (SELECT value FROM json_each(?2))",
            uuids,
            None,
        )
        .await?;
        tx.commit().await?;
        if n > 0 {
            wake_local(Some(&self.db));
        }
        Ok(n)
    }

    async fn hand_back_unaccounted(&self, worker_id: Uuid, accounted: &[Uuid]) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let filter = format!("{NOT_BEGUN} AND uuid NOT IN (SELECT value FROM json_each(?2))");
        let n = hand_back_where(&mut tx, worker_id, &filter, accounted, None).await?;
        tx.commit().await?;
        if n > 0 {
            wake_local(Some(&self.db));
        }
        Ok(n)
    }

    async fn vacuum_requests(&self) -> Result<()> {
        // SQLite's b-trees free deleted entries at once.
        Ok(())
    }

    async fn next_start_in(&self, queues: &[String]) -> Result<Option<Duration>> {
        let list = text_list(queues.iter().cloned());
        let now = now_us();
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT min(start_at) FROM plainjobs_jobrequest WHERE queue IN (SELECT value FROM json_each(?1)) AND start_at > ?2",
        )
        .bind(list)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(next.map(|t| Duration::from_micros(u64::try_from(t - now).unwrap_or(0))))
    }

    async fn stale_workers(&self, timeout: Duration) -> Result<Vec<Uuid>> {
        portable::stale_workers(self, timeout).await
    }

    async fn rescue_worker(
        &self,
        worker_id: Uuid,
        timeout: Duration,
    ) -> Result<Option<Vec<JobResult>>> {
        let mut tx = self.write_tx().await?;
        let hb = sqlx::query(
            "DELETE FROM plainjobs_workerheartbeat WHERE worker_id = ?1 AND last_heartbeat_at < ?2 RETURNING hostname, pid, last_heartbeat_at",
        )
        .bind(worker_id.to_string())
        .bind(now_us() - micros(timeout))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(hb) = hb else {
            return Ok(None);
        };
        let host: String = hb.try_get("hostname")?;
        let pid: i32 = hb.try_get("pid")?;
        let last = hb.time("last_heartbeat_at")?;
        let error = format!(
            "Lost: worker {worker_id} ({host}, pid {pid}) stopped heartbeating; its last heartbeat was at {}",
            last.to_rfc3339()
        );
        let gone = delete_processes(&mut tx, worker_id, None).await?;
        let rows: Vec<_> = gone
            .iter()
            .map(|p| (p, JobStatus::Lost, error.as_str(), None))
            .collect();
        let results = insert_results(&mut tx, &rows).await?;
        tx.commit().await?;
        Ok(Some(results))
    }

    async fn rescue_orphans(
        &self,
        worker_id: Uuid,
        timeout: Duration,
        held: &[Uuid],
        began: &[Uuid],
    ) -> Result<Orphans> {
        let mut tx = self.write_tx().await?;
        // Jobs that never began go back to the queue first; what remains of the orphans began.
        let accounted: Vec<Uuid> = held.iter().chain(began).copied().collect();
        let filter = format!("{NOT_BEGUN} AND uuid NOT IN (SELECT value FROM json_each(?2))");
        let handed_back =
            hand_back_where(&mut tx, worker_id, &filter, &accounted, Some(timeout)).await?;
        let sql = format!(
            "DELETE FROM plainjobs_jobprocess WHERE worker_id = ?1 AND created_at < ?2 AND uuid NOT IN (SELECT value FROM json_each(?3)) RETURNING {PROCESS_COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(worker_id.to_string())
            .bind(now_us() - micros(timeout))
            .bind(uuid_list(held))
            .fetch_all(&mut *tx)
            .await?;
        let mut gone = decode_all(&rows, job_process)?;
        gone.sort_by_key(|p| p.id);
        let error =
            format!("Lost: worker {worker_id} no longer ran this job (its bookkeeping was lost)");
        let rows: Vec<_> = gone
            .iter()
            .map(|p| (p, JobStatus::Lost, error.as_str(), None))
            .collect();
        let lost = insert_results(&mut tx, &rows).await?;
        tx.commit().await?;
        if handed_back > 0 {
            wake_local(Some(&self.db));
        }
        Ok(Orphans { handed_back, lost })
    }

    async fn rescue_unowned(&self, timeout: Duration) -> Result<Vec<JobResult>> {
        let mut tx = self.write_tx().await?;
        let sql = format!(
            "DELETE FROM plainjobs_jobprocess WHERE created_at < ?1
               AND NOT EXISTS (SELECT 1 FROM plainjobs_workerheartbeat h WHERE h.worker_id = plainjobs_jobprocess.worker_id)
             RETURNING {PROCESS_COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(now_us() - micros(timeout))
            .fetch_all(&mut *tx)
            .await?;
        let mut gone = decode_all(&rows, job_process)?;
        gone.sort_by_key(|p| p.id);
        let error = "Lost: its worker has no heartbeat row (it died without being rescued)";
        let rows: Vec<_> = gone
            .iter()
            .map(|p| (p, JobStatus::Lost, error, None))
            .collect();
        let results = insert_results(&mut tx, &rows).await?;
        tx.commit().await?;
        Ok(results)
    }

    async fn retryable_results(&self, after_id: i64, limit: i64) -> Result<Vec<JobResult>> {
        portable::retryable_results(self, after_id, limit).await
    }

    async fn bump_retry_attempt(&self, result_uuid: Uuid) -> Result<()> {
        portable::bump_retry_attempt(self, result_uuid).await
    }

    async fn delete_results_before(&self, age: Duration, batch: i64) -> Result<u64> {
        portable::delete_results_before(self, age, batch).await
    }

    async fn listener(&self) -> Result<Option<Box<dyn Listener>>> {
        let local = Arc::new(Notify::new());
        local_waiters()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((self.db.clone(), Arc::downgrade(&local)));
        // Other processes' commits show up as a change of PRAGMA data_version on a connection
        // of our own; checking it reads shared memory only.
        let watch = match &self.watch {
            Some(opts) => Some(SqliteConnection::connect_with(opts).await?),
            None => None,
        };
        Ok(Some(Box::new(InsertListener {
            local,
            watch,
            last_version: None,
        })))
    }

    async fn result_by_uuid(&self, uuid: Uuid) -> Result<Option<JobResult>> {
        portable::result_by_uuid(self, uuid).await
    }

    async fn locate_requests(&self, uuids: &[Uuid]) -> Result<Vec<(Uuid, Located)>> {
        portable::locate_requests(self, uuids).await
    }

    async fn purge(&self) -> Result<Purged> {
        portable::purge(self).await
    }
}
