//! Giving jobs back and stopping: the hand-back of jobs that never began (same uuid, same
//! `created_at`, no retry spent), and the drain of running jobs at shutdown (wait, then cancel
//! after the shutdown timeout).

use std::collections::VecDeque;
use std::time::Duration;

use uuid::Uuid;

use super::aborted::run_on_aborted;
use super::core::Core;
use super::follow_up::write_follow_up;
use crate::client::follow_up::FollowUp;
use crate::model::{JobProcess, JobStatus};
use crate::Result;

/// Attempts to hand claimed-ahead jobs back before leaving them to a rescuer.
const HAND_BACK_ATTEMPTS: u64 = 10;

/// How long cancelled job tasks get to unwind.
const UNWIND: Duration = Duration::from_secs(5);

/// Returns claimed-but-unstarted jobs to the queue (no retry used), retrying a while; what
/// cannot go back is left to a rescuer as LOST.
pub(crate) async fn hand_back(core: &Core, buffer: &mut VecDeque<JobProcess>) {
    if buffer.is_empty() {
        return;
    }
    let uuids: Vec<Uuid> = buffer.iter().map(|p| p.uuid).collect();
    for attempt in 1..=HAND_BACK_ATTEMPTS {
        match core.store().hand_back(core.id(), &uuids).await {
            Ok(n) => {
                tracing::info!(jobs = n, "handed unstarted jobs back to the queue");
                core.ledger.release_all(&uuids);
                buffer.clear();
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, "could not hand jobs back; retrying");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
        }
    }
    tracing::error!(
        jobs = uuids.len(),
        "could not hand jobs back; they will be rescued as LOST"
    );
}

/// Hands back every process of this worker that it does not account for and that never began:
/// what a claim (or a local dispatch) whose reply was lost left behind. Call only when no claim
/// of this worker is in flight.
pub(crate) async fn hand_back_unaccounted(core: &Core) -> Result<u64> {
    let accounted = core.ledger.accounted().all();
    let n = core
        .store()
        .hand_back_unaccounted(core.id(), &accounted)
        .await?;
    if n > 0 {
        tracing::warn!(
            jobs = n,
            "a claim committed although its reply was lost; its jobs went back to the queue"
        );
    }
    Ok(n)
}

/// As [`hand_back_unaccounted`], at shutdown: best effort.
pub(crate) async fn hand_back_unaccounted_at_shutdown(core: &Core) {
    if let Err(e) = hand_back_unaccounted(core).await {
        tracing::warn!(error = %e, "could not look for jobs of a claim whose reply was lost");
    }
}

/// Waits for running jobs; after the shutdown timeout (or an abort) cancels the rest, records
/// them CANCELLED (retried when they may be) and runs their `on_aborted` hooks.
pub(crate) async fn drain(core: &Core) {
    let all = u32::try_from(core.concurrency).unwrap_or(u32::MAX);
    let running = core.concurrency - core.slots.available_permits();
    if running > 0 {
        tracing::info!(running, "waiting for running jobs to finish");
    }
    let timeout = async {
        match core.config.shutdown_timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = core.slots.acquire_many(all) => return,
        _ = timeout => tracing::warn!("shutdown timeout reached: cancelling running jobs"),
        _ = core.shutdown.abort.cancelled() => tracing::warn!("cancelling running jobs"),
    }
    core.shutdown.abort.cancel();
    cancel_running(core).await;
    core.tasks.close();
    let _ = tokio::time::timeout(UNWIND, core.tasks.wait()).await;
}

/// Cancels every running job and writes its CANCELLED result (with a retry when it may have
/// one), then runs the `on_aborted` hooks.
async fn cancel_running(core: &Core) {
    let cancelled = core.ledger.take_running();
    for r in &cancelled {
        r.cancel.cancel();
    }
    let mut results = Vec::new();
    for r in cancelled {
        let process = r.process;
        let job = core
            .registry
            .load(&process.job_class, process.parameters.as_ref())
            .ok();
        let follow = if job.is_some() {
            FollowUp::Retry
        } else {
            FollowUp::None
        };
        let error = "Cancelled: the worker shut down before the job finished";
        let status = JobStatus::Cancelled;
        let written = write_follow_up(core, &process, status, error, job.as_deref(), follow).await;
        results.extend(written);
    }
    if let Some(metrics) = core.jobs.metrics() {
        metrics.results(&results);
    }
    run_on_aborted(core, &results).await;
}
