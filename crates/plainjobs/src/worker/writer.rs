//! The result writer: one task that records, in order, the starts of claimed-ahead jobs and the
//! ends of finished ones, every write that has arrived in one statement. A claimed-ahead job
//! therefore starts at once, without a round trip of its own.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use uuid::Uuid;

use super::core::Core;
use super::ledger::lock;
use crate::store::Finish;

/// What the result writer records.
pub(crate) enum Write {
    /// A claimed-ahead job began.
    Start(Uuid),
    /// A job ended with no follow-up request.
    Finish(Finish),
}

/// The sending side of the result writer; closed once every job task has ended.
pub(crate) struct ResultWriter {
    tx: Mutex<Option<mpsc::Sender<Write>>>,
}

/// Writes taken from the channel at a time.
const MAX_BATCH: usize = 1000;

impl ResultWriter {
    pub fn new(capacity: usize) -> (ResultWriter, mpsc::Receiver<Write>) {
        let (tx, rx) = mpsc::channel(capacity);
        let writer = ResultWriter {
            tx: Mutex::new(Some(tx)),
        };
        (writer, rx)
    }

    /// Queues a claimed-ahead job's start.
    pub async fn started(&self, process_uuid: Uuid) {
        self.send(Write::Start(process_uuid)).await
    }

    /// Queues a job's end.
    pub async fn finished(&self, finish: Finish) {
        self.send(Write::Finish(finish)).await
    }

    /// No more writes: the writer task flushes what it has and ends.
    pub fn close(&self) {
        lock(&self.tx).take();
    }

    async fn send(&self, write: Write) {
        let tx = lock(&self.tx).clone();
        let sent = match tx {
            Some(tx) => tx.send(write).await.is_ok(),
            None => false,
        };
        if !sent {
            tracing::error!(
                "result writer is gone; the job's process row stays and will be rescued"
            );
        }
    }
}

/// The writer task: every write that has arrived, in one statement, until the channel closes.
pub(crate) async fn write_results(core: Arc<Core>, mut rx: mpsc::Receiver<Write>) {
    let mut writes = Vec::with_capacity(256);
    let mut finishes: Vec<Finish> = Vec::with_capacity(256);
    let mut starts: Vec<Uuid> = Vec::new();
    while rx.recv_many(&mut writes, MAX_BATCH).await > 0 {
        for w in writes.drain(..) {
            match w {
                Write::Start(u) => starts.push(u),
                Write::Finish(f) => finishes.push(f),
            }
        }
        // A job that began and ended within this batch needs no separate start.
        if !starts.is_empty() && !finishes.is_empty() {
            let ending: HashSet<Uuid> = finishes.iter().map(|f| f.process_uuid).collect();
            starts.retain(|u| !ending.contains(u));
        }
        write_batch(&core, &starts, &finishes).await;
        finishes.clear();
        starts.clear();
    }
}

/// Writes one batch, retrying through outages. A batch the database refuses for its content is
/// written row by row, so one bad row cannot stall every other result.
async fn write_batch(core: &Core, starts: &[Uuid], batch: &[Finish]) {
    let mut delay = Duration::from_millis(50);
    loop {
        match core
            .store()
            .finish_many(core.id(), starts, batch, core.config.listen)
            .await
        {
            Ok(written) => {
                log_dropped_late_finishes(batch, written);
                core.ledger
                    .release_all(batch.iter().map(|f| &f.process_uuid));
                return;
            }
            Err(e) if !e.is_transient() => {
                tracing::warn!(error = %e, jobs = batch.len(), "the database refused a batch of results; writing them one by one");
                write_one_by_one(core, starts, batch).await;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, jobs = batch.len(), "could not write results; retrying");
                let s = &core.shutdown;
                if s.is_aborted() && s.is_stopping() && delay >= Duration::from_secs(5) {
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

/// A row still refused is abandoned to the orphan rescue (LOST after the heartbeat timeout, then
/// retried).
async fn write_one_by_one(core: &Core, starts: &[Uuid], batch: &[Finish]) {
    let store = core.store();
    for one in batch {
        match store
            .finish_many(
                core.id(),
                &[],
                std::slice::from_ref(one),
                core.config.listen,
            )
            .await
        {
            Ok(_) => core.ledger.release(one.process_uuid),
            Err(e) => {
                tracing::error!(error = %e, job_process_uuid = %one.process_uuid, "cannot write this result; the job will be rescued as LOST");
                core.ledger.abandon(one.process_uuid);
            }
        }
    }
    if !starts.is_empty() {
        let _ = store
            .finish_many(core.id(), starts, &[], core.config.listen)
            .await;
    }
}

/// A finish whose process is gone was rescued meanwhile: its late result is dropped.
fn log_dropped_late_finishes(batch: &[Finish], written: Vec<Uuid>) {
    if written.len() < batch.len() {
        let written: HashSet<Uuid> = written.into_iter().collect();
        for f in batch.iter().filter(|f| !written.contains(&f.process_uuid)) {
            tracing::info!(job_process_uuid = %f.process_uuid, "result already written by a rescuer; this late finish is dropped");
        }
    }
}
