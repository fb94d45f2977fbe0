//! The claim loop: takes every free slot and claims that many jobs (plus some ahead of a free
//! slot) in one statement, starts them, and sleeps when the queue is empty.
//!
//! Each turn goes through these steps, one method each:
//! 1. [`ClaimLoop::free_slots`]: the free slots, waiting for one unless the local buffer of
//!    claimed-ahead jobs needs refilling; claimed-ahead jobs that waited too long go back;
//! 2. [`ClaimLoop::start_buffered`]: claimed-ahead jobs start first, on those slots;
//! 3. [`ClaimLoop::pause`] while the heartbeat cannot be written (or is too old to vouch for
//!    what the worker holds);
//! 4. [`ClaimLoop::idle`] when the last claim found no more: wait for a notification, the next
//!    `start_at` or the poll interval, offering the free slots to local dispatch meanwhile;
//! 5. [`ClaimLoop::claim`]: claim, start what has a slot, buffer the rest; back off on failure.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::core::Core;
use super::execute::spawn_job;
use super::shutdown::{hand_back, hand_back_unaccounted};
use super::vacuum::vacuum_when_due;
use crate::model::JobProcess;
use crate::store::ClaimHow;
use crate::telemetry::hooks as otel;
use crate::{Error, Result};

/// Jobs claimed ahead that have waited this long for a slot are handed back.
const STALE_BUFFER: Duration = Duration::from_secs(1);

/// While the heartbeat cannot be written, look again this often.
const PAUSE: Duration = Duration::from_millis(250);

/// Jobs claimed ahead of a free slot, in claim order, since when the oldest has waited, and the
/// heartbeat epoch they were claimed in (see [`Health`](super::core::Health)).
#[derive(Default)]
pub(crate) struct Buffer {
    pub jobs: VecDeque<JobProcess>,
    since: Option<Instant>,
    epoch: u64,
}

impl Buffer {
    fn forget_age_if_empty(&mut self) {
        if self.jobs.is_empty() {
            self.since = None;
        }
    }
}

/// What one turn may claim: how many may wait locally, and whether to refill now.
#[derive(Clone, Copy)]
struct Plan {
    ahead: usize,
    refill: bool,
}

/// What [`ClaimLoop::free_slots`] found.
enum Free {
    Stopped,
    /// The claimed-ahead jobs went back: plan the turn again.
    HandedBack,
    Slots(Vec<OwnedSemaphorePermit>),
}

/// How an idle wait ended.
enum Idle {
    Stopped,
    /// The free slots were offered to local dispatch: take them again and claim.
    Offered,
    /// Claim with the slots kept.
    Kept(Vec<OwnedSemaphorePermit>),
}

pub(crate) struct ClaimLoop {
    core: Arc<Core>,
    max_pending: usize,
    pub buffer: Buffer,
    /// The last claim filled every slot it asked for: there may be more.
    more: bool,
    /// Claims failed in a row.
    failures: u32,
    /// A claim failed in a way that may have committed: what it claimed must go back first.
    unsure: bool,
    /// The job names to claim (`WorkerConfig::only_registered`); None: any.
    job_classes: Option<std::sync::Arc<[String]>>,
}

impl ClaimLoop {
    pub fn new(core: Arc<Core>, max_pending: usize) -> ClaimLoop {
        let job_classes = core.config.only_registered.then(|| {
            let names: Vec<String> = core.registry.names().into_iter().map(|n| n.0).collect();
            names.into()
        });
        ClaimLoop {
            job_classes,
            core,
            max_pending,
            buffer: Buffer::default(),
            more: true,
            failures: 0,
            unsure: false,
        }
    }

    /// Runs until the worker stops (Ok) or claiming failed too many times in a row.
    pub async fn run(&mut self) -> Result<()> {
        loop {
            if self.core.health.take_reregistered() && !self.buffer.jobs.is_empty() {
                // A rescuer may have turned our jobs LOST and retried them: what was claimed
                // ahead goes back rather than run twice.
                hand_back(&self.core, &mut self.buffer.jobs).await;
            }
            self.buffer.forget_age_if_empty();
            let plan = self.plan();
            let mut slots = match self.free_slots(plan).await {
                Free::Stopped => return Ok(()),
                Free::HandedBack => continue,
                Free::Slots(slots) => slots,
            };
            if self.start_buffered(&mut slots, plan).await {
                continue;
            }
            let health = &self.core.health;
            if !health.is_ok() || health.vouch().is_none() {
                drop(slots);
                if self.pause().await {
                    return Ok(());
                }
                continue;
            }
            if !self.more && !slots.is_empty() {
                match self.idle(slots).await {
                    Idle::Stopped => return Ok(()),
                    Idle::Offered => {
                        self.more = true;
                        continue;
                    }
                    Idle::Kept(kept) => slots = kept,
                }
            }
            if !self.claim(slots, plan).await? {
                return Ok(());
            }
        }
    }

    /// How many jobs may wait locally: only as many as can start soon, judged by how long jobs
    /// have been taking; the buffer is refilled while jobs run, before it empties.
    fn plan(&self) -> Plan {
        let ahead = self
            .core
            .pace
            .claim_ahead(self.max_pending, self.core.concurrency);
        let refill = self.more && ahead > 0 && self.buffer.jobs.len() <= ahead / 2;
        Plan { ahead, refill }
    }

    /// The free slots: at least one (waiting for it) unless refilling. Claimed-ahead jobs that
    /// waited too long for a slot go back to the queue meanwhile.
    async fn free_slots(&mut self, plan: Plan) -> Free {
        let core = self.core.clone();
        if core.shutdown.is_stopping() {
            return Free::Stopped;
        }
        let mut slots = Vec::new();
        if !plan.refill {
            tokio::select! {
                biased;
                _ = core.shutdown.stop.cancelled() => return Free::Stopped,
                p = core.slots.clone().acquire_owned() => {
                    slots.push(p.expect("the worker never closes its slots"));
                }
                _ = stale_after(&self.buffer) => {
                    // The slots went to slow jobs: the jobs claimed ahead could not start soon
                    // after all, and idle workers can take them from the queue.
                    tracing::debug!(jobs = self.buffer.jobs.len(), "claimed-ahead jobs could not start soon; handing them back");
                    hand_back(&core, &mut self.buffer.jobs).await;
                    self.buffer.since = None;
                    return Free::HandedBack;
                }
            }
        }
        while let Ok(p) = core.slots.clone().try_acquire_owned() {
            slots.push(p);
        }
        Free::Slots(slots)
    }

    /// Starts claimed-ahead jobs on the free slots, at once: their start is recorded by the
    /// result writer, not by a round trip of their own. True when this turn should claim
    /// nothing (no slot left and no refill due).
    async fn start_buffered(&mut self, slots: &mut Vec<OwnedSemaphorePermit>, plan: Plan) -> bool {
        if self.buffer.jobs.is_empty() {
            return false;
        }
        if !self.core.health.vouches_for(self.buffer.epoch) {
            // This worker may have been declared dead since it claimed them (it could not
            // heartbeat, or it was frozen): a rescuer may have turned them LOST and retried
            // them, so they go back (what is still ours) instead of running twice.
            tracing::warn!(jobs = self.buffer.jobs.len(), "cannot vouch for the jobs claimed ahead (the heartbeat is too old); handing them back");
            hand_back(&self.core, &mut self.buffer.jobs).await;
            return true;
        }
        while !self.buffer.jobs.is_empty() {
            let Some(slot) = slots.pop() else { break };
            let Some(mut process) = self.buffer.jobs.pop_front() else {
                break;
            };
            let uuid = process.uuid;
            process.started_at = Some(chrono::Utc::now());
            self.core.writer.started(uuid).await;
            if !spawn_job(&self.core, process, slot) {
                // Cancelled while it waited: its result is written; its slot is free again.
                self.core.ledger.release(uuid);
                if let Ok(slot) = self.core.slots.clone().try_acquire_owned() {
                    slots.push(slot);
                }
            }
        }
        slots.is_empty() && !(plan.refill && self.buffer.jobs.len() <= plan.ahead / 2)
    }

    /// Claiming pauses while the heartbeat cannot be written. True when stopping.
    async fn pause(&self) -> bool {
        sleep_or_stop(&self.core, PAUSE).await
    }

    /// The last claim found no more: waits for a notification, the next `start_at` or the poll
    /// interval. With nothing claimed ahead, the free slots are released meanwhile, for jobs
    /// enqueued in this process to take directly.
    async fn idle(&mut self, slots: Vec<OwnedSemaphorePermit>) -> Idle {
        let core = &self.core;
        let poll = core.config.poll_interval;
        let queues = core.claim_queues.active();
        let wait = match core.store().next_start_in(&queues).await {
            Ok(Some(d)) => d.min(poll),
            _ => poll,
        };
        let offer = core.config.local_dispatch && self.buffer.jobs.is_empty();
        let kept = if offer {
            drop(slots);
            core.offer.set_idle(true);
            None
        } else {
            Some(slots)
        };
        let stopped = tokio::select! {
            biased;
            _ = core.shutdown.stop.cancelled() => true,
            _ = core.wake.notified() => false,
            _ = tokio::time::sleep(wait) => false,
        };
        core.offer.set_idle(false);
        match (stopped, kept) {
            (true, _) => Idle::Stopped,
            (false, None) => Idle::Offered,
            (false, Some(slots)) => Idle::Kept(slots),
        }
    }

    /// Claims a job for each free slot and up to `ahead` more; starts those with a slot and
    /// buffers the rest. On failure, backs off (0.2 s doubling to 10 s, so 30 failures in a row
    /// take about four minutes and a database restart is waited out). False when stopping.
    async fn claim(&mut self, mut slots: Vec<OwnedSemaphorePermit>, plan: Plan) -> Result<bool> {
        let start = slots.len();
        let prefetch = plan.ahead.saturating_sub(self.buffer.jobs.len());
        let want = start + prefetch;
        if want == 0 {
            return Ok(true);
        }
        if self.core.claim_queues.active().is_empty() {
            // Every queue of this worker is paused: idle until one is resumed.
            self.more = false;
            return Ok(true);
        }
        let epoch = self.core.health.vouch();
        match self.claim_once(start, prefetch).await {
            Ok(rows) => {
                self.failures = 0;
                self.more = rows.len() == want;
                self.core.counters.record_claim(want, rows.len());
                vacuum_when_due(&self.core, rows.len(), !self.more);
                match epoch.filter(|e| self.core.health.vouches_for(*e)) {
                    Some(epoch) => self.take(rows, epoch, &mut slots),
                    None => self.give_back(rows).await,
                }
                Ok(true)
            }
            Err(e) => {
                drop(slots);
                self.failed(e).await
            }
        }
    }

    /// Starts the claimed jobs that have a slot (the claim marked them started) and buffers the
    /// rest.
    fn take(&mut self, rows: Vec<JobProcess>, epoch: u64, slots: &mut Vec<OwnedSemaphorePermit>) {
        if self.buffer.jobs.is_empty() && rows.iter().any(|p| p.started_at.is_none()) {
            self.buffer.since = Some(Instant::now());
            self.buffer.epoch = epoch;
        } else {
            // Jobs of an older epoch left in the buffer keep it.
            self.buffer.epoch = self.buffer.epoch.min(epoch);
        }
        for process in rows {
            if process.started_at.is_some() {
                if let Some(slot) = slots.pop() {
                    spawn_job(&self.core, process, slot);
                    continue;
                }
            }
            self.core.ledger.wait_ahead([&process.uuid]);
            self.buffer.jobs.push_back(process);
        }
    }

    /// The worker could not vouch for itself across the claim (a stall or freeze while it ran,
    /// or a heartbeat too old): nothing it took is started; it all goes back, the jobs the
    /// claim marked started included (their stamp is the claim's own, no sign of a start).
    async fn give_back(&mut self, rows: Vec<JobProcess>) {
        tracing::warn!(
            jobs = rows.len(),
            "cannot vouch for the jobs just claimed (the heartbeat is too old); handing them back"
        );
        self.core.ledger.release_all(rows.iter().map(|p| &p.uuid));
        if let Err(e) = hand_back_unaccounted(&self.core).await {
            tracing::warn!(error = %e, "could not hand the claimed jobs back; the next claim tries again");
            self.unsure = true;
        }
    }

    /// A failed claim: counts it, remembers whether it may have committed, backs off. False
    /// when stopping.
    async fn failed(&mut self, e: Error) -> Result<bool> {
        self.failures += 1;
        if e.may_have_committed() {
            self.unsure = true;
        }
        let failures = self.failures;
        otel::error_span(otel::CLAIM_ERROR_SPAN, &e, || {
            tracing::warn!(error = %e, failures, "claim failed");
        });
        if self.failures >= self.core.config.max_claim_failures {
            return Err(Error::ClaimFailures {
                failures: self.failures,
                last: Box::new(e),
            });
        }
        let doubling = 1u64 << self.failures.min(6).saturating_sub(1);
        let backoff =
            Duration::from_millis(200u64.saturating_mul(doubling)).min(Duration::from_secs(10));
        if sleep_or_stop(&self.core, backoff).await {
            return Ok(false);
        }
        self.more = true;
        Ok(true)
    }

    /// Claims `start + prefetch` jobs and records them in the ledger before the orphan rescue
    /// can look.
    ///
    /// First, when an earlier claim (or a local dispatch) failed in a way that may have
    /// committed, hands back what it may have left: this loop is the only claimer, so no claim
    /// of ours is in flight, and every process of this worker that never began and that it does
    /// not account for came from a claim whose reply was lost. Until that hand-back succeeds
    /// nothing more is claimed; its failure counts as a claim failure.
    async fn claim_once(&mut self, start: usize, prefetch: usize) -> Result<Vec<JobProcess>> {
        let core = &self.core;
        if core.offer.take_unsure() {
            self.unsure = true;
        }
        if self.unsure {
            hand_back_unaccounted(core).await?;
            self.unsure = false;
        }
        let claiming = core.ledger.claiming().await;
        let how = ClaimHow {
            // LISTEN needs session connections too: where it is off, a transaction-mode pooler
            // may be in between, and session settings would reach other clients (behind one
            // said so, `Pooler::Transaction`, the store never pins a session).
            pinned_session: core.config.listen,
            async_commit: core.config.asynchronous_claims,
            job_classes: self.job_classes.clone(),
        };
        let queues = core.claim_queues.active();
        let rows = core
            .store()
            .claim(core.id(), &queues, start as i64, prefetch as i64, how)
            .await?;
        claiming.record(&rows);
        Ok(rows)
    }
}

/// Completes when the oldest claimed-ahead job has waited [`STALE_BUFFER`]; never when none
/// waits.
async fn stale_after(buffer: &Buffer) {
    match buffer.since {
        Some(t) if !buffer.jobs.is_empty() => {
            tokio::time::sleep_until((t + STALE_BUFFER).into()).await
        }
        _ => std::future::pending().await,
    }
}

/// Sleeps for `d`; true when the worker began to stop meanwhile.
async fn sleep_or_stop(core: &Core, d: Duration) -> bool {
    sleep_until_done(&core.shutdown.stop, d).await
}

/// Sleeps for `d`; true when `done` was cancelled meanwhile.
pub(crate) async fn sleep_until_done(done: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = done.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}
