//! [`WorkerHandle`]: stopping a running worker, and the signals that do it.

use std::sync::Arc;

use tokio::task::JoinHandle;

use super::core::Shutdown;
use super::pace::{Counters, WorkerCounters};
use crate::Result;

/// A first SIGTERM or Ctrl-C stops claiming (running jobs finish); a second cancels them. Each
/// takes effect before it is logged, so a logger that fails cannot keep the worker running.
pub(super) async fn stop_on_signals(shutdown: Shutdown) {
    shutdown_signal().await;
    shutdown.stop.cancel();
    tracing::info!("shutdown requested: finishing running jobs (again to cancel them)");
    shutdown_signal().await;
    shutdown.abort.cancel();
    tracing::warn!("second shutdown request: cancelling running jobs");
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A running worker.
pub struct WorkerHandle {
    pub(super) shutdown: Shutdown,
    pub(super) task: JoinHandle<Result<()>>,
    pub(super) counters: Arc<Counters>,
}

impl WorkerHandle {
    /// What the worker has done so far: claims made (and how many came back short or empty),
    /// jobs taken and how they ended. For benchmarks and monitoring; it changes nothing.
    pub fn counters(&self) -> WorkerCounters {
        self.counters.report()
    }

    /// Asks for a graceful shutdown: stop claiming, hand back unstarted jobs, let running ones
    /// finish (up to the shutdown timeout).
    pub fn shutdown(&self) {
        self.shutdown.stop.cancel();
    }

    /// Cancels the jobs still running (they become CANCELLED, and are retried if they may be).
    pub fn abort(&self) {
        self.shutdown.stop.cancel();
        self.shutdown.abort.cancel();
    }

    /// Waits for the worker to end.
    ///
    /// # Errors
    /// The worker's own error, or [`Error::WorkerTask`](crate::Error::WorkerTask) if its task panicked.
    pub async fn join(self) -> Result<()> {
        match self.task.await {
            Ok(out) => out,
            Err(e) => Err(crate::Error::WorkerTask(e)),
        }
    }

    /// Graceful shutdown, then waits.
    ///
    /// # Errors
    /// As [`WorkerHandle::join`].
    pub async fn stop(self) -> Result<()> {
        self.shutdown();
        self.join().await
    }
}
