//! The result writer: starts and ends of many jobs in one transaction; and the deletes and
//! inserts the other moves of processes to results share.

use serde_json::{json, Value};
use sqlx::SqliteConnection;
use uuid::Uuid;

use super::sql::{
    now_us, params_text, placeholders, text_list, us, uuid_from_text, uuid_list, CHUNK,
};
use super::SqliteStore;
use crate::model::{new_uuid, JobProcess, JobResult, JobStatus};
use crate::store::rows::{decode_all, job_process, job_result, PROCESS_COLUMNS, RESULT_COLUMNS};
use crate::store::Finish;
use crate::Result;

/// Inserts results for processes already deleted, in chunks; returns them.
pub(super) async fn insert_results(
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
pub(super) async fn delete_processes(
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

/// Moves the processes of worker `?2` named in `?3` (a JSON array of `[process uuid, status,
/// error, result uuid]`) to results ended at `?1`, in process order, inside SQLite: no process
/// row comes back to the application to be sent again as a result. `CROSS JOIN` keeps the list
/// the outer loop and `+` keeps the worker's index out, so each process is one look-up by its
/// uuid (a scan of the worker's processes, each against the whole list, cost more than the
/// rest of a drain).
pub(super) const RESULTS_FROM_PROCESSES: &str = "INSERT INTO plainjobs_jobresult (uuid, created_at, job_process_uuid, started_at, ended_at, error, status, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, retry_job_request_uuid, trace_id, span_id)
     SELECT i.value ->> 3, ?1, p.uuid, COALESCE(p.started_at, ?1), ?1, i.value ->> 2, i.value ->> 1, p.job_request_uuid, p.requested_at, p.job_class, p.parameters, p.priority, p.source, p.queue, p.retries, p.retry_attempt, p.concurrency_key, NULL, p.trace_id, p.span_id
     FROM json_each(?3) AS i CROSS JOIN plainjobs_jobprocess AS p ON p.uuid = i.value ->> 0
     WHERE +p.worker_id = ?2
     ORDER BY p.id
     RETURNING job_process_uuid";

/// Stamps the processes of worker `?2` in `?3` (a JSON list of uuids) started at `?1`.
pub(super) const MARK_STARTED: &str = "UPDATE plainjobs_jobprocess SET started_at = ?1 WHERE +worker_id = ?2 AND started_at IS NULL AND uuid IN (SELECT value FROM json_each(?3))";

/// Deletes the processes of worker `?1` in `?2` (a JSON list of uuids).
pub(super) const DELETE_FINISHED: &str = "DELETE FROM plainjobs_jobprocess WHERE +worker_id = ?1 AND uuid IN (SELECT value FROM json_each(?2))";

/// See [`Store::finish_many`](crate::store::Store::finish_many).
pub(super) async fn finish_many(
    store: &SqliteStore,
    worker_id: Uuid,
    starts: &[Uuid],
    items: &[Finish],
) -> Result<Vec<Uuid>> {
    if items.is_empty() && starts.is_empty() {
        return Ok(Vec::new());
    }
    let worker = worker_id.to_string();
    let mut tx = store.write_tx().await?;
    // Read under the write lock: results get times in the order of their ids, which the
    // dashboard's counts rely on (a time read before waiting for the lock could be older than
    // a result written meanwhile).
    let now = now_us();
    if !starts.is_empty() {
        sqlx::query(MARK_STARTED)
            .bind(now)
            .bind(&worker)
            .bind(uuid_list(starts))
            .execute(&mut *tx)
            .await?;
    }
    if items.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    // A job that began and ended between two writes has its start recorded as its end.
    let written: Vec<String> = sqlx::query_scalar(RESULTS_FROM_PROCESSES)
        .bind(now)
        .bind(&worker)
        .bind(finish_list(items))
        .fetch_all(&mut *tx)
        .await?;
    sqlx::query(DELETE_FINISHED)
        .bind(&worker)
        .bind(text_list(written.iter().cloned()))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    written
        .iter()
        .map(|u| uuid_from_text("job_process_uuid", u).map_err(Into::into))
        .collect()
}

/// The finishes as the JSON array [`RESULTS_FROM_PROCESSES`] reads, each with a new result uuid.
fn finish_list(items: &[Finish]) -> String {
    let rows = items.iter().map(|f| {
        json!([
            f.process_uuid.to_string(),
            f.status.as_str(),
            f.error,
            new_uuid().to_string()
        ])
    });
    Value::Array(rows.collect()).to_string()
}
