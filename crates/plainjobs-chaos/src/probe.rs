//! The orchestrator's questions to the database while faults happen. Every one may fail while
//! the server restarts; [`poll_until`] treats a failure as "not yet".

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// Polls `check` every 50 ms until it is true (returns how long that took) or `bound` passes.
pub async fn poll_until<F, Fut>(bound: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = sqlx::Result<bool>>,
{
    let started = Instant::now();
    while started.elapsed() < bound {
        if let Ok(true) = check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// The database's clock and the newest result id: "after the fault" is measured against both.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    pub at: DateTime<Utc>,
    pub last_result: i64,
}

pub async fn mark(db: &PgPool) -> sqlx::Result<Mark> {
    let (at, last_result) = sqlx::query_as(
        "SELECT now(), COALESCE((SELECT max(id) FROM plainjobs_jobresult), 0)::bigint",
    )
    .fetch_one(db)
    .await?;
    Ok(Mark { at, last_result })
}

pub async fn worker_id_of(db: &PgPool, pid: u32) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("SELECT worker_id FROM plainjobs_workerheartbeat WHERE pid = $1")
        .bind(i64::from(pid))
        .fetch_optional(db)
        .await
}

/// The worker is gone from the heartbeat table and none of its jobs is still a process: a peer
/// rescued it.
pub async fn rescued(db: &PgPool, worker: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT NOT EXISTS (SELECT 1 FROM plainjobs_workerheartbeat WHERE worker_id = $1)
            AND NOT EXISTS (SELECT 1 FROM plainjobs_jobprocess WHERE worker_id = $1)",
    )
    .bind(worker)
    .fetch_one(db)
    .await
}

/// The worker process holding the most claimed-ahead jobs (claimed, not yet started), if any.
pub async fn most_claimed_ahead(db: &PgPool) -> sqlx::Result<Option<(u32, i64)>> {
    let row: Option<(i32, i64)> = sqlx::query_as(
        "SELECT h.pid, count(*) FROM plainjobs_jobprocess p
           JOIN plainjobs_workerheartbeat h USING (worker_id)
          WHERE p.started_at IS NULL GROUP BY h.pid ORDER BY count(*) DESC LIMIT 1",
    )
    .fetch_optional(db)
    .await?;
    Ok(row.and_then(|(pid, n)| Some((u32::try_from(pid).ok()?, n))))
}

pub async fn registered(db: &PgPool, pid: u32) -> sqlx::Result<bool> {
    Ok(worker_id_of(db, pid).await?.is_some())
}

/// Every registered worker has heartbeated since `mark`, and results are being written again
/// (or there is nothing ready to work on).
pub async fn recovered_since(db: &PgPool, mark: Mark) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT NOT EXISTS (SELECT 1 FROM plainjobs_workerheartbeat WHERE last_heartbeat_at <= $1)
            AND (EXISTS (SELECT 1 FROM plainjobs_jobresult WHERE id > $2)
                 OR (NOT EXISTS (SELECT 1 FROM plainjobs_jobprocess)
                     AND NOT EXISTS (SELECT 1 FROM plainjobs_jobrequest WHERE start_at IS NULL OR start_at <= now())))",
    )
    .bind(mark.at)
    .bind(mark.last_result)
    .fetch_one(db)
    .await
}

/// Nothing left to do: no request, no process, no failed result still owed a retry, no
/// heartbeat gone stale (a dead worker not yet rescued).
pub async fn quiet(db: &PgPool, heartbeat_timeout: Duration) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT NOT EXISTS (SELECT 1 FROM plainjobs_jobrequest)
            AND NOT EXISTS (SELECT 1 FROM plainjobs_jobprocess)
            AND NOT EXISTS (SELECT 1 FROM plainjobs_jobresult
                            WHERE status IN ('ERRORED', 'LOST', 'CANCELLED')
                              AND retry_job_request_uuid IS NULL AND retries > 0
                              AND retry_attempt < retries)
            AND NOT EXISTS (SELECT 1 FROM plainjobs_workerheartbeat
                            WHERE last_heartbeat_at < now() - $1 * interval '1 millisecond')",
    )
    .bind(heartbeat_timeout.as_millis() as f64)
    .fetch_one(db)
    .await
}

/// Keys held by more than one request or process in one snapshot (one statement sees one
/// snapshot): what the uniqueness check promises never happens.
pub async fn shared_keys(db: &PgPool) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT concurrency_key, count(*) FROM (
            SELECT job_class, concurrency_key FROM plainjobs_jobrequest WHERE concurrency_key <> ''
            UNION ALL
            SELECT job_class, concurrency_key FROM plainjobs_jobprocess WHERE concurrency_key <> ''
         ) t GROUP BY job_class, concurrency_key HAVING count(*) > 1",
    )
    .fetch_all(db)
    .await
}

/// Sessions of clients whose application_name is LIKE `pattern`, ended; returns how many.
pub async fn terminate_backends(db: &PgPool, pattern: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE application_name LIKE $1 AND pid <> pg_backend_pid()) t",
    )
    .bind(pattern)
    .fetch_one(db)
    .await
}
