//! The worker's periodic duties: heartbeat, rescue, retries, retention, schedules, stats.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::retry::retry_result;
use super::run::{accounted, lock, Shared};
use crate::enqueue::{build_request, Options};
use crate::model::{JobResult, JobStatus};
use crate::registry::ErasedJob;
use crate::schedule::Schedule;
use crate::store::Start;

/// Where the scheduling pass reads the time.
pub(crate) type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// A job with its schedule, as given to the worker.
pub(crate) struct ScheduledJob {
    pub job: Box<dyn ErasedJob>,
    pub schedule: Schedule,
    /// The occurrence last enqueued by a whole successful pass.
    pub stamped: Option<DateTime<Utc>>,
    /// Evaluate in the worker's configured time zone (a schedule given as text).
    pub zone_from_config: bool,
}

/// Refreshes the heartbeat; while it cannot, the claim loop pauses.
pub(crate) async fn heartbeat_loop(shared: Arc<Shared>, done: CancellationToken) {
    let every = shared.config.heartbeat_interval;
    let mut next = every;
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep(next) => {}
        }
        match shared.jobs.store().heartbeat(&shared.heartbeat).await {
            Ok(recreated) => {
                if recreated {
                    // Our row was gone: a rescuer may have turned our jobs LOST (and retried
                    // them). Jobs claimed ahead and not started go back rather than run twice.
                    tracing::warn!("this worker's heartbeat row was gone; re-registered");
                    shared.reregistered.store(true, Ordering::Release);
                }
                if !shared.heartbeat_ok.swap(true, Ordering::AcqRel) {
                    tracing::info!("heartbeat written again; claiming resumes");
                }
                next = every;
            }
            Err(e) => {
                if shared.heartbeat_ok.swap(false, Ordering::AcqRel) {
                    tracing::warn!(error = %e, "cannot write the heartbeat; claiming paused until it can");
                }
                next = every.min(Duration::from_secs(1));
            }
        }
    }
}

/// How long one `on_aborted` hook may run before it is abandoned (rescue, retries and schedules
/// wait for it).
const ON_ABORTED_LIMIT: Duration = Duration::from_secs(60);

/// Runs `on_aborted` for LOST and CANCELLED results (after their transaction committed).
/// Errors are logged and swallowed.
pub(crate) async fn dispatch_aborted(shared: &Shared, results: &[JobResult]) {
    for r in results
        .iter()
        .filter(|r| matches!(r.status, JobStatus::Lost | JobStatus::Cancelled))
    {
        let job = match shared.registry.load(&r.job_class, r.parameters.as_ref()) {
            Ok(job) => job,
            Err(e) => {
                tracing::warn!(job_class = %r.job_class, job_result_uuid = %r.uuid, error = %e, "cannot load the job for on_aborted");
                continue;
            }
        };
        match tokio::time::timeout(ON_ABORTED_LIMIT, job.on_aborted(r, &shared.state)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(job_class = %r.job_class, job_result_uuid = %r.uuid, error = %e.chain(), "on_aborted failed")
            }
            Err(_) => {
                tracing::warn!(job_class = %r.job_class, job_result_uuid = %r.uuid, "on_aborted took longer than 60 s; abandoned")
            }
        }
    }
}

/// After a rescue: hooks first, then the retries the results qualify for.
async fn after_rescue(shared: &Shared, results: Vec<JobResult>) {
    dispatch_aborted(shared, &results).await;
    for r in results.iter().filter(|r| r.is_retryable()) {
        if let Err(e) = retry_result(&shared.jobs, &shared.registry, r).await {
            tracing::warn!(job_result_uuid = %r.uuid, error = %e, "retry after rescue failed; the retry pass will try again");
        }
    }
}

/// Rescues every dead worker (one transaction each) and this worker's own orphans.
pub(crate) async fn rescue(shared: &Shared) {
    // After an outage every heartbeat looks stale: a worker that cannot write its own yet must
    // not declare the others dead.
    if !shared.heartbeat_ok.load(Ordering::Acquire) {
        return;
    }
    let store = shared.jobs.store();
    let timeout = shared.config.heartbeat_timeout;
    match store.stale_workers(timeout).await {
        Ok(ids) => {
            for id in ids.into_iter().filter(|id| *id != shared.worker_id) {
                match store.rescue_worker(id, timeout).await {
                    Ok(Some(results)) => {
                        tracing::warn!(dead_worker_id = %id, jobs = results.len(), "rescued a dead worker's jobs as LOST");
                        after_rescue(shared, results).await;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(dead_worker_id = %id, error = %e, "rescue failed; retrying next pass")
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not look for dead workers"),
    }
    match store.rescue_unowned(timeout).await {
        Ok(results) if !results.is_empty() => {
            tracing::warn!(
                jobs = results.len(),
                "rescued jobs whose worker left no heartbeat as LOST"
            );
            after_rescue(shared, results).await;
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "rescue of jobs without a worker failed"),
    }
    rescue_own_orphans(shared, timeout).await;
}

/// How long the orphan rescue waits for a claim in flight before it tries again next pass.
const CLAIM_WAIT: Duration = Duration::from_secs(5);

/// This worker's own processes that it does not hold, older than `timeout`: those that never
/// began (a claim whose reply was lost, say) go back to the queue with no retry spent; those
/// that began become LOST. No claim of ours is in flight meanwhile (`claim_lock`), so `held`
/// has everything claimed.
async fn rescue_own_orphans(shared: &Shared, timeout: Duration) {
    let Ok(claiming) = tokio::time::timeout(CLAIM_WAIT, shared.claim_lock.lock()).await else {
        tracing::debug!("a claim is taking long; the orphan rescue waits for the next pass");
        return;
    };
    let (held, began) = accounted(shared);
    let orphans = shared
        .jobs
        .store()
        .rescue_orphans(shared.worker_id, timeout, &held, &began)
        .await;
    drop(claiming);
    match orphans {
        Ok(orphans) => {
            if orphans.handed_back > 0 {
                tracing::warn!(
                    jobs = orphans.handed_back,
                    "handed this worker's own orphaned jobs that never began back to the queue"
                );
            }
            if !orphans.lost.is_empty() {
                {
                    let mut abandoned = lock(&shared.abandoned);
                    for r in &orphans.lost {
                        abandoned.remove(&r.job_process_uuid);
                    }
                }
                tracing::warn!(
                    jobs = orphans.lost.len(),
                    "rescued this worker's own orphaned jobs as LOST"
                );
                after_rescue(shared, orphans.lost).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "orphan rescue failed"),
    }
}

/// The safety-net retry pass. It walks the retryable results in id order from `cursor`, so
/// results whose retry keeps being refused cannot hide the ones after them.
pub(crate) async fn retry_pass(shared: &Shared, cursor: &mut i64) {
    match shared.jobs.store().retryable_results(*cursor, 100).await {
        Ok(results) => {
            *cursor = if results.len() < 100 {
                0
            } else {
                results.last().map_or(0, |r| r.id)
            };
            for r in &results {
                if let Err(e) = retry_result(&shared.jobs, &shared.registry, r).await {
                    tracing::warn!(job_result_uuid = %r.uuid, error = %e, "retry failed");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not list retryable results"),
    }
}

/// Results deleted per statement by the retention pass.
const RETENTION_BATCH: i64 = 5_000;

/// The longest one retention pass deletes before it lets the next tick carry on: a table with
/// millions of results past retention (a first run, a lowered retention) is worked off a second
/// per tick instead of keeping the database busy until it is done.
const RETENTION_BUDGET: Duration = Duration::from_secs(1);

/// Deletes results past retention, in batches, for at most [`RETENTION_BUDGET`]. Returns
/// whether more are left.
async fn retention_pass(shared: &Shared) -> bool {
    let began = Instant::now();
    let mut deleted = 0u64;
    let more = loop {
        if shared.stop.is_cancelled() {
            break false;
        }
        match shared
            .jobs
            .store()
            .delete_results_before(shared.config.retention, RETENTION_BATCH)
            .await
        {
            Ok(n) => {
                deleted += n;
                if n < RETENTION_BATCH as u64 {
                    break false;
                }
                if began.elapsed() >= RETENTION_BUDGET {
                    break true;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not delete old results");
                break false;
            }
        }
    };
    if deleted > 0 {
        tracing::info!(deleted, more, "deleted results past retention");
    }
    more
}

/// The concurrency key of one scheduled occurrence: any number of workers enqueue it once.
pub(crate) fn scheduled_key(default_key: &str, at: DateTime<Utc>) -> String {
    format!("{default_key}:scheduled:{}", at.timestamp())
}

/// Enqueues one occurrence unless it is pending, running, or already finished: the default
/// uniqueness rule sees only requests and processes, so an occurrence that already ran must not
/// be enqueued again by a worker whose pass began before it was due.
async fn enqueue_occurrence(
    shared: &Shared,
    job: &dyn ErasedJob,
    req: crate::store::NewRequest,
) -> crate::Result<Option<crate::JobRequest>> {
    let mut tx = shared.jobs.store().begin().await?;
    tx.advisory_lock(crate::advisory_lock_id(
        &req.job_class,
        &req.concurrency_key,
    ))
    .await?;
    if tx
        .count_results(&req.job_class, &req.concurrency_key)
        .await?
        > 0
    {
        return Ok(None);
    }
    let out = crate::enqueue::enqueue_on(&mut *tx, job, req, None).await?;
    tx.commit().await?;
    Ok(out)
}

/// Enqueues the next occurrence of every schedule whose job's default queue this worker
/// serves. Stamps only after the whole pass succeeded, so a failed pass is retried next tick.
pub(crate) async fn schedule_pass(
    shared: &Shared,
    queues: &HashSet<String>,
    schedules: &mut [ScheduledJob],
    now: DateTime<Utc>,
) {
    let mut stamps = Vec::new();
    for (i, s) in schedules.iter().enumerate() {
        if !queues.contains(&s.job.default_queue()) {
            continue;
        }
        let Some(next) = s.schedule.next_after(now) else {
            continue;
        };
        if s.stamped == Some(next) {
            continue;
        }
        let opts = Options {
            concurrency_key: Some(scheduled_key(&s.job.default_concurrency_key(), next)),
            start: Some(Start::At(next)),
            ..Options::default()
        };
        let source = format!("schedule {}", s.schedule);
        let result = match build_request(&*s.job, &opts, source) {
            Ok(req) => enqueue_occurrence(shared, &*s.job, req).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(queued) => {
                if queued.is_some() {
                    tracing::info!(job_class = %s.job.job_class(), at = %next.to_rfc3339(), schedule = %s.schedule, "scheduled");
                }
                stamps.push((i, next));
            }
            Err(e) => {
                tracing::warn!(job_class = %s.job.job_class(), error = %e, "scheduling pass failed; retrying next tick");
                return;
            }
        }
    }
    for (i, next) in stamps {
        schedules[i].stamped = Some(next);
    }
}

/// Runs rescue, the retry pass, retention and schedules, each at its own interval.
pub(crate) async fn maintenance_loop(
    shared: Arc<Shared>,
    queues: Vec<String>,
    mut schedules: Vec<ScheduledJob>,
    clock: Option<Clock>,
    done: CancellationToken,
) {
    let cfg = shared.config.clone();
    let queues: HashSet<String> = queues.into_iter().collect();
    for s in schedules.iter_mut().filter(|s| s.zone_from_config) {
        s.schedule = s.schedule.clone().with_timezone(cfg.timezone);
    }
    let tick = cfg
        .rescue_interval
        .min(cfg.retry_interval)
        .min(Duration::from_secs(10))
        .max(Duration::from_millis(50));
    let mut last_rescue: Option<Instant> = None;
    let mut last_retry = Instant::now();
    let mut retry_cursor = 0i64;
    let mut last_retention: Option<Instant> = None;
    let mut retention_left = false;
    loop {
        if last_rescue.is_none_or(|t| t.elapsed() >= cfg.rescue_interval) {
            rescue(&shared).await;
            last_rescue = Some(Instant::now());
        }
        if last_retry.elapsed() >= cfg.retry_interval {
            retry_pass(&shared, &mut retry_cursor).await;
            last_retry = Instant::now();
        }
        if retention_left || last_retention.is_none_or(|t| t.elapsed() >= cfg.retention_interval) {
            retention_left = retention_pass(&shared).await;
            last_retention = Some(Instant::now());
        }
        if !schedules.is_empty() && !shared.stop.is_cancelled() {
            // The database's clock decides which occurrence is next, like every other time.
            let now = match &clock {
                Some(c) => Some(c()),
                None => match shared.jobs.store().now().await {
                    Ok(now) => Some(now),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the database clock; scheduling next tick");
                        None
                    }
                },
            };
            if let Some(now) = now {
                schedule_pass(&shared, &queues, &mut schedules, now).await;
            }
        }
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
    }
}

/// Logs throughput now and then.
pub(crate) async fn stats_loop(shared: Arc<Shared>, every: Duration, done: CancellationToken) {
    let mut last = (0u64, 0u64, 0u64, 0u64);
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let s = &shared.stats;
        let now = (
            s.claimed.load(Ordering::Relaxed),
            s.succeeded.load(Ordering::Relaxed),
            s.failed.load(Ordering::Relaxed),
            s.deferred.load(Ordering::Relaxed),
        );
        let secs = every.as_secs_f64().max(0.001);
        tracing::info!(
            claimed = now.0 - last.0,
            succeeded = now.1 - last.1,
            failed = now.2 - last.2,
            deferred = now.3 - last.3,
            per_second = format!(
                "{:.1}",
                (now.1 + now.2 + now.3 - last.1 - last.2 - last.3) as f64 / secs
            ),
            holding = lock(&shared.held).len(),
            "worker stats"
        );
        last = now;
    }
}
