//! Local dispatch (`WorkerConfig::local_dispatch`): the worker's side of
//! [`LocalDispatch`]. While the claim loop is idle, a job enqueued through this worker's `Jobs`
//! handle is inserted as its process, begun, and starts when that one statement commits.

use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::core::Core;
use super::execute::spawn_job_unless_aborted;
use super::pace::Counters;
use super::shutdown::hand_back_unaccounted_at_shutdown;
use crate::dispatch::{LocalDispatch, Reservation};
use crate::model::{new_uuid, JobRequest};
use crate::store::{NewRequest, Start};
use crate::Result;

impl LocalDispatch for Core {
    /// The process uuid is held in the ledger before the worker is seen idle (see
    /// [`IdleOffer`](super::core::IdleOffer)); the stop flag is read again after the slot is
    /// taken, since a shutdown that began in between drains (takes every slot) only after
    /// setting it.
    fn reserve(self: Arc<Self>, req: &NewRequest) -> Option<Box<dyn Reservation>> {
        let serves =
            self.claim_queues.is_active(&req.queue) && self.registry.contains(&req.job_class);
        if !matches!(req.start, Start::Now) || !serves {
            return None;
        }
        let process_uuid = new_uuid();
        self.ledger.hold(process_uuid);
        let health = &self.health;
        let open = self.offer.is_idle()
            && !self.shutdown.is_stopping()
            && health.is_ok()
            && health.vouch().is_some();
        let slot = open
            .then(|| self.slots.clone().try_acquire_owned().ok())
            .flatten()
            .filter(|_| !self.shutdown.is_stopping());
        match slot {
            Some(permit) => Some(Box::new(LocalSlot {
                core: self,
                permit,
                process_uuid,
            })),
            None => {
                self.ledger.release(process_uuid);
                None
            }
        }
    }
}

/// A slot reserved for one job, with the uuid its process will have (held).
struct LocalSlot {
    core: Arc<Core>,
    permit: OwnedSemaphorePermit,
    process_uuid: Uuid,
}

impl Reservation for LocalSlot {
    fn dispatch(self: Box<Self>, req: NewRequest) -> JoinHandle<Option<Result<JobRequest>>> {
        let LocalSlot {
            core,
            permit,
            process_uuid,
        } = *self;
        let tasks = core.tasks.clone();
        tasks.spawn(insert_and_start(core, permit, process_uuid, req))
    }
}

/// The dispatch's task: the insert, then the start.
async fn insert_and_start(
    core: Arc<Core>,
    permit: OwnedSemaphorePermit,
    process_uuid: Uuid,
    req: NewRequest,
) -> Option<Result<JobRequest>> {
    let inserted = core
        .store()
        .insert_started(core.id(), &req, process_uuid)
        .await;
    match inserted {
        Ok(Some((request, process))) => {
            Counters::add(&core.counters.claimed, 1);
            if let Err(permit) = spawn_job_unless_aborted(&core, process, permit) {
                give_back_aborted(&core, process_uuid, permit).await;
            }
            Some(Ok(request))
        }
        Ok(None) => {
            // This worker's heartbeat row is gone (a rescuer took it for dead): the caller
            // queues the job.
            core.ledger.release(process_uuid);
            None
        }
        Err(e) => {
            core.ledger.release(process_uuid);
            if e.may_have_committed() {
                core.offer.mark_unsure();
                // The claim loop hands back what it does not account for before it claims:
                // now, not after its idle wait.
                core.wake.notify_one();
            }
            // The slot comes back only now, after `unsure` is set.
            drop(permit);
            Some(Err(e))
        }
    }
}

/// The worker gave up on its running jobs while this one was being inserted: it goes back to
/// the queue, never begun. Under the claim lock, so that a claim in flight has recorded its own
/// jobs first; the slot is given back after, so the shutdown waits for the hand-back.
async fn give_back_aborted(core: &Core, process_uuid: Uuid, permit: OwnedSemaphorePermit) {
    let claiming = core.ledger.claiming().await;
    core.ledger.release(process_uuid);
    hand_back_unaccounted_at_shutdown(core).await;
    drop(claiming);
    drop(permit);
}
