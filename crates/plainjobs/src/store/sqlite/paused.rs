//! Paused queues on SQLite: a table of their own (no Plain app shares this file).

use super::sql::now_us;
use super::SqliteStore;
use crate::store::rows::{decode_all, DecodeRow};
use crate::store::PausedQueue;
use crate::Result;

/// Pauses `queue`; false when it already was.
pub(super) async fn pause(store: &SqliteStore, queue: &str, by: &str) -> Result<bool> {
    let now = now_us();
    let inserted = sqlx::query(
        "INSERT INTO plainjobs_paused_queue (queue, paused_at, paused_by) VALUES (?1, ?2, ?3)
         ON CONFLICT (queue) DO NOTHING",
    )
    .bind(queue)
    .bind(now)
    .bind(by)
    .execute(store.pool())
    .await?
    .rows_affected();
    Ok(inserted > 0)
}

/// Resumes `queue`; false when it was not paused.
pub(super) async fn resume(store: &SqliteStore, queue: &str) -> Result<bool> {
    let deleted = sqlx::query("DELETE FROM plainjobs_paused_queue WHERE queue = ?1")
        .bind(queue)
        .execute(store.pool())
        .await?
        .rows_affected();
    Ok(deleted > 0)
}

/// Every paused queue, by name.
pub(super) async fn paused_queues(store: &SqliteStore) -> Result<Vec<PausedQueue>> {
    let rows = sqlx::query(
        "SELECT queue, paused_at, paused_by FROM plainjobs_paused_queue ORDER BY queue",
    )
    .fetch_all(store.pool())
    .await?;
    decode_all(&rows, |row| {
        Ok(PausedQueue {
            queue: row.text("queue")?,
            paused_at: Some(row.time("paused_at")?),
            paused_by: row.text("paused_by")?,
        })
    })
}
