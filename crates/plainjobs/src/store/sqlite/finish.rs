//! The result writer: starts and ends of many jobs in one transaction; and the deletes and
//! inserts the other moves of processes to results share.

use std::collections::HashMap;

use chrono::Utc;
use sqlx::SqliteConnection;
use uuid::Uuid;

use super::sql::{now_us, params_text, placeholders, us, uuid_list, CHUNK};
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
    let mut tx = store.write_tx().await?;
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
