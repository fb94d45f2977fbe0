//! Rescues: the processes of dead workers, of no worker, and a worker's own orphans, turned
//! into LOST results (or handed back when they never began).

use std::time::Duration;

use sqlx::Row;
use uuid::Uuid;

use super::finish::{delete_processes, insert_results};
use super::hand_back::hand_back_where;
use super::listen::wake_local;
use super::sql::{now_us, uuid_list};
use super::SqliteStore;
use crate::model::{JobResult, JobStatus};
use crate::store::rows::{decode_all, job_process, DecodeRow, PROCESS_COLUMNS};
use crate::store::sql::micros;
use crate::store::{Orphans, NOT_BEGUN};
use crate::Result;

/// See [`Store::rescue_worker`](crate::store::Store::rescue_worker).
pub(super) async fn rescue_worker(
    store: &SqliteStore,
    worker_id: Uuid,
    timeout: Duration,
) -> Result<Option<Vec<JobResult>>> {
    let mut tx = store.write_tx().await?;
    let hb = sqlx::query(
        "DELETE FROM plainjobs_workerheartbeat WHERE worker_id = ?1 AND last_heartbeat_at < ?2 RETURNING hostname, pid, last_heartbeat_at",
    )
    .bind(worker_id.to_string())
    .bind(now_us() - micros(timeout))
    .fetch_optional(&mut *tx)
    .await?;
    let Some(hb) = hb else {
        return Ok(None);
    };
    let host: String = hb.try_get("hostname")?;
    let pid: i32 = hb.try_get("pid")?;
    let last = hb.time("last_heartbeat_at")?;
    let error = format!(
        "Lost: worker {worker_id} ({host}, pid {pid}) stopped heartbeating; its last heartbeat was at {}",
        last.to_rfc3339()
    );
    let gone = delete_processes(&mut tx, worker_id, None).await?;
    let rows: Vec<_> = gone
        .iter()
        .map(|p| (p, JobStatus::Lost, error.as_str(), None))
        .collect();
    let results = insert_results(&mut tx, &rows).await?;
    tx.commit().await?;
    Ok(Some(results))
}

/// See [`Store::rescue_orphans`](crate::store::Store::rescue_orphans).
pub(super) async fn rescue_orphans(
    store: &SqliteStore,
    worker_id: Uuid,
    timeout: Duration,
    held: &[Uuid],
    began: &[Uuid],
) -> Result<Orphans> {
    let mut tx = store.write_tx().await?;
    // Jobs that never began go back to the queue first; what remains of the orphans began.
    let accounted: Vec<Uuid> = held.iter().chain(began).copied().collect();
    let filter = format!("{NOT_BEGUN} AND uuid NOT IN (SELECT value FROM json_each(?2))");
    let handed_back =
        hand_back_where(&mut tx, worker_id, &filter, &accounted, Some(timeout)).await?;
    let sql = format!(
        "DELETE FROM plainjobs_jobprocess WHERE worker_id = ?1 AND created_at < ?2 AND uuid NOT IN (SELECT value FROM json_each(?3)) RETURNING {PROCESS_COLUMNS}"
    );
    let rows = sqlx::query(&sql)
        .bind(worker_id.to_string())
        .bind(now_us() - micros(timeout))
        .bind(uuid_list(held))
        .fetch_all(&mut *tx)
        .await?;
    let mut gone = decode_all(&rows, job_process)?;
    gone.sort_by_key(|p| p.id);
    let error =
        format!("Lost: worker {worker_id} no longer ran this job (its bookkeeping was lost)");
    let rows: Vec<_> = gone
        .iter()
        .map(|p| (p, JobStatus::Lost, error.as_str(), None))
        .collect();
    let lost = insert_results(&mut tx, &rows).await?;
    tx.commit().await?;
    if handed_back > 0 {
        wake_local(Some(&store.db));
    }
    Ok(Orphans { handed_back, lost })
}

/// See [`Store::rescue_unowned`](crate::store::Store::rescue_unowned).
pub(super) async fn rescue_unowned(
    store: &SqliteStore,
    timeout: Duration,
) -> Result<Vec<JobResult>> {
    let mut tx = store.write_tx().await?;
    let sql = format!(
        "DELETE FROM plainjobs_jobprocess WHERE created_at < ?1
           AND NOT EXISTS (SELECT 1 FROM plainjobs_workerheartbeat h WHERE h.worker_id = plainjobs_jobprocess.worker_id)
         RETURNING {PROCESS_COLUMNS}"
    );
    let rows = sqlx::query(&sql)
        .bind(now_us() - micros(timeout))
        .fetch_all(&mut *tx)
        .await?;
    let mut gone = decode_all(&rows, job_process)?;
    gone.sort_by_key(|p| p.id);
    let error = "Lost: its worker has no heartbeat row (it died without being rescued)";
    let rows: Vec<_> = gone
        .iter()
        .map(|p| (p, JobStatus::Lost, error, None))
        .collect();
    let results = insert_results(&mut tx, &rows).await?;
    tx.commit().await?;
    Ok(results)
}
