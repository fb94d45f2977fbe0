//! Automatic retries of results that qualify for one: after a rescue (LOST results), and the
//! safety-net pass over every retryable result.

use crate::client::follow_up::retry_with;
use crate::model::{JobRequest, JobResult};
use crate::registry::{LoadError, Registry};
use crate::{Jobs, Result};

/// Results looked at per pass.
const PAGE: i64 = 100;

/// Retries one retryable result with this worker's job type. A result of a type this worker
/// does not know is left alone, for a worker that knows it (ours or plain.jobs'): its retry is
/// not spent. One whose type is known but whose parameters no longer fit it can never be
/// rebuilt by anyone who runs this type: its `retry_attempt` is bumped so it is not tried
/// forever (as plain.jobs does).
pub(crate) async fn retry_result(
    jobs: &Jobs,
    registry: &Registry,
    result: &JobResult,
) -> Result<Option<JobRequest>> {
    let job = match registry.load(&result.job_class, result.parameters.as_ref()) {
        Ok(job) => job,
        Err(LoadError::Unknown(_)) => {
            tracing::debug!(job_class = %result.job_class, job_result_uuid = %result.uuid, "not this worker's job type; its retry is left to a worker that knows it");
            return Ok(None);
        }
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

/// The safety-net retry pass over the results of this worker's `queues` (as plain.jobs' pass
/// serves its worker's queues). It walks the retryable results in id order from `cursor`, so
/// results whose retry keeps being refused (or that another worker's types must retry) cannot
/// hide the ones after them.
pub(crate) async fn retry_pass(
    jobs: &Jobs,
    registry: &Registry,
    queues: &[String],
    cursor: &mut i64,
) {
    match jobs.store().retryable_results(queues, *cursor, PAGE).await {
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
