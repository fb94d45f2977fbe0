//! Jobs that never began, handed back to the request table as they were enqueued.

use uuid::Uuid;

use super::PgStore;
use crate::store::NOT_BEGUN;
use crate::Result;

/// Moves the processes matching `where_clause` back to the request table as they were
/// enqueued: same uuid, same `created_at`, `start_at` NULL (they were due), no retry spent.
pub(super) fn hand_back_sql(where_clause: &str) -> String {
    format!(
        "WITH back AS (DELETE FROM plainjobs_jobprocess WHERE {where_clause} RETURNING *)
         INSERT INTO plainjobs_jobrequest (created_at, uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, start_at, trace_id, span_id)
         SELECT COALESCE(requested_at, created_at), job_request_uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, NULL, trace_id, span_id
         FROM back ORDER BY id"
    )
}

/// See [`Store::hand_back`](crate::store::Store::hand_back).
pub(super) async fn hand_back(store: &PgStore, worker_id: Uuid, uuids: &[Uuid]) -> Result<u64> {
    if uuids.is_empty() {
        return Ok(0);
    }
    let sql = hand_back_sql("worker_id = $1 AND uuid = ANY($2) AND started_at IS NULL");
    let done = sqlx::query(&sql)
        .bind(worker_id)
        .bind(uuids)
        .execute(&mut store.conn().await?.exec())
        .await?;
    if done.rows_affected() > 0 {
        store.wake_local();
    }
    Ok(done.rows_affected())
}

/// See [`Store::hand_back_unaccounted`](crate::store::Store::hand_back_unaccounted).
pub(super) async fn hand_back_unaccounted(
    store: &PgStore,
    worker_id: Uuid,
    accounted: &[Uuid],
) -> Result<u64> {
    let sql = hand_back_sql(&format!(
        "worker_id = $1 AND {NOT_BEGUN} AND NOT (uuid = ANY($2))"
    ));
    let done = sqlx::query(&sql)
        .bind(worker_id)
        .bind(accounted)
        .execute(&mut store.conn().await?.exec())
        .await?;
    if done.rows_affected() > 0 {
        store.wake_local();
    }
    Ok(done.rows_affected())
}
