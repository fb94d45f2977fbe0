//! Rescues: the processes of dead workers, of no worker, and a worker's own orphans, turned
//! into LOST results (or handed back when they never began).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use super::hand_back::hand_back_sql;
use super::PgStore;
use crate::model::JobResult;
use crate::store::rows::{decode_all, job_result, RESULT_COLUMNS};
use crate::store::sql::micros;
use crate::store::{Orphans, NOT_BEGUN};
use crate::Result;

/// Moves the processes matching `where_clause` into LOST results whose error is `error_param`.
fn lost_results_sql(where_clause: &str, error_param: &str) -> String {
    format!(
        "WITH done AS (DELETE FROM plainjobs_jobprocess WHERE {where_clause} RETURNING *)
         INSERT INTO plainjobs_jobresult (uuid, created_at, job_process_uuid, started_at, ended_at, error, status, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, retry_job_request_uuid, trace_id, span_id)
         SELECT gen_random_uuid(), now(), uuid, started_at, now(), {error_param}, 'LOST', job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, NULL, trace_id, span_id
         FROM done ORDER BY id
         RETURNING {RESULT_COLUMNS}"
    )
}

/// See [`Store::rescue_worker`](crate::store::Store::rescue_worker).
pub(super) async fn rescue_worker(
    store: &PgStore,
    worker_id: Uuid,
    timeout: Duration,
) -> Result<Option<Vec<JobResult>>> {
    let mut tx = store.tx().await?;
    let hb = sqlx::query(
        "DELETE FROM plainjobs_workerheartbeat WHERE worker_id = $1 AND last_heartbeat_at < now() - $2 * interval '1 microsecond'
         RETURNING hostname, pid, last_heartbeat_at",
    )
    .bind(worker_id)
    .bind(micros(timeout))
    .fetch_optional(&mut tx.exec())
    .await?;
    let Some(hb) = hb else {
        return Ok(None);
    };
    let host: String = hb.try_get("hostname")?;
    let pid: i32 = hb.try_get("pid")?;
    let last: DateTime<Utc> = hb.try_get("last_heartbeat_at")?;
    let error = format!(
        "Lost: worker {worker_id} ({host}, pid {pid}) stopped heartbeating; its last heartbeat was at {}",
        last.to_rfc3339()
    );
    let sql = lost_results_sql("worker_id = $1", "$2");
    let rows = sqlx::query(&sql)
        .bind(worker_id)
        .bind(error)
        .fetch_all(&mut tx.exec())
        .await?;
    let results = decode_all(&rows, job_result)?;
    tx.commit().await?;
    Ok(Some(results))
}

/// See [`Store::rescue_orphans`](crate::store::Store::rescue_orphans).
pub(super) async fn rescue_orphans(
    store: &PgStore,
    worker_id: Uuid,
    timeout: Duration,
    held: &[Uuid],
    began: &[Uuid],
) -> Result<Orphans> {
    let mut tx = store.tx().await?;
    // Jobs that never began go back to the queue; those that began become LOST. Each statement
    // sees the rows committed when it starts, so the second one names what it takes rather
    // than taking "what is left": a never-begun row committed in between (a late claim) waits
    // for the next rescue to be handed back instead of being lost.
    let accounted: Vec<Uuid> = held.iter().chain(began).copied().collect();
    let back = hand_back_sql(&format!(
        "worker_id = $1 AND {NOT_BEGUN} AND NOT (uuid = ANY($2))
         AND created_at < now() - $3 * interval '1 microsecond'"
    ));
    let handed_back = sqlx::query(&back)
        .bind(worker_id)
        .bind(&accounted)
        .bind(micros(timeout))
        .execute(&mut tx.exec())
        .await?
        .rows_affected();
    let sql = lost_results_sql(
        &format!(
            "worker_id = $1 AND created_at < now() - $2 * interval '1 microsecond' AND NOT (uuid = ANY($3))
             AND (NOT {NOT_BEGUN} OR uuid = ANY($5))"
        ),
        "$4",
    );
    let rows = sqlx::query(&sql)
        .bind(worker_id)
        .bind(micros(timeout))
        .bind(held)
        .bind(format!(
            "Lost: worker {worker_id} no longer ran this job (its bookkeeping was lost)"
        ))
        .bind(began)
        .fetch_all(&mut tx.exec())
        .await?;
    let lost = decode_all(&rows, job_result)?;
    tx.commit().await?;
    if handed_back > 0 {
        store.wake_local();
    }
    Ok(Orphans { handed_back, lost })
}

/// See [`Store::rescue_unowned`](crate::store::Store::rescue_unowned).
pub(super) async fn rescue_unowned(store: &PgStore, timeout: Duration) -> Result<Vec<JobResult>> {
    let sql = lost_results_sql(
        "created_at < now() - $1 * interval '1 microsecond'
         AND NOT EXISTS (SELECT 1 FROM plainjobs_workerheartbeat h WHERE h.worker_id = plainjobs_jobprocess.worker_id)",
        "$2",
    );
    let rows = sqlx::query(&sql)
        .bind(micros(timeout))
        .bind("Lost: its worker has no heartbeat row (it died without being rescued)")
        .fetch_all(&mut store.conn().await?.exec())
        .await?;
    decode_all(&rows, job_result)
}
