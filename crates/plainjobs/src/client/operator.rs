//! The operator's transitions: retry a failed result now, run a scheduled job now, delete old
//! results. (Cancelling and pausing: `control.rs`.)

use std::time::Duration;

use uuid::Uuid;

use super::follow_up::retry_with;
use crate::model::JobRequest;
use crate::registry::{RawJob, Registry};
use crate::{Jobs, Result};

impl Jobs {
    /// Retries a failed result now, with the job's backoff and uniqueness when `registry` knows
    /// its type (else no delay and plain.jobs' default uniqueness). Returns the new request, or
    /// None when the result is not retryable or `should_enqueue` refused.
    ///
    /// Unlike the automatic retries, this also retries results whose retries are used up
    /// (`force`), as an operator asking for it expects.
    ///
    /// # Errors
    /// A database error.
    pub async fn retry_result(
        &self,
        result_uuid: Uuid,
        registry: &Registry,
        force: bool,
    ) -> Result<Option<JobRequest>> {
        retry_now(self, registry, result_uuid, force).await
    }

    /// Deletes results created more than `older_than` ago, in batches; returns how many.
    ///
    /// # Errors
    /// A database error.
    pub async fn clear_results(&self, older_than: Duration) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = self.store().delete_results_before(older_than, 5000).await?;
            total += n;
            if n < 5000 {
                return Ok(total);
            }
        }
    }

    /// Makes these scheduled (delayed) requests ready now; returns how many changed. A worker
    /// takes them at its next poll, in their place in the queue.
    ///
    /// # Errors
    /// A database error.
    pub async fn run_now(&self, uuids: &[Uuid]) -> Result<u64> {
        self.store().run_requests_now(uuids).await
    }

    /// Deletes these results; returns how many.
    ///
    /// # Errors
    /// A database error.
    pub async fn delete_results(&self, uuids: &[Uuid]) -> Result<u64> {
        self.store().delete_results(uuids).await
    }
}

/// An operator's retry: with the registered type when known, else as a raw job.
async fn retry_now(
    jobs: &Jobs,
    registry: &Registry,
    result_uuid: Uuid,
    force: bool,
) -> Result<Option<JobRequest>> {
    let Some(result) = jobs.store().result_by_uuid(result_uuid).await? else {
        return Ok(None);
    };
    match registry.load(&result.job_class, result.parameters.as_ref()) {
        Ok(job) => retry_with(jobs, &*job, result_uuid, force).await,
        Err(_) => {
            let job = RawJob::new(&result.job_class, result.parameters.as_ref());
            retry_with(jobs, &job, result_uuid, force).await
        }
    }
}
