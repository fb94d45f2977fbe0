//! The claim: ready requests moved to the process table in one statement, on sessions that
//! keep its plan; and what the claim loop asks besides (the next start time, vacuum).

use std::time::Duration;

use sqlx::postgres::PgRow;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::{new_uuids, PgExec, PgStore, Pooler};
use crate::model::JobProcess;
use crate::store::rows::{decode_all, job_process, PROCESS_COLUMNS};
use crate::store::ClaimHow;
use crate::Result;

/// Idle claim sessions kept for reuse.
pub(super) const CLAIM_SESSIONS_KEPT: usize = 4;

impl PgStore {
    /// An idle claim session, or a new one.
    pub(super) async fn claim_session(&self) -> Result<PgConnection> {
        let idle = self.claims.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(conn) = idle {
            return Ok(conn);
        }
        let mut conn = self.pool.acquire().await?.detach();
        set_up_claim_session(&mut PgExec::new(&mut conn, Pooler::Session)).await?;
        Ok(conn)
    }

    /// Keeps a claim session that just worked for the next claim.
    pub(super) fn keep_claim_session(&self, conn: PgConnection) {
        let mut idle = self.claims.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < CLAIM_SESSIONS_KEPT {
            idle.push(conn);
        }
    }
}

/// The settings of the claim's sessions (see [`PgStore::claims`]). They pin one plan: the
/// generic plan is made once per session and reused (`plan_cache_mode`), and with sequential
/// and bitmap scans ruled out it is the claim index walked in claim order, whatever the
/// statistics said when it was made — an empty table at start-up must not leave a plan that
/// sorts a million-row backlog later. `jit` stays off, since ruling scans out inflates cost
/// estimates past the JIT threshold.
pub(crate) const CLAIM_SESSION: [(&str, &str); 4] = [
    ("plan_cache_mode", "force_generic_plan"),
    ("enable_seqscan", "off"),
    ("enable_bitmapscan", "off"),
    ("jit", "off"),
];

/// The claim statement (see `Store::claim`): `$1` worker id, `$2` queues, `$3` how many to
/// claim, `$4` how many of them start at once, `$5` their process uuids.
pub(super) fn claim_sql(queues: usize, async_commit: bool, by_class: bool) -> String {
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
    // Only the worker's own job types ($6), for a queue shared with workers that run others.
    let class_filter = if by_class {
        "AND job_class = ANY($6)"
    } else {
        ""
    };
    format!(
        "WITH picked AS MATERIALIZED (
            SELECT id FROM plainjobs_jobrequest
            WHERE {queue_filter} AND (start_at IS NULL OR start_at <= now()) {commit} {class_filter}
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

/// Behind a transaction pooler, the claim runs in a transaction of its own begun with the
/// claim sessions' settings that rule the plan (scans, JIT) for that transaction only: no
/// session keeps them, and nothing is left for the session's next client. Each claim is
/// planned anew with its parameters (an unnamed statement), so `plan_cache_mode` has no use.
pub(super) fn begin_claim() -> String {
    CLAIM_SESSION
        .iter()
        .filter(|(name, _)| *name != "plan_cache_mode")
        .fold("BEGIN".to_string(), |sql, (name, value)| {
            format!("{sql}; SET LOCAL {name} = {value}")
        })
}

/// Runs the claim statement.
async fn run_claim(
    conn: &mut PgExec<'_>,
    sql: &str,
    worker_id: Uuid,
    queues: &[String],
    limit: i64,
    start: i64,
    job_classes: Option<&[String]>,
) -> sqlx::Result<Vec<PgRow>> {
    let query = sqlx::query(sql)
        .bind(worker_id)
        .bind(queues)
        .bind(limit)
        .bind(start)
        .bind(new_uuids(limit));
    let query = match job_classes {
        Some(classes) => query.bind(classes),
        None => query,
    };
    query.fetch_all(conn).await
}

/// Gives a new claim session the claim's settings.
async fn set_up_claim_session(conn: &mut PgExec<'_>) -> sqlx::Result<()> {
    for (name, value) in CLAIM_SESSION {
        sqlx::query(&format!("SET {name} = {value}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// See [`Store::claim`](crate::store::Store::claim).
pub(super) async fn claim(
    store: &PgStore,
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
    let classes = how.job_classes.as_deref();
    let sql = claim_sql(queues.len(), how.async_commit, classes.is_some());
    let rows = if store.behind_transaction_pooler() {
        let mut conn = store.pool.acquire().await?;
        let mut tx = conn.begin_with(begin_claim()).await?;
        let mut exec = PgExec::new(&mut tx, store.pooler);
        let rows = run_claim(&mut exec, &sql, worker_id, queues, limit, start, classes).await?;
        tx.commit().await?;
        rows
    } else if how.pinned_session {
        let mut conn = store.claim_session().await?;
        let mut exec = PgExec::new(&mut conn, Pooler::Session);
        let rows = run_claim(&mut exec, &sql, worker_id, queues, limit, start, classes).await?;
        store.keep_claim_session(conn);
        rows
    } else {
        let mut conn = store.conn().await?;
        run_claim(
            &mut conn.exec(),
            &sql,
            worker_id,
            queues,
            limit,
            start,
            classes,
        )
        .await?
    };
    let mut out = decode_all(&rows, job_process)?;
    out.sort_by_key(|p| p.id);
    Ok(out)
}

/// See [`Store::next_start_in`](crate::store::Store::next_start_in).
pub(super) async fn next_start_in(store: &PgStore, queues: &[String]) -> Result<Option<Duration>> {
    let secs: Option<f64> = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM (min(start_at) - now()))::float8 FROM plainjobs_jobrequest WHERE queue = ANY($1) AND start_at > now()",
    )
    .bind(queues)
    .fetch_one(&mut store.conn().await?.exec())
    .await?;
    Ok(secs.map(|s| Duration::from_secs_f64(s.max(0.0))))
}

/// See [`Store::vacuum_requests`](crate::store::Store::vacuum_requests).
pub(super) async fn vacuum_requests(store: &PgStore) -> Result<()> {
    // No truncation: giving back the empty tail of a drained table takes an ACCESS
    // EXCLUSIVE lock that enqueues and claims would queue behind. The simple protocol: one
    // exchange, outside any transaction (VACUUM refuses a transaction block), which a
    // transaction pooler passes as it is.
    let mut conn = store.conn().await?;
    sqlx::Executor::execute(
        &mut conn.exec(),
        "VACUUM (SKIP_LOCKED, TRUNCATE false) plainjobs_jobrequest, plainjobs_jobprocess",
    )
    .await?;
    Ok(())
}
