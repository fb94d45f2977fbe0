//! Jobs that never began, handed back to the request table as they were enqueued.

use std::time::Duration;

use sqlx::SqliteConnection;
use uuid::Uuid;

use super::listen::wake_local;
use super::sql::{now_us, params_text, placeholders, us, uuid_list, CHUNK};
use super::SqliteStore;
use crate::store::rows::{decode_all, job_process, PROCESS_COLUMNS};
use crate::store::sql::micros;
use crate::store::NOT_BEGUN;
use crate::Result;

/// Deletes this worker's processes that `filter` selects (a condition that may use the uuid
/// list as `?2`), and puts them back in the request table as they were enqueued: same uuid,
/// same `created_at`, `start_at` NULL (they were due), no retry spent. With `min_age`, only
/// processes claimed longer ago than that. Returns how many went back.
pub(super) async fn hand_back_where(
    conn: &mut SqliteConnection,
    worker_id: Uuid,
    filter: &str,
    uuids: &[Uuid],
    min_age: Option<Duration>,
) -> Result<u64> {
    let sql = format!(
        "DELETE FROM plainjobs_jobprocess WHERE worker_id = ?1 AND {filter}
           AND (?3 IS NULL OR created_at < ?3)
         RETURNING {PROCESS_COLUMNS}"
    );
    let rows = sqlx::query(&sql)
        .bind(worker_id.to_string())
        .bind(uuid_list(uuids))
        .bind(min_age.map(|age| now_us() - micros(age)))
        .fetch_all(&mut *conn)
        .await?;
    let mut gone = decode_all(&rows, job_process)?;
    gone.sort_by_key(|p| p.id);
    for chunk in gone.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO plainjobs_jobrequest (created_at, uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, start_at, trace_id, span_id)
             VALUES {}",
            placeholders(chunk.len(), 13)
        );
        let mut q = sqlx::query(&sql);
        for p in chunk {
            q = q
                .bind(us(p.requested_at.unwrap_or(p.created_at)))
                .bind(p.job_request_uuid.to_string())
                .bind(&p.job_class)
                .bind(params_text(&p.parameters))
                .bind(p.priority)
                .bind(&p.source)
                .bind(&p.queue)
                .bind(p.retries)
                .bind(p.retry_attempt)
                .bind(&p.concurrency_key)
                .bind(None::<i64>)
                .bind(&p.trace_id)
                .bind(&p.span_id);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(gone.len() as u64)
}

/// See [`Store::hand_back`](crate::store::Store::hand_back).
pub(super) async fn hand_back(store: &SqliteStore, worker_id: Uuid, uuids: &[Uuid]) -> Result<u64> {
    let mut tx = store.write_tx().await?;
    // Only unstarted jobs go back; a started one stays ours.
    let n = hand_back_where(
        &mut tx,
        worker_id,
        "started_at IS NULL AND uuid IN (SELECT value FROM json_each(?2))",
        uuids,
        None,
    )
    .await?;
    tx.commit().await?;
    if n > 0 {
        wake_local(Some(&store.db));
    }
    Ok(n)
}

/// See [`Store::hand_back_unaccounted`](crate::store::Store::hand_back_unaccounted).
pub(super) async fn hand_back_unaccounted(
    store: &SqliteStore,
    worker_id: Uuid,
    accounted: &[Uuid],
) -> Result<u64> {
    let mut tx = store.write_tx().await?;
    let filter = format!("{NOT_BEGUN} AND uuid NOT IN (SELECT value FROM json_each(?2))");
    let n = hand_back_where(&mut tx, worker_id, &filter, accounted, None).await?;
    tx.commit().await?;
    if n > 0 {
        wake_local(Some(&store.db));
    }
    Ok(n)
}
