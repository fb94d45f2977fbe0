//! What the tables say once the run is over: every result, and what was left behind.

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;

/// One row of `plainjobs_jobresult`, with the chain number from its parameters.
#[derive(Debug, Clone)]
pub struct ResultRow {
    pub uuid: Uuid,
    pub job_process_uuid: Uuid,
    pub job_request_uuid: Uuid,
    pub retry_job_request_uuid: Option<Uuid>,
    pub status: String,
    pub retry_attempt: i16,
    pub retries: i16,
    pub concurrency_key: String,
    pub error: String,
    /// Microseconds since the Unix epoch, the database's clock.
    pub created_us: i64,
    /// None: not a chaos job's parameters.
    pub chain: Option<i64>,
}

impl ResultRow {
    /// LOST and CANCELLED: the job was taken from its worker, which may have run it (or may
    /// still be running it).
    pub fn aborted(&self) -> bool {
        matches!(self.status.as_str(), "LOST" | "CANCELLED")
    }
}

#[derive(Debug, Clone)]
pub struct Facts {
    pub results: Vec<ResultRow>,
    pub leftover_requests: i64,
    pub leftover_processes: i64,
    /// Process uuids with more than one result, and request uuids with more than one.
    pub processes_with_two_results: i64,
    pub requests_with_two_results: i64,
    pub heartbeats: i64,
}

pub async fn read(db: &PgPool) -> sqlx::Result<Facts> {
    let rows = sqlx::query(
        "SELECT uuid, job_process_uuid, job_request_uuid, retry_job_request_uuid, status,
                retry_attempt, retries, concurrency_key, error,
                (extract(epoch FROM created_at) * 1000000)::bigint AS created_us,
                CASE WHEN parameters->'kwargs'->>'chain' ~ '^[0-9]+$'
                     THEN (parameters->'kwargs'->>'chain')::bigint END AS chain
           FROM plainjobs_jobresult ORDER BY id",
    )
    .fetch_all(db)
    .await?;
    let results = rows.iter().map(result_row).collect::<sqlx::Result<_>>()?;
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql).fetch_one(db);
    Ok(Facts {
        results,
        leftover_requests: count("SELECT count(*) FROM plainjobs_jobrequest").await?,
        leftover_processes: count("SELECT count(*) FROM plainjobs_jobprocess").await?,
        processes_with_two_results: count(
            "SELECT count(*) FROM (SELECT 1 FROM plainjobs_jobresult GROUP BY job_process_uuid HAVING count(*) > 1) t",
        )
        .await?,
        requests_with_two_results: count(
            "SELECT count(*) FROM (SELECT 1 FROM plainjobs_jobresult GROUP BY job_request_uuid HAVING count(*) > 1) t",
        )
        .await?,
        heartbeats: count("SELECT count(*) FROM plainjobs_workerheartbeat").await?,
    })
}

fn result_row(row: &PgRow) -> sqlx::Result<ResultRow> {
    Ok(ResultRow {
        uuid: row.try_get("uuid")?,
        job_process_uuid: row.try_get("job_process_uuid")?,
        job_request_uuid: row.try_get("job_request_uuid")?,
        retry_job_request_uuid: row.try_get("retry_job_request_uuid")?,
        status: row.try_get("status")?,
        retry_attempt: row.try_get("retry_attempt")?,
        retries: row.try_get("retries")?,
        concurrency_key: row.try_get("concurrency_key")?,
        error: row.try_get("error")?,
        created_us: row.try_get("created_us")?,
        chain: row.try_get("chain")?,
    })
}
