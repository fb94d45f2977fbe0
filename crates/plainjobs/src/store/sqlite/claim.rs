//! The claim: ready requests moved to the process table under the write lock; and what the
//! claim loop asks besides (the next start time).

use std::time::Duration;

use sqlx::SqliteConnection;
use uuid::Uuid;

use super::sql::{now_us, params_text, placeholders, text_list, us, CHUNK};
use super::SqliteStore;
use crate::model::{new_uuid, JobProcess, JobRequest};
use crate::store::rows::{decode_all, job_process, job_request, PROCESS_COLUMNS, REQUEST_COLUMNS};
use crate::store::ClaimHow;
use crate::Result;

/// See [`Store::claim`](crate::store::Store::claim). One write transaction: the ready requests
/// are deleted, then inserted as this worker's processes in claim order.
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
    let now = now_us();
    let mut tx = store.write_tx().await?;
    let classes = how.job_classes.as_deref();
    let taken = take_ready(&mut tx, worker_id, queues, classes, limit, now).await?;
    let mut out = Vec::with_capacity(taken.len());
    for (chunk_no, chunk) in taken.chunks(CHUNK).enumerate() {
        let first = (chunk_no * CHUNK) as i64;
        out.extend(insert_processes(&mut tx, worker_id, chunk, first, start, now).await?);
    }
    tx.commit().await?;
    out.sort_by_key(|p| p.id);
    Ok(out)
}

/// Deletes up to `limit` ready requests of `queues` (none unless the worker's heartbeat row
/// exists) and returns them in claim order.
async fn take_ready(
    tx: &mut SqliteConnection,
    worker_id: Uuid,
    queues: &[String],
    job_classes: Option<&[String]>,
    limit: i64,
    now: i64,
) -> Result<Vec<JobRequest>> {
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
    // Only the worker's own job types (?5), for a queue shared with workers that run others.
    let class_filter = if job_classes.is_some() {
        "AND job_class IN (SELECT value FROM json_each(?5))"
    } else {
        ""
    };
    let sql = format!(
        "DELETE FROM plainjobs_jobrequest WHERE id IN (
            SELECT id FROM plainjobs_jobrequest
            WHERE {queue_filter} AND (start_at IS NULL OR start_at <= ?2) {class_filter}
              AND EXISTS (SELECT 1 FROM plainjobs_workerheartbeat WHERE worker_id = ?3)
            ORDER BY priority DESC, COALESCE(start_at, created_at), id
            LIMIT ?4)
         RETURNING {REQUEST_COLUMNS}"
    );
    let query = sqlx::query(&sql)
        .bind(queue_arg)
        .bind(now)
        .bind(worker_id.to_string())
        .bind(limit);
    let query = match job_classes {
        Some(classes) => query.bind(text_list(classes.iter().cloned())),
        None => query,
    };
    let rows = query.fetch_all(&mut *tx).await?;
    let mut taken = decode_all(&rows, job_request)?;
    // RETURNING gives no order: the claim's own.
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
    Ok(taken)
}

/// Inserts `chunk` (taken requests from position `first` in claim order) as processes of
/// `worker_id`; those before position `start` are stamped as started.
async fn insert_processes(
    tx: &mut SqliteConnection,
    worker_id: Uuid,
    chunk: &[JobRequest],
    first: i64,
    start: i64,
    now: i64,
) -> Result<Vec<JobProcess>> {
    let sql = format!(
        "INSERT INTO plainjobs_jobprocess (uuid, created_at, started_at, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, trace_id, span_id, worker_id)
             VALUES {} RETURNING {PROCESS_COLUMNS}",
        placeholders(chunk.len(), 16)
    );
    let mut q = sqlx::query(&sql);
    for (i, r) in chunk.iter().enumerate() {
        let n = first + i as i64;
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
    decode_all(&rows, job_process)
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
