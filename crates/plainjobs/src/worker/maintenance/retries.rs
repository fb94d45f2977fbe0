//! Automatic retries of results that qualify for one: after a rescue (LOST results), and the
//! safety-net pass over every retryable result.

use crate::client::follow_up::retry_with;
use crate::model::{JobRequest, JobResult};
use crate::registry::Registry;
use crate::{Jobs, Result};

/// Results looked at per pass.
const PAGE: i64 = 100;

/// Retries one retryable result. A job type that cannot be rebuilt bumps the result's
/// `retry_attempt` so it is not tried forever.
pub(crate) async fn retry_result(
    jobs: &Jobs,
    registry: &Registry,
    result: &JobResult,
) -> Result<Option<JobRequest>> {
    let job = match registry.load(&result.job_class, result.parameters.as_ref()) {
        Ok(job) => job,
        Err(e) => {
            tracing::warn!(
                job_class = %result.job_class, job_result_uuid = %result.uuid, error = %e,
                "cannot build the retry; bumping retry_attempt so it is not tried again"
            );
            jobs.store().bump_retry_attempt(result.uuid).await?;
            return Ok(None);
        }
    };
    let new = retry_with(jobs, &*job, result.uuid, false).await?;
    if let Some(n) = &new {
        tracing::info!(job_class = %result.job_class, job_result_uuid = %result.uuid, retry_job_request_uuid = %n.uuid, attempt = n.retry_attempt, "retry enqueued");
    }
    Ok(new)
}

/// The safety-net retry pass. It walks the retryable results in id order from `cursor`, so
/// results whose retry keeps being refused cannot hide the ones after them.
pub(crate) async fn retry_pass(jobs: &Jobs, registry: &Registry, cursor: &mut i64) {
    match jobs.store().retryable_results(*cursor, PAGE).await {
        Ok(results) => {
            *cursor = if results.len() < PAGE as usize {
                0
            } else {
                results.last().map_or(0, |r| r.id)
            };
            for r in &results {
                if let Err(e) = retry_result(jobs, registry, r).await {
                    tracing::warn!(job_result_uuid = %r.uuid, error = %e, "retry failed");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not list retryable results"),
    }
}
