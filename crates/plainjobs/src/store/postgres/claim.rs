//! The claim: ready requests moved to the process table in one statement, with its plan pinned
//! (`pinned.rs`); and what the claim loop asks besides (the next start time, vacuum).

use std::time::Duration;

use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::{new_uuids, PgExec, PgStore};
use crate::model::JobProcess;
use crate::store::rows::{decode_all, job_process, PROCESS_COLUMNS};
use crate::store::ClaimHow;
use crate::Result;

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
    let mut conn = store.pinned(how.pinned_session).await?;
    let rows = run_claim(
        &mut conn.exec(),
        &sql,
        worker_id,
        queues,
        limit,
        start,
        classes,
    )
    .await?;
    conn.done(store).await?;
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
