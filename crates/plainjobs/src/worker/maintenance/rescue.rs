//! Rescue: jobs of dead workers become LOST results (their `on_aborted` hooks run, then the
//! retries they qualify for); so do processes whose worker left no heartbeat row, and this
//! worker's own orphans (those that never began go back to the queue instead).

use std::time::Duration;

use super::retries::retry_result;
use crate::model::JobResult;
use crate::worker::aborted::run_on_aborted;
use crate::worker::core::Core;

/// How long the orphan rescue waits for a claim in flight before it tries again next pass.
const CLAIM_WAIT: Duration = Duration::from_secs(5);

/// Rescues every dead worker (one transaction each), processes without a worker, and this
/// worker's own orphans.
pub(crate) async fn rescue(core: &Core) {
    // After an outage every heartbeat looks stale: a worker that cannot write its own yet must
    // not declare the others dead.
    if !core.health.is_ok() {
        return;
    }
    let timeout = core.config.heartbeat_timeout;
    rescue_dead_workers(core, timeout).await;
    match core.store().rescue_unowned(timeout).await {
        Ok(results) if !results.is_empty() => {
            tracing::warn!(
                jobs = results.len(),
                "rescued jobs whose worker left no heartbeat as LOST"
            );
            after_rescue(core, results).await;
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "rescue of jobs without a worker failed"),
    }
    rescue_own_orphans(core, timeout).await;
}

async fn rescue_dead_workers(core: &Core, timeout: Duration) {
    let store = core.store();
    let stale = match store.stale_workers(timeout).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "could not look for dead workers");
            return;
        }
    };
    for id in stale.into_iter().filter(|id| *id != core.id()) {
        match store.rescue_worker(id, timeout).await {
            Ok(Some(results)) => {
                tracing::warn!(dead_worker_id = %id, jobs = results.len(), "rescued a dead worker's jobs as LOST");
                after_rescue(core, results).await;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(dead_worker_id = %id, error = %e, "rescue failed; retrying next pass")
            }
        }
    }
}

/// After a rescue: hooks first, then the retries the results qualify for.
async fn after_rescue(core: &Core, results: Vec<JobResult>) {
    if let Some(metrics) = core.jobs.metrics() {
        metrics.results(&results);
    }
    run_on_aborted(core, &results).await;
    for r in results.iter().filter(|r| r.is_retryable()) {
        if let Err(e) = retry_result(&core.jobs, &core.registry, r).await {
            tracing::warn!(job_result_uuid = %r.uuid, error = %e, "retry after rescue failed; the retry pass will try again");
        }
    }
}

/// This worker's own processes that it does not hold, older than `timeout`: those that never
/// began (a claim whose reply was lost, say) go back to the queue with no retry spent; those
/// that began become LOST. No claim of ours runs meanwhile, so the ledger has everything
/// claimed.
async fn rescue_own_orphans(core: &Core, timeout: Duration) {
    let Some(paused) = core.ledger.pause_claims(CLAIM_WAIT).await else {
        tracing::debug!("a claim is taking long; the orphan rescue waits for the next pass");
        return;
    };
    let accounted = core.ledger.accounted();
    let orphans = core
        .store()
        .rescue_orphans(core.id(), timeout, &accounted.held, &accounted.abandoned)
        .await;
    drop(paused);
    let orphans = match orphans {
        Ok(orphans) => orphans,
        Err(e) => {
            tracing::warn!(error = %e, "orphan rescue failed");
            return;
        }
    };
    if orphans.handed_back > 0 {
        tracing::warn!(
            jobs = orphans.handed_back,
            "handed this worker's own orphaned jobs that never began back to the queue"
        );
    }
    if !orphans.lost.is_empty() {
        core.ledger
            .forget_abandoned(orphans.lost.iter().map(|r| &r.job_process_uuid));
        tracing::warn!(
            jobs = orphans.lost.len(),
            "rescued this worker's own orphaned jobs as LOST"
        );
        after_rescue(core, orphans.lost).await;
    }
}
