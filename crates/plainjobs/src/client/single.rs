//! The first attempt of a single enqueue: one autocommit `INSERT` for a job without a
//! concurrency key (or straight to an idle worker of this process), a transaction of its own
//! for a job with one. The `INSERT` is shared with the concurrent enqueues of the same handle
//! (`coalesce/`).

use uuid::Uuid;

use super::admit::{admit, enqueue_on};
use crate::model::JobRequest;
use crate::registry::ErasedJob;
use crate::store::NewRequest;
use crate::{Error, Jobs, Result};

/// One attempt: see the module docs. A job that starts now, with no key, enqueued from outside
/// a running job, may be taken by an idle worker of this process (`local dispatch`).
pub(crate) async fn enqueue_once(
    jobs: &Jobs,
    job: &dyn ErasedJob,
    req: NewRequest,
    exclude_process: Option<Uuid>,
) -> Result<Option<JobRequest>> {
    if !req.concurrency_key.is_empty() {
        let mut tx = jobs.store().begin().await?;
        let out = enqueue_on(&mut *tx, job, req, exclude_process).await?;
        tx.commit().await?;
        return Ok(out);
    }
    let mut conn = jobs.store().autocommit().await?;
    if !admit(&mut *conn, job, &req, exclude_process).await? {
        return Ok(None);
    }
    // A follow-up of a running job is always queued (see `WorkerConfig::local_dispatch`).
    let reserved = match exclude_process {
        None => jobs.reserve_local_slot(&req),
        Some(_) => None,
    };
    if let Some(reservation) = reserved {
        // The connection goes back to the pool before the dispatch takes one.
        drop(conn);
        match reservation.dispatch(req.clone()).await {
            Ok(Some(dispatched)) => return dispatched.map(Some),
            Ok(None) => {}
            Err(e) => return Err(Error::WorkerTask(e)),
        }
        conn = jobs.store().autocommit().await?;
    }
    // Concurrent enqueues through this handle share statements (`coalesce/`).
    let coalescer = jobs.coalescer().clone();
    coalescer.insert(jobs, conn, req).await.map(Some)
}
