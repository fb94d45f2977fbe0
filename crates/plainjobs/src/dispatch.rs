//! Local dispatch: the interface through which an enqueue hands a new job straight to an idle
//! worker of the same process (see `WorkerConfig::local_dispatch`). The client calls it; the
//! worker implements it; neither sees the other's internals.

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::model::JobRequest;
use crate::store::NewRequest;
use crate::Result;

/// A running worker of this process that may take new jobs directly.
pub(crate) trait LocalDispatch: Send + Sync {
    /// A free slot for `req`, taken at once (no waiting, no round trip), or None when this
    /// worker cannot take the job now: it is not idle, has no free slot, does not serve the
    /// job's queue or type, or is stopping. An enqueue with no worker in its process pays
    /// nothing for asking.
    fn reserve(self: Arc<Self>, req: &NewRequest) -> Option<Box<dyn Reservation>>;
}

/// A slot reserved by [`LocalDispatch::reserve`].
pub(crate) trait Reservation: Send {
    /// Inserts `req` as the worker's process, begun, and starts it once that commits, in a task
    /// of its own, so a caller that stops waiting cannot leave a committed job neither running
    /// nor handed back. The task yields the request as enqueued (`id` 0, it never had a row),
    /// `None` when the worker can no longer take it (the caller queues the job), or the
    /// insert's error (when that may have committed, the worker hands back what it does not
    /// account for, and the caller's retry finds the job by its uuid).
    fn dispatch(self: Box<Self>, req: NewRequest) -> JoinHandle<Option<Result<JobRequest>>>;
}
