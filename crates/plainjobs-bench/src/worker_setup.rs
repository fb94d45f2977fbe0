//! How every benchmark worker is built: the library's defaults, but for what a row is about.

use std::sync::Arc;

use plainjobs::{Jobs, Worker, WorkerConfig};
use serde_json::{json, Value};

use crate::job::{BenchJob, Recorder};

/// The knobs a row may turn (each non-default one labels the row).
#[derive(clap::Args, Debug, Clone)]
pub struct WorkerSpec {
    /// Job slots per worker.
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    /// `Worker::max_pending` (default: the library's).
    #[arg(long)]
    pub max_pending: Option<usize>,
    /// Claims commit without waiting for their WAL flush (`WorkerConfig::asynchronous_claims`):
    /// a labelled extra row, never a reported one.
    #[arg(long)]
    pub asynchronous_claims: bool,
}

impl WorkerSpec {
    pub fn with_concurrency(&self, concurrency: usize) -> WorkerSpec {
        WorkerSpec {
            concurrency,
            ..self.clone()
        }
    }

    /// A worker on `jobs` whose handlers record into `recorder`.
    pub fn worker(&self, jobs: Jobs, recorder: Arc<Recorder>, local_dispatch: bool) -> Worker {
        let mut config = WorkerConfig::default();
        config.asynchronous_claims = self.asynchronous_claims;
        config.local_dispatch = local_dispatch;
        let mut w = Worker::new(jobs)
            .config(config)
            .register::<BenchJob>()
            .state(recorder)
            .concurrency(self.concurrency.max(1));
        if let Some(n) = self.max_pending {
            w = w.max_pending(n);
        }
        w
    }

    /// The pool of a worker in a process of its own: about four connections of its own
    /// (claims, LISTEN, result writes, maintenance) and two spare; the jobs here use none.
    /// Smaller than the library's default of 10 so that 16 processes fit in a stock server's
    /// 100 connections; the same for every K, so the many-workers curve compares like with
    /// like. In-process workers use the library's default.
    pub const PROCESS_POOL: u32 = 6;
    pub const IN_PROCESS_POOL: u32 = 10;

    /// The same knobs as command-line flags, for a worker process.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec!["--concurrency".to_string(), self.concurrency.to_string()];
        if let Some(n) = self.max_pending {
            args.extend(["--max-pending".to_string(), n.to_string()]);
        }
        if self.asynchronous_claims {
            args.push("--asynchronous-claims".to_string());
        }
        args
    }

    /// The row's labels for this worker.
    pub fn fields(&self) -> Value {
        json!({
            "concurrency": self.concurrency,
            "max_pending": self
                .max_pending
                .unwrap_or(plainjobs::settings::Settings::default().max_pending),
            "asynchronous_claims": self.asynchronous_claims,
        })
    }
}
