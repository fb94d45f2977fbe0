//! The ledger: what a worker holds — processes claimed ahead, running, or with a start or end on
//! its way to the database; those whose result it gave up writing — and the rules about them.
//!
//! Two readers depend on it being complete: the orphan rescue, which turns this worker's
//! processes that it does not account for into LOST results (or hands them back), and the
//! hand-back after a claim whose reply was lost. The methods keep it complete:
//! - a claim records what it took before the rescue can look ([`Ledger::claiming`]);
//! - a job given up moves to `abandoned` before it leaves `held` ([`Ledger::abandon`]), and
//!   [`Ledger::accounted`] reads the two in the opposite order, so a job is always in one;
//! - a running job is recorded under the lock the shutdown's cancel sweep takes ([`Ledger::start`],
//!   and with an abort check for starts from outside the claim loop, [`Ledger::start_unless`]),
//!   so a job started is one the sweep will cancel;
//! - a job claimed ahead moves to running under the same lock that a cancel's withdrawal
//!   takes ([`Ledger::withdraw`]), so a cancelled job is either stopped or never started.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::model::JobProcess;

/// Locks a mutex, recovering from poisoning (a panic elsewhere cannot corrupt these sets).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A job task that can be cancelled.
pub(crate) struct Running {
    pub process: JobProcess,
    pub cancel: CancellationToken,
}

/// What [`Ledger::withdraw`] took away from the worker.
pub(crate) enum Withdrawn {
    /// A running job: the caller stops it.
    Running(Box<Running>),
    /// A job claimed ahead: it will not start.
    Waiting,
    /// Nothing this worker runs or waits to run (finished meanwhile, or not its own).
    Gone,
}

/// The jobs with a task, or waiting for one: under one lock, so that a withdrawal and a start
/// never miss each other.
#[derive(Default)]
struct Tasks {
    /// Job tasks that can be cancelled, by process uuid.
    running: HashMap<Uuid, Running>,
    /// Jobs claimed ahead of a slot, and whether they were withdrawn meanwhile.
    waiting: HashMap<Uuid, bool>,
}

/// What the worker accounts for: see [`Ledger::accounted`].
pub(crate) struct Accounted {
    /// Held: claimed ahead, running, or with a write on its way.
    pub held: Vec<Uuid>,
    /// Began, and its result was given up: LOST to the orphan rescue, never handed back.
    pub abandoned: Vec<Uuid>,
}

impl Accounted {
    /// Held and abandoned together.
    pub fn all(self) -> Vec<Uuid> {
        let mut all = self.held;
        all.extend(self.abandoned);
        all
    }
}

#[derive(Default)]
pub(crate) struct Ledger {
    /// Processes of this worker whose result is not written yet.
    held: Mutex<HashSet<Uuid>>,
    /// Jobs that began but whose result this worker gave up writing.
    abandoned: Mutex<HashSet<Uuid>>,
    /// Running and claimed-ahead jobs.
    tasks: Mutex<Tasks>,
    /// Held across a claim and the recording of what it took, and by the orphan rescue.
    claims: tokio::sync::Mutex<()>,
}

/// A claim in progress: the orphan rescue waits until it is dropped.
pub(crate) struct Claiming<'a> {
    ledger: &'a Ledger,
    _guard: tokio::sync::MutexGuard<'a, ()>,
}

impl Claiming<'_> {
    /// Records what the claim took, before the rescue can look.
    pub fn record(&self, processes: &[JobProcess]) {
        let mut held = lock(&self.ledger.held);
        held.extend(processes.iter().map(|p| p.uuid));
    }
}

impl Ledger {
    /// Starts a claim: no orphan rescue runs until the returned guard is dropped, and
    /// [`Claiming::record`] records what it took.
    pub async fn claiming(&self) -> Claiming<'_> {
        Claiming {
            ledger: self,
            _guard: self.claims.lock().await,
        }
    }

    /// For the orphan rescue: no claim runs until the guard is dropped. None if a claim takes
    /// longer than `wait`.
    pub async fn pause_claims(&self, wait: Duration) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        tokio::time::timeout(wait, self.claims.lock()).await.ok()
    }

    /// Holds a process the worker is about to own (a local dispatch, before its insert).
    pub fn hold(&self, process_uuid: Uuid) {
        lock(&self.held).insert(process_uuid);
    }

    /// Its result is written, or it went back to the queue, or it was withdrawn.
    pub fn release(&self, process_uuid: Uuid) {
        self.release_all([&process_uuid]);
    }

    /// As [`Ledger::release`], for many.
    pub fn release_all<'a>(&self, process_uuids: impl IntoIterator<Item = &'a Uuid>) {
        let mut held = lock(&self.held);
        let mut tasks = lock(&self.tasks);
        for u in process_uuids {
            held.remove(u);
            tasks.waiting.remove(u);
        }
    }

    /// Records jobs claimed ahead of a slot (held already): they can be withdrawn until they
    /// start.
    pub fn wait_ahead<'a>(&self, process_uuids: impl IntoIterator<Item = &'a Uuid>) {
        let mut tasks = lock(&self.tasks);
        for u in process_uuids {
            tasks.waiting.insert(*u, false);
        }
    }

    /// The running and claimed-ahead jobs not withdrawn yet: what a look for cancelled jobs
    /// checks.
    pub fn watched(&self) -> Vec<Uuid> {
        let tasks = lock(&self.tasks);
        let waiting = tasks.waiting.iter().filter(|(_, w)| !**w).map(|(u, _)| *u);
        tasks.running.keys().copied().chain(waiting).collect()
    }

    /// Takes a job whose process is gone (cancelled, or rescued by another worker) away from
    /// this worker: a running one is returned to be stopped (its result is not this worker's
    /// to write); one claimed ahead is marked, so it never starts.
    pub fn withdraw(&self, process_uuid: Uuid) -> Withdrawn {
        let mut tasks = lock(&self.tasks);
        if let Some(running) = tasks.running.remove(&process_uuid) {
            return Withdrawn::Running(Box::new(running));
        }
        match tasks.waiting.get_mut(&process_uuid) {
            Some(withdrawn) => {
                *withdrawn = true;
                Withdrawn::Waiting
            }
            None => Withdrawn::Gone,
        }
    }

    /// Gives up on a job that began but whose result cannot be written: the orphan rescue
    /// turns it LOST once it is older than the heartbeat timeout.
    pub fn abandon(&self, process_uuid: Uuid) {
        lock(&self.abandoned).insert(process_uuid);
        lock(&self.held).remove(&process_uuid);
    }

    /// Abandoned jobs that a rescue has now turned LOST.
    pub fn forget_abandoned<'a>(&self, process_uuids: impl IntoIterator<Item = &'a Uuid>) {
        let mut abandoned = lock(&self.abandoned);
        for u in process_uuids {
            abandoned.remove(u);
        }
    }

    /// What this worker accounts for. Read held first, then abandoned (the reverse of
    /// [`Ledger::abandon`]), so a job moving from one to the other is in at least one.
    pub fn accounted(&self) -> Accounted {
        let held = lock(&self.held).iter().copied().collect();
        let abandoned = lock(&self.abandoned).iter().copied().collect();
        Accounted { held, abandoned }
    }

    /// How many processes are held (for the stats line).
    pub fn held_count(&self) -> usize {
        lock(&self.held).len()
    }

    /// Records `process` as running and spawns its task with `spawn`, both under the
    /// running-jobs lock, so the task cannot look itself up before it is recorded. For the claim
    /// loop, which has ended before the shutdown takes the running jobs. False, spawning
    /// nothing, when it was claimed ahead and withdrawn since.
    pub fn start(
        &self,
        process: JobProcess,
        spawn: impl FnOnce(JobProcess, CancellationToken),
    ) -> bool {
        let mut tasks = lock(&self.tasks);
        if tasks.waiting.remove(&process.uuid) == Some(true) {
            return false;
        }
        Self::record_running(&mut tasks.running, process, spawn);
        true
    }

    /// As [`Ledger::start`], unless `abort` is set: [`Ledger::take_running`] is called only
    /// after `abort` is set, so a job started here is always among those it takes. For starts
    /// from outside the claim loop (local dispatch). Returns whether it started.
    pub fn start_unless(
        &self,
        abort: &CancellationToken,
        process: JobProcess,
        spawn: impl FnOnce(JobProcess, CancellationToken),
    ) -> bool {
        let mut tasks = lock(&self.tasks);
        if abort.is_cancelled() {
            return false;
        }
        Self::record_running(&mut tasks.running, process, spawn);
        true
    }

    fn record_running(
        running: &mut HashMap<Uuid, Running>,
        process: JobProcess,
        spawn: impl FnOnce(JobProcess, CancellationToken),
    ) {
        let cancel = CancellationToken::new();
        running.insert(
            process.uuid,
            Running {
                process: process.clone(),
                cancel: cancel.clone(),
            },
        );
        spawn(process, cancel);
    }

    /// A job task ended: true when it is still recorded as running, so it writes its own
    /// result; false when a cancellation took it (and writes the result).
    pub fn finish_running(&self, process_uuid: Uuid) -> bool {
        lock(&self.tasks).running.remove(&process_uuid).is_some()
    }

    /// Every running job, for the shutdown to cancel and write the results of.
    pub fn take_running(&self) -> Vec<Running> {
        lock(&self.tasks).running.drain().map(|(_, r)| r).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::new_uuid;

    fn process() -> JobProcess {
        JobProcess {
            id: 1,
            uuid: new_uuid(),
            created_at: chrono::Utc::now(),
            started_at: None,
            job_request_uuid: new_uuid(),
            requested_at: None,
            job_class: "job".into(),
            parameters: None,
            priority: 0,
            source: String::new(),
            queue: "default".into(),
            retries: 0,
            retry_attempt: 0,
            concurrency_key: String::new(),
            trace_id: None,
            span_id: None,
            worker_id: new_uuid(),
        }
    }

    #[test]
    fn a_job_withdrawn_while_claimed_ahead_never_starts() {
        let ledger = Ledger::default();
        let p = process();
        ledger.hold(p.uuid);
        ledger.wait_ahead([&p.uuid]);
        assert_eq!(ledger.watched(), vec![p.uuid]);
        assert!(matches!(ledger.withdraw(p.uuid), Withdrawn::Waiting));
        assert!(
            ledger.watched().is_empty(),
            "withdrawn jobs are not looked at again"
        );
        let mut spawned = false;
        assert!(!ledger.start(p, |_, _| spawned = true));
        assert!(!spawned);
    }

    #[test]
    fn a_running_job_withdrawn_is_handed_over_to_be_stopped() {
        let ledger = Ledger::default();
        let p = process();
        let uuid = p.uuid;
        ledger.hold(uuid);
        ledger.wait_ahead([&uuid]);
        assert!(ledger.start(p, |_, _| {}));
        assert_eq!(ledger.watched(), vec![uuid]);
        let Withdrawn::Running(running) = ledger.withdraw(uuid) else {
            panic!("running")
        };
        assert_eq!(running.process.uuid, uuid);
        assert!(
            !ledger.finish_running(uuid),
            "its result is not the task's to write"
        );
        assert!(matches!(ledger.withdraw(uuid), Withdrawn::Gone));
    }

    #[test]
    fn a_job_handed_back_is_no_longer_waiting() {
        let ledger = Ledger::default();
        let p = process();
        ledger.hold(p.uuid);
        ledger.wait_ahead([&p.uuid]);
        ledger.release(p.uuid);
        assert!(ledger.watched().is_empty());
        assert!(matches!(ledger.withdraw(p.uuid), Withdrawn::Gone));
    }
}
