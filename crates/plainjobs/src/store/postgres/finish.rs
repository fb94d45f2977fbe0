//! The result writer's statement: starts and ends of many jobs in one round trip.

use uuid::Uuid;

use super::{new_uuids, PgStore};
use crate::store::Finish;
use crate::Result;

/// See [`Store::finish_many`](crate::store::Store::finish_many).
pub(super) async fn finish_many(
    store: &PgStore,
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
            .execute(&mut store.conn().await?.exec())
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
    .fetch_all(&mut store.conn().await?.exec())
    .await?;
    Ok(rows)
}
