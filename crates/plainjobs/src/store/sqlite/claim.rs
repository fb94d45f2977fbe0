//! The claim: ready requests moved to the process table under the write lock; and what the
//! claim loop asks besides (the next start time).

use std::time::Duration;

use uuid::Uuid;

use super::sql::{now_us, text_list, uuid_list};
use super::SqliteStore;
use crate::model::{new_uuid, JobProcess};
use crate::store::rows::{decode_all, job_process, PROCESS_COLUMNS};
use crate::store::ClaimHow;
use crate::Result;

/// See [`Store::claim`](crate::store::Store::claim). One write transaction: the ready requests
/// are copied as this worker's processes in claim order inside SQLite (only the processes come
/// back), then deleted.
pub(super) async fn claim(
    store: &SqliteStore,
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
    let sql = claim_sql(queues.len(), classes.is_some());
    let queue_arg = if queues.len() == 1 {
        queues[0].clone()
    } else {
        text_list(queues.iter().cloned())
    };
    let process_uuids = text_list((0..limit).map(|_| new_uuid().to_string()));
    let mut tx = store.write_tx().await?;
    let query = sqlx::query(&sql)
        .bind(queue_arg)
        .bind(now_us())
        .bind(worker_id.to_string())
        .bind(limit)
        .bind(classes.map(|c| text_list(c.iter().cloned())))
        .bind(process_uuids)
        .bind(start);
    let rows = query.fetch_all(&mut *tx).await?;
    let mut out = decode_all(&rows, job_process)?;
    if !out.is_empty() {
        sqlx::query(
            "DELETE FROM plainjobs_jobrequest WHERE uuid IN (SELECT value FROM json_each(?1))",
        )
        .bind(uuid_list(
            &out.iter().map(|p| p.job_request_uuid).collect::<Vec<_>>(),
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    // RETURNING gives no order; the processes' ids follow the claim order.
    out.sort_by_key(|p| p.id);
    Ok(out)
}

/// The claim: up to `?4` ready requests of the queue `?1` (a JSON list of queues when there
/// are several) due at `?2`, of the job names in `?5` when given, none unless worker `?3`'s
/// heartbeat row exists, copied in claim order as its processes with the uuids of `?6`, the
/// first `?7` stamped as started.
pub(super) fn claim_sql(queues: usize, by_class: bool) -> String {
    let queue_filter = if queues == 1 {
        "queue = ?1"
    } else {
        "queue IN (SELECT value FROM json_each(?1))"
    };
    // Only the worker's own job types, for a queue shared with workers that run others.
    let class_filter = if by_class {
        "AND job_class IN (SELECT value FROM json_each(?5))"
    } else {
        ""
    };
    format!(
        "WITH picked AS (
            SELECT id, row_number() OVER (ORDER BY priority DESC, COALESCE(start_at, created_at), id) - 1 AS n
            FROM (SELECT id, priority, start_at, created_at FROM plainjobs_jobrequest
                  WHERE {queue_filter} AND (start_at IS NULL OR start_at <= ?2) {class_filter}
                    AND EXISTS (SELECT 1 FROM plainjobs_workerheartbeat WHERE worker_id = ?3)
                  ORDER BY priority DESC, COALESCE(start_at, created_at), id
                  LIMIT ?4)
         )
         INSERT INTO plainjobs_jobprocess (uuid, created_at, started_at, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, trace_id, span_id, worker_id)
         SELECT ?6 ->> b.n, ?2, CASE WHEN b.n < ?7 THEN ?2 END, r.uuid, r.created_at, r.job_class, r.parameters, r.priority, r.source, r.queue, r.retries, r.retry_attempt, r.concurrency_key, r.trace_id, r.span_id, ?3
         FROM picked AS b JOIN plainjobs_jobrequest AS r ON r.id = b.id
         ORDER BY b.n
         RETURNING {PROCESS_COLUMNS}"
    )
}

/// See [`Store::next_start_in`](crate::store::Store::next_start_in).
pub(super) async fn next_start_in(
    store: &SqliteStore,
    queues: &[String],
) -> Result<Option<Duration>> {
    let list = text_list(queues.iter().cloned());
    let now = now_us();
    let next: Option<i64> = sqlx::query_scalar(
        "SELECT min(start_at) FROM plainjobs_jobrequest WHERE queue IN (SELECT value FROM json_each(?1)) AND start_at > ?2",
    )
    .bind(list)
    .bind(now)
    .fetch_one(&store.pool)
    .await?;
    Ok(next.map(|t| Duration::from_micros(u64::try_from(t - now).unwrap_or(0))))
}
