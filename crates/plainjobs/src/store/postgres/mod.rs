//! The PostgreSQL backend.
//!
//! `mod.rs` holds the store and its connections; each other file one concern: the claim
//! (`claim.rs`), the sessions that pin the plans of the claim and the result write
//! (`pinned.rs`), inserting requests (`requests.rs`), the result writer (`finish.rs`), handing
//! jobs back (`hand_back.rs`), rescues (`rescue.rs`), wake-ups (`listen.rs`), the [`Conn`] and
//! [`StoreTx`] on a connection (`conn.rs`), how the code shared with SQLite runs here
//! (`sql.rs`), how every statement is sent, directly or behind a transaction pooler
//! (`exec.rs`, `pooler.rs`), and how workers are woken after the store's own inserts
//! (`wake.rs`).
//!
//! Every statement runs on a [`PgExec`] (`conn.exec()`), never on the pool or a bare
//! connection: that is where the [`Pooler`] decides how it is sent.

/// `FROM … WHERE …` selecting `n.nspname`, the schema our tables resolve to (through the
/// session's `search_path`): the payload of every notification, as the insert trigger's
/// `TG_TABLE_SCHEMA`. A macro so that statements can be written with `concat!`.
macro_rules! from_our_schema {
    () => {
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
          WHERE c.oid = to_regclass('plainjobs_jobrequest')"
    };
}

mod claim;
mod conn;
mod errors;
mod exec;
mod finish;
mod hand_back;
mod listen;
mod paused;
mod pinned;
mod pooler;
mod requests;
mod rescue;
pub(crate) mod schema;
mod sql;
#[cfg(test)]
mod tests;
mod wake;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgPool;
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

pub(crate) use conn::PgConn;
pub(crate) use errors::error_kind;
pub(crate) use exec::PgExec;
pub use pooler::{Pooler, UnknownPooler};

use crate::model::{JobProcess, JobRequest, JobResult};
use crate::store::local_wake;
use crate::store::sql::SqlBackend;
use crate::store::{
    browse, cancel, portable, CancelTarget, CancelledRows, ClaimHow, Conn, Finish, Listener,
    Located, Migrated, NewHeartbeat, NewRequest, Orphans, PausedQueue, SchemaReport, Store,
    StoreTx,
};
use crate::Result;

/// The PostgreSQL store: a connection pool, what is in front of the server, and the sessions
/// of the worker's pinned statements.
pub(crate) struct PgStore {
    pool: PgPool,
    pooler: Pooler,
    /// Behind a transaction pooler, the key of these tables for in-process wake-ups
    /// ([`local_wake`](crate::store::local_wake)): this process's workers of the same tables
    /// wait on it, and what this process inserts there wakes them. None otherwise: LISTEN tells
    /// them, whoever inserted.
    local: Option<Arc<str>>,
    /// How the workers are woken after this store's inserts commit (not by the trigger).
    inserts: Arc<wake::InsertWake>,
    /// Sessions that keep one plan for each of the worker's hot statements (the claim and the
    /// result writer's; [`pinned::PINNED_PLANS`]): planning the claim anew on every execution
    /// cost more server time (~0.35 ms) than running it. Used only by workers with LISTEN on,
    /// and never behind a transaction pooler (where session settings would reach other
    /// clients).
    ///
    /// Each is a connection taken out of `pool` for good (`detach`), so it was opened and set
    /// up exactly as the application's pool does it (its `after_connect`: a `search_path`, a
    /// role), then given the settings; it is kept here between statements and dropped after
    /// any error. There is one per such statement running at once (two per worker: its claim
    /// and its result write), outside the pool's `max_connections`, at most
    /// [`pinned::PINNED_SESSIONS_KEPT`] kept idle.
    pinned: Mutex<Vec<PgConnection>>,
}

impl PgStore {
    pub(crate) fn new(pool: PgPool, pooler: Pooler) -> PgStore {
        let local = (pooler == Pooler::Transaction).then(|| tables_key(&pool));
        let inserts = Arc::new(wake::InsertWake::new(&pool, local.clone()));
        PgStore {
            pool,
            pooler,
            local,
            inserts,
            pinned: Mutex::new(Vec::new()),
        }
    }

    /// A pooled connection in autocommit mode.
    pub(crate) async fn conn(&self) -> Result<PgConn<PoolConnection<Postgres>>> {
        let conn = PgConn::new(self.pool.acquire().await?, self.pooler);
        Ok(conn.waking(self.inserts.clone()))
    }

    /// A transaction.
    pub(crate) async fn tx(&self) -> Result<PgConn<Transaction<'static, Postgres>>> {
        let tx = PgConn::new(self.pool.begin().await?, self.pooler);
        Ok(tx.waking(self.inserts.clone()))
    }

    /// Wakes this process's workers of these tables after requests were put back (behind a
    /// transaction pooler; elsewhere LISTEN does).
    fn wake_local(&self) {
        if let Some(key) = &self.local {
            local_wake::wake(Some(key));
        }
    }

    /// Tells this process's workers of these tables that jobs were cancelled or a queue
    /// paused or resumed (behind a transaction pooler; elsewhere the NOTIFY sent in the same
    /// transaction does).
    fn wake_control(&self) {
        if let Some(key) = &self.local {
            local_wake::wake_control(key);
        }
    }

    /// Whether a transaction pooler is in front of the server.
    fn behind_transaction_pooler(&self) -> bool {
        self.pooler == Pooler::Transaction
    }
}

/// What names the tables a pool reaches, for in-process wake-ups: the server, the database, the
/// user and the options (a `search_path` set there selects other tables).
fn tables_key(pool: &PgPool) -> Arc<str> {
    let o = pool.connect_options();
    let at = match o.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => format!("{}:{}", o.get_host(), o.get_port()),
    };
    let key = format!(
        "postgres://{}@{at}/{}?options={}",
        o.get_username(),
        o.get_database().unwrap_or_default(),
        o.get_options().unwrap_or_default()
    );
    Arc::from(key)
}

/// `n` new row uuids, for statements that insert up to `n` rows.
pub(super) fn new_uuids(n: i64) -> Vec<Uuid> {
    (0..n.max(0)).map(|_| crate::model::new_uuid()).collect()
}

#[async_trait::async_trait]
impl SqlBackend for PgStore {
    type Pooled = PgConn<PoolConnection<Postgres>>;
    type WriteTx = PgConn<Transaction<'static, Postgres>>;

    const CREATED_MINUTE: &'static str =
        "(floor(extract(epoch FROM created_at) / 60) * 60)::bigint";

    async fn pooled(&self) -> Result<Self::Pooled> {
        self.conn().await
    }

    async fn begin_write(&self) -> Result<Self::WriteTx> {
        self.tx().await
    }

    async fn commit(tx: Self::WriteTx) -> Result<()> {
        tx.commit().await
    }

    const LOCK_ROWS: &'static str = " FOR UPDATE";
    const NEW_UUID: &'static str = "gen_random_uuid()";
    const CONTROL_NOTICE: Option<&'static str> = Some(listen::CONTROL_NOTICE);
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn migrate(&self) -> Result<Migrated> {
        schema::migrate(self).await
    }

    async fn check_schema(&self) -> Result<SchemaReport> {
        schema::check(self).await
    }

    async fn now(&self) -> Result<DateTime<Utc>> {
        Ok(sqlx::query_scalar("SELECT now()")
            .fetch_one(&mut self.conn().await?.exec())
            .await?)
    }

    async fn begin(&self) -> Result<Box<dyn StoreTx + '_>> {
        Ok(Box::new(self.tx().await?))
    }

    async fn autocommit(&self) -> Result<Box<dyn Conn + '_>> {
        Ok(Box::new(self.conn().await?))
    }

    async fn heartbeat(&self, hb: &NewHeartbeat) -> Result<bool> {
        let inserted: bool = sqlx::query_scalar(
            "INSERT INTO plainjobs_workerheartbeat (worker_id, hostname, pid, queues, started_at, last_heartbeat_at)
             VALUES ($1, $2, $3, $4, now(), now())
             ON CONFLICT (worker_id) DO UPDATE SET last_heartbeat_at = now()
             RETURNING (xmax = 0)",
        )
        .bind(hb.worker_id)
        .bind(&hb.hostname)
        .bind(hb.pid)
        .bind(serde_json::json!(hb.queues))
        .fetch_one(&mut self.conn().await?.exec())
        .await?;
        Ok(inserted)
    }

    async fn deregister(&self, worker_id: Uuid) -> Result<bool> {
        portable::deregister(self, worker_id).await
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

    async fn insert_started(
        &self,
        worker_id: Uuid,
        req: &NewRequest,
        process_uuid: Uuid,
    ) -> Result<Option<(JobRequest, JobProcess)>> {
        requests::insert_started(self, worker_id, req, process_uuid).await
    }

    async fn finish_many(
        &self,
        worker_id: Uuid,
        starts: &[Uuid],
        items: &[Finish],
        pinned_session: bool,
    ) -> Result<Vec<Uuid>> {
        finish::finish_many(self, worker_id, starts, items, pinned_session).await
    }

    async fn hand_back(&self, worker_id: Uuid, uuids: &[Uuid]) -> Result<u64> {
        hand_back::hand_back(self, worker_id, uuids).await
    }

    async fn hand_back_unaccounted(&self, worker_id: Uuid, accounted: &[Uuid]) -> Result<u64> {
        hand_back::hand_back_unaccounted(self, worker_id, accounted).await
    }

    async fn vacuum_requests(&self) -> Result<()> {
        claim::vacuum_requests(self).await
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
        let cancelled = cancel::cancel(self, target, reason).await?;
        if !cancelled.claimed.is_empty() {
            self.wake_control();
        }
        Ok(cancelled)
    }

    async fn existing_processes(&self, uuids: &[Uuid]) -> Result<Vec<Uuid>> {
        cancel::existing_processes(self, uuids).await
    }

    async fn pause_queue(&self, queue: &str, by: &str) -> Result<bool> {
        let paused = paused::pause(self, queue, by).await?;
        if paused {
            self.wake_control();
        }
        Ok(paused)
    }

    async fn resume_queue(&self, queue: &str) -> Result<bool> {
        let resumed = paused::resume(self, queue).await?;
        if resumed {
            self.wake_control();
        }
        Ok(resumed)
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
