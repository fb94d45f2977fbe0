//! The result writer's statement: starts and ends of many jobs in one round trip.
//!
//! Its rows are found by `uuid` (the unique index) alone, with the plan pinned (`pinned.rs`).
//! plain.jobs indexes the process table's `worker_id` and `started_at` too, and those indexes
//! hold an entry for every process since the last vacuum, live or dead: the plan that walked
//! them to find this worker's rows read thousands of dead entries on every write (most of the
//! statement's time in a drain). So the worker check is `IS NOT DISTINCT FROM`, which is no
//! index condition, and a start already recorded is kept by `COALESCE` rather than by an
//! indexable `started_at IS NULL`.

use uuid::Uuid;

use super::{new_uuids, PgStore};
use crate::store::Finish;
use crate::Result;

/// Marks started the processes of `$1` (the worker) whose uuids are in `$2`.
pub(super) const START_SQL: &str =
    "UPDATE plainjobs_jobprocess SET started_at = COALESCE(started_at, now())
     WHERE uuid = ANY($2) AND worker_id IS NOT DISTINCT FROM $1";

/// Marks `$5` started and moves the processes `$2` of worker `$1` to results with statuses
/// `$3`, errors `$4` and result uuids `$6`; returns the process uuids moved.
pub(super) const FINISH_SQL: &str = "WITH started AS (
        UPDATE plainjobs_jobprocess SET started_at = COALESCE(started_at, now())
        WHERE uuid = ANY($5) AND worker_id IS NOT DISTINCT FROM $1
     ), input AS (
        SELECT * FROM unnest($2::uuid[], $3::text[], $4::text[], $6::uuid[]) AS t(process_uuid, status, error, result_uuid)
     ), done AS (
        DELETE FROM plainjobs_jobprocess p USING input i
        WHERE p.uuid = i.process_uuid AND p.worker_id IS NOT DISTINCT FROM $1
        RETURNING p.*, i.status AS new_status, i.error AS new_error, i.result_uuid AS new_uuid
     )
     INSERT INTO plainjobs_jobresult (uuid, created_at, job_process_uuid, started_at, ended_at, error, status, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, retry_job_request_uuid, trace_id, span_id)
     SELECT new_uuid, now(), uuid, COALESCE(started_at, now()), now(), new_error, new_status, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, NULL, trace_id, span_id
     FROM done
     RETURNING job_process_uuid";

/// See [`Store::finish_many`](crate::store::Store::finish_many).
pub(super) async fn finish_many(
    store: &PgStore,
    worker_id: Uuid,
    starts: &[Uuid],
    items: &[Finish],
    pinned_session: bool,
) -> Result<Vec<Uuid>> {
    if items.is_empty() {
        if !starts.is_empty() {
            let mut conn = store.pinned(pinned_session).await?;
            sqlx::query(START_SQL)
                .bind(worker_id)
                .bind(starts)
                .execute(&mut conn.exec())
                .await?;
            conn.done(store).await?;
        }
        return Ok(Vec::new());
    }
    let uuids: Vec<Uuid> = items.iter().map(|i| i.process_uuid).collect();
    let statuses: Vec<&str> = items.iter().map(|i| i.status.as_str()).collect();
    let errors: Vec<&str> = items.iter().map(|i| i.error.as_str()).collect();
    // `starts` never overlaps `items`, so the UPDATE and the DELETE touch different rows. A
    // job that began and ended between two writes has its start recorded as its end.
    let mut conn = store.pinned(pinned_session).await?;
    let rows: Vec<Uuid> = sqlx::query_scalar(FINISH_SQL)
        .bind(worker_id)
        .bind(uuids)
        .bind(statuses)
        .bind(errors)
        .bind(starts)
        .bind(new_uuids(items.len() as i64))
        .fetch_all(&mut conn.exec())
        .await?;
    conn.done(store).await?;
    Ok(rows)
}
