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

/// `key` when it has at most `limit` characters; else its first characters, `…md5:` and the
/// MD5 of the whole key in hex (37 characters in all after the prefix), `limit` characters
/// long: the same text always gives the same key, and it still reads as what it stands for.
pub(crate) fn fitted_key(key: &str, limit: usize) -> String {
    if key.chars().count() <= limit {
        return key.to_string();
    }
    let digest = Md5::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let prefix: String = key.chars().take(limit.saturating_sub(37)).collect();
    format!("{prefix}…md5:{hex}")
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

#[cfg(test)]
mod tests {
    use super::fitted_key;

    #[test]
    fn long_keys_are_fitted_stably_and_short_ones_kept() {
        assert_eq!(fitted_key("echo hi", 255), "echo hi");
        let exact = "x".repeat(255);
        assert_eq!(fitted_key(&exact, 255), exact);
        let long = format!("echo {}", "y".repeat(300));
        let key = fitted_key(&long, 255);
        assert_eq!(key.chars().count(), 255, "{key}");
        assert!(
            key.starts_with("echo yyy") && key.contains("…md5:"),
            "{key}"
        );
        assert_eq!(fitted_key(&long, 255), key, "stable");
        let other = format!("echo {}z", "y".repeat(300));
        assert_ne!(fitted_key(&other, 255), key, "the hash tells them apart");
    }
}
