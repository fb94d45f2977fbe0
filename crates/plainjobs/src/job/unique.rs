//! What a job's `should_enqueue` may ask, under the lock plain.jobs takes for its key.

use md5::{Digest, Md5};
use uuid::Uuid;

use crate::store::Conn;
use crate::Result;

/// The advisory lock id plain.jobs takes for a job class and concurrency key: the first 8 bytes,
/// big-endian and signed, of `md5("{job_class}::{concurrency_key}")`.
///
/// # Example
/// ```
/// let id = plainjobs::advisory_lock_id("app.jobs.Report", "daily");
/// assert_eq!(id, plainjobs::advisory_lock_id("app.jobs.Report", "daily"));
/// ```
pub fn advisory_lock_id(job_class: &str, concurrency_key: &str) -> i64 {
    let digest = Md5::digest(format!("{job_class}::{concurrency_key}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// The queries a job's [`should_enqueue`](crate::Job::should_enqueue) can make, inside the
/// enqueue's transaction and under the key's lock.
pub struct UniqueCheck<'a> {
    pub(crate) conn: &'a mut dyn Conn,
    pub(crate) job_class: String,
    pub(crate) concurrency_key: String,
    pub(crate) exclude_process: Option<Uuid>,
}

impl UniqueCheck<'_> {
    /// The job class being enqueued.
    pub fn job_class(&self) -> &str {
        &self.job_class
    }

    /// Pending requests of this job class with this key (`include_retries: false` counts only
    /// first attempts).
    ///
    /// # Errors
    /// A database error.
    pub async fn requested_jobs(&mut self, include_retries: bool) -> Result<i64> {
        self.conn
            .count_requests(&self.job_class, &self.concurrency_key, include_retries)
            .await
    }

    /// Claimed or running jobs of this class with this key, not counting the job that is
    /// enqueueing (when the enqueue comes from a running job).
    ///
    /// # Errors
    /// A database error.
    pub async fn processing_jobs(&mut self, include_retries: bool) -> Result<i64> {
        self.conn
            .count_processes(
                &self.job_class,
                &self.concurrency_key,
                include_retries,
                self.exclude_process,
            )
            .await
    }

    /// Takes a transaction-scoped advisory lock with an id of your own (for a
    /// [`LockStrategy::Custom`]).
    ///
    /// # Errors
    /// A database error.
    pub async fn advisory_lock(&mut self, id: i64) -> Result<()> {
        self.conn.advisory_lock(id).await
    }
}
