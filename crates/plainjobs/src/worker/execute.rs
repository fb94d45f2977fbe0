//! Running one job: rebuild it from its row and run it ([`run_job`]), then record what
//! happened ([`record`]): a result for the writer, or a result with its follow-up request.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::core::Core;
use super::follow_up::write_follow_up;
use super::pace::Counters;
use crate::client::follow_up::FollowUp;
use crate::job::{JobContext, Outcome};
use crate::model::{JobProcess, JobResult, JobStatus};
use crate::params::RunOptions;
use crate::registry::{ErasedJob, LoadError};
use crate::settings::approximate_duration;
use crate::store::Finish;
use crate::telemetry::hooks as otel;

/// How a run ended.
enum Ran {
    Success,
    Defer {
        delay: Duration,
        increment_retries: bool,
    },
    /// `error` is stored (with a backtrace when captured); `summary` is logged; `error_type`
    /// is telemetry's `error.type`.
    Failed {
        error: String,
        summary: String,
        error_type: &'static str,
    },
}

/// Starts `process` in a task of its own on `permit`'s slot (the claim loop's starts). False
/// when it was claimed ahead and cancelled since: it does not start, and the slot is free.
pub(crate) fn spawn_job(
    core: &Arc<Core>,
    process: JobProcess,
    permit: OwnedSemaphorePermit,
) -> bool {
    core.ledger.start(process, |process, cancel| {
        core.tasks
            .spawn(job_task(core.clone(), process, cancel, Some(permit)));
    })
}

/// As [`spawn_job`], unless the worker has given up on running jobs (see
/// [`Ledger::start_unless`]); the slot comes back when it did not start.
///
/// [`Ledger::start_unless`]: super::ledger::Ledger::start_unless
pub(crate) fn spawn_job_unless_aborted(
    core: &Arc<Core>,
    process: JobProcess,
    permit: OwnedSemaphorePermit,
) -> Result<(), OwnedSemaphorePermit> {
    let mut permit = Some(permit);
    let started = core
        .ledger
        .start_unless(&core.shutdown.abort, process, |process, cancel| {
            let task = job_task(core.clone(), process, cancel, permit.take());
            core.tasks.spawn(task);
        });
    match (started, permit) {
        (false, Some(permit)) => Err(permit),
        _ => Ok(()),
    }
}

/// A job's task: run it unless cancelled, then record its end. A cancelled job's result is
/// written by whoever cancelled it.
async fn job_task(
    core: Arc<Core>,
    process: JobProcess,
    cancel: CancellationToken,
    permit: Option<OwnedSemaphorePermit>,
) {
    let span = otel::process_span(&process);
    otel::describe_process(&span, &process);
    if let Some(metrics) = core.jobs.metrics() {
        if let (Some(started), Some(requested)) = (process.started_at, process.requested_at) {
            let waited = (started - requested).to_std().unwrap_or_default();
            metrics.queue_wait(&process.queue, &process.job_class, waited);
        }
    }
    let began = Instant::now();
    let job = core
        .registry
        .load(&process.job_class, process.parameters.as_ref());
    let limit = run_limit(&process, job.as_ref().ok().map(|j| &**j));
    let run = within_limit(limit, run_job(&core, &process, &job));
    let ran = tokio::select! {
        biased;
        _ = cancel.cancelled() => return,
        ran = run.instrument(span.clone()) => ran,
    };
    if !core.ledger.finish_running(process.uuid) {
        return;
    }
    core.pace.record_run(began.elapsed());
    let took = began.elapsed();
    record(&core, &process, job.ok().as_deref(), ran, took, &span)
        .instrument(span.clone())
        .await;
    drop(permit);
}

/// The run-time limit: the enqueue's (stored with the parameters), else the job type's.
fn run_limit(process: &JobProcess, job: Option<&dyn ErasedJob>) -> Option<Duration> {
    RunOptions::read(process.parameters.as_ref())
        .timeout
        .or_else(|| job.and_then(|j| j.timeout()))
}

/// Runs `run`, stopping it (dropping its future) when it outlasts `limit`.
async fn within_limit(limit: Option<Duration>, run: impl std::future::Future<Output = Ran>) -> Ran {
    let Some(limit) = limit else {
        return run.await;
    };
    match tokio::time::timeout(limit, run).await {
        Ok(ran) => ran,
        Err(_) => {
            let text = format!(
                "Timed out: the job ran longer than its limit of {} and was stopped",
                humantime::format_duration(limit)
            );
            Ran::Failed {
                error: text.clone(),
                summary: text,
                error_type: "timeout",
            }
        }
    }
}

/// Runs the job's code, catching panics. An unknown name or parameters that do not fit fail
/// the run with a message saying so.
async fn run_job(
    core: &Core,
    process: &JobProcess,
    job: &Result<Box<dyn ErasedJob>, LoadError>,
) -> Ran {
    let queue_wait_ms = match (process.started_at, process.requested_at) {
        (Some(s), Some(r)) => (s - r).num_milliseconds(),
        _ => 0,
    };
    tracing::info!(
        queue_wait_ms,
        attempt = process.retry_attempt,
        "job started"
    );
    let job = match job {
        Ok(job) => job,
        Err(e) => {
            return Ran::Failed {
                error: e.to_string(),
                summary: e.to_string(),
                error_type: "plainjobs::LoadError",
            }
        }
    };
    let ctx = JobContext {
        process: process.clone(),
        state: core.state.clone(),
        jobs: core.jobs.clone(),
        shutdown: core.shutdown.stop.clone(),
    };
    match AssertUnwindSafe(job.run(&ctx)).catch_unwind().await {
        Ok(Ok(Outcome::Success)) => Ran::Success,
        Ok(Ok(Outcome::Defer {
            delay,
            increment_retries,
        })) => Ran::Defer {
            delay,
            increment_retries,
        },
        Ok(Err(e)) => Ran::Failed {
            error: e.report(),
            summary: e.chain(),
            error_type: e.type_name(),
        },
        Err(panic) => {
            let text = format!("panicked: {}", panic_message(&*panic));
            Ran::Failed {
                error: text.clone(),
                summary: text,
                error_type: "panic",
            }
        }
    }
}

/// Records how the run ended: a success or a final failure goes to the result writer; a
/// failure with retries left or a deferral is written with its follow-up request. Telemetry:
/// the run's duration and outcome, the error on `span`.
async fn record(
    core: &Core,
    process: &JobProcess,
    job: Option<&dyn ErasedJob>,
    ran: Ran,
    took: Duration,
    span: &tracing::Span,
) {
    let duration_ms = took.as_millis() as u64;
    let counters = &core.counters;
    let metrics = core.jobs.metrics();
    let (queue, class) = (process.queue.as_str(), process.job_class.as_str());
    match ran {
        Ran::Success => {
            Counters::add(&counters.succeeded, 1);
            tracing::info!(status = "SUCCESSFUL", duration_ms, "job finished");
            if let Some(m) = metrics {
                m.processed(queue, class, None, took);
                m.consumed(queue, class, JobStatus::Successful.as_str(), None);
            }
            finish(core, process, JobStatus::Successful, String::new()).await;
        }
        Ran::Failed {
            error,
            summary,
            error_type,
        } => {
            Counters::add(&counters.failed, 1);
            tracing::warn!(status = "ERRORED", duration_ms, error = %summary, "job failed");
            otel::record_error(span, error_type, &summary);
            if let Some(m) = metrics {
                m.processed(queue, class, Some(error_type), took);
                m.consumed(queue, class, JobStatus::Errored.as_str(), Some(error_type));
            }
            let error = storable(error);
            let retry =
                job.is_some() && process.retries > 0 && process.retry_attempt < process.retries;
            if let (true, Some(job)) = (retry, job) {
                let follow = FollowUp::Retry;
                let written =
                    write_follow_up(core, process, JobStatus::Errored, &error, Some(job), follow)
                        .await;
                if let Some(result) = written {
                    announce_retry(process, job, &result);
                }
            } else {
                if process.retries > 0 {
                    let attempts = format!("{}/{}", process.retry_attempt, process.retries);
                    tracing::warn!(attempts, "no retries left: the job stays ERRORED");
                }
                finish(core, process, JobStatus::Errored, error).await;
            }
        }
        Ran::Defer {
            delay,
            increment_retries,
        } => {
            Counters::add(&counters.deferred, 1);
            let delay_s = delay.as_secs_f64();
            tracing::info!(status = "DEFERRED", duration_ms, delay_s, "job deferred");
            if let Some(m) = metrics {
                m.processed(queue, class, None, took);
                m.consumed(queue, class, JobStatus::Deferred.as_str(), None);
            }
            let follow = FollowUp::Defer {
                delay,
                increment_retries,
            };
            let written =
                write_follow_up(core, process, JobStatus::Deferred, "", job, follow).await;
            if written.is_some_and(|r| r.retry_job_request_uuid.is_none()) {
                otel::flag(span, otel::DEFER_SKIPPED);
            }
        }
    }
}

/// Says in the log what follows a failure with retries left: the next attempt and when it
/// starts, or that the job's uniqueness refused it.
fn announce_retry(process: &JobProcess, job: &dyn ErasedJob, result: &JobResult) {
    let next = process.retry_attempt.saturating_add(1);
    let attempt = format!("{next}/{}", process.retries);
    match result.retry_job_request_uuid {
        Some(retry_request_uuid) => {
            let delay = job.retry_delay(u32::try_from(next).unwrap_or(1));
            let retry_in = approximate_duration(delay);
            tracing::info!(attempt, retry_in, %retry_request_uuid, "job will be retried");
        }
        None => tracing::warn!(
            attempt,
            "job will not be retried: a job with its concurrency key is pending or running"
        ),
    }
}

async fn finish(core: &Core, process: &JobProcess, status: JobStatus, error: String) {
    let finish = Finish {
        process_uuid: process.uuid,
        status,
        error,
    };
    core.writer.finished(finish).await;
}

/// Error text as the database can store it: PostgreSQL's `text` refuses NUL characters, and a
/// result that can never be written would stall the result writer.
pub(crate) fn storable(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\\0")
    } else {
        text
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}
