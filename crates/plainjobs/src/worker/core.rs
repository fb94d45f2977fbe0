//! [`Core`]: what the tasks of one running worker share, each part owned by the module that
//! keeps its rules.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::control::ClaimQueues;
use super::ledger::{lock, Ledger};
use super::pace::{Counters, Pace};
use super::vacuum::VacuumSchedule;
use super::writer::ResultWriter;
use super::WorkerConfig;
use crate::job::State;
use crate::registry::Registry;
use crate::store::{NewHeartbeat, Store};
use crate::Jobs;

pub(crate) struct Core {
    pub jobs: Jobs,
    pub registry: Registry,
    pub state: State,
    /// This worker's heartbeat row (its id, host, pid and queues).
    pub registration: NewHeartbeat,
    pub config: WorkerConfig,
    pub concurrency: usize,
    pub ledger: Ledger,
    /// The queues claimed from: the worker's, less those paused.
    pub claim_queues: ClaimQueues,
    /// Wakes the control task (a notification that jobs were cancelled or a queue paused).
    pub control: Arc<Notify>,
    /// One permit per job slot: held by each running job, and by the claim loop (or a local
    /// dispatch) for the slots it is about to fill.
    pub slots: Arc<Semaphore>,
    pub shutdown: Shutdown,
    pub health: Health,
    pub offer: IdleOffer,
    /// Wakes the claim loop (a notification, a hand-back, a failed dispatch).
    pub wake: Arc<Notify>,
    pub writer: ResultWriter,
    pub pace: Pace,
    /// Shared with the [`WorkerHandle`](super::WorkerHandle), which reads them.
    pub counters: Arc<Counters>,
    pub vacuum: VacuumSchedule,
    /// Job tasks and local dispatches, so the shutdown can wait for them.
    pub tasks: TaskTracker,
}

impl Core {
    pub fn id(&self) -> Uuid {
        self.registration.worker_id
    }

    pub fn store(&self) -> &dyn Store {
        self.jobs.store()
    }

    pub fn queues(&self) -> &[String] {
        &self.registration.queues
    }
}

/// Stopping, in two steps: `stop` ends claiming (running jobs finish), `abort` gives up on
/// running jobs (they are cancelled and recorded CANCELLED).
#[derive(Clone, Default)]
pub(crate) struct Shutdown {
    pub stop: CancellationToken,
    pub abort: CancellationToken,
}

impl Shutdown {
    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    pub fn is_aborted(&self) -> bool {
        self.abort.is_cancelled()
    }
}

/// What the heartbeat learned, for the claim loop and the rescue.
///
/// A rescuer declares this worker dead once its heartbeat row is older than the heartbeat
/// timeout, by the database's clock. The row's time is never earlier than the moment the write
/// was sent, so no rescue can happen within the timeout of the last write sent that succeeded:
/// within [`Health::vouch_window`] of it the worker can vouch that what it holds is still its
/// own. A gap longer than that (a frozen process, a stall, an outage) starts a new *epoch*: jobs
/// claimed in an earlier epoch may have been rescued, and are handed back instead of started.
pub(crate) struct Health {
    ok: AtomicBool,
    reregistered: AtomicBool,
    vouch: Mutex<Vouch>,
    window: Duration,
}

struct Vouch {
    /// When the last heartbeat write that succeeded was sent.
    last_written: Instant,
    epoch: u64,
}

impl Health {
    /// `timeout`: the heartbeat timeout rescuers use. The worker registered just now.
    pub fn new(timeout: Duration) -> Health {
        Health {
            ok: AtomicBool::new(true),
            reregistered: AtomicBool::new(false),
            vouch: Mutex::new(Vouch {
                last_written: Instant::now(),
                epoch: 0,
            }),
            // A quarter of the timeout to spare, for the time the database takes to stamp the
            // row and for clocks that run at slightly different rates.
            window: timeout.mul_f64(0.75),
        }
    }

    /// A heartbeat write sent at `sent_at` succeeded. A gap since the last one longer than the
    /// window starts a new epoch.
    pub fn written(&self, sent_at: Instant) {
        let mut v = lock(&self.vouch);
        if sent_at.saturating_duration_since(v.last_written) > self.window {
            v.epoch += 1;
        }
        v.last_written = v.last_written.max(sent_at);
    }

    /// The current epoch, if the worker can vouch for what it holds now; None when its last
    /// heartbeat is too old (it may have been declared dead).
    pub fn vouch(&self) -> Option<u64> {
        let v = lock(&self.vouch);
        (v.last_written.elapsed() <= self.window).then_some(v.epoch)
    }

    /// Whether what was claimed in `epoch` is still this worker's to start: the worker can
    /// vouch now, and has been able to all along since then.
    pub fn vouches_for(&self, epoch: u64) -> bool {
        self.vouch() == Some(epoch)
    }
    /// Whether the last heartbeat was written (claims pause, and rescue of others waits, while
    /// it is not).
    pub fn is_ok(&self) -> bool {
        self.ok.load(Ordering::Acquire)
    }

    /// Records whether the heartbeat was written; returns what was recorded before.
    pub fn set_ok(&self, ok: bool) -> bool {
        self.ok.swap(ok, Ordering::AcqRel)
    }

    /// The heartbeat row had vanished (a rescuer took this worker for dead) and was re-created:
    /// nothing claimed before is vouched for any more.
    pub fn note_reregistered(&self) {
        lock(&self.vouch).epoch += 1;
        self.reregistered.store(true, Ordering::Release);
    }

    /// Whether [`Health::note_reregistered`] happened since the last call.
    pub fn take_reregistered(&self) -> bool {
        self.reregistered.swap(false, Ordering::AcqRel)
    }
}

/// The claim loop's offer to take jobs enqueued in this process directly (local dispatch).
/// Both flags are sequentially consistent: a dispatch holds its process uuid in the ledger
/// before it reads `idle`, so a claim that follows the idle wait and hands back what the worker
/// does not account for always counts that job as accounted.
#[derive(Default)]
pub(crate) struct IdleOffer {
    /// The claim loop waits for work with its free slots released and nothing claimed ahead.
    idle: AtomicBool,
    /// A local dispatch failed in a way that may have committed: hand back what this worker
    /// does not account for before the next claim.
    unsure: AtomicBool,
}

impl IdleOffer {
    pub fn set_idle(&self, idle: bool) {
        self.idle.store(idle, Ordering::SeqCst);
    }

    pub fn is_idle(&self) -> bool {
        self.idle.load(Ordering::SeqCst)
    }

    pub fn mark_unsure(&self) {
        self.unsure.store(true, Ordering::SeqCst);
    }

    pub fn take_unsure(&self) -> bool {
        self.unsure.swap(false, Ordering::SeqCst)
    }
}
