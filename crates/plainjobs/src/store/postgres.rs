//! The PostgreSQL backend.

use std::ops::DerefMut;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgListener, PgPool, PgRow};
use sqlx::{PgConnection, Postgres, Row, Transaction};
use uuid::Uuid;

use super::migrations::POSTGRES as MIGRATIONS;
use super::rows::{
    decode_all, job_process, job_result, DecodeRow, PROCESS_COLUMNS, RESULT_COLUMNS,
};
use super::sql::{Arg, Dialect, SqlBackend, SqlConn, Statement};
use super::{
    migrate, portable, ClaimHow, Conn, Finish, Listener, Located, NewHeartbeat, NewRequest,
    Orphans, Purged, Start, Store, StoreTx, NOT_BEGUN,
};
use crate::error::DbErrorKind;
use crate::model::{JobProcess, JobRequest, JobResult, JobStatus};
use crate::{Error, Result};

/// What a PostgreSQL error reply means (by its SQLSTATE class).
pub(crate) fn error_kind(e: &sqlx::postgres::PgDatabaseError) -> DbErrorKind {
    let code = e.code();
    if e.constraint() == Some("plainjobs_jobrequest_unique_uuid") {
        return DbErrorKind::DuplicateRequestUuid;
    }
    match code {
        // admin_shutdown, crash_shutdown, cannot_connect_now: the server ended the session.
        "57P01" | "57P02" | "57P03" => DbErrorKind::Terminated,
        // connection_exception.
        c if c.starts_with("08") => DbErrorKind::ConnectionLost,
        // insufficient_resources, other operator intervention (query_canceled, …).
        c if c.starts_with("53") || c.starts_with("57") => DbErrorKind::Unavailable,
        // transaction_rollback (serialization failure, deadlock), lock_not_available.
        c if c.starts_with("40") || c == "55P03" => DbErrorKind::Conflict,
        _ => DbErrorKind::Rejected,
    }
}

/// The channel the insert trigger notifies.
pub(crate) const CHANNEL: &str = "plainjobs_jobrequest";

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl DecodeRow for PgRow {
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
        self.try_get(column)
    }
    fn text(&self, column: &str) -> sqlx::Result<String> {
        self.try_get(column)
    }
    fn opt_text(&self, column: &str) -> sqlx::Result<Option<String>> {
        self.try_get(column)
    }
    fn time(&self, column: &str) -> sqlx::Result<DateTime<Utc>> {
        self.try_get(column)
    }
    fn opt_time(&self, column: &str) -> sqlx::Result<Option<DateTime<Utc>>> {
        self.try_get(column)
    }
    fn uuid(&self, column: &str) -> sqlx::Result<Uuid> {
        self.try_get(column)
    }
    fn opt_uuid(&self, column: &str) -> sqlx::Result<Option<Uuid>> {
        self.try_get(column)
    }
    fn json(&self, column: &str) -> sqlx::Result<Option<Value>> {
        self.try_get(column)
    }
}

/// A shared statement with its arguments bound as PostgreSQL takes them (`Now` is not bound:
/// it was rendered as `now()`).
fn bind<'q>(sql: &'q str, statement: &'q Statement<'_>) -> PgQuery<'q> {
    statement
        .args()
        .iter()
        .fold(sqlx::query(sql), |query, arg| match *arg {
            Arg::Int(v) => query.bind(v),
            Arg::Bool(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
            Arg::Uuid(v) => query.bind(v),
            Arg::Uuids(v) => query.bind(v),
            Arg::Now => query,
            Arg::Ago(d) => query.bind(micros(d)),
        })
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

#[async_trait::async_trait]
impl SqlConn for PgConnection {
    type Row = PgRow;

    async fn rows(&mut self, statement: &Statement<'_>) -> sqlx::Result<Vec<PgRow>> {
        let sql = statement.sql(Dialect::Postgres);
        bind(&sql, statement).fetch_all(self).await
    }

    async fn row(&mut self, statement: &Statement<'_>) -> sqlx::Result<Option<PgRow>> {
        let sql = statement.sql(Dialect::Postgres);
        bind(&sql, statement).fetch_optional(self).await
    }

    async fn run(&mut self, statement: &Statement<'_>) -> sqlx::Result<u64> {
        let sql = statement.sql(Dialect::Postgres);
        Ok(bind(&sql, statement).execute(self).await?.rows_affected())
    }
}

#[async_trait::async_trait]
impl SqlBackend for PgStore {
    type Db = Postgres;
    type Conn = PgConnection;

    const MIGRATION_HISTORY: &'static str = "CREATE TABLE IF NOT EXISTS plainjobs_rs_migrations (version bigint PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())";

    async fn pooled(&self) -> Result<PoolConnection<Postgres>> {
        Ok(self.pool.acquire().await?)
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    async fn begin_migration(&self) -> Result<Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await?;
        // Serialize concurrent migrators (several workers starting at once).
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('plainjobs migrate', 0))")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

/// The schema our tables resolve to, as the trigger names it in each notification since
/// migration 5. Before it the payload was empty (migrations 3–4) or the queue's name (1–2): a
/// database not migrated that far wakes the worker for every notification (None).
async fn notification_schema(pool: &PgPool) -> Result<Option<String>> {
    let has_history: bool =
        sqlx::query_scalar("SELECT to_regclass('plainjobs_rs_migrations') IS NOT NULL")
            .fetch_one(pool)
            .await?;
    let migrated: Option<i64> = if has_history {
        sqlx::query_scalar("SELECT max(version) FROM plainjobs_rs_migrations")
            .fetch_one(pool)
            .await?
    } else {
        None
    };
    if migrated.is_none_or(|v| v < 5) {
        return Ok(None);
    }
    Ok(sqlx::query_scalar(
        "SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = to_regclass('plainjobs_jobrequest')",
    )
    .fetch_optional(pool)
    .await?)
}

/// `LISTEN plainjobs_jobrequest` on a session of its own. A notification reaches every listener
/// of the database; only those for our schema count.
struct InsertListener {
    listener: PgListener,
    schema: Option<String>,
}

#[async_trait::async_trait]
impl Listener for InsertListener {
    async fn wait(&mut self) -> Result<()> {
        loop {
            match self.listener.try_recv().await? {
                Some(n) => {
                    let ours = match &self.schema {
                        Some(s) => n.payload().is_empty() || n.payload() == s,
                        None => true,
                    };
                    if ours {
                        return Ok(());
                    }
                }
                None => {
                    // The connection dropped; the next call reconnects and listens again.
                    // Anything sent meanwhile was missed, so the worker looks now.
                    tracing::warn!("LISTEN connection lost; reconnecting");
                    return Ok(());
                }
            }
        }
    }
}

/// The PostgreSQL store: a connection pool, and the claim's own sessions.
pub(crate) struct PgStore {
    pool: PgPool,
    /// Sessions for the claim statement that keep one plan for it ([`CLAIM_SESSION`]):
    /// planning the claim anew on every execution cost more server time (~0.35 ms) than
    /// running it. Used only by workers with LISTEN on (session connections; never behind a
    /// transaction-mode pooler, where session settings would reach other clients).
    ///
    /// Each is a connection taken out of `pool` for good (`detach`), so it was opened and set
    /// up exactly as the application's pool does it (its `after_connect`: a `search_path`, a
    /// role), then given the claim's settings; it is kept here between claims and dropped after
    /// any error. There is one per claim running at once (one per worker), outside the pool's
    /// `max_connections`, at most [`CLAIM_SESSIONS_KEPT`] kept idle.
    claims: Mutex<Vec<PgConnection>>,
}

/// Idle claim sessions kept for reuse.
const CLAIM_SESSIONS_KEPT: usize = 4;

impl PgStore {
    pub(crate) fn new(pool: PgPool) -> PgStore {
        PgStore {
            pool,
            claims: Mutex::new(Vec::new()),
        }
    }

    /// An idle claim session, or a new one.
    async fn claim_session(&self) -> Result<PgConnection> {
        let idle = self.claims.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(conn) = idle {
            return Ok(conn);
        }
        let mut conn = self.pool.acquire().await?.detach();
        set_up_claim_session(&mut conn).await?;
        Ok(conn)
    }

    /// Keeps a claim session that just worked for the next claim.
    fn keep_claim_session(&self, conn: PgConnection) {
        let mut idle = self.claims.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < CLAIM_SESSIONS_KEPT {
            idle.push(conn);
        }
    }
}

/// The settings of the claim's sessions (see [`PgStore::claims`]). They pin one plan: the generic plan is made once per session and reused
/// (`plan_cache_mode`), and with sequential and bitmap scans ruled out it is the claim index
/// walked in claim order, whatever the statistics said when it was made — an empty table at
/// start-up must not leave a plan that sorts a million-row backlog later. `jit` stays off, since
/// ruling scans out inflates cost estimates past the JIT threshold.
pub(crate) const CLAIM_SESSION: [(&str, &str); 4] = [
    ("plan_cache_mode", "force_generic_plan"),
    ("enable_seqscan", "off"),
    ("enable_bitmapscan", "off"),
    ("jit", "off"),
];

/// The claim statement (see `Store::claim`): `$1` worker id, `$2` queues, `$3` how many to
/// claim, `$4` how many of them start at once, `$5` their process uuids.
fn claim_sql(queues: usize, async_commit: bool) -> String {
    // One queue: an equality, so the claim index yields rows already in claim order. Several:
    // `= ANY`, which sorts the ready rows of those queues.
    let queue_filter = if queues == 1 {
        "queue = $2[1]"
    } else {
        "queue = ANY($2)"
    };
    // Asynchronous commit for this statement's own transaction only (a one-time filter, read
    // at commit): nothing is left on the connection.
    let commit = if async_commit {
        "AND (SELECT set_config('synchronous_commit', 'off', true)) = 'off'"
    } else {
        ""
    };
    format!(
        "WITH picked AS MATERIALIZED (
            SELECT id FROM plainjobs_jobrequest
            WHERE {queue_filter} AND (start_at IS NULL OR start_at <= now()) {commit}
              AND EXISTS (SELECT 1 FROM plainjobs_workerheartbeat WHERE worker_id = $1 FOR KEY SHARE)
            ORDER BY priority DESC, COALESCE(start_at, created_at), id
            LIMIT $3
            FOR UPDATE SKIP LOCKED
         ), numbered AS MATERIALIZED (
            SELECT id, row_number() OVER () AS n FROM picked
         ), moved AS (
            -- Point lookups by id (= ANY of an array), never a join that could walk the primary
            -- key from its dead head.
            DELETE FROM plainjobs_jobrequest r
            WHERE r.id = ANY (ARRAY(SELECT id FROM picked))
            RETURNING r.*
         )
         INSERT INTO plainjobs_jobprocess (uuid, created_at, started_at, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, trace_id, span_id, worker_id)
         SELECT ($5::uuid[])[b.n], now(), CASE WHEN b.n <= $4 THEN now() END, m.uuid, m.created_at, m.job_class, m.parameters, m.priority, m.source, m.queue, m.retries, m.retry_attempt, m.concurrency_key, m.trace_id, m.span_id, $1
         FROM moved m JOIN numbered b ON b.id = m.id ORDER BY b.n
         RETURNING {PROCESS_COLUMNS}"
    )
}

/// Runs the claim statement on a claim session.
async fn run_claim(
    conn: &mut PgConnection,
    sql: &str,
    worker_id: Uuid,
    queues: &[String],
    limit: i64,
    start: i64,
) -> sqlx::Result<Vec<PgRow>> {
    sqlx::query(sql)
        .bind(worker_id)
        .bind(queues)
        .bind(limit)
        .bind(start)
        .bind(new_uuids(limit))
        .fetch_all(conn)
        .await
}

/// Gives a new claim session the claim's settings.
async fn set_up_claim_session(conn: &mut PgConnection) -> sqlx::Result<()> {
    for (name, value) in CLAIM_SESSION {
        sqlx::query(&format!("SET {name} = {value}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// A connection (pooled, borrowed from the caller, or in a transaction) seen through [`Conn`].
pub(crate) struct PgConn<C>(pub(crate) C);

/// The start columns sent for a request: a delay the database adds to its own clock, or a time.
fn start_columns(start: Start) -> (Option<i64>, Option<DateTime<Utc>>) {
    match start {
        Start::Now => (None, None),
        Start::After(d) => (Some(micros(d)), None),
        Start::At(t) => (None, Some(t)),
    }
}

/// One request, with plain parameters: a single enqueue is the latency path, and a plain
/// `VALUES` insert costs the server less to bind and run than `unnest` over arrays of one.
async fn insert_request(conn: &mut PgConnection, r: NewRequest) -> Result<JobRequest> {
    let uuid = r.uuid;
    let (delay_us, start_at) = start_columns(r.start);
    let row = sqlx::query(
        "INSERT INTO plainjobs_jobrequest (created_at, uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, start_at, trace_id, span_id)
         VALUES (now(), $1, $2, $3, $4, $5, $6, $7, $8, $9,
                 CASE WHEN $10::int8 IS NOT NULL THEN now() + $10::int8 * interval '1 microsecond' ELSE $11::timestamptz END,
                 $12, $13)
         RETURNING id, created_at, start_at",
    )
    .bind(uuid)
    .bind(&r.job_class)
    .bind(&r.parameters)
    .bind(r.priority)
    .bind(&r.source)
    .bind(&r.queue)
    .bind(r.retries)
    .bind(r.retry_attempt)
    .bind(&r.concurrency_key)
    .bind(delay_us)
    .bind(start_at)
    .bind(&r.trace_id)
    .bind(&r.span_id)
    .fetch_one(&mut *conn)
    .await?;
    let id = row.try_get(0)?;
    let created_at = row.try_get(1)?;
    let start_at = row.try_get(2)?;
    Ok(r.into_request(id, created_at, start_at))
}

/// `n` new row uuids, for statements that insert up to `n` rows.
fn new_uuids(n: i64) -> Vec<Uuid> {
    (0..n.max(0)).map(|_| crate::model::new_uuid()).collect()
}

async fn insert_requests(
    conn: &mut PgConnection,
    mut rows: Vec<NewRequest>,
) -> Result<Vec<JobRequest>> {
    if rows.len() <= 1 {
        return match rows.pop() {
            Some(one) => insert_request(conn, one).await.map(|r| vec![r]),
            None => Ok(Vec::new()),
        };
    }
    let n = rows.len();
    // Uuids come with the requests (made before the first attempt), so each returned row can
    // be matched to what was sent; only the columns the database decides come back (not every
    // row's parameters).
    let uuids: Vec<Uuid> = rows.iter().map(|r| r.uuid).collect();
    let made = {
        let mut job_class = Vec::with_capacity(n);
        let mut parameters = Vec::with_capacity(n);
        let mut priority = Vec::with_capacity(n);
        let mut source = Vec::with_capacity(n);
        let mut queue = Vec::with_capacity(n);
        let mut retries = Vec::with_capacity(n);
        let mut retry_attempt = Vec::with_capacity(n);
        let mut key = Vec::with_capacity(n);
        let mut delay_us: Vec<Option<i64>> = Vec::with_capacity(n);
        let mut start_at: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
        let mut trace_id = Vec::with_capacity(n);
        let mut span_id = Vec::with_capacity(n);
        for r in &rows {
            job_class.push(r.job_class.as_str());
            parameters.push(&r.parameters);
            priority.push(r.priority);
            source.push(r.source.as_str());
            queue.push(r.queue.as_str());
            retries.push(r.retries);
            retry_attempt.push(r.retry_attempt);
            key.push(r.concurrency_key.as_str());
            let (delay, at) = start_columns(r.start);
            delay_us.push(delay);
            start_at.push(at);
            trace_id.push(r.trace_id.as_deref());
            span_id.push(r.span_id.as_deref());
        }
        // What the database decided comes back as one row of arrays (in the order the rows were
        // inserted), not a row per request: decoding thousands of rows cost the client more than
        // the insert cost the server.
        let sql = "WITH made AS (
             INSERT INTO plainjobs_jobrequest (created_at, uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, start_at, trace_id, span_id)
             SELECT now(), t.uuid, t.job_class, t.parameters, t.priority, t.source, t.queue, t.retries, t.retry_attempt, t.concurrency_key,
                    CASE WHEN t.delay_us IS NOT NULL THEN now() + t.delay_us * interval '1 microsecond' ELSE t.start_at END,
                    t.trace_id, t.span_id
             FROM unnest($1::text[], $2::jsonb[], $3::int2[], $4::text[], $5::text[], $6::int2[], $7::int2[], $8::text[], $9::int8[], $10::timestamptz[], $11::text[], $12::text[], $13::uuid[])
                  WITH ORDINALITY AS t(job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, delay_us, start_at, trace_id, span_id, uuid, ord)
             ORDER BY t.ord
             RETURNING uuid, id, start_at
           )
           SELECT now(), array_agg(uuid), array_agg(id), array_agg(start_at) FROM made";
        sqlx::query(sql)
            .bind(job_class)
            .bind(parameters)
            .bind(priority)
            .bind(source)
            .bind(queue)
            .bind(retries)
            .bind(retry_attempt)
            .bind(key)
            .bind(delay_us)
            .bind(start_at)
            .bind(trace_id)
            .bind(span_id)
            .bind(&uuids)
            .fetch_one(&mut *conn)
            .await?
    };
    // `now()` is the transaction's start: every row's created_at.
    let created_at: DateTime<Utc> = made.try_get(0)?;
    let made_uuids: Vec<Uuid> = made.try_get(1)?;
    let ids: Vec<i64> = made.try_get(2)?;
    let starts: Vec<Option<DateTime<Utc>>> = made.try_get(3)?;
    type Decided = (i64, DateTime<Utc>, Option<DateTime<Utc>>);
    // The rows come back in the order they were inserted in practice; PostgreSQL does not
    // promise it, so any other order is matched by uuid.
    let mut in_order = Vec::with_capacity(n);
    let mut by_uuid = std::collections::HashMap::new();
    for (i, ((uuid, id), start_at)) in made_uuids.into_iter().zip(ids).zip(starts).enumerate() {
        let d: Decided = (id, created_at, start_at);
        if by_uuid.is_empty() && uuids.get(i) == Some(&uuid) {
            in_order.push(d);
        } else {
            by_uuid.insert(uuid, d);
        }
    }
    let mut out = Vec::with_capacity(n);
    for (i, (r, uuid)) in rows.into_iter().zip(uuids).enumerate() {
        let found = match in_order.get(i) {
            Some(d) => Some(*d),
            None => by_uuid.remove(&uuid),
        };
        let Some((id, created_at, start_at)) = found else {
            return Err(Error::from(sqlx::Error::Protocol(format!(
                "the insert of request {} returned no row",
                r.uuid
            ))));
        };
        out.push(r.into_request(id, created_at, start_at));
    }
    Ok(out)
}

#[async_trait::async_trait]
impl<C: DerefMut<Target = PgConnection> + Send> Conn for PgConn<C> {
    async fn advisory_lock(&mut self, id: i64) -> Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(id)
            .execute(&mut *self.0)
            .await?;
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
        insert_requests(&mut self.0, rows).await
    }
}

#[async_trait::async_trait]
impl StoreTx for PgConn<Transaction<'static, Postgres>> {
    async fn delete_process(
        &mut self,
        process_uuid: Uuid,
        worker_id: Uuid,
    ) -> Result<Option<JobProcess>> {
        let sql = format!("DELETE FROM plainjobs_jobprocess WHERE uuid = $1 AND worker_id = $2 RETURNING {PROCESS_COLUMNS}");
        let row = sqlx::query(&sql)
            .bind(process_uuid)
            .bind(worker_id)
            .fetch_optional(&mut *self.0)
            .await?;
        Ok(row.as_ref().map(job_process).transpose()?)
    }

    async fn insert_result(
        &mut self,
        p: &JobProcess,
        status: JobStatus,
        error: &str,
        retry_request: Option<Uuid>,
    ) -> Result<JobResult> {
        let sql = format!(
            "INSERT INTO plainjobs_jobresult (uuid, created_at, job_process_uuid, started_at, ended_at, error, status, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, retry_job_request_uuid, trace_id, span_id)
             VALUES ($18, now(), $1, $2, now(), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
             RETURNING {RESULT_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(p.uuid)
            .bind(p.started_at)
            .bind(error)
            .bind(status.as_str())
            .bind(p.job_request_uuid)
            .bind(p.requested_at)
            .bind(&p.job_class)
            .bind(&p.parameters)
            .bind(p.priority)
            .bind(&p.source)
            .bind(&p.queue)
            .bind(p.retries)
            .bind(p.retry_attempt)
            .bind(&p.concurrency_key)
            .bind(retry_request)
            .bind(&p.trace_id)
            .bind(&p.span_id)
            .bind(crate::model::new_uuid())
            .fetch_one(&mut *self.0)
            .await?;
        Ok(job_result(&row)?)
    }

    async fn lock_retryable(
        &mut self,
        result_uuid: Uuid,
        force: bool,
    ) -> Result<Option<JobResult>> {
        let sql = format!(
            "SELECT {RESULT_COLUMNS} FROM plainjobs_jobresult
             WHERE uuid = $1 AND retry_job_request_uuid IS NULL AND ($2 OR (retries > 0 AND retry_attempt < retries))
               AND status IN ('ERRORED', 'LOST', 'CANCELLED')
             FOR UPDATE SKIP LOCKED"
        );
        let row = sqlx::query(&sql)
            .bind(result_uuid)
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

/// Moves the processes matching `where_clause` into LOST results whose error is `error_param`.
fn lost_results_sql(where_clause: &str, error_param: &str) -> String {
    format!(
        "WITH done AS (DELETE FROM plainjobs_jobprocess WHERE {where_clause} RETURNING *)
         INSERT INTO plainjobs_jobresult (uuid, created_at, job_process_uuid, started_at, ended_at, error, status, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, retry_job_request_uuid, trace_id, span_id)
         SELECT gen_random_uuid(), now(), uuid, started_at, now(), {error_param}, 'LOST', job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, NULL, trace_id, span_id
         FROM done ORDER BY id
         RETURNING {RESULT_COLUMNS}"
    )
}

/// Moves the processes matching `where_clause` back to the request table as they were
/// enqueued: same uuid, same `created_at`, `start_at` NULL (they were due), no retry spent.
fn hand_back_sql(where_clause: &str) -> String {
    format!(
        "WITH back AS (DELETE FROM plainjobs_jobprocess WHERE {where_clause} RETURNING *)
         INSERT INTO plainjobs_jobrequest (created_at, uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, start_at, trace_id, span_id)
         SELECT COALESCE(requested_at, created_at), job_request_uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, NULL, trace_id, span_id
         FROM back ORDER BY id"
    )
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn migrate(&self) -> Result<()> {
        migrate::apply(self, MIGRATIONS).await
    }

    async fn now(&self) -> Result<DateTime<Utc>> {
        Ok(sqlx::query_scalar("SELECT now()")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn begin(&self) -> Result<Box<dyn StoreTx + '_>> {
        Ok(Box::new(PgConn(self.pool.begin().await?)))
    }

    async fn autocommit(&self) -> Result<Box<dyn Conn + '_>> {
        let conn: PoolConnection<Postgres> = self.pool.acquire().await?;
        Ok(Box::new(PgConn(conn)))
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
        .fetch_one(&self.pool)
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
        let limit = start + prefetch;
        if limit <= 0 || queues.is_empty() {
            return Ok(Vec::new());
        }
        let sql = claim_sql(queues.len(), how.async_commit);
        let rows = if how.pinned_session {
            let mut conn = self.claim_session().await?;
            let rows = run_claim(&mut conn, &sql, worker_id, queues, limit, start).await?;
            self.keep_claim_session(conn);
            rows
        } else {
            let mut conn = self.pool.acquire().await?;
            run_claim(&mut conn, &sql, worker_id, queues, limit, start).await?
        };
        let mut out = decode_all(&rows, job_process)?;
        out.sort_by_key(|p| p.id);
        Ok(out)
    }

    async fn insert_started(
        &self,
        worker_id: Uuid,
        req: &NewRequest,
        process_uuid: Uuid,
    ) -> Result<Option<(JobRequest, JobProcess)>> {
        let row = sqlx::query(&format!(
            "INSERT INTO plainjobs_jobprocess (uuid, created_at, started_at, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, trace_id, span_id, worker_id)
             SELECT $1, now(), now(), $2, now(), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13
             WHERE EXISTS (SELECT 1 FROM plainjobs_workerheartbeat WHERE worker_id = $13 FOR KEY SHARE)
             RETURNING {PROCESS_COLUMNS}"
        ))
        .bind(process_uuid)
        .bind(req.uuid)
        .bind(&req.job_class)
        .bind(&req.parameters)
        .bind(req.priority)
        .bind(&req.source)
        .bind(&req.queue)
        .bind(req.retries)
        .bind(req.retry_attempt)
        .bind(&req.concurrency_key)
        .bind(&req.trace_id)
        .bind(&req.span_id)
        .bind(worker_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let process = job_process(&row)?;
        let requested_at = process.requested_at.unwrap_or(process.created_at);
        Ok(Some((req.to_request(0, requested_at, None), process)))
    }

    async fn finish_many(
        &self,
        worker_id: Uuid,
        starts: &[Uuid],
        items: &[Finish],
    ) -> Result<Vec<Uuid>> {
        if items.is_empty() {
            if !starts.is_empty() {
                sqlx::query(
                    "UPDATE plainjobs_jobprocess SET started_at = now() WHERE worker_id = $1 AND uuid = ANY($2) AND started_at IS NULL",
                )
                .bind(worker_id)
                .bind(starts)
                .execute(&self.pool)
                .await?;
            }
            return Ok(Vec::new());
        }
        let uuids: Vec<Uuid> = items.iter().map(|i| i.process_uuid).collect();
        let statuses: Vec<&str> = items.iter().map(|i| i.status.as_str()).collect();
        let errors: Vec<&str> = items.iter().map(|i| i.error.as_str()).collect();
        // `starts` never overlaps `items`, so the UPDATE and the DELETE touch different rows. A
        // job that began and ended between two writes has its start recorded as its end.
        let rows: Vec<Uuid> = sqlx::query_scalar(
            "WITH started AS (
                UPDATE plainjobs_jobprocess SET started_at = now()
                WHERE worker_id = $1 AND uuid = ANY($5) AND started_at IS NULL
             ), input AS (
                SELECT * FROM unnest($2::uuid[], $3::text[], $4::text[], $6::uuid[]) AS t(process_uuid, status, error, result_uuid)
             ), done AS (
                DELETE FROM plainjobs_jobprocess p USING input i
                WHERE p.uuid = i.process_uuid AND p.worker_id = $1
                RETURNING p.*, i.status AS new_status, i.error AS new_error, i.result_uuid AS new_uuid
             )
             INSERT INTO plainjobs_jobresult (uuid, created_at, job_process_uuid, started_at, ended_at, error, status, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, retry_job_request_uuid, trace_id, span_id)
             SELECT new_uuid, now(), uuid, COALESCE(started_at, now()), now(), new_error, new_status, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, NULL, trace_id, span_id
             FROM done
             RETURNING job_process_uuid",
        )
        .bind(worker_id)
        .bind(uuids)
        .bind(statuses)
        .bind(errors)
        .bind(starts)
        .bind(new_uuids(items.len() as i64))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    async fn hand_back(&self, worker_id: Uuid, uuids: &[Uuid]) -> Result<u64> {
        if uuids.is_empty() {
            return Ok(0);
        }
        let sql = hand_back_sql("worker_id = $1 AND uuid = ANY($2) AND started_at IS NULL");
        let done = sqlx::query(&sql)
            .bind(worker_id)
            .bind(uuids)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn hand_back_unaccounted(&self, worker_id: Uuid, accounted: &[Uuid]) -> Result<u64> {
        let sql = hand_back_sql(&format!(
            "worker_id = $1 AND {NOT_BEGUN} AND NOT (uuid = ANY($2))"
        ));
        let done = sqlx::query(&sql)
            .bind(worker_id)
            .bind(accounted)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn vacuum_requests(&self) -> Result<()> {
        // No truncation: giving back the empty tail of a drained table takes an ACCESS
        // EXCLUSIVE lock that enqueues and claims would queue behind.
        sqlx::query(
            "VACUUM (SKIP_LOCKED, TRUNCATE false) plainjobs_jobrequest, plainjobs_jobprocess",
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn next_start_in(&self, queues: &[String]) -> Result<Option<Duration>> {
        let secs: Option<f64> = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM (min(start_at) - now()))::float8 FROM plainjobs_jobrequest WHERE queue = ANY($1) AND start_at > now()",
        )
        .bind(queues)
        .fetch_one(&self.pool)
        .await?;
        Ok(secs.map(|s| Duration::from_secs_f64(s.max(0.0))))
    }

    async fn stale_workers(&self, timeout: Duration) -> Result<Vec<Uuid>> {
        portable::stale_workers(self, timeout).await
    }

    async fn rescue_worker(
        &self,
        worker_id: Uuid,
        timeout: Duration,
    ) -> Result<Option<Vec<JobResult>>> {
        let mut tx = self.pool.begin().await?;
        let hb = sqlx::query(
            "DELETE FROM plainjobs_workerheartbeat WHERE worker_id = $1 AND last_heartbeat_at < now() - $2 * interval '1 microsecond'
             RETURNING hostname, pid, last_heartbeat_at",
        )
        .bind(worker_id)
        .bind(micros(timeout))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(hb) = hb else {
            return Ok(None);
        };
        let host: String = hb.try_get("hostname")?;
        let pid: i32 = hb.try_get("pid")?;
        let last: DateTime<Utc> = hb.try_get("last_heartbeat_at")?;
        let error = format!(
            "Lost: worker {worker_id} ({host}, pid {pid}) stopped heartbeating; its last heartbeat was at {}",
            last.to_rfc3339()
        );
        let sql = lost_results_sql("worker_id = $1", "$2");
        let rows = sqlx::query(&sql)
            .bind(worker_id)
            .bind(error)
            .fetch_all(&mut *tx)
            .await?;
        let results = decode_all(&rows, job_result)?;
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
        let mut tx = self.pool.begin().await?;
        // Jobs that never began go back to the queue first; what remains of the orphans began.
        let accounted: Vec<Uuid> = held.iter().chain(began).copied().collect();
        let back = hand_back_sql(&format!(
            "worker_id = $1 AND {NOT_BEGUN} AND NOT (uuid = ANY($2))
             AND created_at < now() - $3 * interval '1 microsecond'"
        ));
        let handed_back = sqlx::query(&back)
            .bind(worker_id)
            .bind(&accounted)
            .bind(micros(timeout))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let sql = lost_results_sql(
            "worker_id = $1 AND created_at < now() - $2 * interval '1 microsecond' AND NOT (uuid = ANY($3))",
            "$4",
        );
        let rows = sqlx::query(&sql)
            .bind(worker_id)
            .bind(micros(timeout))
            .bind(held)
            .bind(format!(
                "Lost: worker {worker_id} no longer ran this job (its bookkeeping was lost)"
            ))
            .fetch_all(&mut *tx)
            .await?;
        let lost = decode_all(&rows, job_result)?;
        tx.commit().await?;
        Ok(Orphans { handed_back, lost })
    }

    async fn rescue_unowned(&self, timeout: Duration) -> Result<Vec<JobResult>> {
        let sql = lost_results_sql(
            "created_at < now() - $1 * interval '1 microsecond'
             AND NOT EXISTS (SELECT 1 FROM plainjobs_workerheartbeat h WHERE h.worker_id = plainjobs_jobprocess.worker_id)",
            "$2",
        );
        let rows = sqlx::query(&sql)
            .bind(micros(timeout))
            .bind("Lost: its worker has no heartbeat row (it died without being rescued)")
            .fetch_all(&self.pool)
            .await?;
        decode_all(&rows, job_result)
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
        let schema = notification_schema(&self.pool).await?;
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(Box::new(InsertListener { listener, schema })))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::key_condition;
    use crate::test_support::{test_jobs, Backend};

    /// The plan the claim sessions keep for a one-queue claim.
    async fn claim_plan(store: &PgStore) -> String {
        let mut conn = store.claim_session().await.expect("a claim session");
        sqlx::raw_sql(&format!(
            "PREPARE claim_plan(uuid, text[], int8, int8, uuid[]) AS {}",
            claim_sql(1, false)
        ))
        .execute(&mut conn)
        .await
        .expect("prepare");
        let plan: Vec<String> = sqlx::query_scalar(
            "EXPLAIN EXECUTE claim_plan(gen_random_uuid(), '{default}', 110, 10, '{}')",
        )
        .fetch_all(&mut conn)
        .await
        .expect("explain");
        sqlx::raw_sql("DEALLOCATE claim_plan")
            .execute(&mut conn)
            .await
            .expect("deallocate");
        store.keep_claim_session(conn);
        plan.join("\n")
    }

    /// The claim keeps one plan per session, and it is the claim index in claim order whether
    /// the table was empty or full when the plan was made; no JIT.
    #[tokio::test]
    async fn the_claim_keeps_one_plan_on_the_claim_index() {
        let jobs = test_jobs(Backend::Postgres).await;
        let pool = jobs.pg_pool().expect("a PostgreSQL pool").clone();
        let store = PgStore::new(pool.clone());
        for rows in [0, 5_000] {
            if rows > 0 {
                sqlx::query(
                    "INSERT INTO plainjobs_jobrequest (created_at, uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key)
                     SELECT now(), gen_random_uuid(), 'tests.Plan', '{\"args\": [], \"kwargs\": {}}', 0, '', CASE WHEN i % 2 = 0 THEN 'default' ELSE 'other' END, 0, 0, ''
                     FROM generate_series(1, $1) AS i",
                )
                .bind(rows)
                .execute(&pool)
                .await
                .expect("fill");
            }
            sqlx::query("ANALYZE plainjobs_jobrequest")
                .execute(&pool)
                .await
                .expect("analyze");
            let plan = claim_plan(&store).await;
            assert!(
                plan.contains("Index Scan using plainjobs_jobrequest_claim_idx"),
                "{rows} rows: {plan}"
            );
            assert!(!plan.contains("Seq Scan"), "{rows} rows: {plan}");
            assert!(!plan.contains("Bitmap"), "{rows} rows: {plan}");
            assert!(
                !plan.contains("Sort Key: plainjobs_jobrequest"),
                "{rows} rows: the index yields claim order\n{plan}"
            );
            assert!(!plan.contains("JIT"), "{rows} rows: {plan}");
            assert!(
                plan.contains("Index Cond: (id = ANY ($"),
                "{rows} rows: the delete looks rows up by id\n{plan}"
            );
        }
        let mut session = store.claim_session().await.expect("a claim session");
        let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
            .fetch_one(&mut session)
            .await
            .expect("show");
        assert_eq!(mode, "force_generic_plan");
        store.keep_claim_session(session);

        // An asynchronous claim sets `synchronous_commit` for its own transaction only: the
        // session it ran on (kept for the next claim) still commits durably.
        let worker_id = crate::model::new_uuid();
        sqlx::query(
            "INSERT INTO plainjobs_workerheartbeat (worker_id, hostname, pid, queues, started_at, last_heartbeat_at)
             VALUES ($1, 'test', 1, '[\"default\"]', now(), now())",
        )
        .bind(worker_id)
        .execute(&pool)
        .await
        .expect("heartbeat");
        let how = ClaimHow {
            pinned_session: true,
            async_commit: true,
        };
        let claimed = store
            .claim(worker_id, &["default".to_string()], 3, 2, how)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 5);
        assert_eq!(claimed.iter().filter(|p| p.started_at.is_some()).count(), 3);
        let mut session = store.claim_session().await.expect("the kept session");
        let sync: String = sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(&mut session)
            .await
            .expect("show");
        assert_eq!(sync, "on", "the claim's setting ended with its transaction");
    }

    /// The key and start-time indexes hold only rows with a key or a start time, and the counts
    /// by key still use them (the plan is taken with the planner told to avoid other scans).
    #[tokio::test]
    async fn counts_by_key_use_the_partial_key_indexes() {
        let jobs = test_jobs(Backend::Postgres).await;
        let pool = jobs.pg_pool().expect("a PostgreSQL pool").clone();
        sqlx::query(
            "INSERT INTO plainjobs_jobrequest (created_at, uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, start_at)
             SELECT now(), gen_random_uuid(), 'tests.Key', NULL, 0, '', 'default', 0, 0,
                    CASE WHEN i <= 10 THEN 'k' || i ELSE '' END,
                    CASE WHEN i <= 3 THEN now() + interval '1 hour' END
             FROM generate_series(1, 2000) AS i",
        )
        .execute(&pool)
        .await
        .expect("fill");
        sqlx::query("ANALYZE plainjobs_jobrequest")
            .execute(&pool)
            .await
            .expect("analyze");
        for (index, entries) in [
            ("plainjobs_jobrequest_class_key_idx", 10),
            ("plainjobs_jobrequest_start_at_partial_idx", 3),
        ] {
            let tuples: f32 =
                sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = $1::regclass")
                    .bind(index)
                    .fetch_one(&pool)
                    .await
                    .expect("index stats");
            assert_eq!(tuples, entries as f32, "{index}");
        }
        let mut tx = pool.begin().await.expect("begin");
        sqlx::query("SET LOCAL enable_seqscan = off")
            .execute(&mut *tx)
            .await
            .expect("set");
        for (table, index) in [
            ("plainjobs_jobrequest", "plainjobs_jobrequest_class_key_idx"),
            ("plainjobs_jobprocess", "plainjobs_jobprocess_class_key_idx"),
            (
                "plainjobs_jobresult",
                "plainjobs_jobresult_class_key_partial_idx",
            ),
        ] {
            let sql = format!(
                "EXPLAIN SELECT count(*) FROM {table} WHERE job_class = 'tests.Key' AND concurrency_key = 'k1'{}",
                key_condition("k1")
            );
            let plan: Vec<String> = sqlx::query_scalar(&sql)
                .fetch_all(&mut *tx)
                .await
                .expect("explain");
            let plan = plan.join("\n");
            assert!(plan.contains(index), "{table}: {plan}");
        }
        let plan: Vec<String> = sqlx::query_scalar(
            "EXPLAIN SELECT min(start_at) FROM plainjobs_jobrequest WHERE queue = ANY('{default}') AND start_at > now()",
        )
        .fetch_all(&mut *tx)
        .await
        .expect("explain");
        let plan = plan.join("\n");
        assert!(
            plan.contains("plainjobs_jobrequest_start_at_partial_idx"),
            "{plan}"
        );
    }

    /// Claim sessions come from the application's own pool, set up by its `after_connect` (here
    /// the `search_path`, which the URL does not carry), and a worker on that pool runs jobs.
    #[tokio::test]
    async fn claim_sessions_are_set_up_like_the_applications_pool() {
        let base = std::env::var("TEST_DATABASE_URL")
            .or_else(|_| std::env::var("DATABASE_URL"))
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
        let schema = format!("u_{}", crate::model::new_uuid().simple());
        let admin = PgPool::connect(&base)
            .await
            .expect("test database reachable");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .expect("create schema");
        let set_path = format!("SET search_path = {schema}");
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .after_connect(move |conn, _| {
                let set_path = set_path.clone();
                Box::pin(async move {
                    sqlx::query(&set_path).execute(&mut *conn).await?;
                    Ok(())
                })
            })
            .connect(&base)
            .await
            .expect("the application's pool");
        let jobs = crate::Jobs::from_pool(pool.clone());
        jobs.migrate().await.expect("migrate");
        let store = PgStore::new(pool);
        let mut session = store.claim_session().await.expect("a claim session");
        let path: String = sqlx::query_scalar("SHOW search_path")
            .fetch_one(&mut session)
            .await
            .expect("show");
        assert_eq!(path, schema);
        store.keep_claim_session(session);

        let made = jobs
            .enqueue_by_name(
                "tests.Unknown",
                serde_json::json!({"args": [], "kwargs": {}}),
            )
            .await
            .expect("enqueue")
            .expect("a request");
        let worker = crate::Worker::new(jobs.clone()).spawn();
        let found = async {
            loop {
                if let Some(crate::Found::Result(r)) = jobs.find(made.uuid).await.expect("find") {
                    return r;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let result = tokio::time::timeout(Duration::from_secs(30), found)
            .await
            .expect("the job ran within 30 s");
        // No worker registered the name: an ERRORED result saying so, written through the
        // claim session and the application's pool alike.
        assert_eq!(result.status, crate::JobStatus::Errored);
        worker.stop().await.expect("stop");
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&admin)
            .await
            .expect("drop schema");
    }
}
