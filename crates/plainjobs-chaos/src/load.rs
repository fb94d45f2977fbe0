//! The producers of a run: enqueuers spreading the plan's jobs over the load period, and racing
//! enqueuers that try the same concurrency key at the same instant. They record what each
//! enqueue returned, which the checks hold the tables to.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plainjobs::Jobs;
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::job::ChaosJob;
use crate::plan::KeyRound;

/// What the producers were told, by chain.
#[derive(Debug, Default)]
pub struct EnqueueLog {
    /// Enqueued: the request's uuid.
    pub accepted: HashMap<u64, Uuid>,
    /// Skipped because the key was taken (`Ok(None)`).
    pub refused: HashSet<u64>,
    /// The enqueue returned an error (the database restarting, a cut connection): the job may
    /// or may not have been committed.
    pub failed: HashMap<u64, String>,
}

pub type SharedLog = Arc<Mutex<EnqueueLog>>;

fn record(log: &SharedLog, f: impl FnOnce(&mut EnqueueLog)) {
    let mut guard = log.lock().unwrap_or_else(|e| e.into_inner());
    f(&mut guard);
}

const TICK: Duration = Duration::from_millis(100);

/// Enqueues `jobs` evenly over `period`: one at a time, except every fourth tick's share, which
/// goes in one bulk enqueue.
pub async fn spread(jobs_handle: Jobs, jobs: Vec<ChaosJob>, period: Duration, log: SharedLog) {
    let ticks = (period.as_millis() / TICK.as_millis()).max(1) as usize;
    let per_tick = jobs.len().div_ceil(ticks).max(1);
    let started = Instant::now();
    for (i, batch) in jobs.chunks(per_tick).enumerate() {
        if i % 4 == 3 {
            enqueue_bulk(&jobs_handle, batch, &log).await;
        } else {
            for job in batch {
                enqueue_one(&jobs_handle, job.clone(), &log).await;
            }
        }
        let next = started + TICK * (i as u32 + 1);
        tokio::time::sleep_until(next.into()).await;
    }
}

async fn enqueue_one(jobs: &Jobs, job: ChaosJob, log: &SharedLog) {
    let chain = job.chain;
    match jobs.enqueue(job).await {
        Ok(Some(req)) => record(log, |l| {
            l.accepted.insert(chain, req.uuid);
        }),
        Ok(None) => record(log, |l| {
            l.refused.insert(chain);
        }),
        Err(e) => record(log, |l| {
            l.failed.insert(chain, e.to_string());
        }),
    }
}

async fn enqueue_bulk(jobs: &Jobs, batch: &[ChaosJob], log: &SharedLog) {
    match jobs.enqueue_many(batch.iter().cloned()).await {
        // Jobs without a key are all inserted, in order.
        Ok(requests) => record(log, |l| {
            for (job, req) in batch.iter().zip(&requests) {
                l.accepted.insert(job.chain, req.uuid);
            }
            for job in batch.iter().skip(requests.len()) {
                let note = format!(
                    "bulk enqueue returned {} of {}",
                    requests.len(),
                    batch.len()
                );
                l.failed.insert(job.chain, note);
            }
        }),
        Err(e) => record(log, |l| {
            for job in batch {
                l.failed.insert(job.chain, e.to_string());
            }
        }),
    }
}

/// Enqueues `jobs` in `bursts` bulk enqueues spread over `period`: backlogs, which workers
/// drain by claiming ahead (so a frozen or killed worker holds jobs it has not started).
pub async fn burst(
    jobs_handle: Jobs,
    jobs: Vec<ChaosJob>,
    period: Duration,
    bursts: usize,
    log: SharedLog,
) {
    let gap = period / (bursts.max(1) as u32);
    let size = jobs.len().div_ceil(bursts.max(1)).max(1);
    let started = Instant::now();
    for (i, batch) in jobs.chunks(size).enumerate() {
        enqueue_bulk(&jobs_handle, batch, &log).await;
        tokio::time::sleep_until((started + gap * (i as u32 + 1)).into()).await;
    }
}

/// Each round: one task per racer, released together by a barrier, each enqueuing its job with
/// the round's key. Rounds are spread over `period`.
pub async fn race(jobs: Jobs, rounds: Vec<KeyRound>, period: Duration, log: SharedLog) {
    let gap = period / (rounds.len().max(1) as u32);
    for round in rounds {
        let next = Instant::now() + gap;
        let barrier = Arc::new(Barrier::new(round.jobs.len()));
        let mut racers = JoinSet::new();
        for job in round.jobs {
            let (jobs, log, barrier) = (jobs.clone(), log.clone(), barrier.clone());
            racers.spawn(async move {
                barrier.wait().await;
                enqueue_one(&jobs, job, &log).await;
            });
        }
        while racers.join_next().await.is_some() {}
        tokio::time::sleep_until(next.into()).await;
    }
}
