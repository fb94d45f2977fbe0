//! The statements whose SQL is the same on both backends, written once: the reads (for
//! operators, for enqueue's uniqueness checks, for the worker's retry and rescue passes) and the
//! plain writes around them. The claim, the inserts, the result writer and the rescues stay
//! with each backend: they are where the backends differ, and the path that is benchmarked.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::rows::{
    decode_all, job_process, job_request, job_result, worker_heartbeat, DecodeRow,
    HEARTBEAT_COLUMNS, PROCESS_COLUMNS, REQUEST_COLUMNS, RESULT_COLUMNS,
};
use super::sql::{Arg, SqlBackend, SqlConn, Statement};
use super::{browse, counts};
use super::{
    fold_stats, key_condition, CountedResults, Inspect, Located, ProcessFilter, QueueDepth,
    QueueStats, RequestFilter, ResultFilter,
};
use crate::model::{JobProcess, JobRequest, JobResult, WorkerHeartbeat};
use crate::Result;

/// The one count a statement returns (as `n`).
async fn count<C: SqlConn>(conn: &mut C, statement: &Statement<'_>) -> Result<i64> {
    let row = conn.row(statement).await?;
    let row = row.ok_or(sqlx::Error::RowNotFound)?;
    Ok(row.int64("n")?)
}

/// See [`super::Conn::count_requests`].
pub(crate) async fn count_requests<C: SqlConn>(
    conn: &mut C,
    job_class: &str,
    key: &str,
    include_retries: bool,
) -> Result<i64> {
    let sql = format!(
        "SELECT count(*) AS n FROM plainjobs_jobrequest WHERE job_class = $1 AND concurrency_key = $2 AND ($3 OR retry_attempt = 0){}",
        key_condition(key)
    );
    let statement = Statement::new(sql)
        .arg(Arg::Text(Some(job_class)))
        .arg(Arg::Text(Some(key)))
        .arg(Arg::Bool(include_retries));
    count(conn, &statement).await
}

/// See [`super::Conn::count_processes`].
pub(crate) async fn count_processes<C: SqlConn>(
    conn: &mut C,
    job_class: &str,
    key: &str,
    include_retries: bool,
    exclude: Option<Uuid>,
) -> Result<i64> {
    let sql = format!(
        "SELECT count(*) AS n FROM plainjobs_jobprocess WHERE job_class = $1 AND concurrency_key = $2 AND ($3 OR retry_attempt = 0) AND ($4 IS NULL OR uuid <> $4){}",
        key_condition(key)
    );
    let statement = Statement::new(sql)
        .arg(Arg::Text(Some(job_class)))
        .arg(Arg::Text(Some(key)))
        .arg(Arg::Bool(include_retries))
        .arg(Arg::Uuid(exclude));
    count(conn, &statement).await
}

/// See [`super::Conn::count_results`].
pub(crate) async fn count_results<C: SqlConn>(
    conn: &mut C,
    job_class: &str,
    key: &str,
) -> Result<i64> {
    let sql = format!(
        "SELECT count(*) AS n FROM plainjobs_jobresult WHERE job_class = $1 AND concurrency_key = $2{}",
        key_condition(key)
    );
    let statement = Statement::new(sql)
        .arg(Arg::Text(Some(job_class)))
        .arg(Arg::Text(Some(key)));
    count(conn, &statement).await
}

/// See [`super::StoreTx::link_retry`].
pub(crate) async fn link_retry<C: SqlConn>(
    conn: &mut C,
    result_uuid: Uuid,
    request_uuid: Uuid,
) -> Result<()> {
    let statement = Statement::new(
        "UPDATE plainjobs_jobresult SET retry_job_request_uuid = $2 WHERE uuid = $1",
    )
    .arg(Arg::Uuid(Some(result_uuid)))
    .arg(Arg::Uuid(Some(request_uuid)));
    conn.run(&statement).await?;
    Ok(())
}

/// See [`super::Store::deregister`].
pub(crate) async fn deregister<B: SqlBackend>(backend: &B, worker_id: Uuid) -> Result<bool> {
    let statement = Statement::new(
        "DELETE FROM plainjobs_workerheartbeat WHERE worker_id = $1
         AND NOT EXISTS (SELECT 1 FROM plainjobs_jobprocess WHERE worker_id = $1)",
    )
    .arg(Arg::Uuid(Some(worker_id)));
    Ok(backend.pooled().await?.run(&statement).await? > 0)
}

/// See [`super::Store::stale_workers`].
pub(crate) async fn stale_workers<B: SqlBackend>(
    backend: &B,
    timeout: Duration,
) -> Result<Vec<Uuid>> {
    let statement = Statement::new(
        "SELECT worker_id FROM plainjobs_workerheartbeat WHERE last_heartbeat_at < $1 ORDER BY last_heartbeat_at",
    )
    .arg(Arg::Ago(timeout));
    let rows = backend.pooled().await?.rows(&statement).await?;
    decode_all(&rows, |row| row.uuid("worker_id"))
}

/// See [`super::Store::retryable_results`]. The condition is the retryable index's.
pub(crate) async fn retryable_results<B: SqlBackend>(
    backend: &B,
    queues: &[String],
    after_id: i64,
    limit: i64,
) -> Result<Vec<JobResult>> {
    let sql = format!(
        "SELECT {RESULT_COLUMNS} FROM plainjobs_jobresult
         WHERE retry_job_request_uuid IS NULL AND retries > 0 AND retry_attempt < retries
           AND status IN ('ERRORED', 'LOST', 'CANCELLED') AND id > $2 AND queue = ANY($3)
         ORDER BY id LIMIT $1"
    );
    let statement = Statement::new(sql)
        .arg(Arg::Int(limit))
        .arg(Arg::Int(after_id))
        .arg(Arg::Texts(queues));
    let rows = backend.pooled().await?.rows(&statement).await?;
    decode_all(&rows, job_result)
}

/// See [`super::Store::bump_retry_attempt`].
pub(crate) async fn bump_retry_attempt<B: SqlBackend>(
    backend: &B,
    result_uuid: Uuid,
) -> Result<()> {
    let statement = Statement::new(
        "UPDATE plainjobs_jobresult SET retry_attempt = retry_attempt + 1 WHERE uuid = $1 AND retry_job_request_uuid IS NULL",
    )
    .arg(Arg::Uuid(Some(result_uuid)));
    backend.pooled().await?.run(&statement).await?;
    Ok(())
}

/// See [`super::Store::delete_results_before`].
pub(crate) async fn delete_results_before<B: SqlBackend>(
    backend: &B,
    age: Duration,
    batch: i64,
) -> Result<u64> {
    let statement = Statement::new(
        "DELETE FROM plainjobs_jobresult WHERE id IN (
            SELECT id FROM plainjobs_jobresult WHERE created_at < $1
            ORDER BY created_at LIMIT $2)",
    )
    .arg(Arg::Ago(age))
    .arg(Arg::Int(batch));
    Ok(backend.pooled().await?.run(&statement).await?)
}

/// See [`super::Store::result_by_uuid`].
pub(crate) async fn result_by_uuid<B: SqlBackend>(
    backend: &B,
    uuid: Uuid,
) -> Result<Option<JobResult>> {
    let sql = format!("SELECT {RESULT_COLUMNS} FROM plainjobs_jobresult WHERE uuid = $1");
    let statement = Statement::new(sql).arg(Arg::Uuid(Some(uuid)));
    let row = backend.pooled().await?.row(&statement).await?;
    Ok(row.as_ref().map(job_result).transpose()?)
}

/// See [`super::Store::locate_requests`].
pub(crate) async fn locate_requests<B: SqlBackend>(
    backend: &B,
    uuids: &[Uuid],
) -> Result<Vec<(Uuid, Located)>> {
    if uuids.is_empty() {
        return Ok(Vec::new());
    }
    // One statement, so one snapshot: a job moving between tables is seen in one of them.
    let statement = Statement::new(
        "SELECT uuid, id, created_at, start_at FROM plainjobs_jobrequest WHERE uuid = ANY($1)
         UNION ALL
         SELECT job_request_uuid, NULL, COALESCE(requested_at, created_at), NULL FROM plainjobs_jobprocess WHERE job_request_uuid = ANY($1)
         UNION ALL
         SELECT job_request_uuid, NULL, COALESCE(requested_at, created_at), NULL FROM plainjobs_jobresult WHERE job_request_uuid = ANY($1)",
    )
    .arg(Arg::Uuids(uuids));
    let rows = backend.pooled().await?.rows(&statement).await?;
    decode_all(&rows, |row| {
        let created_at = row.time("created_at")?;
        let located = match row.opt_int64("id")? {
            Some(id) => Located::Pending {
                id,
                created_at,
                start_at: row.opt_time("start_at")?,
            },
            None => Located::Taken {
                requested_at: created_at,
            },
        };
        Ok((row.uuid("uuid")?, located))
    })
}

/// Both backends are inspected with the same statements.
#[async_trait::async_trait]
impl<B: SqlBackend> Inspect for B {
    async fn requests(&self, limit: i64) -> Result<Vec<JobRequest>> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM plainjobs_jobrequest ORDER BY priority DESC, COALESCE(start_at, created_at), id LIMIT $1"
        );
        let statement = Statement::new(sql).arg(Arg::Int(limit));
        decode_all(&self.pooled().await?.rows(&statement).await?, job_request)
    }

    async fn processes(&self, limit: i64) -> Result<Vec<JobProcess>> {
        let sql =
            format!("SELECT {PROCESS_COLUMNS} FROM plainjobs_jobprocess ORDER BY id LIMIT $1");
        let statement = Statement::new(sql).arg(Arg::Int(limit));
        decode_all(&self.pooled().await?.rows(&statement).await?, job_process)
    }

    async fn request_by_uuid(&self, uuid: Uuid) -> Result<Option<JobRequest>> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM plainjobs_jobrequest WHERE uuid = $1");
        let statement = Statement::new(sql).arg(Arg::Uuid(Some(uuid)));
        let row = self.pooled().await?.row(&statement).await?;
        Ok(row.as_ref().map(job_request).transpose()?)
    }

    async fn process_by_uuid(&self, uuid: Uuid) -> Result<Option<JobProcess>> {
        let sql = format!(
            "SELECT {PROCESS_COLUMNS} FROM plainjobs_jobprocess WHERE uuid = $1 OR job_request_uuid = $1"
        );
        let statement = Statement::new(sql).arg(Arg::Uuid(Some(uuid)));
        let row = self.pooled().await?.row(&statement).await?;
        Ok(row.as_ref().map(job_process).transpose()?)
    }

    async fn find_result(&self, uuid: Uuid) -> Result<Option<JobResult>> {
        let sql = format!(
            "SELECT {RESULT_COLUMNS} FROM plainjobs_jobresult
             WHERE uuid = $1 OR job_process_uuid = $1 OR job_request_uuid = $1
             ORDER BY (uuid = $1) DESC, (job_process_uuid = $1) DESC, id DESC LIMIT 1"
        );
        let statement = Statement::new(sql).arg(Arg::Uuid(Some(uuid)));
        let row = self.pooled().await?.row(&statement).await?;
        Ok(row.as_ref().map(job_result).transpose()?)
    }

    async fn results(&self, filter: &ResultFilter) -> Result<Vec<JobResult>> {
        browse::results(self, filter).await
    }

    async fn requests_page(&self, filter: &RequestFilter) -> Result<Vec<JobRequest>> {
        browse::requests_page(self, filter).await
    }

    async fn processes_page(&self, filter: &ProcessFilter) -> Result<Vec<JobProcess>> {
        browse::processes_page(self, filter).await
    }

    async fn results_of_requests(&self, request_uuids: &[Uuid]) -> Result<Vec<JobResult>> {
        browse::results_of_requests(self, request_uuids).await
    }

    async fn result_retried_by(
        &self,
        request_uuid: Uuid,
        made_by: DateTime<Utc>,
    ) -> Result<Option<JobResult>> {
        browse::result_retried_by(self, request_uuid, made_by).await
    }

    async fn scheduled_runs(
        &self,
        job_class: &str,
        key_prefix: &str,
        limit: i64,
    ) -> Result<(Vec<JobRequest>, Vec<JobResult>)> {
        browse::scheduled_runs(self, job_class, key_prefix, limit).await
    }

    async fn queue_depths(&self) -> Result<Vec<QueueDepth>> {
        counts::queue_depths(self).await
    }

    async fn results_start(&self, age: Duration) -> Result<i64> {
        counts::results_start(self, age).await
    }

    async fn count_results_after(
        &self,
        after_id: i64,
        span: i64,
        settle: Duration,
    ) -> Result<CountedResults> {
        counts::count_results_after(self, after_id, span, settle).await
    }

    async fn holding_key(
        &self,
        job_class: &str,
        key: &str,
        limit: i64,
    ) -> Result<(Vec<JobRequest>, Vec<JobProcess>)> {
        let condition = "WHERE job_class = $1 AND concurrency_key = $2 ORDER BY id LIMIT $3";
        let select = |columns: &str, table: &str| {
            Statement::new(format!("SELECT {columns} FROM {table} {condition}"))
                .arg(Arg::Text(Some(job_class)))
                .arg(Arg::Text(Some(key)))
                .arg(Arg::Int(limit))
        };
        let mut conn = self.pooled().await?;
        let requests = conn
            .rows(&select(REQUEST_COLUMNS, "plainjobs_jobrequest"))
            .await?;
        let processes = conn
            .rows(&select(PROCESS_COLUMNS, "plainjobs_jobprocess"))
            .await?;
        Ok((
            decode_all(&requests, job_request)?,
            decode_all(&processes, job_process)?,
        ))
    }

    async fn workers(&self) -> Result<Vec<WorkerHeartbeat>> {
        let sql = format!(
            "SELECT {HEARTBEAT_COLUMNS} FROM plainjobs_workerheartbeat ORDER BY started_at"
        );
        let statement = Statement::new(sql);
        decode_all(
            &self.pooled().await?.rows(&statement).await?,
            worker_heartbeat,
        )
    }

    async fn stats(&self) -> Result<Vec<QueueStats>> {
        let statement = Statement::new(
            "SELECT queue, 'ready' AS kind, count(*) AS n FROM plainjobs_jobrequest WHERE start_at IS NULL OR start_at <= $1 GROUP BY queue
             UNION ALL SELECT queue, 'scheduled', count(*) FROM plainjobs_jobrequest WHERE start_at > $1 GROUP BY queue
             UNION ALL SELECT queue, 'waiting', count(*) FROM plainjobs_jobprocess WHERE started_at IS NULL GROUP BY queue
             UNION ALL SELECT queue, 'running', count(*) FROM plainjobs_jobprocess WHERE started_at IS NOT NULL GROUP BY queue
             UNION ALL SELECT queue, 'result:' || status, count(*) FROM plainjobs_jobresult GROUP BY queue, status",
        )
        .arg(Arg::Now);
        let rows = self.pooled().await?.rows(&statement).await?;
        let counts = decode_all(&rows, |row| {
            Ok((row.text("queue")?, row.text("kind")?, row.int64("n")?))
        })?;
        Ok(fold_stats(counts))
    }
}
