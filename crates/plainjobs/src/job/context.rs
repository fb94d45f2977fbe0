//! [`JobContext`]: what a running job sees.

use tokio_util::sync::CancellationToken;

use super::{JobError, State};
use crate::model::JobProcess;
use crate::Jobs;

/// What a running job can see: its process row, the application state, the queue itself.
pub struct JobContext {
    pub(crate) process: JobProcess,
    pub(crate) state: State,
    pub(crate) jobs: Jobs,
    pub(crate) shutdown: CancellationToken,
}

impl JobContext {
    /// The claimed row this run belongs to (uuid, attempt, queue, …).
    pub fn process(&self) -> &JobProcess {
        &self.process
    }

    /// Application state of type `T` (see [`Worker::state`](crate::Worker::state)).
    ///
    /// # Errors
    /// A [`JobError`] naming the type when the worker was given none.
    pub fn state<T: Send + Sync + 'static>(&self) -> Result<&T, JobError> {
        self.state.get::<T>()
    }

    /// All application state.
    pub fn states(&self) -> &State {
        &self.state
    }

    /// The queue, to enqueue follow-up jobs.
    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    /// Whether the worker is shutting down (a long job may stop early and defer itself).
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Completes when the worker begins to shut down.
    pub async fn shutting_down(&self) {
        self.shutdown.cancelled().await
    }
}
