//! Inserting requests (multi-row `VALUES`, 500 rows per statement), and a request inserted
//! straight as a begun process (local dispatch).

use sqlx::SqliteConnection;
use uuid::Uuid;

use super::listen::wake_local;
use super::sql::{now_us, placeholders, us, CHUNK};
use super::SqliteStore;
use crate::model::{JobProcess, JobRequest};
use crate::store::rows::{decode_all, job_process, job_request, PROCESS_COLUMNS, REQUEST_COLUMNS};
use crate::store::sql::micros;
use crate::store::{NewRequest, Start};
use crate::Result;

pub(super) async fn insert_requests(
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

/// See [`Store::insert_started`](crate::store::Store::insert_started).
pub(super) async fn insert_started(
    store: &SqliteStore,
    worker_id: Uuid,
    req: &NewRequest,
    process_uuid: Uuid,
) -> Result<Option<(JobRequest, JobProcess)>> {
    let mut tx = store.write_tx().await?;
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
