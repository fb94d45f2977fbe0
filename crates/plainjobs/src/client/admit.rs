//! Uniqueness: an enqueue asks the job's `should_enqueue` under the lock of its concurrency
//! key, in the same transaction as the insert.

use uuid::Uuid;

use crate::job::{advisory_lock_id, LockStrategy, UniqueCheck};
use crate::model::JobRequest;
use crate::registry::ErasedJob;
use crate::store::{Conn, NewRequest};
use crate::Result;

/// Enqueues one job on `conn`: under the key's lock (when the key is not empty), asks
/// `should_enqueue`, inserts. `conn` must be a transaction when the key is not empty.
pub(crate) async fn enqueue_on(
    conn: &mut dyn Conn,
    job: &dyn ErasedJob,
    req: NewRequest,
    exclude_process: Option<Uuid>,
) -> Result<Option<JobRequest>> {
    if !admit(conn, job, &req, exclude_process).await? {
        return Ok(None);
    }
    let mut rows = conn.insert_requests(vec![req]).await?;
    Ok(rows.pop())
}

/// Takes the key's lock (when the key is not empty) and asks `should_enqueue` whether `req`
/// may be enqueued.
pub(crate) async fn admit(
    conn: &mut dyn Conn,
    job: &dyn ErasedJob,
    req: &NewRequest,
    exclude_process: Option<Uuid>,
) -> Result<bool> {
    let mut check = UniqueCheck {
        conn,
        job_class: req.job_class.clone(),
        concurrency_key: req.concurrency_key.clone(),
        exclude_process,
    };
    if !req.concurrency_key.is_empty() {
        match job.lock_strategy() {
            LockStrategy::None => {}
            LockStrategy::Advisory => {
                check
                    .advisory_lock(advisory_lock_id(&req.job_class, &req.concurrency_key))
                    .await?
            }
            LockStrategy::Custom(lock) => {
                lock.lock(&mut check, &req.job_class, &req.concurrency_key)
                    .await?
            }
        }
    }
    if !job.should_enqueue(&req.concurrency_key, &mut check).await? {
        tracing::debug!(job_class = %req.job_class, concurrency_key = %req.concurrency_key, "enqueue skipped by should_enqueue");
        return Ok(false);
    }
    Ok(true)
}
