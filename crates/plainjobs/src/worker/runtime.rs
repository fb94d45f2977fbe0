//! A running worker, from registration to deregistration: the tasks it starts and the order in
//! which it stops them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::claim_loop::{sleep_until_done, ClaimLoop};
use super::control::{self, ClaimQueues};
use super::core::{Core, Health, Shutdown};
use super::maintenance::{heartbeat_loop, maintenance_loop, stats_loop};
use super::pace::Counters;
use super::shutdown::{drain, hand_back, hand_back_unaccounted_at_shutdown};
use super::writer::{write_results, ResultWriter};
use super::Worker;
use crate::dispatch::LocalDispatch;
use crate::model::new_uuid;
use crate::store::{Heard, Listener, NewHeartbeat};
use crate::Result;

/// Runs `worker` until `shutdown` says stop (or claiming fails for good), then shuts down:
/// hands back what never started, waits for (or cancels) running jobs, flushes results and
/// deregisters.
pub(crate) async fn run(worker: Worker, shutdown: Shutdown, counters: Arc<Counters>) -> Result<()> {
    let max_pending = worker.max_pending;
    let (schedules, clock) = (worker.schedules, worker.clock);
    let registration = NewHeartbeat {
        worker_id: new_uuid(),
        hostname: hostname(),
        pid: i32::try_from(std::process::id()).unwrap_or(i32::MAX),
        queues: worker.queues,
    };
    check_schema(&worker.jobs).await?;
    // Register before anything is claimed: claims require this row.
    let health = Health::new(worker.config.heartbeat_timeout);
    let sent_at = Instant::now();
    worker.jobs.store().heartbeat(&registration).await?;
    health.written(sent_at);
    let capacity = worker.concurrency * 4 + max_pending * 2 + 1024;
    let (writer, writes) = ResultWriter::new(capacity);
    let claim_queues = ClaimQueues::new(&registration.queues);
    let core = Arc::new(Core {
        registration,
        jobs: worker.jobs,
        registry: worker.registry,
        state: worker.state,
        config: worker.config,
        concurrency: worker.concurrency,
        ledger: Default::default(),
        claim_queues,
        control: Arc::new(Notify::new()),
        slots: Arc::new(Semaphore::new(worker.concurrency)),
        shutdown,
        health,
        offer: Default::default(),
        wake: Arc::new(Notify::new()),
        writer,
        pace: Default::default(),
        counters,
        vacuum: Default::default(),
        tasks: TaskTracker::new(),
    });
    tracing::info!(worker_id = %core.id(), queues = ?core.queues(), concurrency = core.concurrency, max_pending, "worker started");

    // Paused queues are known before the first claim.
    let mut looks = control::Looks::default();
    looks.look(&core).await;
    // Background tasks live until `done` (after the last result is written).
    let done = CancellationToken::new();
    let mut background = vec![
        tokio::spawn(control::control_task(
            core.clone(),
            looks,
            core.control.clone(),
            done.clone(),
        )),
        tokio::spawn(heartbeat_task(core.clone(), done.clone())),
        tokio::spawn(maintenance_loop(
            core.clone(),
            schedules,
            clock,
            done.clone(),
        )),
    ];
    background.extend(listen_task(&core, &done).await);
    if let Some(every) = core.config.stats_interval {
        let (core, done) = (core.clone(), done.clone());
        background.push(tokio::spawn(async move {
            stats_loop(&core.counters, &core.ledger, every, done).await
        }));
    }
    #[cfg(feature = "otel")]
    if let Some(metrics) = core.jobs.metrics().cloned() {
        let (core, done) = (core.clone(), done.clone());
        background.push(tokio::spawn(async move {
            super::maintenance::gauges_loop(&core, metrics, done).await
        }));
    }
    let writer_task = tokio::spawn(write_results(core.clone(), writes));
    if core.config.local_dispatch {
        let local: Arc<dyn LocalDispatch> = core.clone();
        core.jobs.add_local_worker(Arc::downgrade(&local));
    }

    let mut claims = ClaimLoop::new(core.clone(), max_pending);
    let outcome = claims.run().await;
    stop(&core, &mut claims, writer_task).await;
    done.cancel();
    for task in background {
        let _ = task.await;
    }
    deregister(&core).await;
    outcome
}

/// Stops claiming, hands back what never started (the claimed-ahead buffer, and what a claim
/// whose reply was lost may have left), lets running jobs finish (or cancels them), and flushes
/// the results.
async fn stop(core: &Arc<Core>, claims: &mut ClaimLoop, writer_task: JoinHandle<()>) {
    core.shutdown.stop.cancel();
    hand_back(core, &mut claims.buffer.jobs).await;
    hand_back_unaccounted_at_shutdown(core).await;
    drain(core).await;
    // A local dispatch that failed as the worker stopped, maybe after committing (its slot
    // came back after it said so).
    if core.offer.take_unsure() {
        hand_back_unaccounted_at_shutdown(core).await;
    }
    // Every job task has ended: close the writer's channel and let it flush.
    core.writer.close();
    if let Err(e) = writer_task.await {
        tracing::error!(error = %e, "result writer failed");
    }
}

/// Refuses a schema newer than this build knows, or none at all; says loudly what else
/// differs (a Plain deploy may have taken an index away), and what fixes it.
async fn check_schema(jobs: &crate::Jobs) -> Result<()> {
    let report = jobs.check_schema().await?;
    if report.is_newer() {
        return Err(crate::Error::SchemaTooNew {
            found: report.version.unwrap_or(report.known_version),
            known: report.known_version,
        });
    }
    if !report.tables {
        return Err(crate::Error::NotMigrated);
    }
    if !report.claim_index {
        tracing::error!("the claim index is missing: every claim sorts the whole queue; run `plainjobs migrate` to put it back");
    }
    if !report.is_current() {
        tracing::warn!(problems = ?report.problems, "the job tables differ from what this plainjobs expects; run `plainjobs migrate` to fix them");
    }
    Ok(())
}

async fn deregister(core: &Core) {
    let id = core.id();
    match core.store().deregister(id).await {
        Ok(true) => tracing::info!(worker_id = %id, "worker stopped"),
        Ok(false) => {
            tracing::warn!(worker_id = %id, "worker stopped with jobs of its own still recorded; its heartbeat is left to go stale so that they are rescued")
        }
        Err(e) => {
            tracing::warn!(worker_id = %id, error = %e, "could not deregister; the heartbeat will go stale")
        }
    }
}

async fn heartbeat_task(core: Arc<Core>, done: CancellationToken) {
    let every = core.config.heartbeat_interval;
    heartbeat_loop(core.store(), &core.registration, every, &core.health, done).await
}

/// With LISTEN on, a task that wakes the claim loop whenever requests may have been inserted,
/// and the control task when jobs were cancelled or a queue paused.
async fn listen_task(core: &Arc<Core>, done: &CancellationToken) -> Option<JoinHandle<()>> {
    if !core.config.listen {
        return None;
    }
    match core.store().listener().await {
        Ok(Some(listener)) => Some(tokio::spawn(pass_on_notices(
            listener,
            core.clone(),
            done.clone(),
        ))),
        Ok(None) => {
            tracing::info!("no LISTEN here (SQLite, or behind a transaction pooler); polling");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "LISTEN failed; polling instead");
            None
        }
    }
}

/// Wakes the claim loop for what the listener says may have been inserted, and the control
/// task for cancels and pauses; both after an error (anything may have been missed).
async fn pass_on_notices(
    mut listener: Box<dyn Listener>,
    core: Arc<Core>,
    done: CancellationToken,
) {
    loop {
        let heard = tokio::select! {
            _ = done.cancelled() => return,
            heard = listener.wait() => heard,
        };
        let failed = heard.as_ref().is_err();
        let heard = heard.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "LISTEN failed; retrying in 1s (polling meanwhile)");
            Heard::Anything
        });
        if heard != Heard::Control {
            core.wake.notify_one();
        }
        if heard != Heard::Requests {
            core.control.notify_one();
        }
        if failed && sleep_until_done(&done, Duration::from_secs(1)).await {
            return;
        }
    }
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_string())
}
