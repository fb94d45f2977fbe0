//! Control of running work: cancel jobs (one by any of its uuids, or every job a filter
//! matches), pause and resume queues across every worker.

use uuid::Uuid;

use crate::model::JobResult;
use crate::store::{CancelTarget, CancelledRows, JobFilter, PausedQueue, Purged};
use crate::{Error, Jobs, Result};

/// What [`Jobs::cancel`] did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Cancelled {
    /// The job was waiting: it is removed, with this CANCELLED result.
    Pending(JobResult),
    /// A worker held the job (running it, or about to): the worker was told and stops it, runs
    /// its `on_aborted`; this is its CANCELLED result.
    Running {
        /// The CANCELLED result.
        result: JobResult,
        /// The worker that held it.
        worker_id: Uuid,
    },
    /// The job had already finished: nothing changed.
    AlreadyFinished(JobResult),
    /// No job has this uuid.
    NotFound,
}

impl Jobs {
    /// Cancels one job by any of its uuids (request, or process): a pending job is removed, a
    /// running one is stopped by its worker (a shell command's whole process group is ended)
    /// and its `on_aborted` runs. Either way the job gets a CANCELLED result whose error says
    /// `Cancelled by {by}`, and it is not retried (its `retries` is set to its attempt, so
    /// neither plainjobs nor plain.jobs retries it).
    ///
    /// A worker learns of the cancel at once on PostgreSQL (`NOTIFY plainjobs_control`), and
    /// within its poll interval (1 s by default) otherwise. A plain.jobs worker running the job
    /// is not stopped (it has no way to be told); its result is discarded, as plain.jobs does
    /// when a job's process row is gone.
    ///
    /// # Errors
    /// A database error.
    ///
    /// # Example
    /// ```no_run
    /// # async fn demo(jobs: plainjobs::Jobs, uuid: uuid::Uuid) -> plainjobs::Result<()> {
    /// use plainjobs::Cancelled;
    /// match jobs.cancel(uuid, "ops@example.com").await? {
    ///     Cancelled::Pending(_) => println!("removed before it ran"),
    ///     Cancelled::Running { worker_id, .. } => println!("worker {worker_id} stops it"),
    ///     Cancelled::AlreadyFinished(r) => println!("already {}", r.status.as_str()),
    ///     Cancelled::NotFound => println!("no job {uuid}"),
    ///     _ => {}
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn cancel(&self, uuid: Uuid, by: &str) -> Result<Cancelled> {
        let reason = cancel_reason(by);
        let mut done = self
            .store()
            .cancel(CancelTarget::Uuids(&[uuid]), &reason)
            .await?;
        self.count_cancelled(&done);
        if let Some((result, worker_id)) = done.claimed.pop() {
            return Ok(Cancelled::Running { result, worker_id });
        }
        if let Some(result) = done.pending.pop() {
            return Ok(Cancelled::Pending(result));
        }
        match self.store().find_result(uuid).await? {
            Some(result) => Ok(Cancelled::AlreadyFinished(result)),
            None => Ok(Cancelled::NotFound),
        }
    }

    /// Cancels these jobs (by any of their uuids), as [`Jobs::cancel`] does one, in one
    /// transaction; says how many were pending and how many running. Finished and unknown
    /// uuids are left out.
    ///
    /// # Errors
    /// A database error.
    pub async fn cancel_many(&self, uuids: &[Uuid], by: &str) -> Result<Purged> {
        self.cancel_target(CancelTarget::Uuids(uuids), by).await
    }

    /// Cancels every pending and running job that `filter` matches (all of them with
    /// `JobFilter::new()`), as [`Jobs::cancel`] does one, in one transaction: what `plainjobs
    /// purge` does. Says how many were pending and how many running.
    ///
    /// # Errors
    /// A database error.
    ///
    /// # Example
    /// ```no_run
    /// # async fn demo(jobs: plainjobs::Jobs) -> plainjobs::Result<()> {
    /// let filter = plainjobs::JobFilter::new().queue("imports");
    /// let purged = jobs.cancel_where(&filter, "ops@example.com").await?;
    /// println!("{} pending and {} running jobs cancelled", purged.requests, purged.processes);
    /// # Ok(()) }
    /// ```
    pub async fn cancel_where(&self, filter: &JobFilter, by: &str) -> Result<Purged> {
        self.cancel_target(CancelTarget::Matching(filter), by).await
    }

    /// CANCELLED results count as consumed messages, with no span (as plain.jobs' do).
    fn count_cancelled(&self, done: &CancelledRows) {
        if let Some(metrics) = self.metrics() {
            metrics.results(&done.pending);
            for (result, _) in &done.claimed {
                metrics.results(std::slice::from_ref(result));
            }
        }
    }

    async fn cancel_target(&self, target: CancelTarget<'_>, by: &str) -> Result<Purged> {
        let done = self.store().cancel(target, &cancel_reason(by)).await?;
        self.count_cancelled(&done);
        Ok(Purged {
            requests: done.pending.len() as u64,
            processes: done.claimed.len() as u64,
        })
    }

    /// Pauses `queue` on every worker: within a second (at once on PostgreSQL) no worker claims
    /// from it; jobs running finish, jobs can still be enqueued. Returns false when it was
    /// paused already. plain.jobs' workers do not know of pauses and keep claiming.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty queue name; a database error.
    ///
    /// # Example
    /// ```no_run
    /// # async fn demo(jobs: plainjobs::Jobs) -> plainjobs::Result<()> {
    /// jobs.pause_queue("emails", "ops@example.com").await?;
    /// // … the mail server is back:
    /// jobs.resume_queue("emails").await?;
    /// # Ok(()) }
    /// ```
    pub async fn pause_queue(&self, queue: &str, by: &str) -> Result<bool> {
        check_queue(queue)?;
        self.store().pause_queue(queue, by).await
    }

    /// Resumes a paused queue; false when it was not paused.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty queue name; a database error.
    pub async fn resume_queue(&self, queue: &str) -> Result<bool> {
        check_queue(queue)?;
        self.store().resume_queue(queue).await
    }

    /// The paused queues, by name.
    ///
    /// # Errors
    /// A database error.
    pub async fn paused_queues(&self) -> Result<Vec<PausedQueue>> {
        self.store().paused_queues().await
    }
}

/// The error text of a cancelled job's result.
fn cancel_reason(by: &str) -> String {
    let by = by.trim();
    if by.is_empty() {
        "Cancelled".to_string()
    } else {
        format!("Cancelled by {by}")
    }
}

fn check_queue(queue: &str) -> Result<()> {
    if queue.trim().is_empty() {
        return Err(Error::InvalidInput {
            field: "queue",
            problem: "a queue name cannot be empty".into(),
        });
    }
    Ok(())
}
