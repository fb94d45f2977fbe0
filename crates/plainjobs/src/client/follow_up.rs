//! Follow-up requests: the retry or deferral that a finished run asks for, written in one
//! transaction with its result; and retrying a failed result.

use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use super::admit::enqueue_on;
use super::traced::Sending;
use crate::model::{new_uuid, JobProcess, JobRequest, JobResult, JobStatus};
use crate::registry::ErasedJob;
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

/// What a follow-up request copies from the row it follows (a process or a result): the same
/// job, queue, priority, retries, key and trace.
struct Origin<'a> {
    job_class: &'a str,
    parameters: Option<&'a Value>,
    priority: i16,
    source: &'a str,
    queue: &'a str,
    retries: i16,
    concurrency_key: &'a str,
    trace_id: Option<&'a str>,
    span_id: Option<&'a str>,
}

impl<'a> From<&'a JobProcess> for Origin<'a> {
    fn from(p: &'a JobProcess) -> Self {
        Origin {
            job_class: &p.job_class,
            parameters: p.parameters.as_ref(),
            priority: p.priority,
            source: &p.source,
            queue: &p.queue,
            retries: p.retries,
            concurrency_key: &p.concurrency_key,
            trace_id: p.trace_id.as_deref(),
            span_id: p.span_id.as_deref(),
        }
    }
}

impl<'a> From<&'a JobResult> for Origin<'a> {
    fn from(r: &'a JobResult) -> Self {
        Origin {
            job_class: &r.job_class,
            parameters: r.parameters.as_ref(),
            priority: r.priority,
            source: &r.source,
            queue: &r.queue,
            retries: r.retries,
            concurrency_key: &r.concurrency_key,
            trace_id: r.trace_id.as_deref(),
            span_id: r.span_id.as_deref(),
        }
    }
}

impl Origin<'_> {
    /// The follow-up at `attempt`, `delay` from now.
    fn request(&self, attempt: i16, delay: Duration) -> NewRequest {
        NewRequest {
            uuid: new_uuid(),
            job_class: self.job_class.to_string(),
            parameters: self
                .parameters
                .cloned()
                .unwrap_or_else(|| serde_json::json!({"args": [], "kwargs": {}})),
            priority: self.priority,
            source: self.source.to_string(),
            queue: self.queue.to_string(),
            retries: self.retries,
            retry_attempt: attempt,
            concurrency_key: self.concurrency_key.to_string(),
            start: if delay.is_zero() {
                Start::Now
            } else {
                Start::After(delay)
            },
            trace_id: self.trace_id.map(str::to_string),
            span_id: self.span_id.map(str::to_string),
        }
    }
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
    // A span only for a follow-up that is enqueued (a final result sends nothing).
    let mut send = None;
    let (request, error_text) = match (follow, job) {
        (FollowUp::Retry, Some(job)) if p.retries > 0 && p.retry_attempt < p.retries => {
            let attempt = p.retry_attempt + 1;
            let delay = job.retry_delay(u32::try_from(attempt).unwrap_or(1));
            let mut req = Origin::from(&p).request(attempt, delay);
            send.insert(Sending::start()).describe_follow_up(&mut req);
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
            let mut req = Origin::from(&p).request(attempt, delay);
            send.insert(Sending::start()).describe_follow_up(&mut req);
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
    if let Some(send) = &send {
        count_sent(jobs, send, request.as_ref());
    }
    Ok(Some(result))
}

/// Counts a follow-up request that committed.
fn count_sent(jobs: &Jobs, send: &Sending, request: Option<&JobRequest>) {
    if let (Some(r), Some(metrics)) = (request, jobs.metrics()) {
        metrics.sent(&r.queue, &r.job_class, None, send.elapsed());
    }
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
    let send = Sending::start();
    let mut req = Origin::from(&r).request(attempt, delay);
    send.describe_follow_up(&mut req);
    let new = enqueue_on(&mut *tx, job, req, None).await?;
    if let Some(n) = &new {
        tx.link_retry(r.uuid, n.uuid).await?;
    }
    tx.commit().await?;
    count_sent(jobs, &send, new.as_ref());
    Ok(new)
}
