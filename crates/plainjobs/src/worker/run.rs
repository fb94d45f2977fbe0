//! The running worker: claim loop, job tasks, completer, shutdown.

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::maintenance;
use super::retry::{finish_with_follow_up, FollowUp};
use super::{Worker, WorkerConfig};
use crate::job::{JobContext, Outcome, State};
use crate::model::{JobProcess, JobStatus};
use crate::registry::Registry;
use crate::store::{Finish, NewHeartbeat, NewRequest, Start};
use crate::{Error, Jobs, Result};

/// Error text as the database can store it: PostgreSQL's `text` refuses NUL characters, and a
/// result that can never be written would stall the result writer.
pub(crate) fn storable(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\\0")
    } else {
        text
    }
}

/// Locks a mutex, recovering from poisoning (a panic elsewhere cannot corrupt these sets).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Gives up on a job that began but whose result cannot be written: it leaves `held` for
/// `abandoned` (added there first, so [`accounted`] never misses it), and the orphan rescue
/// turns it LOST once it is older than the heartbeat timeout.
pub(crate) fn abandon(shared: &Shared, process_uuid: Uuid) {
    lock(&shared.abandoned).insert(process_uuid);
    lock(&shared.held).remove(&process_uuid);
}

/// The processes this worker accounts for: `(held, abandoned)`. Read in that order, the reverse
/// of [`abandon`]'s, so a job moving from one to the other is in at least one of them.
pub(crate) fn accounted(shared: &Shared) -> (Vec<Uuid>, Vec<Uuid>) {
    let held = lock(&shared.held).iter().copied().collect();
    let abandoned = lock(&shared.abandoned).iter().copied().collect();
    (held, abandoned)
}

/// [`accounted`] as one list.
fn all_accounted(shared: &Shared) -> Vec<Uuid> {
    let (mut all, abandoned) = accounted(shared);
    all.extend(abandoned);
    all
}

/// At shutdown, once claiming has stopped: hands back what a claim whose reply was lost may have
/// left (see [`claim`]), so that it is not left to a rescuer as LOST. Best effort.
async fn hand_back_unaccounted(shared: &Shared) {
    match shared
        .jobs
        .store()
        .hand_back_unaccounted(shared.worker_id, &all_accounted(shared))
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            jobs = n,
            "a claim committed although its reply was lost; its jobs went back to the queue"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "could not look for jobs of a claim whose reply was lost")
        }
    }
}

/// Everything the worker's tasks share.
pub(crate) struct Shared {
    pub jobs: Jobs,
    pub registry: Registry,
    pub state: State,
    pub worker_id: Uuid,
    pub heartbeat: NewHeartbeat,
    pub config: WorkerConfig,
    pub concurrency: usize,
    /// Processes this worker owns whose result is not written yet: claimed ahead and waiting
    /// in the local buffer, running, or with a start or finish on its way to the database.
    pub held: Mutex<HashSet<Uuid>>,
    /// Jobs that began but whose result this worker gave up writing: no longer held, left to
    /// the orphan rescue, which turns them LOST and never hands them back (their start may not
    /// be recorded). See [`abandon`] and [`accounted`].
    pub abandoned: Mutex<HashSet<Uuid>>,
    /// Held across a claim and the recording of what it claimed in `held`, so that the orphan
    /// rescue, which takes it too, never mistakes a claim in flight for orphans.
    pub claim_lock: tokio::sync::Mutex<()>,
    /// One permit per job slot: held by each running job, and by the claim loop for the slots
    /// it is about to fill.
    slots: Arc<Semaphore>,
    /// The claim loop is waiting for work with its free slots released and nothing claimed
    /// ahead: a job enqueued in this process may be handed straight to it ([`take_local_slot`]).
    idle: AtomicBool,
    /// A local dispatch failed in a way that may have committed: the claim loop hands back
    /// what this worker does not account for before its next claim, as after such a claim.
    unsure: AtomicBool,
    /// Job tasks that can be cancelled.
    running: Mutex<HashMap<Uuid, (AbortHandle, JobProcess)>>,
    pub heartbeat_ok: AtomicBool,
    /// Set when the heartbeat row had to be re-created (the claim loop hands back its buffer).
    pub reregistered: AtomicBool,
    pub wake: Arc<Notify>,
    /// Stop claiming (graceful shutdown begins).
    pub stop: CancellationToken,
    /// Give up on running jobs.
    pub abort: CancellationToken,
    finish_tx: Mutex<Option<mpsc::Sender<Write>>>,
    pub stats: Stats,
}

/// What the result writer records, in order.
pub(crate) enum Write {
    /// A claimed-ahead job began.
    Start(Uuid),
    /// A job ended with no follow-up request.
    Finish(Finish),
}

/// Counters for the periodic stats line, and how long jobs take.
#[derive(Default)]
pub(crate) struct Stats {
    pub claimed: AtomicU64,
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
    pub deferred: AtomicU64,
    /// Moving average of job run time, in microseconds (0: no job ran yet).
    avg_run_us: AtomicU64,
    claimed_since_vacuum: AtomicU64,
    vacuuming: AtomicBool,
}

/// Jobs claimed ahead should start within this long.
const START_SOON: Duration = Duration::from_millis(50);

/// Jobs claimed ahead that have waited this long for a slot are handed back.
const STALE_BUFFER: Duration = Duration::from_secs(1);

impl Stats {
    fn record_run(&self, took: Duration) {
        let took = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let old = self.avg_run_us.load(Ordering::Relaxed);
        let new = if old == 0 { took } else { (old * 7 + took) / 8 };
        self.avg_run_us.store(new, Ordering::Relaxed);
    }

    /// How many jobs may wait locally so that each starts within [`START_SOON`]: with `slots`
    /// running jobs of the average duration, at most `max_pending`, and none before a job ran.
    pub(crate) fn claim_ahead(&self, max_pending: usize, slots: usize) -> usize {
        let avg = self.avg_run_us.load(Ordering::Relaxed);
        if avg == 0 || max_pending == 0 {
            return 0;
        }
        let soon = u64::try_from(START_SOON.as_micros()).unwrap_or(u64::MAX);
        let fits = (soon / avg).saturating_mul(slots as u64);
        usize::try_from(fits).unwrap_or(usize::MAX).min(max_pending)
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

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_string())
}

pub(crate) async fn run(
    worker: Worker,
    stop: CancellationToken,
    abort: CancellationToken,
) -> Result<()> {
    let Worker {
        jobs,
        registry,
        state,
        queues,
        concurrency,
        max_pending,
        config,
        schedules,
        clock,
    } = worker;
    let worker_id = crate::model::new_uuid();
    let heartbeat = NewHeartbeat {
        worker_id,
        hostname: hostname(),
        pid: i32::try_from(std::process::id()).unwrap_or(i32::MAX),
        queues: queues.clone(),
    };
    // Register before anything is claimed: claims require this row.
    jobs.store().heartbeat(&heartbeat).await?;
    let (finish_tx, finish_rx) = mpsc::channel::<Write>(concurrency * 4 + max_pending * 2 + 1024);
    let shared = Arc::new(Shared {
        jobs,
        registry,
        state,
        worker_id,
        heartbeat,
        config,
        concurrency,
        held: Mutex::new(HashSet::new()),
        abandoned: Mutex::new(HashSet::new()),
        claim_lock: tokio::sync::Mutex::new(()),
        slots: Arc::new(Semaphore::new(concurrency)),
        idle: AtomicBool::new(false),
        unsure: AtomicBool::new(false),
        running: Mutex::new(HashMap::new()),
        heartbeat_ok: AtomicBool::new(true),
        reregistered: AtomicBool::new(false),
        wake: Arc::new(Notify::new()),
        stop,
        abort,
        finish_tx: Mutex::new(Some(finish_tx)),
        stats: Stats::default(),
    });
    tracing::info!(worker_id = %worker_id, queues = ?queues, concurrency, max_pending, "worker started");

    // Background tasks live until `done` (after the last result is written).
    let done = CancellationToken::new();
    let listen_task = if shared.config.listen {
        match shared.jobs.store().listener().await {
            Ok(Some(listener)) => Some(tokio::spawn(wake_on_inserts(
                listener,
                shared.wake.clone(),
                done.clone(),
            ))),
            Ok(None) => {
                tracing::info!("this backend has no LISTEN; polling");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "LISTEN failed; polling instead");
                None
            }
        }
    } else {
        None
    };
    let heartbeat_task = tokio::spawn(maintenance::heartbeat_loop(shared.clone(), done.clone()));
    let maintenance_task = tokio::spawn(maintenance::maintenance_loop(
        shared.clone(),
        queues.clone(),
        schedules,
        clock,
        done.clone(),
    ));
    let stats_task = shared
        .config
        .stats_interval
        .map(|every| tokio::spawn(maintenance::stats_loop(shared.clone(), every, done.clone())));
    let completer = tokio::spawn(completer(shared.clone(), finish_rx));

    if shared.config.local_dispatch {
        shared.jobs.add_local_worker(Arc::downgrade(&shared));
    }
    let slots = shared.slots.clone();
    let mut buffer: VecDeque<JobProcess> = VecDeque::new();
    let outcome = claim_loop(&shared, &queues, &slots, max_pending, &mut buffer).await;
    shared.stop.cancel();

    // Shutdown: hand back what never started, let running jobs finish (or cancel them).
    hand_back(&shared, &mut buffer).await;
    hand_back_unaccounted(&shared).await;
    drain(&shared, &slots, concurrency).await;
    // A local dispatch that failed as the worker stopped, maybe after committing (its slot
    // came back after it said so).
    if shared.unsure.swap(false, Ordering::SeqCst) {
        hand_back_unaccounted(&shared).await;
    }
    // All job tasks are done: close the completer's channel and let it flush.
    lock(&shared.finish_tx).take();
    if let Err(e) = completer.await {
        tracing::error!(error = %e, "result writer failed");
    }
    done.cancel();
    let _ = maintenance_task.await;
    let _ = heartbeat_task.await;
    if let Some(t) = stats_task {
        let _ = t.await;
    }
    if let Some(t) = listen_task {
        let _ = t.await;
    }
    match shared.jobs.store().deregister(worker_id).await {
        Ok(true) => tracing::info!(worker_id = %worker_id, "worker stopped"),
        Ok(false) => {
            tracing::warn!(worker_id = %worker_id, "worker stopped with jobs of its own still recorded; its heartbeat is left to go stale so that they are rescued")
        }
        Err(e) => {
            tracing::warn!(worker_id = %worker_id, error = %e, "could not deregister; the heartbeat will go stale")
        }
    }
    outcome
}

/// Wakes the claim loop whenever the listener says requests may have been inserted.
async fn wake_on_inserts(
    mut listener: Box<dyn crate::store::Listener>,
    wake: Arc<Notify>,
    done: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            heard = listener.wait() => {
                if let Err(e) = heard {
                    tracing::warn!(error = %e, "LISTEN failed; retrying in 1s (polling meanwhile)");
                    if sleep_or_stop(&done, Duration::from_secs(1)).await {
                        return;
                    }
                }
                wake.notify_one();
            }
        }
    }
}

async fn sleep_or_stop(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

async fn claim_loop(
    shared: &Arc<Shared>,
    queues: &[String],
    slots: &Arc<Semaphore>,
    max_pending: usize,
    buffer: &mut VecDeque<JobProcess>,
) -> Result<()> {
    let store = shared.jobs.store();
    let mut more = true;
    let mut failures: u32 = 0;
    // A claim failed in a way that may have committed: what it claimed must go back.
    let mut unsure = false;
    // When the oldest job now in the local buffer was claimed.
    let mut buffer_since: Option<Instant> = None;
    loop {
        if shared.reregistered.swap(false, Ordering::AcqRel) && !buffer.is_empty() {
            hand_back(shared, buffer).await;
        }
        if buffer.is_empty() {
            buffer_since = None;
        }
        // How many jobs may wait locally: only as many as can start soon, judged by how long
        // jobs have been taking, and never more than max_pending.
        let ahead = shared.stats.claim_ahead(max_pending, shared.concurrency);
        // Refill the local buffer while jobs run, before it empties.
        let refill = more && ahead > 0 && buffer.len() <= ahead / 2;
        if shared.stop.is_cancelled() {
            return Ok(());
        }
        let mut permits = Vec::new();
        if !refill {
            // Jobs claimed ahead that could not start soon after all (the slots went to slow
            // jobs) go back to the queue, where idle workers can take them.
            let stale = async {
                match buffer_since {
                    Some(t) if !buffer.is_empty() => {
                        tokio::time::sleep_until((t + STALE_BUFFER).into()).await
                    }
                    _ => std::future::pending().await,
                }
            };
            let first = tokio::select! {
                biased;
                _ = shared.stop.cancelled() => return Ok(()),
                p = slots.clone().acquire_owned() => p.expect("the worker never closes its slots"),
                _ = stale => {
                    tracing::debug!(jobs = buffer.len(), "claimed-ahead jobs could not start soon; handing them back");
                    hand_back(shared, buffer).await;
                    buffer_since = None;
                    continue;
                }
            };
            permits.push(first);
        }
        while let Ok(p) = slots.clone().try_acquire_owned() {
            permits.push(p);
        }

        // Jobs claimed ahead start first, at once: their start is recorded by the result
        // writer (in order, before their finish), not by a round trip of their own.
        if !buffer.is_empty() {
            let take = permits.len().min(buffer.len());
            for mut p in buffer.drain(..take) {
                p.started_at = Some(chrono::Utc::now());
                send_write(shared, Write::Start(p.uuid)).await;
                if let Some(permit) = permits.pop() {
                    spawn_job(shared, p, permit);
                }
            }
            if permits.is_empty() && !(refill && buffer.len() <= ahead / 2) {
                continue;
            }
        }

        if !shared.heartbeat_ok.load(Ordering::Acquire) {
            drop(permits);
            if sleep_or_stop(&shared.stop, Duration::from_millis(250)).await {
                return Ok(());
            }
            continue;
        }

        if !more && !permits.is_empty() {
            let wait = match store.next_start_in(queues).await {
                Ok(Some(d)) => d.min(shared.config.poll_interval),
                _ => shared.config.poll_interval,
            };
            // Idle: the last claim found no more and nothing waits here. The free slots are
            // released while waiting, for jobs enqueued in this process to take directly.
            let offer = shared.config.local_dispatch && buffer.is_empty();
            if offer {
                permits.clear();
                shared.idle.store(true, Ordering::SeqCst);
            }
            let stopped = tokio::select! {
                biased;
                _ = shared.stop.cancelled() => true,
                _ = shared.wake.notified() => false,
                _ = tokio::time::sleep(wait) => false,
            };
            shared.idle.store(false, Ordering::SeqCst);
            if stopped {
                return Ok(());
            }
            if offer {
                // Take the slots again (jobs dispatched meanwhile hold theirs), then claim.
                more = true;
                continue;
            }
        }

        let start = permits.len();
        let prefetch = ahead.saturating_sub(buffer.len());
        let want = start + prefetch;
        if want == 0 {
            continue;
        }
        match claim(shared, queues, start, prefetch, &mut unsure).await {
            Ok(rows) => {
                failures = 0;
                more = rows.len() == want;
                shared
                    .stats
                    .claimed
                    .fetch_add(rows.len() as u64, Ordering::Relaxed);
                vacuum_when_due(shared, rows.len(), !more);
                if buffer.is_empty() && rows.iter().any(|p| p.started_at.is_none()) {
                    buffer_since = Some(Instant::now());
                }
                for p in rows {
                    if p.started_at.is_some() {
                        if let Some(permit) = permits.pop() {
                            spawn_job(shared, p, permit);
                            continue;
                        }
                    }
                    buffer.push_back(p);
                }
            }
            Err(e) => {
                failures += 1;
                if e.may_have_committed() {
                    unsure = true;
                }
                tracing::warn!(error = %e, failures, "claim failed");
                if failures >= shared.config.max_claim_failures {
                    return Err(Error::ClaimFailures {
                        failures,
                        last: Box::new(e),
                    });
                }
                drop(permits);
                // 0.2 s doubling to 10 s: 30 failures in a row take about four minutes, so a
                // database restart is waited out rather than ending the worker.
                let backoff = Duration::from_millis(
                    200u64.saturating_mul(1 << failures.min(6).saturating_sub(1)),
                )
                .min(Duration::from_secs(10));
                if sleep_or_stop(&shared.stop, backoff).await {
                    return Ok(());
                }
                more = true;
            }
        }
    }
}

/// Claims `start + prefetch` jobs and records them in `held` before the orphan rescue can look
/// (it waits on `claim_lock`).
///
/// First, when an earlier claim failed in a way that may have committed (`unsure`), hands back
/// what it may have claimed: this loop is the only claimer, so no claim of ours is in flight,
/// and every process of this worker that never began and that it does not account for came
/// from a claim whose reply was lost. Until that hand-back succeeds (the database answers
/// again) nothing more is claimed; its failure counts as a claim failure.
async fn claim(
    shared: &Shared,
    queues: &[String],
    start: usize,
    prefetch: usize,
    unsure: &mut bool,
) -> Result<Vec<JobProcess>> {
    let store = shared.jobs.store();
    if shared.unsure.swap(false, Ordering::SeqCst) {
        *unsure = true;
    }
    if *unsure {
        let n = store
            .hand_back_unaccounted(shared.worker_id, &all_accounted(shared))
            .await?;
        *unsure = false;
        if n > 0 {
            tracing::warn!(
                jobs = n,
                "a claim committed although its reply was lost; its jobs went back to the queue"
            );
        }
    }
    let _claiming = shared.claim_lock.lock().await;
    let rows = store
        .claim(
            shared.worker_id,
            queues,
            start as i64,
            prefetch as i64,
            crate::store::ClaimHow {
                // LISTEN needs session connections too: where it is off, a transaction-mode
                // pooler may be in between, and session settings would reach other clients.
                pinned_session: shared.config.listen,
                async_commit: shared.config.asynchronous_claims,
            },
        )
        .await?;
    #[cfg(test)]
    if !rows.is_empty()
        && shared
            .config
            .lose_claim_replies
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    {
        // The claim committed; its reply is lost on the way back.
        drop(rows);
        return Err(Error::from(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "test: the claim's reply was lost",
        ))));
    }
    let mut held = lock(&shared.held);
    for p in &rows {
        held.insert(p.uuid);
    }
    Ok(rows)
}

/// Claims leave a dead entry per job at the head of the claim index; each later claim walks over
/// them until vacuum removes them, which autovacuum does only once a minute at best. After every
/// `VACUUM_EVERY` claimed jobs the worker vacuums the request and process tables itself, in the
/// background.
const VACUUM_EVERY: u64 = 50_000;

/// When the queue runs dry after this many claimed jobs, the worker vacuums at once, so the next
/// job after a burst does not walk over the burst's dead entries (the idle latency).
const VACUUM_WHEN_DRY: u64 = 1_000;

fn vacuum_when_due(shared: &Arc<Shared>, claimed: usize, dry: bool) {
    let since = shared
        .stats
        .claimed_since_vacuum
        .fetch_add(claimed as u64, Ordering::Relaxed)
        + claimed as u64;
    let due = since >= VACUUM_EVERY || (dry && since >= VACUUM_WHEN_DRY);
    if !due || shared.stats.vacuuming.swap(true, Ordering::AcqRel) {
        return;
    }
    shared
        .stats
        .claimed_since_vacuum
        .store(0, Ordering::Relaxed);
    let shared = shared.clone();
    tokio::spawn(async move {
        let began = Instant::now();
        match shared.jobs.store().vacuum_requests().await {
            Ok(()) => tracing::debug!(
                took_ms = began.elapsed().as_millis() as u64,
                "vacuumed the request table"
            ),
            Err(e) => {
                tracing::debug!(error = %e, "could not vacuum the request table (autovacuum will)")
            }
        }
        shared.stats.vacuuming.store(false, Ordering::Release);
    });
}

/// Local dispatch (`WorkerConfig::local_dispatch`), first step: a free slot of an idle worker of
/// this process that can run `req`, a job that may be enqueued (`should_enqueue` said so).
/// `None` when no worker can take it (the caller queues it as usual). Takes no time and makes
/// no round trip, so an enqueue with no worker in its process pays nothing for it.
///
/// The process uuid is held before the worker is seen idle (both orders sequentially
/// consistent), so a claim that follows the idle wait and hands back what the worker does not
/// account for always counts this job as accounted.
pub(crate) fn take_local_slot(jobs: &Jobs, req: &NewRequest) -> Option<LocalSlot> {
    if !matches!(req.start, Start::Now) {
        return None;
    }
    let process_uuid = crate::model::new_uuid();
    jobs.local_workers().into_iter().find_map(|shared| {
        if !(shared.heartbeat.queues.contains(&req.queue)
            && shared.registry.contains(&req.job_class))
        {
            return None;
        }
        lock(&shared.held).insert(process_uuid);
        let taken = (shared.idle.load(Ordering::SeqCst)
            && !shared.stop.is_cancelled()
            && shared.heartbeat_ok.load(Ordering::Acquire))
        .then(|| shared.slots.clone().try_acquire_owned().ok())
        .flatten()
        // Again after taking the slot: a shutdown that began in between has drained (taken and
        // given back every slot) only after setting `stop`.
        .filter(|_| !shared.stop.is_cancelled());
        match taken {
            Some(permit) => Some(LocalSlot {
                shared,
                permit,
                process_uuid,
            }),
            None => {
                lock(&shared.held).remove(&process_uuid);
                None
            }
        }
    })
}

/// A slot taken by [`take_local_slot`], with the uuid the job's process will have (held).
pub(crate) struct LocalSlot {
    shared: Arc<Shared>,
    permit: OwnedSemaphorePermit,
    process_uuid: Uuid,
}

impl LocalSlot {
    /// Second step: inserts `req` as the worker's process, begun, and spawns it once that
    /// commits. The insert and the spawn run in a task of their own, started here without
    /// awaiting anything, so a caller that stops waiting (a timeout, a dropped request) cannot
    /// leave a committed job neither running nor handed back. The task yields the request as
    /// enqueued (`id` 0), `None` when the worker's heartbeat row is gone (the caller queues the
    /// job), or the error. If the insert fails in a way that may have committed, the claim loop
    /// (or the shutdown, after the last slot came back) hands back what it does not account
    /// for, and the caller's retry finds the job by its uuid.
    pub(crate) fn dispatch(
        self,
        req: &NewRequest,
    ) -> tokio::task::JoinHandle<Option<Result<crate::model::JobRequest>>> {
        let LocalSlot {
            shared,
            permit,
            process_uuid,
        } = self;
        let req = req.clone();
        tokio::spawn(async move {
            let inserted = shared
                .jobs
                .store()
                .insert_started(shared.worker_id, &req, process_uuid)
                .await;
            match inserted {
                Ok(Some((request, process))) => {
                    shared.stats.claimed.fetch_add(1, Ordering::Relaxed);
                    if let Some(permit) = spawn_job_unless_aborted(&shared, process, permit) {
                        // The worker gave up on its running jobs while this one was being
                        // inserted: it goes back to the queue, never begun. Under the claim
                        // lock, so that a claim in flight has recorded its own jobs first; the
                        // slot is given back after, so the shutdown waits for the hand-back.
                        let _claiming = shared.claim_lock.lock().await;
                        lock(&shared.held).remove(&process_uuid);
                        hand_back_unaccounted(&shared).await;
                        drop(permit);
                    }
                    Some(Ok(request))
                }
                Ok(None) => {
                    // This worker's heartbeat row is gone (a rescuer took it for dead): queue
                    // the job.
                    lock(&shared.held).remove(&process_uuid);
                    None
                }
                Err(e) => {
                    lock(&shared.held).remove(&process_uuid);
                    if e.may_have_committed() {
                        shared.unsure.store(true, Ordering::SeqCst);
                        // The claim loop hands back what it does not account for before it
                        // claims: now, not after its idle wait.
                        shared.wake.notify_one();
                    }
                    // The slot comes back only now, after `unsure` is set.
                    drop(permit);
                    Some(Err(e))
                }
            }
        })
    }
}

/// As [`spawn_job`], unless the worker has given up on its running jobs (`abort`): checked
/// under the lock that `drain` takes after setting it, so a job spawned here is always among
/// those it cancels. The slot comes back when it did not spawn.
fn spawn_job_unless_aborted(
    shared: &Arc<Shared>,
    process: JobProcess,
    permit: OwnedSemaphorePermit,
) -> Option<OwnedSemaphorePermit> {
    let mut running = lock(&shared.running);
    if shared.abort.is_cancelled() {
        return Some(permit);
    }
    let uuid = process.uuid;
    let task = tokio::spawn(execute(shared.clone(), process.clone(), permit));
    running.insert(uuid, (task.abort_handle(), process));
    None
}

fn spawn_job(shared: &Arc<Shared>, process: JobProcess, permit: OwnedSemaphorePermit) {
    let uuid = process.uuid;
    // Holding the lock while spawning: the task cannot look itself up before it is recorded.
    let mut running = lock(&shared.running);
    let task = tokio::spawn(execute(shared.clone(), process.clone(), permit));
    running.insert(uuid, (task.abort_handle(), process));
}

enum Ran {
    Success,
    Defer {
        delay: Duration,
        increment_retries: bool,
    },
    /// `error` is stored (with a backtrace when captured); `summary` is logged.
    Failed {
        error: String,
        summary: String,
    },
}

async fn execute(shared: Arc<Shared>, process: JobProcess, permit: OwnedSemaphorePermit) {
    let began = Instant::now();
    let queue_wait_ms = match (process.started_at, process.requested_at) {
        (Some(s), Some(r)) => (s - r).num_milliseconds(),
        _ => 0,
    };
    let span = tracing::info_span!(
        "process",
        otel.name = %format!("process {}", process.queue),
        job_class = %process.job_class,
        job_process_uuid = %process.uuid,
        job_request_uuid = %process.job_request_uuid,
        queue = %process.queue,
        trace_id = process.trace_id.as_deref().unwrap_or(""),
        span_id = process.span_id.as_deref().unwrap_or(""),
    );
    let job = shared
        .registry
        .load(&process.job_class, process.parameters.as_ref());
    let ran = async {
        tracing::info!(
            queue_wait_ms,
            attempt = process.retry_attempt,
            "job started"
        );
        match &job {
            Err(e) => Ran::Failed {
                error: e.to_string(),
                summary: e.to_string(),
            },
            Ok(job) => {
                let ctx = JobContext {
                    process: process.clone(),
                    state: shared.state.clone(),
                    jobs: shared.jobs.clone(),
                    shutdown: shared.stop.clone(),
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
                    },
                    Err(panic) => {
                        let text = format!("panicked: {}", panic_message(&*panic));
                        Ran::Failed {
                            error: text.clone(),
                            summary: text,
                        }
                    }
                }
            }
        }
    }
    .instrument(span.clone())
    .await;

    // If a shutdown timeout cancelled this job meanwhile, the shutdown writes its result.
    if lock(&shared.running).remove(&process.uuid).is_none() {
        return;
    }
    let job = job.ok();
    let ran = match ran {
        Ran::Failed { error, summary } => Ran::Failed {
            error: storable(error),
            summary,
        },
        other => other,
    };
    shared.stats.record_run(began.elapsed());
    let duration_ms = began.elapsed().as_millis() as u64;
    let _enter = span.enter();
    match ran {
        Ran::Success => {
            shared.stats.succeeded.fetch_add(1, Ordering::Relaxed);
            tracing::info!(status = "SUCCESSFUL", duration_ms, "job finished");
            send_finish(
                &shared,
                Finish {
                    process_uuid: process.uuid,
                    status: JobStatus::Successful,
                    error: String::new(),
                },
            )
            .await;
        }
        Ran::Failed { error, summary } => {
            shared.stats.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(status = "ERRORED", duration_ms, error = %summary, "job failed");
            let retry =
                job.is_some() && process.retries > 0 && process.retry_attempt < process.retries;
            if retry {
                follow_up(
                    &shared,
                    &process,
                    JobStatus::Errored,
                    &error,
                    job.as_deref(),
                    FollowUp::Retry,
                )
                .await;
            } else {
                send_finish(
                    &shared,
                    Finish {
                        process_uuid: process.uuid,
                        status: JobStatus::Errored,
                        error,
                    },
                )
                .await;
            }
        }
        Ran::Defer {
            delay,
            increment_retries,
        } => {
            shared.stats.deferred.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                status = "DEFERRED",
                duration_ms,
                delay_s = delay.as_secs_f64(),
                "job deferred"
            );
            follow_up(
                &shared,
                &process,
                JobStatus::Deferred,
                "",
                job.as_deref(),
                FollowUp::Defer {
                    delay,
                    increment_retries,
                },
            )
            .await;
        }
    }
    drop(permit);
}

async fn send_finish(shared: &Shared, finish: Finish) {
    send_write(shared, Write::Finish(finish)).await
}

async fn send_write(shared: &Shared, write: Write) {
    let tx = lock(&shared.finish_tx).clone();
    if let Some(tx) = tx {
        if tx.send(write).await.is_err() {
            tracing::error!(
                "result writer is gone; the job's process row stays and will be rescued"
            );
        }
    }
}

/// Writes a result with a follow-up request (retry, deferral) in its own transaction, retrying
/// through database outages. Gives up after a while: the process row stays, and the worker's
/// orphan rescue turns it LOST (and retries it) later.
pub(crate) async fn follow_up(
    shared: &Shared,
    process: &JobProcess,
    status: JobStatus,
    error: &str,
    job: Option<&dyn crate::registry::ErasedJob>,
    follow: FollowUp,
) -> Option<crate::model::JobResult> {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=20 {
        match finish_with_follow_up(
            &shared.jobs,
            shared.worker_id,
            process,
            status,
            error,
            job,
            follow,
        )
        .await
        {
            Ok(result) => {
                lock(&shared.held).remove(&process.uuid);
                if result.is_none() {
                    tracing::info!(job_process_uuid = %process.uuid, "result already written by a rescuer; this late finish is dropped");
                }
                return result;
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, job_process_uuid = %process.uuid, "could not write the result; retrying");
                if shared.abort.is_cancelled() {
                    break;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    // No longer held: the orphan rescue turns it LOST (and retries it) once it is older than
    // the heartbeat timeout.
    abandon(shared, process.uuid);
    tracing::error!(job_process_uuid = %process.uuid, "gave up writing the result; the job will be rescued as LOST");
    None
}

/// Writes starts of claimed-ahead jobs and results of finished jobs, as many per statement as
/// have arrived.
async fn completer(shared: Arc<Shared>, mut rx: mpsc::Receiver<Write>) {
    let mut writes = Vec::with_capacity(256);
    let mut batch: Vec<Finish> = Vec::with_capacity(256);
    let mut starts: Vec<Uuid> = Vec::new();
    while rx.recv_many(&mut writes, 1000).await > 0 {
        for w in writes.drain(..) {
            match w {
                Write::Start(u) => starts.push(u),
                Write::Finish(f) => batch.push(f),
            }
        }
        // A job that began and ended within this batch needs no separate start.
        if !starts.is_empty() && !batch.is_empty() {
            let ending: HashSet<Uuid> = batch.iter().map(|f| f.process_uuid).collect();
            starts.retain(|u| !ending.contains(u));
        }
        write_batch(&shared, &starts, &batch).await;
        batch.clear();
        starts.clear();
    }
}

/// Writes one batch, retrying through outages. A batch the database refuses for its content is
/// written row by row, so one bad row cannot stall every other result; a row that still fails
/// is left to the orphan rescue (LOST after the heartbeat timeout, then retried).
async fn write_batch(shared: &Shared, starts: &[Uuid], batch: &[Finish]) {
    let store = shared.jobs.store();
    let mut delay = Duration::from_millis(50);
    loop {
        match store.finish_many(shared.worker_id, starts, batch).await {
            Ok(written) => {
                if written.len() < batch.len() {
                    let written: HashSet<Uuid> = written.into_iter().collect();
                    for f in batch.iter().filter(|f| !written.contains(&f.process_uuid)) {
                        tracing::info!(job_process_uuid = %f.process_uuid, "result already written by a rescuer; this late finish is dropped");
                    }
                }
                let mut held = lock(&shared.held);
                for f in batch {
                    held.remove(&f.process_uuid);
                }
                return;
            }
            Err(e) if !e.is_transient() => {
                tracing::warn!(error = %e, jobs = batch.len(), "the database refused a batch of results; writing them one by one");
                for one in batch {
                    let single = std::slice::from_ref(one);
                    match store.finish_many(shared.worker_id, &[], single).await {
                        Ok(_) => {
                            lock(&shared.held).remove(&one.process_uuid);
                        }
                        Err(e) => {
                            tracing::error!(error = %e, job_process_uuid = %one.process_uuid, "cannot write this result; the job will be rescued as LOST");
                            abandon(shared, one.process_uuid);
                        }
                    }
                }
                if !starts.is_empty() {
                    let _ = store.finish_many(shared.worker_id, starts, &[]).await;
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, jobs = batch.len(), "could not write results; retrying");
                if shared.abort.is_cancelled()
                    && shared.stop.is_cancelled()
                    && delay >= Duration::from_secs(5)
                {
                    tracing::error!(
                        jobs = batch.len(),
                        "giving up writing results at shutdown; the jobs will be rescued as LOST"
                    );
                    return;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Returns claimed-but-unstarted jobs to the queue (no retry used).
async fn hand_back(shared: &Shared, buffer: &mut VecDeque<JobProcess>) {
    if buffer.is_empty() {
        return;
    }
    let uuids: Vec<Uuid> = buffer.iter().map(|p| p.uuid).collect();
    for attempt in 1..=10 {
        match shared
            .jobs
            .store()
            .hand_back(shared.worker_id, &uuids)
            .await
        {
            Ok(n) => {
                tracing::info!(jobs = n, "handed unstarted jobs back to the queue");
                let mut held = lock(&shared.held);
                for u in &uuids {
                    held.remove(u);
                }
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

/// Waits for running jobs; after the shutdown timeout (or an abort) cancels the rest.
async fn drain(shared: &Arc<Shared>, slots: &Arc<Semaphore>, concurrency: usize) {
    let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
    let running = concurrency - slots.available_permits();
    if running > 0 {
        tracing::info!(running, "waiting for running jobs to finish");
    }
    let timeout = async {
        match shared.config.shutdown_timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = slots.acquire_many(all) => return,
        _ = timeout => tracing::warn!("shutdown timeout reached: cancelling running jobs"),
        _ = shared.abort.cancelled() => tracing::warn!("cancelling running jobs"),
    }
    shared.abort.cancel();
    let cancelled: Vec<(AbortHandle, JobProcess)> =
        lock(&shared.running).drain().map(|(_, v)| v).collect();
    for (handle, _) in &cancelled {
        handle.abort();
    }
    let mut results = Vec::new();
    for (_, process) in cancelled {
        let job = shared
            .registry
            .load(&process.job_class, process.parameters.as_ref())
            .ok();
        let follow = if job.is_some() {
            FollowUp::Retry
        } else {
            FollowUp::None
        };
        let error = "Cancelled: the worker shut down before the job finished";
        if let Some(r) = follow_up(
            shared,
            &process,
            JobStatus::Cancelled,
            error,
            job.as_deref(),
            follow,
        )
        .await
        {
            results.push(r);
        }
    }
    maintenance::dispatch_aborted(shared, &results).await;
    // Cancelled tasks release their slots as they unwind.
    let _ = tokio::time::timeout(Duration::from_secs(5), slots.acquire_many(all)).await;
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use crate::test_support::{conformance, test_jobs, Backend};
    use crate::{Job, JobContext, JobError, JobStatus, Outcome, Worker, WorkerConfig};

    /// Each run, as (job id, retry attempt).
    #[derive(Clone, Default)]
    struct Runs(Arc<Mutex<Vec<(u32, i16)>>>);

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Counted {
        id: u32,
    }

    impl Job for Counted {
        const NAME: &'static str = "tests.Counted";
        async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
            let runs = ctx.state::<Runs>()?;
            super::lock(&runs.0).push((self.id, ctx.process().retry_attempt));
            Ok(Outcome::Success)
        }
    }

    async fn wait_for_results(jobs: &crate::Jobs, n: usize) -> Vec<crate::JobResult> {
        let began = Instant::now();
        loop {
            let results = jobs.results(None, None, None, 100).await.expect("results");
            if results.len() >= n || began.elapsed() > Duration::from_secs(20) {
                return results;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// A claim commits but its reply is lost (the worker sees a connection error). Its jobs
    /// (no retries: LOST would end them for good) go back to the queue as soon as the database
    /// answers, long before any orphan rescue could look (the heartbeat timeout is an hour),
    /// and then run exactly once each, as first attempts. The worker has seen quick jobs
    /// before, so the lost claim holds jobs it was to start at once (their `started_at` stamped
    /// by the claim) and jobs claimed ahead (`started_at` NULL).
    async fn a_claim_whose_reply_is_lost_hands_its_jobs_back_at_once(backend: Backend) {
        let jobs = test_jobs(backend).await;
        let config = WorkerConfig {
            heartbeat_interval: Duration::from_millis(200),
            heartbeat_timeout: Duration::from_secs(3600),
            poll_interval: Duration::from_millis(100),
            ..WorkerConfig::default()
        };
        let lose = config.lose_claim_replies.clone();
        let runs = Runs::default();
        let w = Worker::new(jobs.clone())
            .register::<Counted>()
            .state(runs.clone())
            .config(config)
            .concurrency(2)
            .spawn();
        // Quick jobs first: from now on the worker claims ahead.
        jobs.enqueue_many((0..3).map(|id| Counted { id }))
            .await
            .expect("enqueue");
        assert_eq!(wait_for_results(&jobs, 3).await.len(), 3);
        lose.store(1, Ordering::Release);
        jobs.enqueue_many((3..13).map(|id| Counted { id }))
            .await
            .expect("enqueue");
        let results = wait_for_results(&jobs, 13).await;
        w.stop().await.expect("worker stops");
        assert_eq!(lose.load(Ordering::Acquire), 0, "a claim's reply was lost");
        assert_eq!(results.len(), 13, "every job ended: {results:#?}");
        assert!(
            results
                .iter()
                .all(|r| r.status == JobStatus::Successful && r.retry_attempt == 0),
            "{results:#?}"
        );
        let mut ran = super::lock(&runs.0).clone();
        ran.sort();
        assert_eq!(
            ran,
            (0..13).map(|id| (id, 0)).collect::<Vec<_>>(),
            "each job ran once"
        );
        assert!(jobs.requests(10).await.expect("requests").is_empty());
        assert!(jobs.processes(10).await.expect("processes").is_empty());
    }

    /// The worker is stopped right after a claim's reply was lost, before it claims again: its
    /// shutdown hands those jobs back, rather than leaving them to a rescuer as LOST.
    async fn a_worker_stopped_after_a_lost_claim_reply_hands_its_jobs_back(backend: Backend) {
        let jobs = test_jobs(backend).await;
        jobs.enqueue_many((0..3).map(|id| Counted { id }))
            .await
            .expect("enqueue");
        let config = WorkerConfig {
            heartbeat_interval: Duration::from_millis(200),
            heartbeat_timeout: Duration::from_secs(3600),
            ..WorkerConfig::default()
        };
        config.lose_claim_replies.store(1, Ordering::Release);
        let lose = config.lose_claim_replies.clone();
        let runs = Runs::default();
        let w = Worker::new(jobs.clone())
            .register::<Counted>()
            .state(runs.clone())
            .config(config)
            .spawn();
        let began = Instant::now();
        while lose.load(Ordering::Acquire) > 0 && began.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // The claim loop is backing off (0.2 s) before it claims again.
        w.stop().await.expect("worker stops");
        assert_eq!(lose.load(Ordering::Acquire), 0, "a claim's reply was lost");
        assert!(super::lock(&runs.0).is_empty(), "nothing ran");
        let requests = jobs.requests(10).await.expect("requests");
        assert_eq!(requests.len(), 3, "handed back");
        assert!(requests.iter().all(|r| r.retry_attempt == 0));
        assert!(jobs.processes(10).await.expect("processes").is_empty());
        assert!(jobs
            .results(None, None, None, 10)
            .await
            .expect("results")
            .is_empty());
    }

    conformance!(
        a_claim_whose_reply_is_lost_hands_its_jobs_back_at_once,
        a_worker_stopped_after_a_lost_claim_reply_hands_its_jobs_back,
    );
}
