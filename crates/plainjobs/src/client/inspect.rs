//! Reading the job tables: one job by any of its uuids, the lists, the counts.

use uuid::Uuid;

use crate::model::{JobProcess, JobRequest, JobResult, WorkerHeartbeat};
use crate::store::{QueueStats, ResultFilter};
use crate::{Jobs, Result};

/// A job found by [`Jobs::find`].
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "table", rename_all = "snake_case")]
pub enum Found {
    /// Pending.
    Request(JobRequest),
    /// Claimed or running.
    Process(JobProcess),
    /// Finished.
    Result(JobResult),
}

impl Jobs {
    /// Finds a job by uuid: a request, a process (by its own or its request's uuid), or a result
    /// (by its own uuid, the uuid of the process it ended, or the newest result of the request
    /// with that uuid). Any uuid `enqueue`, a worker's log or a result printed finds the job.
    ///
    /// # Errors
    /// A database error.
    pub async fn find(&self, uuid: Uuid) -> Result<Option<Found>> {
        if let Some(r) = self.store().request_by_uuid(uuid).await? {
            return Ok(Some(Found::Request(r)));
        }
        if let Some(p) = self.store().process_by_uuid(uuid).await? {
            return Ok(Some(Found::Process(p)));
        }
        Ok(self.store().find_result(uuid).await?.map(Found::Result))
    }

    /// The pending and running jobs of `job_class` holding concurrency key `key`, oldest first:
    /// what refused a duplicate (an enqueue that returned `None`).
    ///
    /// # Errors
    /// A database error.
    ///
    /// # Example
    /// ```no_run
    /// # async fn demo(jobs: plainjobs::Jobs) -> plainjobs::Result<()> {
    /// for holder in jobs.holding_key("app.jobs.Report", "2026-11-28").await? {
    ///     println!("{holder:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn holding_key(&self, job_class: &str, key: &str) -> Result<Vec<Found>> {
        let (requests, processes) = self.store().holding_key(job_class, key, 10).await?;
        Ok(processes
            .into_iter()
            .map(Found::Process)
            .chain(requests.into_iter().map(Found::Request))
            .collect())
    }

    /// Pending requests, in claim order.
    ///
    /// # Errors
    /// A database error.
    pub async fn requests(&self, limit: i64) -> Result<Vec<JobRequest>> {
        self.store().requests(limit).await
    }

    /// Claimed and running jobs.
    ///
    /// # Errors
    /// A database error.
    pub async fn processes(&self, limit: i64) -> Result<Vec<JobProcess>> {
        self.store().processes(limit).await
    }

    /// Results, newest first, as `filter` says.
    ///
    /// # Errors
    /// A database error.
    pub async fn results(&self, filter: &ResultFilter) -> Result<Vec<JobResult>> {
        self.store().results(filter).await
    }

    /// Registered workers.
    ///
    /// # Errors
    /// A database error.
    pub async fn workers(&self) -> Result<Vec<WorkerHeartbeat>> {
        self.store().workers().await
    }

    /// Counts per queue, and whether it is paused (a paused queue with no jobs is listed too).
    ///
    /// # Errors
    /// A database error.
    pub async fn stats(&self) -> Result<Vec<QueueStats>> {
        let mut stats = self.store().stats().await?;
        for paused in self.store().paused_queues().await? {
            match stats.iter_mut().find(|s| s.queue == paused.queue) {
                Some(s) => s.paused = true,
                None => stats.push(QueueStats {
                    queue: paused.queue,
                    paused: true,
                    ..Default::default()
                }),
            }
        }
        stats.sort_by(|a, b| a.queue.cmp(&b.queue));
        Ok(stats)
    }
}
