//! [`Conn`] and [`StoreTx`] on a SQLite connection: a pooled one, the caller's transaction,
//! or one of the store's.

use std::ops::DerefMut;
use std::sync::Arc;

use sqlx::{Sqlite, SqliteConnection, Transaction};
use uuid::Uuid;

use super::finish::{delete_processes, insert_results};
use super::requests::insert_requests;
use crate::model::{JobProcess, JobRequest, JobResult, JobStatus};
use crate::store::rows::{job_result, RESULT_COLUMNS};
use crate::store::{portable, Conn, NewRequest, StoreTx};
use crate::{Error, Result};

/// A SQLite connection seen through [`Conn`]. The database key is the store's
/// ([`SqliteStore::db`](super::SqliteStore::db)) for its own connections, `None` for the
/// application's transaction (whose database this crate cannot name).
pub(crate) struct SqliteConn<C>(pub(crate) C, pub(crate) Option<Arc<str>>);

#[async_trait::async_trait]
impl<C: DerefMut<Target = SqliteConnection> + Send> Conn for SqliteConn<C> {
    async fn advisory_lock(&mut self, _id: i64) -> Result<()> {
        // SQLite has one writer at a time: the enqueue's `BEGIN IMMEDIATE` transaction already
        // serializes it against every other writer.
        Ok(())
    }

    async fn count_requests(
        &mut self,
        job_class: &str,
        key: &str,
        include_retries: bool,
    ) -> Result<i64> {
        portable::count_requests(&mut *self.0, job_class, key, include_retries).await
    }

    async fn count_processes(
        &mut self,
        job_class: &str,
        key: &str,
        include_retries: bool,
        exclude: Option<Uuid>,
    ) -> Result<i64> {
        portable::count_processes(&mut *self.0, job_class, key, include_retries, exclude).await
    }

    async fn count_results(&mut self, job_class: &str, key: &str) -> Result<i64> {
        portable::count_results(&mut *self.0, job_class, key).await
    }

    async fn insert_requests(&mut self, rows: Vec<NewRequest>) -> Result<Vec<JobRequest>> {
        insert_requests(&mut self.0, &rows, self.1.as_deref()).await
    }
}

#[async_trait::async_trait]
impl StoreTx for SqliteConn<Transaction<'static, Sqlite>> {
    async fn delete_process(
        &mut self,
        process_uuid: Uuid,
        worker_id: Uuid,
    ) -> Result<Option<JobProcess>> {
        Ok(
            delete_processes(&mut self.0, worker_id, Some(&[process_uuid]))
                .await?
                .pop(),
        )
    }

    async fn insert_result(
        &mut self,
        p: &JobProcess,
        status: JobStatus,
        error: &str,
        retry: Option<Uuid>,
    ) -> Result<JobResult> {
        let mut rows = insert_results(&mut self.0, &[(p, status, error, retry)]).await?;
        rows.pop()
            .ok_or_else(|| Error::from(sqlx::Error::RowNotFound))
    }

    async fn lock_retryable(
        &mut self,
        result_uuid: Uuid,
        force: bool,
    ) -> Result<Option<JobResult>> {
        // The transaction holds SQLite's write lock: no other retry of this result can run.
        let sql = format!(
            "SELECT {RESULT_COLUMNS} FROM plainjobs_jobresult
             WHERE uuid = ?1 AND retry_job_request_uuid IS NULL AND (?2 OR (retries > 0 AND retry_attempt < retries))
               AND status IN ('ERRORED', 'LOST', 'CANCELLED')"
        );
        let row = sqlx::query(&sql)
            .bind(result_uuid.to_string())
            .bind(force)
            .fetch_optional(&mut *self.0)
            .await?;
        Ok(row.as_ref().map(job_result).transpose()?)
    }

    async fn link_retry(&mut self, result_uuid: Uuid, request_uuid: Uuid) -> Result<()> {
        portable::link_retry(&mut *self.0, result_uuid, request_uuid).await
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.0.commit().await?;
        Ok(())
    }
}
