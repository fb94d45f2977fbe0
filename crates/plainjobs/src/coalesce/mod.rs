//! Group commit for single enqueues: concurrent enqueues through one [`Jobs`] handle (and its
//! clones) share insert statements, so that under load a commit and its WAL flush serve many
//! jobs instead of one each (issue 17).
//!
//! There is no task of its own. A caller that finds a free slot (fewer than `max_in_flight`
//! batches being inserted) and nothing pending inserts its row at once, on the connection it
//! already holds: an idle enqueue costs what it did before. A caller that finds every slot
//! taken leaves its row in the pending batch and waits. When a batch ends, its slot goes to the
//! pending batch: its oldest caller still waiting becomes the leader and inserts the whole
//! batch in one statement (`run.rs`), then tells each caller what became of its row.
//!
//! Each caller is told what it would have been told alone. A statement that may have
//! committed (the connection broke), or that failed for a reason that is not about its rows
//! (no connection, a conflict), gives every caller of the batch that error — and the enqueue's
//! retry after a closed connection stays idempotent, each caller looking for its own uuid. A
//! statement refused for what a row holds rolled back: each caller then inserts its row alone,
//! so one bad row fails only its own enqueue.
//!
//! Cancellation: a caller dropped while its row waits in the pending batch takes its row out
//! (no job, as an enqueue dropped before its statement was sent). Once its row is in a batch
//! that has a slot, the row is inserted whether or not its caller is still there (as an
//! enqueue dropped after its statement was sent) — unless that caller was the one asked to
//! lead the batch. A leader dropped while inserting does not drop the batch: the rest of it
//! finishes in a task (`detach.rs`), so no other caller is left without an answer.

mod detach;
mod run;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::error::DbErrorKind;
use crate::model::JobRequest;
use crate::store::{Conn, NewRequest};
use crate::{Error, Jobs, Result};

/// Most rows in one batch: one statement on either backend (SQLite inserts 500 rows per
/// statement), so that a batch whose statement fails inserted nothing.
const MAX_ROWS: usize = 500;

/// One handle's group commit: see the module docs.
pub(crate) struct Coalescer {
    state: Mutex<State>,
    max_in_flight: usize,
}

#[derive(Default)]
struct State {
    /// Batches being inserted (each holds a [`Slot`]).
    in_flight: usize,
    /// Rows waiting for a slot, oldest first.
    pending: VecDeque<Member>,
}

/// A caller's row in a batch, and where its answer goes.
struct Member {
    req: NewRequest,
    tx: oneshot::Sender<Outcome>,
}

/// What a waiting caller is told.
enum Outcome {
    /// Its row is in.
    Made(JobRequest),
    /// The batch failed, and this is what that means for its row.
    Failed(Error),
    /// The batch was refused for what one of its rows holds: insert this row alone.
    Alone(NewRequest),
    /// Insert this batch (the caller's own row, `own`, goes with it).
    Lead { batch: Batch, own: NewRequest },
}

/// Rows taken from the pending batch, and the slot they are inserted in.
struct Batch {
    members: Vec<Member>,
    slot: Slot,
}

/// One of the `max_in_flight` batches: released when dropped (whatever ended the batch),
/// handing the slot to the pending batch if there is one.
struct Slot(Option<Arc<Coalescer>>);

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(coalescer) = self.0.take() {
            coalescer.release();
        }
    }
}

impl Slot {
    /// Gives the slot back to the caller without releasing it.
    fn disarm(mut self) -> Option<Arc<Coalescer>> {
        self.0.take()
    }
}

/// What a caller does on arriving.
enum Arrival {
    /// Insert its own row at once.
    Alone(Slot, NewRequest),
    /// Insert the pending rows with its own.
    Lead(Batch),
    /// Wait for the answer.
    Wait,
}

impl Coalescer {
    /// A coalescer that inserts up to `max_in_flight` batches at once.
    pub(crate) fn new(max_in_flight: usize) -> Arc<Coalescer> {
        Arc::new(Coalescer {
            state: Mutex::default(),
            max_in_flight: max_in_flight.max(1),
        })
    }

    /// How many batches it inserts at once.
    #[cfg(test)]
    pub(crate) fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Batches being inserted now.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Inserts `req` (a request without a concurrency key, already admitted), alone on `conn`
    /// when a slot is free, else with the requests of other callers. `conn` is the caller's
    /// autocommit connection; it goes back to the pool before the caller waits.
    pub(crate) async fn insert(
        self: &Arc<Self>,
        jobs: &Jobs,
        mut conn: Box<dyn Conn + '_>,
        req: NewRequest,
    ) -> Result<JobRequest> {
        let uuid = req.uuid;
        let (tx, rx) = oneshot::channel();
        let arrival = {
            let mut state = self.lock();
            if state.in_flight < self.max_in_flight {
                state.in_flight += 1;
                let slot = Slot(Some(self.clone()));
                if state.pending.is_empty() {
                    Arrival::Alone(slot, req)
                } else {
                    let mut members = take(&mut state.pending, MAX_ROWS - 1);
                    members.push(Member { req, tx });
                    Arrival::Lead(Batch { members, slot })
                }
            } else {
                state.pending.push_back(Member { req, tx });
                Arrival::Wait
            }
        };
        match arrival {
            Arrival::Alone(slot, req) => {
                let made = conn.insert_requests(vec![req]).await;
                drop(conn);
                drop(slot);
                return one_row(made, uuid);
            }
            Arrival::Lead(batch) => {
                drop(conn);
                // Dropped meanwhile, this caller's row is in the batch, which finishes.
                run::lead(jobs, batch).await;
            }
            Arrival::Wait => drop(conn),
        }
        let mut waiter = Waiter {
            coalescer: self.clone(),
            uuid,
            rx,
            answered: false,
        };
        waiter.answer(jobs).await
    }

    /// A batch ended: the pending rows become the next batch in its slot, else the slot is
    /// free. A loop, not a recursion, when the pending callers are gone.
    fn release(self: Arc<Self>) {
        loop {
            let members = {
                let mut state = self.lock();
                if state.pending.is_empty() {
                    state.in_flight = state.in_flight.saturating_sub(1);
                    return;
                }
                take(&mut state.pending, MAX_ROWS)
            };
            let slot = Slot(Some(self.clone()));
            match offer(Batch { members, slot }) {
                Ok(()) => return,
                // Every caller of it was gone: keep the slot for what is pending now.
                Err(empty) => drop(empty.slot.disarm()),
            }
        }
    }
}

/// Hands `batch` to its oldest caller still waiting, which inserts it. Callers found gone are
/// left out (their rows were never taken, so they are not inserted); the batch comes back
/// empty when none is left.
fn offer(mut batch: Batch) -> std::result::Result<(), Batch> {
    while !batch.members.is_empty() {
        let leader = batch.members.remove(0);
        match leader.tx.send(Outcome::Lead {
            batch,
            own: leader.req,
        }) {
            Ok(()) => return Ok(()),
            Err(Outcome::Lead { batch: back, .. }) => batch = back,
            // What is sent comes back as it was.
            Err(_) => return Ok(()),
        }
    }
    Err(batch)
}

/// The first `n` pending rows.
fn take(pending: &mut VecDeque<Member>, n: usize) -> Vec<Member> {
    let n = n.min(pending.len());
    pending.drain(..n).collect()
}

/// The one row of a one-row insert.
fn one_row(made: Result<Vec<JobRequest>>, uuid: Uuid) -> Result<JobRequest> {
    made?.pop().ok_or_else(|| unanswered(uuid))
}

/// The error of a row whose batch ended without saying what became of it (a panic while
/// inserting, or the runtime shutting down under a detached batch): it may have been inserted.
fn unanswered(uuid: Uuid) -> Error {
    Error::Database {
        kind: DbErrorKind::ConnectionLost,
        source: sqlx::Error::Protocol(format!(
            "the insert of request {uuid} ended without saying whether it committed"
        )),
    }
}

/// A caller waiting for its row's answer. Dropped before it has one, it takes its row out of
/// the pending batch, or hands on a batch it was asked to lead.
struct Waiter {
    coalescer: Arc<Coalescer>,
    uuid: Uuid,
    rx: oneshot::Receiver<Outcome>,
    answered: bool,
}

impl Waiter {
    async fn answer(&mut self, jobs: &Jobs) -> Result<JobRequest> {
        loop {
            let outcome = (&mut self.rx).await;
            match outcome {
                Ok(Outcome::Lead { mut batch, own }) => {
                    let (tx, rx) = oneshot::channel();
                    batch.members.push(Member { req: own, tx });
                    self.rx = rx;
                    run::lead(jobs, batch).await;
                }
                Ok(Outcome::Made(made)) => {
                    self.answered = true;
                    return Ok(made);
                }
                Ok(Outcome::Failed(e)) => {
                    self.answered = true;
                    return Err(e);
                }
                Ok(Outcome::Alone(req)) => {
                    self.answered = true;
                    let mut conn = jobs.store().autocommit().await?;
                    return one_row(conn.insert_requests(vec![req]).await, self.uuid);
                }
                Err(_) => {
                    self.answered = true;
                    return Err(unanswered(self.uuid));
                }
            }
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        // Closed first: a batch offered from now on passes this caller by.
        self.rx.close();
        if let Ok(Outcome::Lead { batch, .. }) = self.rx.try_recv() {
            // Nobody left to lead it: dropping the empty batch releases its slot.
            if let Err(empty) = offer(batch) {
                drop(empty);
            }
            return;
        }
        let uuid = self.uuid;
        self.coalescer.lock().pending.retain(|m| m.req.uuid != uuid);
    }
}
