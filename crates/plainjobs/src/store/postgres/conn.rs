//! [`Conn`] and [`StoreTx`] on a PostgreSQL connection: a pooled one, the caller's
//! transaction, or one of the store's.

use std::ops::DerefMut;
use std::sync::Arc;

use sqlx::{Connection, PgConnection, Postgres, Transaction};
use uuid::Uuid;

use super::requests::insert_requests;
use super::wake::InsertWake;
use super::{PgExec, Pooler};
use crate::model::{JobProcess, JobRequest, JobResult, JobStatus};
use crate::store::rows::{job_process, job_result, PROCESS_COLUMNS, RESULT_COLUMNS};
use crate::store::{portable, Conn, NewRequest, StoreTx};
use crate::Result;

/// A connection (pooled, borrowed from the caller, or in a transaction) seen through [`Conn`],
/// with the [`Pooler`] its statements go through.
pub(crate) struct PgConn<C> {
    conn: C,
    pooler: Pooler,
    /// How the store wakes the workers after its inserts commit, on the store's own
    /// connections; None on the caller's, where the insert trigger's `NOTIFY` does.
    wake: Option<Arc<InsertWake>>,
    /// Requests were inserted in this transaction: wake at its commit.
    inserted: bool,
}

impl<C: DerefMut<Target = PgConnection> + Send> PgConn<C> {
    pub(crate) fn new(conn: C, pooler: Pooler) -> PgConn<C> {
        PgConn {
            conn,
            pooler,
            wake: None,
            inserted: false,
        }
    }

    /// The same, waking the workers through `wake` once the requests it inserts are
    /// committed (and not by the insert trigger).
    pub(super) fn waking(self, wake: Arc<InsertWake>) -> PgConn<C> {
        PgConn {
            wake: Some(wake),
            ..self
        }
    }

    /// What its statements run on.
    pub(crate) fn exec(&mut self) -> PgExec<'_> {
        PgExec::new(&mut self.conn, self.pooler)
    }
}

impl PgConn<Transaction<'static, Postgres>> {
    /// Commits the transaction.
    pub(crate) async fn commit(self) -> Result<()> {
        self.conn.commit().await?;
        if let (true, Some(wake)) = (self.inserted, &self.wake) {
            wake.committed();
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl<C: DerefMut<Target = PgConnection> + Send> Conn for PgConn<C> {
    async fn advisory_lock(&mut self, id: i64) -> Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(id)
            .execute(&mut self.exec())
            .await?;
        Ok(())
    }

    async fn count_requests(
        &mut self,
        job_class: &str,
        key: &str,
        include_retries: bool,
    ) -> Result<i64> {
        portable::count_requests(&mut self.exec(), job_class, key, include_retries).await
    }

    async fn count_processes(
        &mut self,
        job_class: &str,
        key: &str,
        include_retries: bool,
        exclude: Option<Uuid>,
    ) -> Result<i64> {
        portable::count_processes(&mut self.exec(), job_class, key, include_retries, exclude).await
    }

    async fn count_results(&mut self, job_class: &str, key: &str) -> Result<i64> {
        portable::count_results(&mut self.exec(), job_class, key).await
    }

    async fn insert_requests(&mut self, rows: Vec<NewRequest>) -> Result<Vec<JobRequest>> {
        let quiet = self.wake.is_some();
        let made = insert_requests(&mut self.exec(), rows, quiet).await?;
        if let (false, Some(wake)) = (made.is_empty(), &self.wake) {
            // Alone, the insert committed in its own transaction; else at the commit.
            if self.conn.is_in_transaction() {
                self.inserted = true;
            } else {
                wake.committed();
            }
        }
        Ok(made)
    }
}

#[async_trait::async_trait]
impl StoreTx for PgConn<Transaction<'static, Postgres>> {
    async fn delete_process(
        &mut self,
        process_uuid: Uuid,
        worker_id: Uuid,
    ) -> Result<Option<JobProcess>> {
        let sql = format!("DELETE FROM plainjobs_jobprocess WHERE uuid = $1 AND worker_id = $2 RETURNING {PROCESS_COLUMNS}");
        let row = sqlx::query(&sql)
            .bind(process_uuid)
            .bind(worker_id)
            .fetch_optional(&mut self.exec())
            .await?;
        Ok(row.as_ref().map(job_process).transpose()?)
    }

    async fn insert_result(
        &mut self,
        p: &JobProcess,
        status: JobStatus,
        error: &str,
        retry_request: Option<Uuid>,
    ) -> Result<JobResult> {
        let sql = format!(
            "INSERT INTO plainjobs_jobresult (uuid, created_at, job_process_uuid, started_at, ended_at, error, status, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, retry_job_request_uuid, trace_id, span_id)
             VALUES ($18, now(), $1, $2, now(), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
             RETURNING {RESULT_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(p.uuid)
            .bind(p.started_at)
            .bind(error)
            .bind(status.as_str())
            .bind(p.job_request_uuid)
            .bind(p.requested_at)
            .bind(&p.job_class)
            .bind(&p.parameters)
            .bind(p.priority)
            .bind(&p.source)
            .bind(&p.queue)
            .bind(p.retries)
            .bind(p.retry_attempt)
            .bind(&p.concurrency_key)
            .bind(retry_request)
            .bind(&p.trace_id)
            .bind(&p.span_id)
            .bind(crate::model::new_uuid())
            .fetch_one(&mut self.exec())
            .await?;
        Ok(job_result(&row)?)
    }

    async fn lock_retryable(
        &mut self,
        result_uuid: Uuid,
        force: bool,
    ) -> Result<Option<JobResult>> {
        let sql = format!(
            "SELECT {RESULT_COLUMNS} FROM plainjobs_jobresult
             WHERE uuid = $1 AND retry_job_request_uuid IS NULL AND ($2 OR (retries > 0 AND retry_attempt < retries))
               AND status IN ('ERRORED', 'LOST', 'CANCELLED')
             FOR UPDATE SKIP LOCKED"
        );
        let row = sqlx::query(&sql)
            .bind(result_uuid)
            .bind(force)
            .fetch_optional(&mut self.exec())
            .await?;
        Ok(row.as_ref().map(job_result).transpose()?)
    }

    async fn link_retry(&mut self, result_uuid: Uuid, request_uuid: Uuid) -> Result<()> {
        portable::link_retry(&mut self.exec(), result_uuid, request_uuid).await
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        PgConn::commit(*self).await
    }
}
