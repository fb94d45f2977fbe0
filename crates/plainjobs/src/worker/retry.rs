//! Retries and deferrals: a finished run that needs a follow-up request, written in one
//! transaction with its result.

use std::time::Duration;

use uuid::Uuid;

use crate::enqueue::enqueue_on;
use crate::jobs::raw_job;
use crate::model::{JobProcess, JobRequest, JobResult, JobStatus};
use crate::registry::{ErasedJob, Registry};
use crate::store::{NewRequest, Start};
use crate::{Jobs, Result};

/// What follows a finished run.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FollowUp {
    /// Nothing (the result is final, or retries are used up).
    None,
    /// A retry with the job's backoff.
    Retry,
    /// A deferral.
    Defer {
        delay: Duration,
        increment_retries: bool,
    },
}

/// `Deferred for N seconds`, as plain.jobs writes it.
pub(crate) fn seconds_text(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{}", d.as_secs_f64())
    }
}

/// The request that follows a run (a retry or a deferral): the same job, queue, priority,
/// retries, key and trace as the row it follows (a process or a result), at attempt `attempt`,
/// `delay` from now.
macro_rules! follow_request {
    ($row:expr, $attempt:expr, $delay:expr) => {{
        let (row, delay): (_, Duration) = ($row, $delay);
        NewRequest {
            uuid: crate::model::new_uuid(),
            job_class: row.job_class.clone(),
            parameters: row.parameters.clone().unwrap_or_else(|| serde_json::json!({"args": [], "kwargs": {}})),
            priority: row.priority,
            source: row.source.clone(),
            queue: row.queue.clone(),
            retries: row.retries,
            retry_attempt: $attempt,
            concurrency_key: row.concurrency_key.clone(),
            start: if delay.is_zero() { Start::Now } else { Start::After(delay) },
            trace_id: row.trace_id.clone(),
            span_id: row.span_id.clone(),
        }
    }};
}

/// Deletes the process (if still ours), enqueues the follow-up (after the delete, so the default
/// uniqueness check passes), and writes the result linked to it, in one transaction. Returns
/// None when the process was already gone (a rescuer wrote its result).
pub(crate) async fn finish_with_follow_up(
    jobs: &Jobs,
    worker_id: Uuid,
    process: &JobProcess,
    status: JobStatus,
    error: &str,
    job: Option<&dyn ErasedJob>,
    follow: FollowUp,
) -> Result<Option<JobResult>> {
    let mut tx = jobs.store().begin().await?;
    let Some(mut p) = tx.delete_process(process.uuid, worker_id).await? else {
        return Ok(None);
    };
    // A claimed-ahead job's start may not be written yet: keep the time it began.
    if p.started_at.is_none() {
        p.started_at = process.started_at;
    }
    let (request, error_text) = match (follow, job) {
        (FollowUp::Retry, Some(job)) if p.retries > 0 && p.retry_attempt < p.retries => {
            let attempt = p.retry_attempt + 1;
            let delay = job.retry_delay(u32::try_from(attempt).unwrap_or(1));
            let req = follow_request!(&p, attempt, delay);
            (
                enqueue_on(&mut *tx, job, req, None).await?,
                error.to_string(),
            )
        }
        (
            FollowUp::Defer {
                delay,
                increment_retries,
            },
            Some(job),
        ) => {
            let attempt = if increment_retries {
                p.retry_attempt.saturating_add(1)
            } else {
                p.retry_attempt
            };
            let req = follow_request!(&p, attempt, delay);
            let new = enqueue_on(&mut *tx, job, req, None).await?;
            let secs = seconds_text(delay);
            let text = if new.is_some() {
                format!("Deferred for {secs} seconds")
            } else {
                format!(
                    "Deferred for {secs} seconds (re-enqueue skipped: should_enqueue() returned False for concurrency_key '{}')",
                    p.concurrency_key
                )
            };
            (new, text)
        }
        _ => (None, error.to_string()),
    };
    let result = tx
        .insert_result(&p, status, &error_text, request.as_ref().map(|r| r.uuid))
        .await?;
    tx.commit().await?;
    Ok(Some(result))
}

/// Retries a failed result with `job`: locks it while still retryable (or, with `force`, while
/// failed and not yet retried), enqueues attempt + 1 with the job's backoff, links the result.
pub(crate) async fn retry_with(
    jobs: &Jobs,
    job: &dyn ErasedJob,
    result_uuid: Uuid,
    force: bool,
) -> Result<Option<JobRequest>> {
    let mut tx = jobs.store().begin().await?;
    let Some(r) = tx.lock_retryable(result_uuid, force).await? else {
        return Ok(None);
    };
    let attempt = r.retry_attempt.saturating_add(1);
    let delay = job.retry_delay(u32::try_from(attempt).unwrap_or(1));
    let req = follow_request!(&r, attempt, delay);
    let new = enqueue_on(&mut *tx, job, req, None).await?;
    if let Some(n) = &new {
        tx.link_retry(r.uuid, n.uuid).await?;
    }
    tx.commit().await?;
    Ok(new)
}

/// The automatic retry of a retryable result (after a rescue, or by the periodic pass). A job
/// type that cannot be rebuilt bumps the result's `retry_attempt` so it is not tried forever.
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

/// An operator's retry: with the registered type when known, else as a raw job.
pub(crate) async fn retry_now(
    jobs: &Jobs,
    registry: &Registry,
    result_uuid: Uuid,
    force: bool,
) -> Result<Option<JobRequest>> {
    let results = jobs.store().result_by_uuid(result_uuid).await?;
    let Some(result) = results else {
        return Ok(None);
    };
    match registry.load(&result.job_class, result.parameters.as_ref()) {
        Ok(job) => retry_with(jobs, &*job, result_uuid, force).await,
        Err(_) => {
            let job = raw_job(&result.job_class, result.parameters.as_ref());
            retry_with(jobs, &job, result_uuid, force).await
        }
    }
}
