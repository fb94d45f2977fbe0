//! Control from outside the worker: queues paused and resumed, and jobs cancelled while this
//! worker held them. Looked at every poll interval, and at once when a notification says
//! something changed (PostgreSQL's `plainjobs_control`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::aborted::run_on_aborted;
use super::core::Core;
use super::ledger::{lock, Running, Withdrawn};
use crate::model::JobStatus;

/// Looks every poll interval, or when `heard` says something changed, until `done`.
pub(crate) async fn control_task(
    core: Arc<Core>,
    mut looks: Looks,
    heard: Arc<Notify>,
    done: CancellationToken,
) {
    let every = core.config.poll_interval;
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = heard.notified() => {}
            _ = tokio::time::sleep(every) => {}
        }
        looks.look(&core).await;
    }
}

/// The looks of one worker, and whether the last one could read the paused queues (a failure
/// is logged once, not every poll interval).
#[derive(Default)]
pub(crate) struct Looks {
    failing: bool,
}

impl Looks {
    /// One look: the paused queues, then the jobs this worker holds.
    pub async fn look(&mut self, core: &Arc<Core>) {
        self.follow_pauses(core).await;
        stop_withdrawn(core).await;
    }

    /// Claims leave paused queues alone from now on; a resumed queue is claimed from at once.
    async fn follow_pauses(&mut self, core: &Core) {
        match core.store().paused_queues().await {
            Ok(paused) => {
                if std::mem::take(&mut self.failing) {
                    tracing::info!("reading the paused queues again");
                }
                follow(core, paused.into_iter().map(|p| p.queue).collect());
            }
            Err(e) if !self.failing => {
                self.failing = true;
                tracing::warn!(error = %e, "could not read the paused queues; claiming as before (`plainjobs migrate` creates what pausing needs)");
            }
            Err(e) => tracing::debug!(error = %e, "still cannot read the paused queues"),
        }
    }
}

fn follow(core: &Core, paused: HashSet<String>) {
    let change = core.claim_queues.follow(&paused);
    for queue in &change.paused {
        tracing::info!(queue = %queue, "queue paused: no more jobs are claimed from it (those running finish)");
    }
    for queue in &change.resumed {
        tracing::info!(queue = %queue, "queue resumed");
    }
    if !change.resumed.is_empty() {
        core.wake.notify_one();
    }
}

/// Stops the jobs this worker holds whose process is gone: cancelled by an operator (or taken
/// by a rescuer that thought this worker dead).
async fn stop_withdrawn(core: &Arc<Core>) {
    let watched = core.ledger.watched();
    if watched.is_empty() {
        return;
    }
    let existing: HashSet<Uuid> = match core.store().existing_processes(&watched).await {
        Ok(existing) => existing.into_iter().collect(),
        Err(e) => {
            tracing::warn!(error = %e, "could not look for cancelled jobs; looking again soon");
            return;
        }
    };
    for uuid in watched.into_iter().filter(|u| !existing.contains(u)) {
        match core.ledger.withdraw(uuid) {
            Withdrawn::Running(running) => stop(core, *running).await,
            Withdrawn::Waiting => {
                tracing::info!(job_process_uuid = %uuid, "a job claimed ahead was cancelled before it started")
            }
            Withdrawn::Gone => {}
        }
    }
}

/// Stops a running job whose process is gone, and runs its `on_aborted` when it was cancelled
/// (a rescuer that turned it LOST runs that hook itself).
async fn stop(core: &Arc<Core>, running: Running) {
    let process = running.process;
    running.cancel.cancel();
    core.ledger.release(process.uuid);
    let result = match core.store().find_result(process.uuid).await {
        Ok(result) => result,
        Err(e) => {
            tracing::warn!(job_process_uuid = %process.uuid, error = %e, "stopped a job whose process is gone; could not read its result");
            return;
        }
    };
    match result {
        Some(r) if r.status == JobStatus::Cancelled => {
            tracing::warn!(job_class = %process.job_class, job_process_uuid = %process.uuid, reason = %r.error, "job cancelled while it ran; stopped");
            let core = core.clone();
            // Its own task: a slow hook must not hold up the next look.
            core.tasks
                .clone()
                .spawn(async move { run_on_aborted(&core, &[r]).await });
        }
        Some(r) => {
            tracing::warn!(job_class = %process.job_class, job_process_uuid = %process.uuid, status = %r.status.as_str(), "another worker wrote this job's result while it ran here (this worker was taken for dead); stopped this run");
        }
        None => {
            tracing::warn!(job_class = %process.job_class, job_process_uuid = %process.uuid, "job's process was deleted without a result (by hand, or an older plainjobs' purge); stopped");
        }
    }
}

/// The queues the claim loop takes from: the worker's, less those paused.
pub(crate) struct ClaimQueues {
    serves: Vec<String>,
    active: Mutex<Arc<[String]>>,
}

/// What [`ClaimQueues::follow`] changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct PauseChange {
    pub paused: Vec<String>,
    pub resumed: Vec<String>,
}

impl ClaimQueues {
    /// All of `serves`, until a look finds some paused.
    pub fn new(serves: &[String]) -> ClaimQueues {
        ClaimQueues {
            serves: serves.to_vec(),
            active: Mutex::new(serves.to_vec().into()),
        }
    }

    /// The queues to claim from now.
    pub fn active(&self) -> Arc<[String]> {
        lock(&self.active).clone()
    }

    pub fn is_active(&self, queue: &str) -> bool {
        lock(&self.active).iter().any(|q| q == queue)
    }

    /// Claims from the served queues that are not in `paused`; says which queues changed.
    pub fn follow(&self, paused: &HashSet<String>) -> PauseChange {
        let next: Vec<String> = self
            .serves
            .iter()
            .filter(|q| !paused.contains(*q))
            .cloned()
            .collect();
        let mut active = lock(&self.active);
        let was: HashSet<&String> = active.iter().collect();
        let now: HashSet<&String> = next.iter().collect();
        let change = PauseChange {
            paused: active
                .iter()
                .filter(|q| !now.contains(q))
                .cloned()
                .collect(),
            resumed: next.iter().filter(|q| !was.contains(q)).cloned().collect(),
        };
        *active = next.into();
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> HashSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn paused_queues_leave_the_claim_and_come_back_when_resumed() {
        let queues = ClaimQueues::new(&["a".into(), "b".into()]);
        let change = queues.follow(&set(&["b", "elsewhere"]));
        assert_eq!(change.paused, vec!["b".to_string()]);
        assert!(change.resumed.is_empty());
        assert_eq!(&*queues.active(), &["a".to_string()]);
        assert!(!queues.is_active("b"));
        assert_eq!(queues.follow(&set(&["b"])), PauseChange::default());
        let change = queues.follow(&set(&[]));
        assert_eq!(change.resumed, vec!["b".to_string()]);
        assert_eq!(&*queues.active(), &["a".to_string(), "b".to_string()]);
    }
}
